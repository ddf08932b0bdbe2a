"""``make up`` / ``make down``: the whole system on loopback, operated from the Prefect UI, with no AWS account.

``up`` starts one supervisor process (``serve``) in the background and waits
until it is ready. The supervisor holds, until ``down`` stops it:

- a Prefect server with its UI (told its own API URL) and a fast scheduler loop;
- a moto server with the bucket, distribution and topics, seeded with the real
  history as it was published the day before the replay starts;
- a feed server that plays the real 2021-22 season forward, one day every
  ``minutes_per_day`` minutes (``season_replay``), each day's change at a random
  moment of it, with an ``ETag``; it answers an error while ``break_feed`` is in force;
- the deployments on the process pool only (the update's backstop cron follows the
  replay: the first run of each replayed day; the watch polls about six times a
  day and the update runs on its event), with the settings in the Prefect variable;
- a process worker whose environment reaches all of them.

Everything lives under one folder (``.stack/``): ``stack.json`` (what runs
where), ``env.sh`` (the variables a shell needs to talk to the stack), logs and
the Prefect home. Every process the stack starts carries ``CPSCOVID_LOCAL_STACK`` in
its environment, so ``down`` finds and stops exactly those, flow runs included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cps_covid.rules.clock import ReplayClock
from cps_covid.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".stack"
BUCKET = "cpscovid-local"
MARKER = "CPSCOVID_LOCAL_STACK"
FIRST_DAY = date(2021, 9, 13)
MINUTES_PER_DAY = 2.0
READY_TIMEOUT_SECONDS = 300.0
BROKEN_FILE = "feed-broken"
FEED_PATH = "/cps/covid-cases.json"
UPDATE_DEPLOYMENT = "cps-covid-update"
WATCH_DEPLOYMENT = "cps-covid-watch"
STACK_SETTINGS = {"CPS_COVID_FETCH_BACKOFF_SECONDS": "1"}
"""The stack's own defaults (a broken feed fails within seconds); the caller's CPS_COVID_* win."""


@dataclass(frozen=True)
class Stack:
    """What ``up`` started, as ``stack.json`` records it."""

    pid: int
    ui_url: str
    api_url: str
    moto_url: str
    bucket: str
    feed_url: str
    replay_clock: str
    cron: str
    state_dir: str

    @classmethod
    def read(cls, state: Path) -> Stack | None:
        path = state / "stack.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def environment(self) -> dict[str, str]:
        """What a shell (``prefect deployment run``, boto3) needs to talk to the stack."""
        from local.aws_emulator import aws_environment

        return aws_environment(self.moto_url) | {"PREFECT_API_URL": self.api_url}

    def text(self) -> str:
        env_sh = Path(self.state_dir) / "env.sh"
        return "\n".join(
            [
                f"cps-covid stack is up (supervisor pid {self.pid}, state in {self.state_dir}/)",
                f"  Prefect UI:      {self.ui_url}",
                f"  bucket browser:  {self.moto_url}/moto-api/  (bucket {self.bucket})",
                f"  feed:            {self.feed_url}  (replay clock {self.replay_clock}, cron {self.cron!r})",
                "",
                f"  talk to it:      source {env_sh}",
                "  rerun a day:     .venv/bin/prefect deployment run cps-covid-update/cps-covid-rerun "
                "-p as_of=YYYY-MM-DD",
                "  break the feed:  .venv/bin/cps-covid stack break [--status 404]   (then: stack heal)",
                "  published site:  .venv/bin/cps-covid stack site   (copies the bucket to demo-site/)",
                "  stop it all:     make down",
            ]
        )


def cron_for(minutes_per_day: float) -> str:
    """A cron that fires once at the start of each replayed day (seconds as a sixth field below a minute)."""
    seconds = minutes_per_day * 60
    if seconds != int(seconds) or seconds <= 0:
        raise ValueError(f"minutes per day {minutes_per_day:g} is not a whole number of seconds")
    seconds = int(seconds)
    if seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    if seconds % 60 == 0 and 60 % (seconds // 60) == 0:
        return f"*/{seconds // 60} * * * *"
    raise ValueError(f"minutes per day {minutes_per_day:g}: choose a number that divides an hour (1, 2, 5, 0.5...)")


def watch_seconds_for(minutes_per_day: float) -> int:
    """How often the watch polls: about six times a replayed day (the real one polls every minute of a
    1,440-minute day, but a process a second would swamp a laptop), at least 15 s apart (the worker submits
    a run up to 5 s early: closer polls would overlap and be cancelled; each is a fresh process)."""
    return max(s for s in (15, 20, 30, 60, 120, 300) if s <= max(15.0, minutes_per_day * 60 / 6))


def watch_cron_for(minutes_per_day: float) -> str:
    return cron_for(watch_seconds_for(minutes_per_day) / 60)


TICK_INTO_DAY = 1 / 6
"""Where in each replayed day the cron ticks: a run started a few seconds early still fetches its own day's
feed, and one started late still has most of the day to fetch it (each updates its scheduled day)."""


def replay_clock(first_day: date, minutes_per_day: float, now: datetime, margin_seconds: float = 20) -> ReplayClock:
    """``first_day`` starts a sixth of a day before the first cron tick after ``now + margin`` (the deploy's
    time), so each cron tick falls inside the day it is named for and the feed shows that day whenever the run
    fetches it; ticks before it replay ``first_day`` too."""
    period = minutes_per_day * 60
    ticks = math.ceil((now.timestamp() + margin_seconds) / period)
    return ReplayClock(first_day, datetime.fromtimestamp(ticks * period - period * TICK_INTO_DAY, UTC), minutes_per_day)


# --- the supervisor ---------------------------------------------------------------------------------------


def _base_environment(marker: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "CPS_COVID_"))}
    return keep | {MARKER: marker, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _seed(emulated, first_day: date) -> None:
    """The per-school table and district totals as published at the end of the day before ``first_day``."""
    from cps_covid.rules import history, merge, publish_plan
    from local.aws_emulator import seed_objects
    from local.season_replay import history_until, real_schools

    schools = history_until(real_schools(), first_day - timedelta(days=1))
    totals = merge.district_totals(schools)
    seed_objects(
        emulated,
        {publish_plan.SCHOOLS_KEY: history.csv_bytes(schools), publish_plan.TOTALS_KEY: history.csv_bytes(totals)},
    )


def _readable(emulated) -> None:
    """Anyone on loopback may read the bucket, so the UI's links (Data Docs, objects) open in a browser."""
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    emulated.client("s3").put_bucket_policy(Bucket=emulated.bucket, Policy=policy)


