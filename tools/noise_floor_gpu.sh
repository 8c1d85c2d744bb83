#!/usr/bin/env bash
# On the lent GPU machine, after tools/reproduce_small.sh's ferry and setup: the
# evaluation protocol's noise floor. The start model evaluated twice on HumanEval+ and
# MBPP+ (n = 10 samples per task at temperature 0.2), with sampling seeds far apart
# (sample i of a task is drawn with seed + i), then `compare` of the two. Each eval
# resumes where it stopped.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
for seed in 0 100000; do
    cli eval --backend hf --model $W/model --batch-size 1024 --n 10 --temperature 0.2 --seed $seed \
        --workers 15 --out $W/noise/seed$seed
done
cli compare $W/noise/seed0 $W/noise/seed100000 | tee $W/noise/compare.txt
