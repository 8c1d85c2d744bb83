#!/usr/bin/env bash
# On the lent GPU machine, in one call with no model ferried (carry .ferry/wheels and
# .ferry/tok: the wheels and the embedded model's tokenizer files): GRPO's engine rollout
# source on random Qwen2 models with the real vocabulary: a small one (4 layers of 512)
# and one of the embedded model's exact shape. Whether the engine's captured CUDA graphs replay the weights that
# optimizer steps changed in place (benchmarks/engine_weight_sync.py), and the loop's
# rollout tokens/s against the same sampler alone (benchmarks/grpo_step.py), for full
# fine-tuning and LoRA. Writes the outputs to $OUT.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
python3 tools/reproduce_small.py wheels .ferry/wheels || exit 1
python3 -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from grpo_step import tiny_model
tiny_model(Path('/tmp/tiny'), 512, 4, '.ferry/tok')" || exit 1
for m in full lora; do
    python3 benchmarks/engine_weight_sync.py --model /tmp/tiny --method $m 2>&1 | grep -v "Loading weights" \
        | tee ${OUT:-/tmp}/small-sync-$m.txt
    python3 benchmarks/grpo_step.py --model /tmp/tiny --method $m --steps 5 --group 8 --prompts 8 \
        --max-new-tokens 256 2>&1 | grep -v "Loading weights" | tail -12 | tee ${OUT:-/tmp}/small-grpo-$m.txt
done
# The embedded model's exact shape (Qwen2.5-Coder-0.5B), random weights.
python3 -c "
import torch, transformers
tok = transformers.AutoTokenizer.from_pretrained('.ferry/tok')
cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096, eos_token_id=tok.eos_token_id,
    tie_word_embeddings=True)
torch.manual_seed(0)
transformers.Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained('/tmp/q05')
tok.save_pretrained('/tmp/q05')" || exit 1
for m in lora full; do
    python3 benchmarks/grpo_step.py --model /tmp/q05 --method $m --steps 5 --group 8 --prompts 8 \
        --max-new-tokens 512 2>&1 | grep -v "Loading weights" | tail -11 | tee ${OUT:-/tmp}/q05-grpo-$m.txt
done
python3 benchmarks/engine_weight_sync.py --model /tmp/q05 --method full --steps 2 2>&1 | grep -v "Loading weights" \
    | tail -4 | tee ${OUT:-/tmp}/q05-sync-full.txt
