#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements when they changed. Usage: setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
files=requirements.txt
[ "${1:-}" = dev ] && files="requirements.txt requirements-dev.txt"
want=$(cat $files | sha256sum | cut -d' ' -f1)
stamp=.venv/.installed-${1:-app}
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "${1:-}" = dev ]; then
    .venv/bin/python -m pip install -q -r requirements-dev.txt
  else
    .venv/bin/python -m pip install -q -r requirements.txt
  fi
  echo "$want" > "$stamp"
fi
