# Two commands matter: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_HOME := .cache/uv-tool
UV := $(UV_HOME)/bin/uv
STAMP := $(VENV)/.installed
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo up down test check lint style types unit suite browser checkov bench soak lock image deploy clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_HOME) uv

# Locked dependencies, the project itself editable (console script cps-covid), bytecode compiled once.
$(STAMP): $(UV) pyproject.toml requirements.lock
	PYTHONPATH=$(UV_HOME) $(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	PYTHONPATH=$(UV_HOME) $(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	PYTHONPATH=$(UV_HOME) $(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

lock: $(UV)
	PYTHONPATH=$(UV_HOME) $(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	PYTHONPATH=$(UV_HOME) $(UV) pip compile --quiet pyproject.toml --python-version 3.11 -o requirements-runtime.lock

# The container image (starts dockerd, makes a Debian base and a wheelhouse when needed).
image:
	tools/build-image.sh

# Pools, the settings variable, blocks, deployments and automations on PREFECT_API_URL.
# TARGET=process (default) or TARGET=ecs IMAGE=<pushed image> STACK=<CloudFormation stack, for the AWS ids>.
deploy: $(STAMP)
	$(BIN)/cps-covid deploy --target $(or $(TARGET),process) $(if $(IMAGE),--image $(IMAGE)) $(if $(STACK),--stack $(STACK))

demo: $(STAMP)
	$(BIN)/cps-covid demo

# The system on loopback, operated from the Prefect UI (no AWS): DAYS_EVERY=minutes per replayed day.
up: $(STAMP)
	$(BIN)/cps-covid stack up $(if $(DAYS_EVERY),--minutes-per-day $(DAYS_EVERY))

down: $(STAMP)
	$(BIN)/cps-covid stack down

# Debian's Chromium renders the published page in the browser tests.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# checkov, as the field runs it on the stack and the Dockerfile, in its own venv: its pins clash with the project's.
CHECKOV_VERSION := 3.3.30
checkov: .cache/checkov/.installed-$(CHECKOV_VERSION)

.cache/checkov/.installed-$(CHECKOV_VERSION):
	$(PYTHON) -m venv .cache/checkov
	.cache/checkov/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

lint: $(STAMP) style types

style: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not soak"

# mypy runs beside the suite: it needs one core for under a minute, while the workers are starting.
test: $(STAMP) browser checkov style
	$(MAKE) --no-print-directory -j2 types suite

suite: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=30

# The quick loop: lint, and the tests that need no server, container, browser or CLI subprocess;
# mypy (about 40 s with its cache empty) and the tests run side by side, one a core.
check: $(STAMP) style
	$(MAKE) --no-print-directory -j2 types unit

# 500 runs over a month of synthetic feeds with 10% random faults (not part of make test).
soak: $(STAMP)
	$(BIN)/python -m pytest -m soak tests/soak -q -s -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache demo-site .prefect-demo .stack
