# Sourced by the tools/*_gpu.sh jobs on the lent GPU machine (after tools/reproduce_small.sh's
# ferry and setup, or its `wheels` step): the repository root as the working directory, the
# wheels setup installed and the source on the path, the work folder, and the product's
# settings for that machine (one GPU, 16 cores).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
W=/tmp/w
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cli() { python3 -m selfcodealign.cli "$@"; }
gen=(--backend hf --model $W/model --set backend.batch_size=1024 --set execute.workers=15 --quiet)
# The product run of the ferried seeds, 10 responses per instruction: one for every job
# that needs it (groundtruth, experiment, grpo), whichever makes it first; it resumes.
seeds_run() { cli run --out $W/run --set seeds.source=seeds:$W/seeds.jsonl --set responses.n=10 "${gen[@]}"; }
