"""Does the engine sample from the policy as it trains? GRPO's rollout source
(``train.rollouts.EngineRollouts``) builds the engine once on the model being trained and
relies on the optimizer's in-place updates reaching the weights its CUDA graphs captured.

    python benchmarks/engine_weight_sync.py [--model DIR] [--method full|lora] [--steps 3]

Builds the source on the model (bf16 on a GPU, with CUDA graphs; fp32 on the CPU), samples
greedily (capturing the graphs), then takes ``--steps`` AdamW steps on the model's own
samples at a learning rate large enough to change its greedy answers, ``sync`` after each
as the loop does. Then prints, over the prompts:

- how many greedy answers the steps changed (the check below means nothing if none),
- how many of the engine's greedy answers after the steps equal those of a fresh engine
  built on a copy of the updated model (new fused weights, new graphs, same kernels):
  every one, if the captured graphs replay the updated weights (with ``--method lora``,
  the merged copy that ``sync`` re-merges in place),
- sampling tokens/s (8 samples a prompt at temperature 1) of the updated engine and the
  fresh one, measured in the same run.

Without ``--model``: a random Qwen2 of 2 layers of 64 with the embedded tokenizer.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [f"Write a Python function `f{i}(xs)` that returns the {w} of a list of integers, with tests."
           for i, w in enumerate(["sum", "product", "largest even number", "median", "number of distinct values",
                                  "longest increasing run", "second largest value", "mean rounded down"])]


def greedy(src, prompts, n):
    from selfcodealign.gpu.engine import Request

    return [r.token_ids for r in src.engine.generate([Request(tuple(p), n) for p in prompts])]


def throughput(src, prompts) -> float:
    before = src.generated_tokens
    t0 = time.perf_counter()
    src.generate(prompts, 8, seed=7)
    return (src.generated_tokens - before) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="HF model directory (default: a tiny random Qwen2)")
    ap.add_argument("--method", choices=["full", "lora"], default="full")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, help="default: 1e-4 (full) or 1e-3 (LoRA)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    a = ap.parse_args()

    import torch

    from selfcodealign.models import load_model, load_tokenizer, resolve_source
    from selfcodealign.train.format import encode_prompt
    from selfcodealign.train.rollouts import EngineRollouts

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        if a.model is None:
            sys.path.insert(0, str(Path(__file__).parent))
            from grpo_step import tiny_model

            a.model = str(tiny_model(Path(tmp) / "tiny", 64, 2, None))
        src_spec = resolve_source(a.model)
        tok = load_tokenizer(src_spec)
        model = load_model(src_spec, dtype="bfloat16" if cuda else "float32", attn="sdpa").to("cuda" if cuda else "cpu")
    if a.method == "lora":
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    prompts = [encode_prompt(tok, [{"role": "user", "content": p}]) for p in PROMPTS]
    longest = max(map(len, prompts)) + a.max_new_tokens + 1

    def source(m):
        return EngineRollouts(m, tok, temperature=1.0, max_new_tokens=a.max_new_tokens, slots=64, max_len=longest,
                              lora=a.method == "lora")

    src = source(model)
    before = greedy(src, prompts, a.max_new_tokens)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=a.lr or (1e-4 if a.method == "full" else 1e-3))
    dev = next(model.parameters()).device
    for _ in range(a.steps):
        seqs = [list(r.prompt_ids) + list(r.ids) for r in src.generate(prompts, 2, seed=1)]
        model.train()
        for s in seqs:
            ids = torch.tensor([s], device=dev)
            (model(input_ids=ids, labels=ids).loss / len(seqs)).backward()
        opt.step()
        opt.zero_grad()
        src.sync(model)
    after = greedy(src, prompts, a.max_new_tokens)
    fresh = source(copy.deepcopy(model))
    again = greedy(fresh, prompts, a.max_new_tokens)
    changed = sum(x != y for x, y in zip(before, after))
    same = sum(x == y for x, y in zip(after, again))
    print(f"device {dev}, CUDA graphs {src.engine.use_graphs}, method {a.method}, {a.steps} steps, "
          f"fused decode {src.engine.runner.fused}, merged LoRA copy {src.merged is not None}")
    print(f"greedy answers changed by the steps: {changed} of {len(prompts)}")
    print(f"after the steps, the trained engine's greedy answers equal a fresh engine's on the updated model: "
          f"{same} of {len(prompts)}")
    t_src, t_fresh = throughput(src, prompts), throughput(fresh, prompts)
    print(f"sampling tokens/s: trained engine {t_src:,.0f}, fresh engine {t_fresh:,.0f}, ratio {t_src / t_fresh:.2f}")
    return 0 if same == len(prompts) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
