#!/usr/bin/env bash
# Prepares the start-up benchmark (bench/startup.py). Safe to run again: each step is skipped or a
# no-op when already done.
#
#   - the project venv .venv with autotrace installed (editable, with the dev extras), made only if
#     .venv/bin/autotrace is missing;
#   - bench/.venv-otel: a separate venv with the upstream OpenTelemetry agent
#     (opentelemetry-instrument) and the Starlette instrumentation, for comparison;
#   - byte-compiled sources in both venvs and in the project, so that no timed run pays for
#     compiling .py files (the environment may set PYTHONDONTWRITEBYTECODE=1, which would otherwise
#     leave every run compiling from source).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
PY=${PYTHON:-python3}
OTEL_VENV="$BENCH_DIR/.venv-otel"

cd "$ROOT"

if [[ ! -x .venv/bin/autotrace ]]; then
  echo "== project venv (.venv)"
  if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet -e '.[dev]'
fi
# The benchmark's app imports Starlette; the dev extras bring it, but check in case .venv was made
# some other way.
if ! .venv/bin/python -c 'import starlette' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet starlette
fi

echo "== OpenTelemetry agent venv (bench/.venv-otel)"
if [[ ! -x "$OTEL_VENV/bin/python" ]]; then
  "$PY" -m venv "$OTEL_VENV"
fi
if [[ ! -x "$OTEL_VENV/bin/opentelemetry-instrument" ]] \
  || ! "$OTEL_VENV/bin/python" -c 'import opentelemetry.instrumentation.starlette, starlette' 2>/dev/null; then
  # The contrib packages (distro, instrumentations) are only published as 0.x betas. A pre-release
  # lower bound on just those two lets pip pick them; a global --pre would do too, but it also pulls
  # release candidates of their dependencies (protobuf, for one), which the project venv does not
  # have, and the comparison is fairer with the same third-party releases on both sides.
  "$OTEL_VENV/bin/python" -m pip install --quiet \
    'opentelemetry-distro>=0.0b0' \
    opentelemetry-exporter-otlp \
    'opentelemetry-instrumentation-starlette>=0.0b0' \
    starlette
fi

echo "== byte-compiling"
# -q: errors only. Compiling is idempotent (only stale or missing .pyc files are written). A few
# files in third-party packages (test data, templates for other Python versions) may not compile:
# that is not our concern, so a non-zero status here is not fatal.
site_packages() {  # venv python -> its site-packages folders, one a line
  "$1" -c 'import site; print("\n".join(site.getsitepackages()))'
}
compile_with() {  # python, folders...
  local python=$1
  shift
  env -u PYTHONDONTWRITEBYTECODE "$python" -m compileall -q -j 0 "$@" >/dev/null 2>&1 || true
}
mapfile -t project_site < <(site_packages .venv/bin/python)
mapfile -t otel_site < <(site_packages "$OTEL_VENV/bin/python")
compile_with .venv/bin/python "$ROOT/autotrace" "$ROOT/sitecustomize" "$BENCH_DIR/apps" "${project_site[@]}"
compile_with "$OTEL_VENV/bin/python" "$BENCH_DIR/apps" "${otel_site[@]}"
# The interpreters' standard libraries are shipped compiled; they are left alone.

echo "ready:"
echo "  $ROOT/.venv/bin/autotrace"
echo "  $OTEL_VENV/bin/opentelemetry-instrument"
echo "run: .venv/bin/python bench/startup.py"
