#!/usr/bin/env bash
# Start the MLflow UI/tracking server on the embedded store (the same SQLite file and artifact
# folder the pipeline writes to). In production, MLFLOW_BACKEND_STORE_URI points at Postgres
# and MLFLOW_ARTIFACTS_DESTINATION at s3://... (see docker-compose.yml).
set -euo pipefail
DATA_DIR="${QUANT_DATA_DIR:-$(pwd)/.data}"
BACKEND="${MLFLOW_BACKEND_STORE_URI:-sqlite:///${DATA_DIR}/mlflow/mlflow.db}"
ARTIFACTS="${MLFLOW_ARTIFACTS_DESTINATION:-${DATA_DIR}/mlflow/artifacts}"
mkdir -p "${DATA_DIR}/mlflow"
# MLflow's server imports litellm, which otherwise fetches its model price list from GitHub at
# start and warns when offline; its bundled copy is as good for a UI.
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
# The server's job runner executes GenAI scorer jobs, which this platform has none of; off, it
# spawns no consumer processes (they import litellm and openai for seconds, and Ctrl-C during
# that import printed their traceback).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# MLflow's own import of a deprecated Starlette module warns at every start; nothing to act on.
export PYTHONWARNINGS="${PYTHONWARNINGS:+${PYTHONWARNINGS},}ignore:starlette.middleware.wsgi is deprecated:UserWarning:mlflow.server.fastapi_app"
# exec: the server replaces this shell, so Ctrl-C (SIGINT) reaches it and stops it.
# Two workers (MLflow starts 4) are plenty for a local UI; with uvicorn's supervisor they stop
# quietly on Ctrl-C (a single worker runs without one and logs a KeyboardInterrupt traceback).
exec "$(dirname "$0")/../.venv/bin/mlflow" server \
  --backend-store-uri "${BACKEND}" \
  --artifacts-destination "${ARTIFACTS}" \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}"
