#!/usr/bin/env bash
# Start the MLflow UI/tracking server on the embedded store (the same SQLite file and artifact
# folder the pipeline writes to). In production, MLFLOW_BACKEND_STORE_URI points at Postgres
# and MLFLOW_ARTIFACTS_DESTINATION at s3://... (see docker-compose.yml).
set -euo pipefail
DATA_DIR="${QUANT_DATA_DIR:-$(pwd)/.data}"
BACKEND="${MLFLOW_BACKEND_STORE_URI:-sqlite:///${DATA_DIR}/mlflow/mlflow.db}"
ARTIFACTS="${MLFLOW_ARTIFACTS_DESTINATION:-${DATA_DIR}/mlflow/artifacts}"
mkdir -p "${DATA_DIR}/mlflow"
exec "$(dirname "$0")/../.venv/bin/mlflow" server \
  --backend-store-uri "${BACKEND}" \
  --artifacts-destination "${ARTIFACTS}" \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}"