def _feed_route(state: Path, clock: ReplayClock):
    """Today's feed of the replayed season, or the error ``break_feed`` asked for."""
    from local.feed_server import Route
    from local.season_replay import day_shown, feed_of, real_schools

    real = real_schools()

    def answer() -> Route:
        broken = state / BROKEN_FILE
        if broken.exists():
            status = int(broken.read_text() or 404)
            return Route(f"feed broken on purpose (cps-covid stack break): HTTP {status}".encode(), status=status)
        return Route(
            feed_of(real, day_shown(clock, datetime.now(UTC), clock.first_day)), "application/json", validators=True
        )

    return answer


def serve(state: Path, first_day: date, minutes_per_day: float) -> int:
    """The supervisor: start everything, write ``stack.json``, and hold until SIGTERM; then stop it all."""
    state = state.resolve()
    marker = os.environ.get(MARKER) or str(state)
    os.environ[MARKER] = marker
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    cron = cron_for(minutes_per_day)
    from local.prefect_server import prefect_server

    with ExitStack() as running:
        scheduler = {
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",  # a triggered run behind the cron's
        }
        api_url = running.enter_context(prefect_server(state / "prefect", settings=scheduler, ui=True))
        client_home = state / "client"
        os.environ |= {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(client_home)}

        from cps_covid.operations import deploy
        from local.aws_emulator import moto_server, provision
        from local.feed_server import FeedServer, Route
        from local.season_replay import FEEDS_DIR
        from local.worker import prefect_worker

        moto_url = running.enter_context(moto_server())
        emulated = provision(moto_url, BUCKET)
        _readable(emulated)
        _seed(emulated, first_day)
        clock = replay_clock(first_day, minutes_per_day, datetime.now(UTC))
        watch_window = watch_seconds_for(minutes_per_day)
        feeds = running.enter_context(FeedServer())
        feed_url = feeds.route(FEED_PATH, _feed_route(state, clock))
        vaccination = Route((FEEDS_DIR / "2021-09-23-vaccination.json").read_bytes(), "application/json")
        settings = (
            STACK_SETTINGS
            | {k: v for k, v in os.environ.items() if k.startswith("CPS_COVID_")}
            | emulated.environment()
            | {
                "CPS_COVID_SOURCE_URL": feed_url,
                "CPS_COVID_PROFILE_URL": feeds.serve_profiles(FEEDS_DIR / "school-profiles.json"),
                "CPS_COVID_VACCINATION_SOURCE_URL": feeds.route("/cps/vaccination.json", vaccination),
                "CPS_COVID_REPLAY_CLOCK": str(clock),
                "CPS_COVID_WATCH_WINDOW_SECONDS": str(watch_window),
                "CPS_COVID_PREFECT_UI_URL": api_url.removesuffix("/api"),
            }
        )
        env = _base_environment(marker) | {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(client_home)}
        crons = {UPDATE_DEPLOYMENT: cron, WATCH_DEPLOYMENT: watch_cron_for(minutes_per_day)}
        windows = {UPDATE_DEPLOYMENT: watch_window}  # the trigger's window, replayed as fast as the days
        changes = deploy.deploy(target="process", env=env | settings, crons=crons, windows=windows)
        print(changes.text(), flush=True)
        # the worker's flows read their settings from the Prefect variable, as a deployed worker's do
        worker_env = env | {k: v for k, v in settings.items() if not k.startswith("CPS_COVID_")}
        worker = running.enter_context(prefect_worker(worker_env, state / "worker.log", show_log=False))
        stack = Stack(
            pid=os.getpid(),
            ui_url=api_url.removesuffix("/api"),
            api_url=api_url,
            moto_url=moto_url,
            bucket=emulated.bucket,
            feed_url=feed_url,
            replay_clock=str(clock),
            cron=cron,
            state_dir=str(state),
        )
        lines = [f"export {k}={shlex.quote(v)}" for k, v in stack.environment().items()]
        (state / "env.sh").write_text("# source this to talk to the local stack\n" + "\n".join(lines) + "\n")
        (state / "stack.json").write_text(json.dumps(asdict(stack), indent=2))
        print(stack.text(), flush=True)
        while not stopping.wait(1):
            if worker.poll() is not None:
                print(f"the worker exited with {worker.returncode}: stopping the stack", flush=True)
                break
        (state / "stack.json").unlink(missing_ok=True)
    return 0


