"""What the alarms read from the Prefect API about flow runs: a run's final state, the run before it, its URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class FinishedRun:
    id: str
    name: str
    state_name: str
    failed: bool


def run_url(flow_run_id: str, prefect_ui_url: str) -> str:
    """The run's page in the Prefect UI (``prefect_ui_url``, else Prefect's own UI URL setting)."""
    if not flow_run_id:
        return ""
    from prefect.settings import PREFECT_UI_URL

    base = prefect_ui_url or PREFECT_UI_URL.value() or ""
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else ""


def final_state(flow_run_id: str, timezone: str) -> tuple[str, str]:
    """The first line of a run's final state message and the day it updated: its as_of, else the day its name
    resolved (``clock.update_day``), else its scheduled day in ``timezone``."""
    from prefect.client.orchestration import get_client

    from cps_covid.rules.clock import zone

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    lines = (run.state.message or "").strip().splitlines() if run.state else []
    why = lines[0].removeprefix("Flow run encountered an exception: ") if lines else ""
    named = re.match(r"[a-z]+-(\d{4}-\d\d-\d\d)\b", run.name or "")  # the day its name resolved (cron runs)
    scheduled = run.expected_start_time or run.start_time
    as_of = run.parameters.get("as_of") or (named.group(1) if named else "")
    if not as_of and scheduled:
        as_of = scheduled.astimezone(zone(timezone)).date().isoformat()
    return why, str(as_of)


def previous_finished_run(flow_run_id: str, deployment_id: str) -> FinishedRun | None:
    """The latest run of the deployment before this one that completed or failed (cancelled runs did nothing)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    failed = {StateType.FAILED, StateType.CRASHED}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(not_any_=[UUID(flow_run_id)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED, *failed])),
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(deployment_id)])),
            sort=FlowRunSort.END_TIME_DESC,
            limit=1,
        )
    if not runs:
        return None
    run = runs[0]
    state_name = (run.state.name or "") if run.state else ""
    return FinishedRun(str(run.id), str(run.name), state_name, run.state_type in failed)
