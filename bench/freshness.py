"""Part 6 (#26): fresh within minutes, an update only when something changed.

The local stack's parts on loopback (a Prefect server, moto, a feed server with
an ``ETag``, the deployments on the process pool, a process worker), with the
watch on its production cron (every minute) and the update's trigger as
deployed. The feed changes ``CHANGES`` times, each at a random moment (a random
wait after the previous change was published, so each change falls anywhere in
the watch's minute): one more case each time, on a replay clock that keeps
2021-09-23 for the whole run. For each change: the seconds from the change to
the published ``allCpsCovidData.csv`` holding it (its ETag changed), and the
update runs it cost.

Beside it, in the same run, the cron-only configuration: the old cron every 30
minutes on the wall clock, on its own bucket. Each 30-minute slot that follows
a change runs the update once through the same worker, on the feed as it was at
that slot; a change's latency is the wait for its slot plus that run. Its final
files are compared with the watched bucket's, byte for byte.

Update runs per day: the watched configuration runs the update once per change
(measured here) plus the backstop cron's 4 a day (its schedule is paused during
the run, so the counts are the trigger's alone); the old cron ran 48. The
district changed its feed about once a school day (the 2021-22 replay: weekly
batches; the live feed, a few revisions a day): the reduction is given for
1 to 5 changes a day.

The watch's cost per poll: a fresh process running the watch flow once against
the same servers, wall time and CPU (the process and its children), beside an
update run that has nothing to do and one that publishes.
"""

from __future__ import annotations

import random
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import HISTORY_DIR, ROOT, Section, Target, python, seconds
from bench.flow_overhead import _start_api, child_environment

HOME = ROOT / ".cache/bench/freshness-home"
FEED_FILE = ROOT / "data/feeds/2021-09-23-cases.csv"
DAY = date(2021, 9, 23)
CHANGES = 20
CRON_MINUTES = 30
BACKSTOP_RUNS_PER_DAY = 4
OLD_CRON_RUNS_PER_DAY = 24 * 60 // CRON_MINUTES
SCHOOLS = ["609772", "610212", "609674", "610524", "609826"]
"""Schools of the bundled history that get the extra cases (one per change, in turn)."""


def payload(extra: int) -> bytes:
    """The 2021-09-23 feed with ``extra`` more cases (rows dated that day), as the district would add them."""
    rows = [f'"09/23/2021","{SCHOOLS[n % len(SCHOOLS)]}","BENCH SCHOOL","Student"\r\n' for n in range(extra)]
    return FEED_FILE.read_bytes() + "".join(rows).encode()


