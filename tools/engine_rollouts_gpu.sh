#!/usr/bin/env bash
# On the lent GPU machine, in one call with no model ferried (carry .ferry/wheels and
# .ferry/tok: the wheels and the embedded model's tokenizer files): GRPO's engine rollout
# source on a random Qwen2 of the real model's attention shape (head size 64, 2 KV heads)
# and vocabulary. Whether the engine's captured CUDA graphs replay the weights that
# optimizer steps changed in place (benchmarks/engine_weight_sync.py), and the loop's
# rollout tokens/s against the same sampler alone (benchmarks/grpo_step.py), for full
# fine-tuning and LoRA. Writes the outputs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 tools/reproduce_small.py wheels .ferry/wheels || exit 1
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from grpo_step import tiny_model
tiny_model(Path('/tmp/tiny'), 512, 4, '.ferry/tok')" || exit 1
for m in full lora; do
    python3 benchmarks/engine_weight_sync.py --model /tmp/tiny --method $m 2>&1 | grep -v "Loading weights" \
        | tee ${OUT:-/tmp}/sync-$m.txt
    python3 benchmarks/grpo_step.py --model /tmp/tiny --method $m --steps 5 --group 8 --prompts 8 \
        --max-new-tokens 256 2>&1 | grep -v "Loading weights" | tail -12 | tee ${OUT:-/tmp}/grpo-$m.txt
done
