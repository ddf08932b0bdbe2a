"""Errors that end a run, each with a message an operator can act on."""

from __future__ import annotations


class CpsCovidError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(CpsCovidError):
    """Input (feed or history) that must not be published; nothing was written."""


class SourceError(CpsCovidError):
    """The district's source could not be read."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class ConcurrentWriteError(CpsCovidError):
    """Another writer changed a published object since this run read it."""


class NewSeasonError(InputError):
    """Season totals dropped to near zero: an operator has to close the season."""


class GapError(InputError):
    """The as-of day is too far after the history's last day: zero-filling needs an operator's word."""


class AwsCallFailed(CpsCovidError):
    """An AWS call still failed after botocore's retries; the message names the system and the call."""
