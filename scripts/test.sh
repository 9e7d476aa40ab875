#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv + pinned deps, Debian chromium for the
# browser test, local Redis/PostgreSQL, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "warning: /usr/bin/chromium missing and not root: browser tests will fail" >&2
  fi
fi
bash scripts/services.sh
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest "$@"
