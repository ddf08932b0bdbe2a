"""The image `make image` builds: the flow runs inside it against the moto server on the host's loopback."""

from __future__ import annotations

import json
import time

from containers import docker

from cps_covid.rules import publish_plan
from local.aws_emulator import Emulated, aws_environment


def test_image_runs_as_a_non_root_user_without_baked_secrets(image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001"
    assert not [e for e in config["Env"] if e.startswith(("AWS_", "PREFECT_API_KEY", "CPS_COVID_"))]
    assert docker("run", "--rm", image, "id", "-u").stdout.strip() == "10001"


def test_flow_runs_in_the_container_against_the_host(image: str, aws: Emulated, feeds, prefect_api: str) -> None:
    env = aws.environment() | {"CPS_COVID_SOURCE_URL": feeds.url("/feed.csv"), "PREFECT_API_URL": prefect_api}
    flags = [x for key, value in env.items() for x in ("-e", f"{key}={value}")]
    started = time.monotonic()
    done = docker("run", "--rm", "--network", "host", *flags, image, "cps-covid", "run", "--as-of", "2021-09-23")
    print(f"container run: {time.monotonic() - started:.1f} s")

    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "22 new case(s) at 13 school(s) for 2021-09-23" in done.stdout
    s3 = aws.client("s3")
    assert len(s3.list_object_versions(Bucket=aws.bucket, Prefix=publish_plan.SCHOOLS_KEY)["Versions"]) == 2
    assert [n["subject"] for n in aws.sent_notifications()] == ["CPS COVID update: 22 new cases (Sep. 23, 2021)"]


def test_the_subscription_service_runs_in_the_same_image_read_only(image: str, moto_endpoint: str) -> None:
    """What the ECS service runs: ``cps-covid serve`` in this image, root filesystem read-only."""
    import httpx

    from cps_covid.waiting import wait_for
    from local.prefect_server import free_port

    emulated = Emulated(moto_endpoint, "", "", "")
    topic = emulated.client("sns").create_topic(Name="container-subscribers")["TopicArn"]
    port = free_port()
    env = aws_environment(moto_endpoint) | {
        "CPS_COVID_TOPIC_ARN": topic,
        "CPS_COVID_SITE_ORIGIN": "https://cpscovid.test",
    }
    flags = [x for key, value in env.items() for x in ("-e", f"{key}={value}")]
    name = f"cps-covid-serve-{port}"
    started = docker(
        "run",
        "-d",
        "--rm",
        "--read-only",
        "--network",
        "host",
        "--name",
        name,
        *flags,
        image,
        "cps-covid",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    assert started.returncode == 0, started.stderr
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, what="the service in the container", timeout=90)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/subscribe", json={"email": "in.container@example.org"}, timeout=30
        )
        assert answer.status_code == 202, answer.text
        logs = docker("logs", name).stderr
    finally:
        docker("stop", "-t", "20", name)
    subscribed = emulated.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subscribed] == ["in.container@example.org"]
    assert '"address": "i***@example.org"' in logs and "in.container@" not in logs
