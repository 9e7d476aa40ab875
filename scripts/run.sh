#!/usr/bin/env bash
# Runs the app at http://localhost:8501 with embedded defaults (SQLite, local MLflow store
# under ./data, in-process rate limiter unless REDIS_URL is set). First start seeds an
# admin and prints its password once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m jobs.init_stores
exec .venv/bin/streamlit run app.py --server.port "${PORT:-8501}" --server.address "${HOST:-localhost}"
