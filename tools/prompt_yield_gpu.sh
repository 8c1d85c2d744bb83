#!/usr/bin/env bash
# On the lent GPU machine, after tools/reproduce_small.sh's ferry and setup (started there
# with `bash tools/reproduce_small.sh start 'bash tools/prompt_yield_gpu.sh SEEDS ...'`):
# two product runs of the same seeds, the built-in settings in $W/yield/built-in and a
# candidate in $W/yield/NAME; benchmarks/prompt_yield.py compares them. Both resume.
#   prompt_yield_gpu.sh SEEDS [PROMPTS.yaml]        a prompts file (default benchmarks/prompts/checkable.yaml)
#   prompt_yield_gpu.sh SEEDS NAME KEY=VALUE ...    any settings, e.g. cool instructions.temperature=0.2
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
seeds=${1:?usage: prompt_yield_gpu.sh SEEDS.jsonl [PROMPTS.yaml | NAME KEY=VALUE ...]}
shift
arm() { cli run --out $W/yield/$1 --set seeds.source=seeds:$seeds --set responses.n=10 "${gen[@]}" "${@:2}"; }
arm built-in
if [ $# -le 1 ]; then
    candidate=${1:-benchmarks/prompts/checkable.yaml}
    arm "$(basename "$candidate" .yaml)" --set prompts.examples="$candidate"
else
    name=$1
    shift
    sets=()
    for kv in "$@"; do sets+=(--set "$kv"); done
    arm "$name" "${sets[@]}"
fi
