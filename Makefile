# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The data folder: QUANT_DATA_DIR from the environment (or DATA_DIR=... on make's command line),
# else ./.data; made absolute, and the Dagster instance (DAGSTER_HOME) lives in it.
DATA_DIR := $(or $(QUANT_DATA_DIR),$(CURDIR)/.data)
override export QUANT_DATA_DIR := $(abspath $(DATA_DIR))
export DAGSTER_HOME := $(QUANT_DATA_DIR)/dagster_home
# The embedded demo's simulated order books: a snapshot every 15 s keeps `make demo` within
# minutes on 2 cores (tests and benchmarks use the realistic 3 s).
export QUANT_SIM_SNAPSHOT_SECONDS ?= 15

.PHONY: help install lock demo demo-real test test-fast lint ui mlflow-ui status metrics api api-key bench images smoke deploy clean

help:  ## what each target does (the default)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 20

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

# Stamp file: reinstall only when pyproject.toml or the pinned versions change.
# constraints.txt pins every package to the versions `make lock` resolved, so a fresh machine
# installs exactly what the last lock tested.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	@echo "Installing the project and its dependencies into $(VENV) (a few minutes on a fresh machine)..."
	$(BIN)/pip install --progress-bar off -c constraints.txt -e ".[dev]"
	@echo "Compiling the numba kernels once (cached beside the sources; no run pays it)..."
	$(BIN)/python -m quant_assets.warm
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the project (versions of constraints.txt)

# The newest versions pyproject.toml allows, resolved in a fresh throw-away venv (never .venv,
# which may hold extra packages) and frozen. Local version labels are cut (torch 2.13.0+cpu is
# written torch==2.13.0, which the CPU wheel and PyPI's wheel both satisfy).
lock:  ## re-resolve pyproject.toml's dependencies (+dev) into constraints.txt
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "Resolving pyproject.toml's dependencies in a fresh venv ($$tmp)..."; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --upgrade pip wheel; \
	"$$tmp/venv/bin/pip" install --quiet --progress-bar off -e ".[dev]"; \
	{ echo "# Pinned versions of pyproject.toml's dependencies and its dev extra, resolved by"; \
	  echo "# \`make lock\` on Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'). \`make install\` installs with them"; \
	  echo "# (pip install -c constraints.txt -e \".[dev]\"). Do not edit: change pyproject.toml,"; \
	  echo "# run \`make lock\`, run the tests, commit both files."; \
	  "$$tmp/venv/bin/pip" freeze --exclude-editable | sed -E 's/\+[a-z0-9.]+$$//'; \
	} > constraints.txt.new; \
	mv constraints.txt.new constraints.txt; \
	echo "constraints.txt: $$(grep -vc '^#' constraints.txt) packages pinned"

status: install  ## the day's timeline: each step's partition and whether it is done, waiting or late
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m quant_assets.on_call

metrics: install  ## the quant_* metrics on http://127.0.0.1:9108/metrics (Prometheus text format)
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m quant_assets.automation.monitoring.server --host 127.0.0.1 --port 9108

api: install  ## the API and the dashboard on http://127.0.0.1:8000 (/docs off; /dashboard)
	$(BIN)/python -m quant_assets.api --host 127.0.0.1 --port 8000

# NAME=pm-desk SCOPE=read|admin DAYS=90: the key is printed once (keep it; only its hash is stored)
api-key: install  ## create an API key: make api-key NAME=pm-desk [SCOPE=read] [DAYS=90]
	@test -n "$(NAME)" || { echo "make api-key: say who it is for, NAME=..." >&2; exit 1; }
	$(BIN)/python -m quant_assets.api.keys_cli create --name "$(NAME)" --scope $(or $(SCOPE),read) --expires-days $(or $(DAYS),90)

# Qlib, in a venv of its own, is the reference the Alpha158 parity tests compare against.
QLIB_VENV := .venv-qlib
$(QLIB_VENV)/.installed:
	@echo "Installing the Qlib reference engine into $(QLIB_VENV)..."
	$(PYTHON) -m venv $(QLIB_VENV)
	$(QLIB_VENV)/bin/pip install --progress-bar off "pyqlib==0.9.7" pyarrow
	@touch $@

demo: install  ## run the daily pipeline over the simulated market, print the picks
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m quant_assets.demo

# The real market's demo keeps its own data folder (REAL_DATA_DIR=... on make's command
# line to move it), so it never mixes with the simulated one's.
REAL_DATA_DIR ?= $(CURDIR)/.data-real

