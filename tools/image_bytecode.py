"""Compile the image's bytecode for what its commands import, and for nothing else (the Dockerfile runs this).

pip installs the locked libraries without compiling them (``--no-compile``): the bytecode of every
module they ship was about 125 MB of the image, most of it for modules no command of the image
imports (the bulk of SciPy, pandas' and NumPy's many corners, Prefect's server, ...). This script
imports, with the image's own interpreter, what the image's commands import, and compiles the
sources of every module that came from the venv, into ``__pycache__`` beside them: those imports
start warm, as they did when pip compiled everything. Any other module still imports; it is
compiled in memory when it is imported (user 10001 cannot write the venv).

The commands: ``cps-covid run``, ``vaccination`` and ``serve`` (the ECS task and service),
``prefect flow-run execute`` of the deployments' flows, ``prefect worker start`` with the ECS
and the process worker. Run as root in the Dockerfile's last stage, after the project's code is
at /app; an import that fails here fails the build (it would fail in the container too).
"""

from __future__ import annotations

import importlib
import py_compile
import sys
from pathlib import Path

VENV = Path(sys.prefix)

MODULES = (
    # cps-covid (cli/main.py) and what its commands import when they run.
    "cli.main",
    "flows.update",
    "flows.vaccination",
    "flows.alert",
    "cps_covid.service.server",
    "cps_covid.service.app",
    # Imported inside the flows' tasks: Great Expectations (cps_covid/rules/validation.py), boto3.
    "great_expectations",
    "great_expectations.core",
    "great_expectations.core.run_identifier",
    "great_expectations.data_context.types.base",
    "great_expectations.render.renderer",
    "great_expectations.render.view",
    "great_expectations.execution_engine.pandas_execution_engine",
    "boto3",
    "botocore.config",
    "prefect_aws",
    # Imported while a flow runs, not when its module is imported (found by listing, after a run
    # of the update flow in the container, the modules it had imported that had no bytecode).
    "prefect.task_engine",
    "prefect.concurrency.sync",
    "prefect.concurrency.asyncio",
    "prefect.utilities.visualization",
    "opentelemetry.metrics",
    "opentelemetry._logs",
    "pandas.io.formats.csvs",
    "pandas.core.methods.to_dict",
    "jinja2.ext",
    "pydantic.color",
    "rich._emoji_codes",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "starlette.middleware.base",
    "starlette.staticfiles",
    "fastapi",
    "requests_oauthlib",
    # uvicorn's server pieces, imported when `cps-covid serve` starts it.
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
    # The `prefect` command: a flow run's container (`prefect flow-run execute`) and the workers.
    "prefect.cli",
    "prefect.cli.flow_run",
    "prefect.cli.worker",
    "prefect.cli._worker_utils",  # what `worker start` imports once it runs: it finds the worker's class
    "prefect.client.collections",
    "prefect._internal.git",
    "prefect.flow_engine",
    "prefect.deployments.steps.core",
    "prefect.deployments.steps.pull",
    "prefect.workers.process",
    "prefect_aws.workers.ecs_worker",
)

# Building a client imports botocore's request machinery; no network and no credentials needed.
AWS_SERVICES = ("s3", "sns", "cloudfront", "cloudwatch", "ecs", "logs")


def imported_sources() -> list[Path]:
    """The .py files of every module imported so far that live in the venv."""
    found = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file.endswith(".py") and Path(file).is_relative_to(VENV):
            found.add(Path(file))
    return sorted(found)


def main() -> int:
    for name in MODULES:
        importlib.import_module(name)
    import boto3

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    for service in AWS_SERVICES:
        session.client(service)
    sources = imported_sources()
    for source in sources:
        py_compile.compile(str(source), doraise=True)
    print(f"compiled {len(sources)} modules of {VENV} that the image's commands import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
