"""How days and times read on the page and in the mail (pure, without pandas: the ledger and the watch use it)."""

from __future__ import annotations

from datetime import date, datetime

__all__ = ["SUBJECT_LIMIT", "arrival_time", "date_label", "update_time"]

SUBJECT_LIMIT = 100
"""SNS takes a subject of 100 characters: the subscribers' mail, the operators' alarms and notices."""


def date_label(day: date) -> str:
    return day.strftime("%b. %d, %Y")


def update_time(day: date, updated_at: datetime) -> str:
    """When an update for ``day`` ran, as the mail says it: a backfill's fetch time is not glued to its day."""
    if updated_at.date() == day:
        return f"{updated_at:%I:%M %p}, {date_label(day)}"
    return f"{date_label(day)} (a backfill, fetched {updated_at:%I:%M %p}, {date_label(updated_at.date())})"


def arrival_time(day: date, claimed_at: datetime) -> str:
    """When cases arrived, for the page: the time, and the date too when it was not the page's own day."""
    if claimed_at.date() == day:
        return f"{claimed_at:%H:%M}"
    return f"{date_label(claimed_at.date())} {claimed_at:%H:%M}"
