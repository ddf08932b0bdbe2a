"""Part 4: a cold container start to a Completed flow run, in the image the deploy work builds.

Runs only when ``docker image inspect cps-covid-etl:latest`` succeeds; otherwise
the section says the image is not built and why (this benchmark never builds
images: ``make image`` does). The container gets the embedded defaults of the
host over ``--network host``: the moto server (a fresh account seeded with the
real history), the loopback feed and a Prefect API on loopback.

Split, on the host's clock (the container shares its kernel): image start
(``docker run`` until the container's Python runs its first line), imports
(``from flows.update import run_update``), the run (flow call to Completed), and
exit (the last line printed until ``docker run --rm`` returns).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from bench.common import Section, Target, seconds

IMAGE = "cps-covid-etl:latest"
SCRIPT = """
import time
started_at = time.time()
import json
from datetime import date
clock = time.perf_counter()
from flows.update import run_update
imports = time.perf_counter() - clock
clock = time.perf_counter()
state = run_update(as_of=date(2021, 9, 23))
run = time.perf_counter() - clock
print(json.dumps({"started_at": started_at, "imports_s": imports, "run_s": run, "state": state.name,
                  "completed": state.is_completed(), "done_at": time.time()}), flush=True)
"""


def image_status(docker: str = "docker", image: str = IMAGE) -> tuple[dict | None, str]:
    """The image's config when ``docker image inspect`` succeeds, else None and the reason."""
    try:
        done = subprocess.run([docker, "image", "inspect", image], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return None, f"{docker} is not installed"
    except subprocess.TimeoutExpired:
        return None, "docker image inspect did not answer within 60 s"
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        return None, reason[-1] if reason else f"docker image inspect exited with {done.returncode}"
    try:
        return json.loads(done.stdout)[0], ""
    except (ValueError, IndexError) as err:
        return None, f"docker image inspect answered something unreadable ({err})"


def _not_built(section: Section, reason: str) -> Section:
    section.rows.append({"what": f"{IMAGE}: image not built", "time": "-", "notes": reason})
    section.targets.append(
        Target("cold container start to a Completed run (measured when the image exists)", f"not built: {reason}", None)
    )
    section.data = {"built": False, "reason": reason}
    return section


def run(*, quick: bool = False, api_url: str | None = None, docker: str = "docker", image: str = IMAGE) -> Section:
    section = Section("container", f"Cold container start to a Completed run ({image})", ["what", "time", "notes"])
    config, reason = image_status(docker, image)
    if config is None:
        return _not_built(section, reason)

    from bench.flow_child import fresh_account
    from bench.flow_overhead import HOME, _flow_servers, _start_api

    servers, env = _flow_servers()
    api_context = None
    saved = dict(os.environ)
    try:
        if api_url is None:
            api_context, api_url, _ = _start_api(HOME)
        fresh_account(env["BENCH_MOTO_ENDPOINT"])  # puts the emulated account's variables in os.environ
        passed = {k: os.environ[k] for k in os.environ if k.startswith(("AWS_", "CPS_COVID_"))}
        passed |= {k: v for k, v in env.items() if k.startswith("CPS_COVID_")}
        passed |= {"PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
        flags = [part for key, value in passed.items() for part in ("-e", f"{key}={value}")]
        command = [docker, "run", "--rm", "--network", "host", *flags, image, "python", "-c", SCRIPT]
        launched = time.time()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            return _not_run(section, "docker run did not finish within 900 s")
        returned = time.time()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if api_context is not None:
            api_context.__exit__(None, None, None)  # type: ignore[attr-defined]
        servers.close()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return _not_run(section, f"docker run exited with {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
    answer = json.loads(lines[-1])
    image_start = answer["started_at"] - launched
    exit_s = max(0.0, returned - answer["done_at"])
    total = returned - launched
    section.rows = [
        {
            "what": "image start (docker run to the container's first Python line)",
            "time": seconds(image_start),
            "notes": "",
        },
        {"what": "imports (from flows.update import run_update)", "time": seconds(answer["imports_s"]), "notes": ""},
        {"what": "run (flow call to Completed)", "time": seconds(answer["run_s"]), "notes": f"state {answer['state']}"},
        {"what": "exit (container stop and removal)", "time": seconds(exit_s), "notes": ""},
        {"what": "cold container start to a Completed run", "time": seconds(total), "notes": "docker run to return"},
    ]
    section.targets.append(
        Target(
            "cold container start to a Completed run (measured when the image exists)",
            seconds(total),
            answer["completed"],
        )
    )
    section.notes = [
        "The container reaches the host's moto server, feed and Prefect API over --network host; the account is "
        "reset and seeded with the real 2021-09-22 history first, so the run publishes the 2021-09-23 update.",
        "met = the run reached Completed (the issue sets no time for this one).",
    ]
    section.data = {
        "built": True,
        "image_start_s": image_start,
        "imports_s": answer["imports_s"],
        "run_s": answer["run_s"],
        "exit_s": exit_s,
        "total_s": total,
        "state": answer["state"],
        "image_id": config.get("Id", ""),
    }
    return section


def _not_run(section: Section, reason: str) -> Section:
    section.rows.append({"what": f"{IMAGE}: the run failed", "time": "-", "notes": reason})
    section.targets.append(
        Target("cold container start to a Completed run (measured when the image exists)", reason, False)
    )
    section.data = {"built": True, "failed": reason}
    return section
