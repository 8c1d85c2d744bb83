#!/usr/bin/env bash
# On the lent GPU machine, after tools/reproduce_small.sh's ferry and setup (started
# there with `bash tools/reproduce_small.sh start 'bash tools/groundtruth_gpu.sh'`):
# fresh responses for labelling (a product run of the ferried seeds), then MBPP+ tasks as
# instructions, answered, executed and verified by the product's stage commands
# (benchmarks/mbpp_groundtruth.py scores them). Both resume where they stopped.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
python3 benchmarks/mbpp_groundtruth.py instructions $W/mbpp
cli responses --in $W/mbpp/instructions.jsonl --out $W/mbpp/responses.jsonl --set responses.n=10 "${gen[@]}"
cli execute --in $W/mbpp/responses.jsonl --out $W/mbpp/executed.jsonl "${gen[@]}"
cli verify --in $W/mbpp/executed.jsonl --out $W/mbpp/verified.jsonl "${gen[@]}"
seeds_run
