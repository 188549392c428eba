#!/usr/bin/env bash
# Runs every check CI runs: installs the project with its test tools into .venv (made if missing),
# then ruff, mypy and the whole test suite against the real local services.
# Extra arguments go to pytest (e.g. ./scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# urllib3 1.26 beside the 2.x in the venv, for the tests that run an app against the older line.
if [[ ! -d .deps/urllib3-1/urllib3 ]]; then
  .venv/bin/python -m pip install --quiet --no-deps --target .deps/urllib3-1 'urllib3>=1.26,<2'
fi

echo "== ruff"
.venv/bin/ruff check autotrace sitecustomize tests bench examples
.venv/bin/ruff format --check autotrace sitecustomize tests bench examples
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
