# cps-covid-etl: the flow code and its locked runtime dependencies.
# `make image` builds it here without network: when the default base cannot be
# pulled it makes one from Debian packages and installs from a wheelhouse made
# outside the image (.cache/wheelhouse). No secret is baked in: AWS credentials
# come from the ECS task role, Prefect's from the worker.
# checkov:skip=CKV_DOCKER_7: the base is this build argument, always a tagged name (python:3.11-slim by default, cps-covid-base:bookworm from tools/build-image.sh), which checkov cannot read through ${BASE_IMAGE}
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: the virtualenv, from the wheelhouse. Only /opt/venv leaves this stage, so the
# wheels (133 MB) never become a layer of the image.
FROM ${BASE_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
COPY .cache/wheelhouse/ /tmp/wheelhouse/
# With a wheelhouse: offline. Without one (a base with network): from the index.
# --no-compile: no bytecode here; the last stage compiles only what the image's commands
# import (tools/image_bytecode.py). Then out of the venv:
# - pip and setuptools (with pkg_resources and _distutils_hack), which `python3 -m venv`
#   put there (ensurepip) and the lock does not list: nothing in the container installs
#   anything (prefect.yaml's only pull step is set_working_directory; the ECS job
#   variables have no pip_install step), and no library imports them at run time
#   (Great Expectations' compatibility.pip and pytz fall back when they are missing);
# - the libraries' own test suites (pandas 46 MB, NumPy's and SciPy's): never imported
#   by the flows;
# - the Prefect server's UI bundles (prefect/server/ui and ui-v2, 17 MB of JavaScript and
#   CSS): only `prefect server start` serves them, and no container of this image runs a
#   Prefect server (the workers and flow runs use PREFECT_API_URL; an ephemeral server
#   runs with its UI disabled);
# - type stubs (*.pyi, 2 MB): for type checkers, never read by the interpreter.
RUN python3 -m venv /opt/venv \
 && if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
      /opt/venv/bin/pip install --no-compile --no-index --find-links /tmp/wheelhouse -r /tmp/requirements-runtime.lock; \
    else \
      /opt/venv/bin/pip install --no-compile -r /tmp/requirements-runtime.lock; \
    fi \
 && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools \
 && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && rm -rf "$site/pandas/tests" "$site"/numpy/*/tests "$site"/numpy/tests "$site"/scipy/*/tests "$site"/scipy/*/*/tests \
 && rm -rf "$site/prefect/server/ui" "$site/prefect/server/ui-v2" \
 && find /opt/venv -name '*.pyi' -type f -delete \
 && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +

# Stage 2: the image.
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PREFECT_HOME=/tmp/prefect

COPY --from=venv /opt/venv /opt/venv
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin cpscovid

WORKDIR /app
COPY cps_covid/ /app/cps_covid/
COPY flows/ /app/flows/
COPY tasks/ /app/tasks/
COPY cli/ /app/cli/
COPY expectations/ /app/expectations/
COPY data/ /app/data/
COPY prefect.yaml pyproject.toml /app/
COPY tools/image_bytecode.py /tmp/image_bytecode.py
# Bytecode for the project's code and for the library modules the image's commands import
# (tools/image_bytecode.py says which), compiled as root beside their sources; Prefect's
# home for that one import is thrown away, so the container's user still makes its own.
RUN printf '#!/opt/venv/bin/python\nimport sys\nfrom cli.main import main\nsys.exit(main())\n' > /opt/venv/bin/cps-covid \
 && chmod 755 /opt/venv/bin/cps-covid \
 && /opt/venv/bin/python -m compileall -q /app \
 && PREFECT_HOME=/tmp/bytecode-prefect /opt/venv/bin/python /tmp/image_bytecode.py \
 && rm -rf /tmp/image_bytecode.py /tmp/bytecode-prefect /root/.cache

# `cps-covid serve` (the subscription service's ECS task) listens here; the flows need no port.
EXPOSE 8080
# No health check in the image: most of its containers (flow runs, the workers) serve nothing
# to probe. The subscription service's task definition probes /healthz itself
# (deployments/subscriptions-task-definition.json, and the stack's template).
HEALTHCHECK NONE
USER 10001
CMD ["cps-covid", "run"]
