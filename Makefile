# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/.data
export QUANT_DATA_DIR := $(DATA_DIR)
export DAGSTER_HOME := $(DATA_DIR)/dagster_home
# The embedded demo's simulated order books: a snapshot every 15 s keeps `make demo` within
# minutes on 2 cores (tests and benchmarks use the realistic 3 s).
export QUANT_SIM_SNAPSHOT_SECONDS ?= 15

.PHONY: install demo test lint ui mlflow-ui bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

# Stamp file: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing the project and its dependencies into $(VENV) (a few minutes on a fresh machine)..."
	$(BIN)/pip install --progress-bar off -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# Qlib, in a venv of its own, is the reference the Alpha158 parity tests compare against.
QLIB_VENV := .venv-qlib
$(QLIB_VENV)/.installed:
	@echo "Installing the Qlib reference engine into $(QLIB_VENV)..."
	$(PYTHON) -m venv $(QLIB_VENV)
	$(QLIB_VENV)/bin/pip install --progress-bar off "pyqlib==0.9.7" pyarrow
	@touch $@

demo: install
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m quant_assets.demo

test: install $(QLIB_VENV)/.installed
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: install
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: install
	bash mlflow/serve.sh

bench: install $(QLIB_VENV)/.installed
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(DATA_DIR)
