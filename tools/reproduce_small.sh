#!/usr/bin/env bash
# The GPU reproduction's ferry steps (tools/reproduce_small.py; docs/results.md) and,
# as `cli ARGS`, `selfcodealign ARGS` with the wheels that `setup` installed on the GPU
# machine ($OUT is set only there) or with the venv here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -n "${OUT:-}" ]; then
    PY=${PYTHON:-python3}
    export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ]; then
    PY=${PYTHON:-.venv/bin/python}
else
    PY=${PYTHON:-python3}
fi
if [ "${1:-}" = cli ]; then
    shift
    exec "$PY" -m selfcodealign.cli "$@"
fi
exec "$PY" tools/reproduce_small.py "$@"
