#!/usr/bin/env bash
# On the lent GPU machine, after tools/reproduce_small.sh's ferry and setup (started there
# with `bash tools/reproduce_small.sh start 'bash tools/prompt_yield_gpu.sh SEEDS [PROMPTS]'`):
# two product runs of the same seeds that differ only in their prompts, the built-in ones
# and the candidate prompts file (default benchmarks/prompts/checkable.yaml), in
# $W/yield/built-in and $W/yield/NAME; benchmarks/prompt_yield.py compares them. Both resume.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
seeds=${1:?usage: prompt_yield_gpu.sh SEEDS.jsonl [PROMPTS.yaml]}
candidate=${2:-benchmarks/prompts/checkable.yaml}
arm() { cli run --out $W/yield/$1 --set seeds.source=seeds:$seeds --set responses.n=10 "${gen[@]}" "${@:2}"; }
arm built-in
arm "$(basename "$candidate" .yaml)" --set prompts.examples="$candidate"
