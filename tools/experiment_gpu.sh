#!/usr/bin/env bash
# The experiment's GPU part on this workplace's GPU machine (docs/results.md), started
# there as a background job with `bash tools/reproduce_small.sh start 'bash
# tools/experiment_gpu.sh'` after the ferry calls: the product run of the ferried
# seeds, then experiment.py's generate phase. Both resume where they stopped.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
seeds_run
python3 benchmarks/experiment.py --run $W/run --out $W/exp --phase generate --model $W/model \
    --eval-args "--backend hf --batch-size 1024"