demo-real: install  ## the daily pipeline over 2024 on real CSI300 bars (../shared/data), print the picks
	@mkdir -p $(REAL_DATA_DIR)/dagster_home
	@cp dagster.yaml $(REAL_DATA_DIR)/dagster_home/dagster.yaml
	QUANT_DATA_DIR=$(REAL_DATA_DIR) DAGSTER_HOME=$(REAL_DATA_DIR)/dagster_home \
	  $(BIN)/python -m quant_assets.demo_real

# Debian's chromium (and chromium-driver) for the dashboard's browser test, installed once and
# only where /usr/bin/chromium is missing; apt-get needs root. If it cannot install, the test
# skips and says why, and the next `make test` tries again (no stamp).
$(VENV)/.chromium: | $(BIN)/python
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the dashboard's browser test..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } || \
	  { echo "make: could not install chromium (apt-get needs root): the browser test will skip" >&2; exit 0; }; }
	@test -x /usr/bin/chromium && touch $@ || true

test: install $(QLIB_VENV)/.installed $(VENV)/.chromium  ## the whole test suite (CI runs this)
	$(BIN)/python -m pytest -q

test-fast: install  ## the suite without pipeline materialisations and Qlib parity (< 2 min)
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not qlib"

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: install  ## the Dagster UI on http://127.0.0.1:3000
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@# `dagster dev` warns at each start that `dg dev` (dagster-dg-cli, not installed here)
	@# supersedes it: nothing to act on. exec: Ctrl-C goes straight to the server.
	PYTHONWARNINGS="$${PYTHONWARNINGS:+$$PYTHONWARNINGS,}"'ignore:Function `dev_command` is superseded:Warning:click.core' \
	  exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: install  ## the MLflow UI on http://127.0.0.1:5000
	exec bash mlflow/serve.sh

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --progress-bar off -e ".[dev,bench]"
	@touch $@

bench: install $(VENV)/.bench-installed $(QLIB_VENV)/.installed  ## the benchmarks under bench/ (figures, not tests)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The production-like stack (docker-compose.yml) and its deployments; the pipeline of
# .github/workflows/deploy.yml runs these targets, so each step runs the same by hand.
# DEPLOY_ENV names a deployment (staging, production); its settings and secrets are read from
# .env.$(DEPLOY_ENV), which is never committed (README: Production-like stack).
DEPLOY_ENV ?= staging
DEPLOY_ENV_FILE ?= .env.$(DEPLOY_ENV)
# The variables docker-compose.yml requires (${VAR:?...}). A build interpolates the whole file
# but uses none of them: `make images` fills the unset ones with a placeholder.
STACK_SECRETS := CLICKHOUSE_PASSWORD POSTGRES_PASSWORD MINIO_ROOT_PASSWORD GRAFANA_ADMIN_PASSWORD
NEED_DOCKER = @docker info >/dev/null 2>&1 || { echo "make $@: no Docker engine answers (docker info failed); run it where a Docker engine runs" >&2; exit 1; }

images:  ## build the stack's images (docker compose build); PUSH=1 also pushes them
	$(NEED_DOCKER)
	$(foreach v,$(STACK_SECRETS),$(v)="$${$(v):-unused-by-a-build}") docker compose build
	$(if $(PUSH),$(foreach v,$(STACK_SECRETS),$(v)="$${$(v):-unused-by-a-build}") docker compose push code-location mlflow)

deploy:  ## deploy the stack with docker compose: make deploy DEPLOY_ENV=staging|production
	$(NEED_DOCKER)
	@test -f $(DEPLOY_ENV_FILE) || { echo "make deploy: $(DEPLOY_ENV_FILE) is missing (the $(DEPLOY_ENV) deployment's settings and secrets, see README)" >&2; exit 1; }
	docker compose --env-file $(DEPLOY_ENV_FILE) pull --quiet
	docker compose --env-file $(DEPLOY_ENV_FILE) up -d --no-build --remove-orphans

# Standard library only: runs with any Python 3.11, without the venv.
smoke:  ## smoke-test a deployment (SMOKE_DAGSTER_URL, SMOKE_MLFLOW_URL, SMOKE_METRICS_URL)
	PYTHONPATH=$(CURDIR) $(PYTHON) -m quant_assets.automation.smoke

clean:  ## remove the data folder (ClickHouse, MLflow, Dagster instance, reports)
	rm -rf $(DATA_DIR)
