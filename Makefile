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

.PHONY: help install demo test test-fast lint ui mlflow-ui bench clean

help:  ## what each target does (the default)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 20

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

# Stamp file: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing the project and its dependencies into $(VENV) (a few minutes on a fresh machine)..."
	$(BIN)/pip install --progress-bar off -e ".[dev]"
	@echo "Compiling the numba kernels once (cached beside the sources; no run pays it)..."
	$(BIN)/python -m quant_assets.warm
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the project

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

test: install $(QLIB_VENV)/.installed  ## the whole test suite (CI runs this)
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

clean:  ## remove the data folder (ClickHouse, MLflow, Dagster instance, reports)
	rm -rf $(DATA_DIR)
