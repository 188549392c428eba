#!/usr/bin/env bash
# The main job: installs autotrace into .venv (made if missing) and runs an example app under it,
# printing the spans it makes. Point OTEL_EXPORTER_OTLP_ENDPOINT at a collector to export instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/autotrace --exporter "${OTEL_TRACES_EXPORTER:-console}" .venv/bin/python examples/hello/app.py