# --- the commands -----------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def marked_processes(marker: str) -> list[int]:
    """Every live process whose environment holds ``CPSCOVID_LOCAL_STACK=marker`` (Linux ``/proc``)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def up(state: Path = STATE_DIR, first_day: date = FIRST_DAY, minutes_per_day: float = MINUTES_PER_DAY) -> int:
    """Start the supervisor in the background (unless it already runs), wait until it is ready, say where."""
    state = state.resolve()
    running = Stack.read(state)
    if running and _alive(running.pid):
        print(running.text())
        return 0
    cron_for(minutes_per_day)  # refuse a bad flag before anything starts
    state.mkdir(parents=True, exist_ok=True)
    (state / BROKEN_FILE).unlink(missing_ok=True)
    (state / "stack.json").unlink(missing_ok=True)
    log = state / "stack.log"
    command = [sys.executable, "-m", "cli.main", "stack", "serve", "--state", str(state)]
    command += ["--from", first_day.isoformat(), "--minutes-per-day", f"{minutes_per_day:g}"]
    with log.open("w") as out:
        supervisor = subprocess.Popen(
            command,
            env=os.environ | {MARKER: str(state)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
    (state / "stack.pid").write_text(str(supervisor.pid))

    def ready() -> Stack | None:
        if supervisor.poll() is not None:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"the stack stopped while starting ({supervisor.returncode}):\n{tail}")
        return Stack.read(state)

    try:
        stack = wait_for(ready, what=f"the stack to start (log: {log})", timeout=READY_TIMEOUT_SECONDS, every=0.5)
    except TimeoutError:
        down(state)
        raise
    print(stack.text())
    return 0


def down(state: Path = STATE_DIR, timeout: float = 60.0) -> int:
    """Stop the supervisor (which stops what it started), then anything of the stack still alive."""
    state = state.resolve()
    pid_file = state / "stack.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    leftovers = marked_processes(str(state))
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for other in leftovers:
            with suppress(ProcessLookupError):
                os.kill(other, signum)
        deadline = time.monotonic() + 10
        while (leftovers := [p for p in leftovers if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    (state / "stack.json").unlink(missing_ok=True)
    left = marked_processes(str(state))
    print(f"still up: {left}" if left else f"cps-covid stack is down ({state}/ kept: logs and the Prefect database)")
    return 0 if not left else 1


def break_feed(state: Path = STATE_DIR, status: int = 404) -> int:
    (state.resolve() / BROKEN_FILE).write_text(str(status))
    print(f"the feed now answers HTTP {status}: the next update fails and the alarm goes to the alarm topic")
    return 0


def heal_feed(state: Path = STATE_DIR) -> int:
    (state.resolve() / BROKEN_FILE).unlink(missing_ok=True)
    print("the feed answers again: the next update completes and the operators are told it recovered")
    return 0


def copy_site(state: Path = STATE_DIR, out: Path = ROOT / "demo-site") -> int:
    """The bucket's objects, copied to ``out`` (what the stack published so far)."""
    from local.aws_emulator import Emulated
    from local.demo import download_site

    stack = Stack.read(state.resolve())
    if stack is None:
        print("the stack is not up: make up", file=sys.stderr)
        return 1
    os.environ.update(stack.environment())
    saved = download_site(Emulated(stack.moto_url, stack.bucket, "", ""), out)
    print(f"{len(saved)} objects of s3://{stack.bucket} copied to {out}/")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``cps-covid stack`` action; options left unset take the stack's defaults."""
    state = args.state or STATE_DIR
    first_day = args.first_day or FIRST_DAY
    minutes_per_day = args.minutes_per_day or MINUTES_PER_DAY
    if args.action == "up":
        return up(state, first_day, minutes_per_day)
    if args.action == "down":
        return down(state)
    if args.action == "break":
        return break_feed(state, args.status)
    if args.action == "heal":
        return heal_feed(state)
    if args.action == "site":
        return copy_site(state)
    return serve(state, first_day, minutes_per_day)
