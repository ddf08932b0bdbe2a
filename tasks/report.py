"""Reporting a run: its summary as artifacts, its name in the UI, its final state and what the CLI prints."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed, State

from cps_covid.errors import CpsCovidError
from cps_covid.rules import clock
from cps_covid.settings import Settings

if TYPE_CHECKING:  # the summaries import the merge (pandas), which the feed watch does not load
    from cps_covid.rules.summary import RunSummary


@task(name="Report the run", cache_policy=NO_CACHE)
def report_run(summary: RunSummary) -> None:
    """The run's summary as its artifact (and, for an update with new cases, the table by school)."""
    from cps_covid.rules.summary import UpdateSummary

    create_markdown_artifact(key=summary.ARTIFACT_KEY, markdown=summary.markdown(), description=summary.TITLE)
    if isinstance(summary, UpdateSummary) and summary.changes:
        create_table_artifact(key="new-cases-by-school", table=summary.table(), description="New cases by school")


def failed_with(err: CpsCovidError) -> State:
    """A flow's final state for an error of ours: its class and words, without Prefect logging it a second time
    (the task that raised it logged it, with its traceback)."""
    return Failed(message=f"{type(err).__name__}: {err}", data=err)


def scheduled_at() -> datetime:
    """When this flow run was scheduled to start (a cron tick, or a manual run's creation), not when it did."""
    return flow_run.scheduled_start_time or datetime.now(UTC)


def run_name(prefix: str) -> str:
    """``update-2021-09-24 at 13:54:02``: the day the run updates (``clock.update_day``, as the body resolves it)
    and its scheduled time in the configured timezone, so reruns of one day are told apart in the UI."""
    given, scheduled = flow_run.parameters.get("as_of"), scheduled_at()
    try:
        settings = Settings.load()
        as_of = clock.update_day(_as_of(given), scheduled, settings.replay_clock, settings.timezone).isoformat()
        scheduled = scheduled.astimezone(clock.zone(settings.timezone))
    except (CpsCovidError, ValueError):  # a settings or parameter error is the flow body's to report, not the name's
        as_of = str(given or scheduled.date())
    suffix = f" ({trigger})" if (trigger := flow_run.parameters.get("trigger")) else ""
    suffix += " (dry run)" if flow_run.parameters.get("dry_run") else ""
    return f"{prefix}-{as_of} at {scheduled:%H:%M:%S}{suffix}"


def _as_of(value: object) -> date | None:
    """A run's ``as_of`` parameter as the flow receives it (a date, or its ISO text in stored parameters)."""
    if not value:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def cli_outcome(command: str, state: State, kind: type[RunSummary]) -> int:
    """What a ``cps-covid`` command prints for a flow's final state, and its exit code (3: cancelled, 1: not done)."""
    if state.is_cancelled():
        print(f"{command}: {state.message}", file=sys.stderr)
        return 3
    if not state.is_completed():
        print(f"{command}: the update failed ({state.name}): {state.message}", file=sys.stderr)
        return 1
    print(kind.model_validate(state.result()).text())
    return 0
