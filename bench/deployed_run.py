"""Part 5: what an operator pays per deployed run: a process worker's fresh process, to Completed.

Every deployed run is a new process: the worker starts it, it imports the
project and its libraries, and "Validate the feed" imports Great Expectations
before it can run a suite. This benchmark deploys to the process pool of a
Prefect server on loopback, starts ``prefect worker start`` (polling every
second) and runs ``cps-covid-rerun`` for 2021-09-23 on a fresh seeded bucket
each time, so each run does the whole update. The phases come from the
server's own timestamps: created -> Running (the worker's pickup, process start,
pull step and imports until the engine begins) -> Completed. Beside it, the
import floor: a fresh process importing the libraries the flow cannot do
without, with and without Great Expectations.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.common import HISTORY_DIR, ROOT, Section, Target, seconds
from bench.flow_overhead import _flow_servers, _start_api, _started_and_imported, child_environment

HOME = ROOT / ".cache/bench/deployed-home"
"""Its own Prefect home: the deployments, pools and variable it makes stay out of the flow benchmark's."""

LIBRARIES = "from prefect import flow, task; import pandas"
WITH_GE = LIBRARIES + "; import great_expectations"


def _import_floor(rounds: int) -> dict[str, list[float]]:
    env = child_environment()
    statements = {"libraries": LIBRARIES, "with_ge": WITH_GE}
    for statement in statements.values():
        _started_and_imported(statement, env)  # bytecode written once, untimed
    return {name: [_started_and_imported(s, env) for _ in range(rounds)] for name, s in statements.items()}


def completed_rerun(parameters: dict[str, object], env: dict[str, str], what: str):
    """One ``cps-covid-rerun`` through the worker with ``env`` (a bucket's settings), as the server records it
    when it is over; any other end than Completed stops the benchmark."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters=parameters,
        job_variables={"env": env},
        timeout=600,
        poll_interval=0.5,
    )
    if not flow_run.state.is_completed():
        raise RuntimeError(f"the {what} ended {flow_run.state.name}: {flow_run.state.message}")
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run.id)


def run(*, quick: bool = False, api_url: str | None = None) -> Section:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cps_covid.operations import deploy
    from local.aws_emulator import provision, seed_history
    from local.worker import prefect_worker

    section = Section(
        "deployed_run",
        "A deployed run on the process pool: the worker's fresh process to Completed (cps-covid-rerun, 2021-09-23)",
        ["what", "time", "notes"],
    )
    rounds = 1 if quick else 5
    servers, env = _flow_servers()
    api_context = None
    try:
        if api_url is None:
            api_context, api_url, _ = _start_api(HOME)
        servers.enter_context(temporary_settings(updates={PREFECT_API_URL: api_url}))  # not an ephemeral API
        endpoint = env["BENCH_MOTO_ENDPOINT"]
        base = provision(endpoint, "bench-deployed-0")
        flow_env = (
            child_environment()
            | base.environment()
            | {k: v for k, v in env.items() if k.startswith("CPS_COVID_")}
            | {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(HOME / "client")}
        )
        deploy.deploy(target="process", env=flow_env, paused=["cps-covid-watch"])
        phases: list[tuple[float, float, float]] = []
        with tempfile.TemporaryDirectory() as logs, prefect_worker(flow_env, Path(logs) / "worker.log", show_log=False):
            for number in range(rounds + 1):  # the first run is untimed: it writes the bytecode of a fresh checkout
                emulated = provision(endpoint, f"bench-deployed-{number + 1}")
                seed_history(emulated, HISTORY_DIR)
                job_env = {k: v for k, v in emulated.environment().items() if k.startswith("CPS_COVID_")}
                done = completed_rerun({"as_of": "2021-09-23"}, job_env, "deployed run")
                if number:
                    to_running = (done.start_time - done.created).total_seconds()
                    running = (done.end_time - done.start_time).total_seconds()
                    phases.append((to_running + running, to_running, running))
        floor = _import_floor(3 if quick else 9)
    finally:
        if api_context is not None:
            api_context.__exit__(None, None, None)
        servers.close()

    total, pickup, body = (statistics.median(p[i] for p in phases) for i in range(3))
    libraries, with_ge = min(floor["libraries"]), min(floor["with_ge"])
    section.rows = [
        {"what": "created -> Completed", "time": seconds(total), "notes": f"median of {len(phases)} runs"},
        {
            "what": "created -> Running",
            "time": seconds(pickup),
            "notes": "worker poll (1 s), process start, pull step, imports of the flow module",
        },
        {"what": "Running -> Completed", "time": seconds(body), "notes": "includes importing Great Expectations"},
        {"what": f"start + {LIBRARIES}", "time": seconds(libraries), "notes": "fresh processes, best"},
        {"what": "start + those and great_expectations", "time": seconds(with_ge), "notes": "fresh processes, best"},
    ]
    section.targets = [
        Target(
            "a deployed run (fresh process to Completed), with the import floor of its libraries beside it",
            f"{seconds(total)} (to Running {seconds(pickup)}, run {seconds(body)}); the libraries alone take "
            f"{seconds(with_ge)} to import in a fresh process, {seconds(with_ge - libraries)} of it Great Expectations",
            None if quick else True,
        )
    ]
    section.data = {"phases": phases, "floor": floor}
    return section
