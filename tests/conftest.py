"""Real parts for the tests: one Prefect API server, one moto server, loopback feed servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HISTORY_DIR = ROOT / "data/history-2021-09-22"
FEEDS_DIR = ROOT / "data/feeds"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")

# A test using one of these needs a server, a container or a subprocess of the CLI: `slow`.
# `make check` runs the others (the rules, tasks and stand-ins on their own) in seconds.
SLOW_FIXTURES = {"prefect_api", "moto_endpoint", "aws", "image", "start_worker"}


# The longest modules, longest first (a deployed worker, the local stack, the end-to-end guarantees: a
# minute or more each): under `make test`'s two xdist workers (a file at a time) they run side by side
# while the short files fill in at the end, instead of a long one running alone at the end. The modules
# that need the image stay where they are, so it builds meanwhile.
LONGEST_FIRST = (
    "tests/deployments/test_school_year_deployed.py",
    "tests/local/test_stack.py",
    "tests/flows/test_guarantees.py",
    "tests/deployments/test_ecs_worker.py",
    "tests/flows/test_update.py",
    "tests/cli/test_main.py",
    "tests/deployments/test_deploy.py",
    "tests/flows/test_recovery.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep order


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``prefect server start`` on loopback; the test process's flows run through it."""
    import prefect.context
    import prefect.settings
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from local.prefect_server import prefect_server

    home = tmp_path_factory.mktemp("prefect-home")
    # a run enqueued behind the update's concurrency limit retries its slot every 2 s here, not every 30
    enqueued = {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}
    with prefect_server(home, settings=enqueued) as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        with (
            prefect.settings.temporary_settings(updates={prefect.settings.PREFECT_API_URL: api_url}),
            prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()),
        ):
            yield api_url
            APILogWorker.drain_all()
            EventsWorker.drain_all()
        os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from local.aws_emulator import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A fresh emulated account with the bucket seeded with the real 2021-09-22 history."""
    import urllib.request

    from local.aws_emulator import provision, seed_history

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    emulated = provision(moto_endpoint)
    seed_history(emulated, HISTORY_DIR)
    for key, value in emulated.environment().items():
        monkeypatch.setenv(key, value)
    return emulated


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch):
    """A loopback source serving the bundled 2021-09-23 feed and school profiles."""
    from local.feed_server import FeedServer, Route

    with FeedServer() as server:
        monkeypatch.setenv(
            "CPS_COVID_SOURCE_URL", server.route("/feed.csv", Route((FEEDS_DIR / "2021-09-23-cases.csv").read_bytes()))
        )
        monkeypatch.setenv("CPS_COVID_PROFILE_URL", server.serve_profiles(FEEDS_DIR / "school-profiles.json"))
        monkeypatch.setenv("CPS_COVID_FETCH_BACKOFF_SECONDS", "0.05")
        monkeypatch.setenv("CPS_COVID_FETCH_TIMEOUT_SECONDS", "5")
        yield server


X_KEYS = {"api_key": "ck", "api_secret": "cs", "access_token": "at", "access_token_secret": "ats"}
FB_PAGE = "2048000000001"
FB_KEYS = {"page_access_token": "EAAB-page", "app_secret": "app-secret"}


@pytest.fixture
def channels(aws, feeds, monkeypatch: pytest.MonkeyPatch):
    """Both social channels on, pointed at loopback stand-ins; their credentials only in Secret blocks."""
    import uuid

    from prefect.blocks.system import Secret
    from standins.social_servers import GraphApiStandIn, XApiStandIn

    blocks = {"x": f"cps-covid-x-{uuid.uuid4().hex[:8]}", "facebook": f"cps-covid-fb-{uuid.uuid4().hex[:8]}"}
    Secret(value=X_KEYS).save(blocks["x"], overwrite=True)
    Secret(value=FB_KEYS).save(blocks["facebook"], overwrite=True)
    with XApiStandIn(*X_KEYS.values()) as x, GraphApiStandIn(FB_PAGE, **FB_KEYS) as graph:
        for name, value in {
            "SOCIAL_X_ENABLED": "true",
            "SOCIAL_FACEBOOK_ENABLED": "true",
            "X_SECRET_BLOCK": blocks["x"],
            "FACEBOOK_SECRET_BLOCK": blocks["facebook"],
            "X_API_URL": x.url,
            "FACEBOOK_GRAPH_URL": graph.graph_url,
            "FACEBOOK_PAGE_ID": FB_PAGE,
            "SOCIAL_TIMEOUT_SECONDS": "1",
        }.items():
            monkeypatch.setenv(f"CPS_COVID_{name}", value)
        yield x, graph
