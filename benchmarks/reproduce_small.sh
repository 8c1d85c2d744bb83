#!/usr/bin/env bash
# The small-scale reproduction, as resumable steps: see benchmarks/reproduce_small.py
# (`bash benchmarks/reproduce_small.sh --help`) and docs/results.md.
#   CPU machine:  prepare | sequence | collect DIR | score | report | tiny
#   GPU machine:  gpu-ferry | gpu-setup | gpu-eval before|after | gpu-generate | gpu-execute | gpu-train
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -n "${OUT:-}" ]; then
    # The device machine ($OUT is set only there): its python3 holds torch; the carried
    # wheels go to /tmp/site (gpu-setup) and the package is used from the tree.
    PY=${PYTHON:-python3}
    export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ]; then
    PY=${PYTHON:-.venv/bin/python}
else
    PY=${PYTHON:-python3}
fi
exec "$PY" benchmarks/reproduce_small.py "$@"
