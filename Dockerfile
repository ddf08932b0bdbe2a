# cps-covid-etl: the flow code and its locked runtime dependencies.
# `make image` builds it here without network: when the default base cannot be
# pulled it makes one from Debian packages and installs from a wheelhouse made
# outside the image (.cache/wheelhouse). No secret is baked in: AWS credentials
# come from the ECS task role, Prefect's from the worker.
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: the virtualenv, from the wheelhouse. Only /opt/venv leaves this stage, so the
# wheels (133 MB) never become a layer of the image.
FROM ${BASE_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
COPY .cache/wheelhouse/ /tmp/wheelhouse/
# With a wheelhouse: offline. Without one (a base with network): from the index.
# pip compiles bytecode as it installs, so imports in the container start warm. The
# libraries' own test suites (pandas 46 MB, NumPy's and SciPy's) are never imported by
# the flows: they are left out.
RUN python3 -m venv /opt/venv \
 && if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
      /opt/venv/bin/pip install --no-index --find-links /tmp/wheelhouse -r /tmp/requirements-runtime.lock; \
    else \
      /opt/venv/bin/pip install -r /tmp/requirements-runtime.lock; \
    fi \
 && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && rm -rf "$site/pandas/tests" "$site"/numpy/*/tests "$site"/numpy/tests "$site"/scipy/*/tests "$site"/scipy/*/*/tests

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
RUN printf '#!/opt/venv/bin/python\nimport sys\nfrom cli.main import main\nsys.exit(main())\n' > /opt/venv/bin/cps-covid \
 && chmod 755 /opt/venv/bin/cps-covid \
 && /opt/venv/bin/python -m compileall -q /app

# `cps-covid serve` (the subscription service's ECS task) listens here; the flows need no port.
EXPOSE 8080
USER 10001
CMD ["cps-covid", "run"]
