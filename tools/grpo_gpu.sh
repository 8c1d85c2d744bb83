#!/usr/bin/env bash
# On the lent GPU machine, after tools/reproduce_small.sh's ferry and setup and
# tools/noise_floor_gpu.sh (whose seed-0 evaluation is the start model's): the
# pre-registered GRPO experiment (docs/results.md). The run of the ferried seeds
# (tools/gpu_env.sh's seeds_run, shared with groundtruth_gpu.sh: either makes it), then for each training
# seed: GRPO, the shuffled control and SFT on the same run, each evaluated with the
# protocol and compared with the start model and with the control. GRPO resumes from its
# checkpoint, eval from its partial samples, and finished steps are skipped, so the job can
# be started again after the machine went back (SFT starts its arm over).
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
# A finished run is the pre-registered task pool, left byte for byte as attempt 1 read it:
# resuming it keeps its examples but rewrites dataset.jsonl (a newer checkout adds
# fields), and its SHA-256 is the tasks' provenance.
[ -f $W/run/dataset.jsonl ] || seeds_run || exit 1
train() {  # NAME ARGS...: train into $W/arms/NAME unless it is there, resuming a checkpoint
    local out=$W/arms/$1; shift
    [ -f $out/train_config.json ] && return 0
    local resume=(); [ -f $out/checkpoint/state.pt ] && resume=(--resume)
    cli train --model $W/model --out $out --method lora --overwrite "${resume[@]}" "$@"
}
evaluate() {  # NAME: the protocol's evaluation of $W/arms/NAME (eval resumes a partial one)
    [ -f $W/evals/$1/results.json ] && return 0
    cli eval --backend hf --model $W/arms/$1 --batch-size 1024 --n 10 --temperature 0.2 --seed 0 \
        --workers 15 --out $W/evals/$1
}
compare() {  # A B FILE: compare two evaluations once both are complete; FILE only when it worked
    [ -f $1/results.json ] && [ -f $2/results.json ] && cli compare $1 $2 > $3.tmp && mv $3.tmp $3
}
for seed in ${SEEDS:-0 1 2}; do
    grpo=(--objective grpo --data $W/run --max-steps 100 --seed $seed)
    train grpo-s$seed "${grpo[@]}" && evaluate grpo-s$seed
    train shuffled-s$seed "${grpo[@]}" --grpo-shuffle-rewards && evaluate shuffled-s$seed
    for arm in grpo shuffled; do
        compare $W/noise/seed0 $W/evals/$arm-s$seed $W/evals/$arm-s$seed-vs-start.txt
    done
    compare $W/evals/shuffled-s$seed $W/evals/grpo-s$seed $W/evals/grpo-s$seed-vs-shuffled.txt
    train sft-s$seed --data $W/run/dataset.jsonl --seed $seed && evaluate sft-s$seed \
        && compare $W/noise/seed0 $W/evals/sft-s$seed $W/evals/sft-s$seed-vs-start.txt
done
