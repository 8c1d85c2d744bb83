"""A GRPO step's time split, and rollout throughput inside the loop against the same
sampler standalone, in one run.

    python benchmarks/grpo_step.py                      # a tiny random model on the CPU
    python benchmarks/grpo_step.py --model DIR --steps 6 --group 8 --prompts 8 --max-new-tokens 256

Runs ``selfcodealign.train.grpo.train`` for ``--steps`` steps on synthetic tasks (a
function to write and its tests, written as a run's dataset.jsonl) and prints, per step
and on average over the steps after the first: rollout seconds, reward seconds not
overlapped with sampling (and those overlapped), update seconds, and the rollout tokens/s.
Then it samples the same prompts with the same kind of sampler (the loop's
``grpo.rollout_source``: our engine where it runs the model, else transformers'
``generate``; ``--rollouts`` picks) outside the loop, on a fresh copy of the start model,
and prints the ratio of the loop's tokens/s to that: the issue's goal is at least 0.5 for
the engine on the GPU. The loop's rollout time includes what sampling costs it besides
the sampler: the sampling weights' log-probabilities of the samples (one forward pass),
forgetting the engine's cached prefixes after each update, and sharing the machine with
the sandbox scoring the previous batch. With ``--method lora`` the engine samples a merged
copy of the policy (``gpu.merged_lora``); re-merging it after each optimizer step counts in
the update's seconds. The `sampler:` line says which path the engine ran.

By default the rollouts' text is replaced, after sampling, by a right or a wrong solution
of its task (seeded), so that the sandbox has programs to run and the reward time and
its overlap are real; a tiny random model writes no code, and its answers cost the
sandbox nothing. ``--model-text`` scores the model's own text instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def write_tasks(run_dir: Path, n: int) -> None:
    """A run directory holding only what GRPO reads: dataset.jsonl of kept examples."""
    from selfcodealign.records import Example, Message, Verdict

    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "dataset.jsonl", "w") as f:
        for k in range(n):
            ins = f"Write a Python function `add_{k}(x)` that returns `x + {k}`. Include a short docstring."
            ans = f"```python\ndef add_{k}(x):\n    return x + {k}\n```"
            ex = Example(id=f"ex{k}", parent_id=f"x{k}", instruction=ins, response=ans,
                         messages=[Message(role="user", content=ins), Message(role="assistant", content=ans)],
                         seed_id=f"s{k}", seed_source="bench", seed_path="bench", concepts=["addition"],
                         category="function", difficulty="easy",
                         tests=f"assert add_{k}(1) == {1 + k}\nassert add_{k}(-{k}) == 0\n",
                         verdict=Verdict(id=f"x{k}", status="passed"), model="bench")
            f.write(ex.model_dump_json() + "\n")


def tiny_model(path: Path, hidden: int, layers: int, tokenizer: str | None) -> Path:
    import torch
    import transformers

    from selfcodealign.models import load_tokenizer, resolve_source

    tok = transformers.AutoTokenizer.from_pretrained(tokenizer) if tokenizer else load_tokenizer(resolve_source(None))
    cfg = transformers.Qwen2Config(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


class Runnable:
    """The loop's own sampler, its samples' text then swapped for a right or wrong
    solution of the task (the prompt names the function)."""

    def __init__(self, inner, tokenizer):
        self.inner, self.tokenizer, self.name = inner, tokenizer, inner.name

    @property
    def generated_tokens(self) -> int:
        return self.inner.generated_tokens

    def sync(self, model) -> None:
        self.inner.sync(model)

    def generate(self, prompts, group, seed):
        import re

        from selfcodealign.train.rollouts import Rollout

        rng = random.Random(seed)
        out = []
        for r in self.inner.generate(prompts, group, seed):
            name, k = re.search(r"`(add_(\d+))\(x\)`", self.tokenizer.decode(r.prompt_ids)).groups()
            text = f"```python\ndef {name}(x):\n    return x + {int(k) + rng.choice([0, 1])}\n```"
            ids = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            out.append(Rollout(r.prompt, r.prompt_ids, ids, text, "stop"))
        return out


def loop_source(prompts: list[list[int]], runnable: bool):
    """The source the loop builds (``grpo.rollout_source``), optionally ``Runnable``."""
    from selfcodealign.train import grpo

    def make(model, tok, cfg):
        src = grpo.rollout_source(model, tok, cfg, max(map(len, prompts)))
        return Runnable(src, tok) if runnable else src

    return make


def standalone(cfg, model_dir: str, plan: list[list[int]], prompts: list[list[int]], warm: list[int]) -> tuple[float, int, str]:
    """Seconds and tokens of the loop's kind of sampler on the same prompts, outside the
    loop, on a fresh copy of the start model (after one untimed batch, ``warm``, as the
    loop samples its first batch before step 1)."""
    import torch

    from selfcodealign.models import load_model, load_tokenizer, resolve_source
    from selfcodealign.train import grpo

    src = resolve_source(model_dir)
    cuda = torch.cuda.is_available()
    # the dtype the loop trains in (bf16-master on a GPU, fp32 on the CPU)
    model = load_model(src, dtype="bfloat16" if cuda else "float32", attn="sdpa").to("cuda" if cuda else "cpu")
    tok = load_tokenizer(src)
    if cfg.method == "lora":  # the loop's policy: the engine samples its merged copy (or PEFT's modules)
        import peft

        from selfcodealign.train.loop import prepare_for_training

        model = prepare_for_training(cfg, model)
        assert isinstance(model, peft.PeftModel)
    gen = grpo.rollout_source(model, tok, cfg, max(map(len, prompts)))
    gen.generate([prompts[i] for i in warm], cfg.grpo_group_size, seed=cfg.seed * 1_000_003 + 1)
    before = gen.generated_tokens
    t0 = time.perf_counter()
    for step, idx in enumerate(plan, 2):
        gen.generate([prompts[i] for i in idx], cfg.grpo_group_size, seed=cfg.seed * 1_000_003 + step)
    return time.perf_counter() - t0, gen.generated_tokens - before, gen.name, engine_path(gen)


def engine_path(src) -> str:
    """Which decode path and weights the engine ran (empty for another sampler)."""
    engine = getattr(src, "engine", None)
    if engine is None:
        return ""
    r = engine.runner
    return (f"fused decode {r.fused}, Triton kernels {r.triton}, CUDA graphs {engine.use_graphs}, "
            f"merged LoRA copy {src.merged is not None}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="HF model directory (default: a tiny random Qwen2 with the embedded tokenizer)")
    ap.add_argument("--tokenizer", help="HF folder whose tokenizer the random model gets (default: the embedded "
                    "model's, read from its GGUF)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--method", choices=["full", "lora"], default="full")
    ap.add_argument("--model-text", action="store_true", help="score the model's own text (see above)")
    ap.add_argument("--rollouts", choices=["auto", "engine", "generate"], default="auto",
                    help="the loop's sampler (grpo_rollouts; auto: the engine where it runs the model)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from selfcodealign.train import grpo
    from selfcodealign.train.config import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = args.model or str(tiny_model(tmp / "tiny", args.hidden, args.layers, args.tokenizer))
        write_tasks(tmp / "run", max(16, args.prompts * args.steps))
        cfg = TrainConfig(model=model_dir, objective="grpo", method=args.method, max_steps=args.steps,
                          grpo_group_size=args.group, grpo_prompts_per_step=args.prompts,
                          grpo_max_new_tokens=args.max_new_tokens, grpo_pass_rate_min=0.0, grpo_pass_rate_max=1.0, max_len=4096,
                          grpo_rollouts=args.rollouts)
        from selfcodealign.models import load_tokenizer, resolve_source
        from selfcodealign.train.format import encode_prompt
        from selfcodealign.train.tasks import load_tasks

        tok = load_tokenizer(resolve_source(model_dir))
        tasks = load_tasks(tmp / "run", None)
        prompts = [encode_prompt(tok, list(t.prompt)) for t in tasks.tasks]
        source = loop_source(prompts, runnable=not args.model_text)
        t0 = time.perf_counter()
        s = grpo.train(cfg, tmp / "run", None, source_factory=source)
        wall = time.perf_counter() - t0
        keys = ["rollout_s", "reward_s", "reward_overlapped_s", "update_s", "step_s", "rollout_tokens_per_s"]
        print("step " + " ".join(f"{k:>20}" for k in keys) + "  outcomes")
        for h in s["history"]:
            print(f"{h['step']:>4} " + " ".join(f"{h[k]:>20.3f}" for k in keys) + "  " + json.dumps(h["outcomes"]))
        # the last step samples nothing (no step after it); the first batch is sampled before step 1
        body = s["history"][:-1]
        means = {k: statistics.fmean(h[k] for h in body) for k in keys} if body else {}
        print("mean (steps 1..n-1): " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
        loop_tokens = sum(h["rollout_tokens"] for h in s["history"])
        loop_s = sum(h["rollout_s"] for h in s["history"])
        # the standalone sampler: the same prompts (the plan's steps 2..n: those sampled inside steps)
        plan = grpo.task_plan(len(prompts), args.prompts, args.steps, cfg.seed)
        alone_s, alone_tokens, kind, path = standalone(cfg, model_dir, plan[1:], prompts, plan[0])
    loop_tps, alone_tps = loop_tokens / loop_s, alone_tokens / alone_s
    print(f"rollout throughput: in the loop {loop_tps:,.0f} tokens/s ({loop_tokens} tokens, {loop_s:.2f} s); "
          f"standalone {kind} {alone_tps:,.0f} tokens/s ({alone_tokens} tokens, {alone_s:.2f} s); "
          f"ratio {loop_tps / alone_tps:.2f}")
    print(f"sampler: {s['rollouts']}" + (f" ({path})" if path else ""))
    print(f"run: {wall:.1f} s for {args.steps} steps (first batch sampled before step 1: "
          f"{s['first_rollout_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
