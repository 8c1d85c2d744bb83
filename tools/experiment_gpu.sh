#!/usr/bin/env bash
# The experiment's GPU part on this workplace's GPU machine (docs/results.md), started
# there as a background job with `bash tools/reproduce_small.sh start 'bash
# tools/experiment_gpu.sh'` after the ferry calls: the product run of the ferried
# seeds, then experiment.py's generate phase. Both resume where they stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
W=/tmp/w
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -m selfcodealign.cli run --out $W/run --backend hf --model $W/model \
    --set seeds.source=seeds:$W/seeds.jsonl --set responses.n=10 \
    --set backend.batch_size=1024 --set execute.workers=15 --quiet
python3 benchmarks/experiment.py --run $W/run --out $W/exp --phase generate --model $W/model \
    --eval-args "--backend hf --batch-size 1024"
