"""Replay a GRPO step whose gradients were not finite, with and without cuDNN attention.

GRPO saves a skipped step as ``OUT/nonfinite_stepN.pt``: its rollouts, the sampling
weights' log-probabilities, rewards and (since they were added) trainable weights. This
script redoes that step's update on a model, one micro-batch at a time, as
``train.grpo.update`` cuts them, and prints each micro-batch's padded width and whether
its gradients are finite, once with PyTorch's cuDNN attention backend allowed and once
with it off (what training does, ``train.attention.avoid_cudnn_sdpa``):

    python benchmarks/grpo_nonfinite_replay.py --model DIR STEP.pt [STEP.pt ...] [--method lora]

On an H100 with torch >= 2.11 the cuDNN backward gives NaN query gradients for Qwen2.5 on
widths 64 past a multiple of 128 (pytorch issue 196678); off, every micro-batch should be
finite. On the CPU there is no cuDNN: both columns come from the same kernels. A file
without trainable weights replays on a fresh adapter (LoRA's B starts at 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def replay(model, path: Path, budget: int, temperature: float, group: int) -> list[tuple[int, bool]]:
    """(width, gradients finite) of each micro-batch of the saved step, in order."""
    import torch

    from selfcodealign.train.grpo import Batch
    from selfcodealign.train.policy_gradient import group_advantages, micro_batches, pg_loss, sampled_logps

    saved = torch.load(path, weights_only=False, map_location="cpu")
    dev = next(model.parameters()).device
    if saved.get("params"):
        named = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in saved["params"].items():
                named[name].copy_(value)
    batch = Batch.from_state(saved["batch"], dev)
    adv, _ = group_advantages(saved["rewards"], group, True, saved["masked"])
    out = []
    for mb in micro_batches(batch.rollouts, budget):
        rs = [batch.rollouts[i] for i in mb]
        logp = torch.cat(sampled_logps(model, rs, temperature))
        old = logp.detach() if batch.old_logps is None else torch.cat([batch.old_logps[i] for i in mb])
        a = torch.tensor([adv[i] for i in mb for _ in batch.rollouts[i].ids], device=dev)
        loss, *_ = pg_loss(logp, old, logp.detach(), a, 0.2, 0.0)
        loss.backward()
        finite = all(torch.isfinite(p.grad).all().item() for p in model.parameters() if p.grad is not None)
        model.zero_grad(set_to_none=True)
        out.append((max(len(r.prompt_ids) + len(r.ids) for r in rs), finite))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("steps", nargs="+", type=Path, help="nonfinite_stepN.pt files of a GRPO output")
    ap.add_argument("--model", required=True, help="the model the run trained (a directory or GGUF)")
    ap.add_argument("--method", choices=["full", "lora"], default="lora")
    ap.add_argument("--token-budget", type=int, help="micro-batch tokens (default: GRPO's auto fallback)")
    ap.add_argument("--group", type=int, help="samples per prompt (default: GRPO's)")
    a = ap.parse_args(argv)

    import torch

    from selfcodealign.models import load_model, resolve_source
    from selfcodealign.train.config import AUTO_BUDGET_FALLBACK, TrainConfig
    from selfcodealign.train.loop import prepare_for_training

    cuda = torch.cuda.is_available()
    cfg = TrainConfig(model=a.model, objective="grpo", method=a.method)
    model = prepare_for_training(cfg, load_model(resolve_source(a.model), dtype="bfloat16" if cuda else "float32",
                                                 attn="sdpa"))
    model.to("cuda" if cuda else "cpu").train()
    budget = a.token_budget or AUTO_BUDGET_FALLBACK
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"micro-batches of up to {budget} tokens")
    for path in a.steps:
        rows = {}
        for cudnn in (True, False):
            torch.backends.cuda.enable_cudnn_sdp(cudnn)
            rows[cudnn] = replay(model, path, budget, cfg.grpo_temperature, a.group or cfg.grpo_group_size)
        print(f"{path.name}:")
        print("  width  width%128  cuDNN on   cuDNN off")
        for (w, on), (_, off) in zip(rows[True], rows[False]):
            print(f"  {w:>5}  {w % 128:>9}  {'finite' if on else 'NaN':<9}  {'finite' if off else 'NaN'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