def next_slot(at: datetime, minutes: int = CRON_MINUTES) -> datetime:
    """The first cron tick strictly after ``at`` (a ``*/30`` cron on the wall clock)."""
    base = at.replace(second=0, microsecond=0)
    return base + timedelta(minutes=minutes - base.minute % minutes)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile, interpolated between the closest ranks (as numpy's default)."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def reduction(runs_per_change: float, changes_per_day: int) -> float:
    """How many fewer update runs a day than the old cron's 48 (0.8: 80% fewer)."""
    return 1 - (runs_per_change * changes_per_day + BACKSTOP_RUNS_PER_DAY) / OLD_CRON_RUNS_PER_DAY


def _fresh_process(statement: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of ``statement`` in a fresh
    Python process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([python(), "-c", statement], env=env, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(*, quick: bool = False, api_url: str | None = None) -> Section:
    from contextlib import ExitStack

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from bench.deployed_run import completed_rerun
    from cps_covid.operations import deploy
    from cps_covid.rules import publish_plan
    from cps_covid.rules.clock import ReplayClock
    from local.aws_emulator import moto_server, provision, seed_history
    from local.demo import FEEDS_DIR
    from local.feed_server import FeedServer, Route
    from local.worker import prefect_worker

    section = Section(
        "freshness",
        "A feed change to the published file: the watch and its trigger beside the old 30-minute cron",
        ["what", "watched (trigger)", "cron only (every 30 min)", "notes"],
    )
    changes = 2 if quick else CHANGES
    watch_cron = "* * * * * */10" if quick else "* * * * *"
    rng = random.Random(26)
    servers = ExitStack()
    api_context = None
    try:
        endpoint = servers.enter_context(moto_server())
        feeds = servers.enter_context(FeedServer())
        if api_url is None:
            api_context, api_url, _ = _start_api(HOME)
        servers.enter_context(temporary_settings(updates={PREFECT_API_URL: api_url}))
        watched, cron_only = provision(endpoint, "bench-fresh-watched"), provision(endpoint, "bench-fresh-cron")
        for bucket in (watched, cron_only):
            seed_history(bucket, HISTORY_DIR)
        current = {"body": payload(0)}
        feed_url = feeds.route("/cps/covid-cases.csv", lambda: Route(current["body"], validators=True))
        clock = ReplayClock(DAY, datetime.now(UTC) - timedelta(hours=1), 10**6)  # 2021-09-23 all run long
        flow_env = (
            child_environment()
            | watched.environment()
            | {
                "CPS_COVID_SOURCE_URL": feed_url,
                "CPS_COVID_PROFILE_URL": feeds.serve_profiles(FEEDS_DIR / "school-profiles.json"),
                "CPS_COVID_REPLAY_CLOCK": str(clock),
                "CPS_COVID_FETCH_BACKOFF_SECONDS": "1",
                "PREFECT_API_URL": api_url,
                "PREFECT_HOME": str(HOME / "client"),
            }
        )
        deploy.deploy(
            target="process",
            env=flow_env,
            crons={"cps-covid-watch": watch_cron},
            paused=["cps-covid-update", "cps-vaccination-update"],  # the backstop is counted from its schedule
        )
        s3 = watched.client("s3")

        def etag(bucket: str) -> str | None:
            try:
                return s3.head_object(Bucket=bucket, Key=publish_plan.SCHOOLS_KEY)["ETag"]
            except s3.exceptions.ClientError:
                return None

        def published_after(before: str | None, started: float, limit: float = 900) -> float:
            while time.monotonic() - started < limit:
                if etag(watched.bucket) != before:
                    return time.monotonic() - started
                time.sleep(0.5)
            raise TimeoutError(f"a change was not published within {limit:.0f} s")

        def runs_of(deployment: str, since: datetime) -> list:
            with get_client(sync_client=True) as client:
                return client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                )

        latencies: list[float] = []
        changed_at: list[datetime] = []
        bodies: list[bytes] = []
        with tempfile.TemporaryDirectory() as logs, prefect_worker(flow_env, Path(logs) / "worker.log", show_log=False):
            # the watch's first poll finds the seeded day's feed unapplied: that change is the warm-up, untimed
            published_after(etag(watched.bucket), time.monotonic())
            time.sleep(15 if quick else 70)  # its run finished, the watch saw the feed applied
            measured_from = datetime.now(UTC)
            for number in range(1, changes + 1):
                time.sleep(rng.uniform(0, 10 if quick else 60))  # anywhere in the watch's minute
                before = etag(watched.bucket)
                current["body"] = payload(number)
                changed_at.append(datetime.now(UTC))
                bodies.append(current["body"])
                latencies.append(published_after(before, time.monotonic()))
            time.sleep(15 if quick else 70)  # a second run for a change would have started by now
            runs = [r for r in runs_of("cps-covid-update", measured_from) if r.state and r.state.is_final()]
            run_seconds = [(r.end_time - r.start_time).total_seconds() for r in runs if r.end_time and r.start_time]
            watch_runs = [r for r in runs_of("cps-covid-watch", measured_from) if r.state and r.state.is_completed()]

            # the cron-only configuration: one run per 30-minute slot that follows a change, on its own bucket
            slots: dict[datetime, int] = {}
            for index, at in enumerate(changed_at):
                slots[next_slot(at)] = index  # the latest change before that slot is what it reads
            cron_env = {k: v for k, v in cron_only.environment().items() if k.startswith("CPS_COVID_")}
            slot_run: dict[datetime, float] = {}
            for slot, index in sorted(slots.items()):
                url = feeds.route(f"/slot-{index}.csv", Route(bodies[index]))
                parameters = {"as_of": DAY.isoformat(), "source": url, "trigger": "cron-only slot"}
                done = completed_rerun(parameters, cron_env, "cron-only run")
                slot_run[slot] = (done.end_time - done.created).total_seconds()
            cron_latencies = [(next_slot(at) - at).total_seconds() + slot_run[next_slot(at)] for at in changed_at]

            # the watch's cost per poll, and an update's, each a fresh process against the same servers
            env = flow_env | {"PREFECT_HOME": str(HOME / "client")}
            polls = [_fresh_process("from flows.watch import run_watch; run_watch()", env) for _ in range(3)]
            nothing = [
                _fresh_process(f"from flows.update import run_update; run_update(as_of='{DAY}')", env) for _ in range(2)
            ]
        same = {
            key: s3.get_object(Bucket=watched.bucket, Key=key)["Body"].read()
            == s3.get_object(Bucket=cron_only.bucket, Key=key)["Body"].read()
            for key in publish_plan.DATA_KEYS
        }
    finally:
        if api_context is not None:
            api_context.__exit__(None, None, None)
        servers.close()

    runs_per_change = len(runs) / changes
    cron_runs_per_change = OLD_CRON_RUNS_PER_DAY  # per day, whatever changed: 48 runs for one change a day
    median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    cron_median, cron_p95 = statistics.median(cron_latencies), percentile(cron_latencies, 0.95)
    poll_wall, poll_cpu = (min(p[i] for p in polls) for i in range(2))
    update_wall, update_cpu = (min(n[i] for n in nothing) for i in range(2))
    watch_seconds = [(r.end_time - r.start_time).total_seconds() for r in watch_runs if r.end_time and r.start_time]
    section.rows = [
        {
            "what": "change -> published, median",
            "watched (trigger)": seconds(median),
            "cron only (every 30 min)": seconds(cron_median),
            "notes": f"{changes} changes at random moments",
        },
        {
            "what": "change -> published, p95",
            "watched (trigger)": seconds(p95),
            "cron only (every 30 min)": seconds(cron_p95),
            "notes": f"worst {seconds(max(latencies))} / {seconds(max(cron_latencies))}",
        },
        {
            "what": "update runs per change",
            "watched (trigger)": f"{runs_per_change:.2f}",
            "cron only (every 30 min)": f"{cron_runs_per_change} a day at one change a day",
            "notes": f"{len(runs)} update runs for {changes} changes, the backstop's 4 a day aside",
        },
        {
            "what": "update runs a day (1 / 2 / 5 changes)",
            "watched (trigger)": " / ".join(f"{runs_per_change * c + BACKSTOP_RUNS_PER_DAY:.0f}" for c in (1, 2, 5)),
            "cron only (every 30 min)": f"{OLD_CRON_RUNS_PER_DAY}",
            "notes": " / ".join(f"{reduction(runs_per_change, c):.0%} fewer" for c in (1, 2, 5)),
        },
        {
            "what": "a poll of the watch (fresh process)",
            "watched (trigger)": f"{seconds(poll_wall)} wall, {seconds(poll_cpu)} CPU",
            "cron only (every 30 min)": "",
            "notes": f"its deployed runs: median {seconds(statistics.median(watch_seconds or [0]))} Running -> "
            f"Completed over {len(watch_seconds)} polls",
        },
        {
            "what": "an update with nothing to do (fresh process)",
            "watched (trigger)": f"{seconds(update_wall)} wall, {seconds(update_cpu)} CPU",
            "cron only (every 30 min)": "",
            "notes": f"a poll costs {poll_cpu / update_cpu:.0%} of its CPU" if update_cpu else "",
        },
        {
            "what": "a triggered update that publishes (deployed)",
            "watched (trigger)": seconds(statistics.median(run_seconds or [0])),
            "cron only (every 30 min)": seconds(statistics.median(slot_run.values())),
            "notes": "median Running -> Completed; cron only: created -> Completed of its slot runs",
        },
    ]
    section.targets = [
        Target(
            "change -> published: median at most 3 minutes, p95 at most 6, on the process pool",
            f"median {seconds(median)}, p95 {seconds(p95)} over {changes} changes (cron only: median "
            f"{seconds(cron_median)}, p95 {seconds(cron_p95)})",
            None if quick else (median <= 180 and p95 <= 360),
        ),
        Target(
            "at least 80% fewer update runs than the 30-minute cron",
            f"{runs_per_change:.2f} runs per change + 4 backstop runs a day: {reduction(runs_per_change, 2):.0%} "
            f"fewer at 2 changes a day, {reduction(runs_per_change, 5):.0%} at 5",
            None if quick else reduction(runs_per_change, 2) >= 0.8,
        ),
        Target(
            "every change published, the same final files as the cron-only replay",
            f"{len(latencies)} of {changes} published; "
            + ", ".join(f"{key.split('/')[-1]} {'same' if ok else 'DIFFERENT'}" for key, ok in same.items()),
            len(latencies) == changes and all(same.values()),
        ),
    ]
    section.data = {
        "latencies": latencies,
        "cron_latencies": cron_latencies,
        "runs": len(runs),
        "changes": changes,
        "same": same,
        "polls": polls,
        "nothing_to_do": nothing,
        "watch_run_seconds": watch_seconds,
        "update_run_seconds": run_seconds,
    }
    return section
