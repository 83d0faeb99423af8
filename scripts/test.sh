#!/usr/bin/env bash
# Runs the whole OpenCAC test suite from a fresh clone: makes .venv, installs the package with
# its test extras, Debian's Chromium for the browser tests (when apt-get is available), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi
# PostgreSQL-backed tests use OPENCAC_TEST_POSTGRES_URL (default: the local server, database test).
export OPENCAC_TEST_POSTGRES_URL=${OPENCAC_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
