"""`selfcodealign train`: supervised fine-tuning on a dataset.jsonl (full or LoRA), DPO on
its pairs, or GRPO on a run's kept tasks."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a model on a generated dataset (full or LoRA)",
        description=(
            "Supervised fine-tuning (or DPO on preference pairs, --objective dpo; or GRPO, --objective grpo "
            "--data RUN_DIR: online, rewarded by the sandbox on the run's kept tasks) with loss on the reply "
            "only, the model's chat template "
            "(the same one eval uses) and sequence packing. Defaults follow the paper: "
            "lr 1e-5 (LoRA: 2e-4), linear schedule, warmup 0.05, 64 examples per step, "
            "examples up to 1280 tokens, 4 epochs. For several GPUs: accelerate launch "
            "--config_file $(selfcodealign train --print-accelerate-config ddp) -m "
            "selfcodealign.cli train ..."
        ),
    )
    p.add_argument("--data", type=Path, help="dataset.jsonl (messages, or instruction/response); with "
                   "--objective dpo, the pairs file select writes beside it (dataset.pairs.jsonl); with "
                   "--objective grpo, the run directory whose kept tasks to train on")
    p.add_argument("--model", help="base model: GGUF file, HF model directory or hub id (default: embedded)")
    p.add_argument("--out", type=Path, help="output directory (HF model or LoRA adapter, train_config.json, tensorboard logs)")
    p.add_argument("--config", help="YAML file of training settings (keys as the flags, with underscores)")
    p.add_argument("--method", choices=["full", "lora"])
    p.add_argument("--objective", choices=["sft", "dpo", "grpo"],
                   help="sft (default): the dataset; dpo: preference pairs (DATASET.pairs.jsonl); grpo: a run's "
                   "kept tasks, rewarded by the sandbox")
    p.add_argument("--dpo-beta", type=float, help="dpo: how far the model may move from the reference (default 0.1)")
    p.add_argument("--grpo-group-size", type=int, help="grpo: samples per prompt (default 8)")
    p.add_argument("--grpo-prompts-per-step", type=int, help="grpo: prompts per optimizer step (default 8)")
    p.add_argument("--grpo-kl-coef", type=float, help="grpo: weight of the KL to the start model (default 0.02)")
    p.add_argument("--grpo-temperature", type=float, help="grpo: sampling temperature (default 1.0)")
    p.add_argument("--grpo-max-new-tokens", type=int, help="grpo: token budget of a sample (default 512)")
    p.add_argument("--grpo-reward-timeout", type=float, help="grpo: seconds a sample's program may run against "
                   "its tests (default 3; at most the run's execute timeout)")
    p.add_argument("--grpo-shuffle-rewards", action="store_true", default=None,
                   help="grpo: permute rewards within each batch (the control arm: no signal)")
    p.add_argument("--grpo-rollouts", choices=["auto", "engine", "generate"],
                   help="grpo: what samples: our engine on the policy, or transformers' generate (default auto: "
                   "the engine where it runs the model)")
    p.add_argument("--grpo-pass-rate", type=_band, help="grpo: LO,HI: keep tasks whose pass rate in the run lies "
                   "in [LO, HI] (default 0.1,0.9; 0,1: every kept task)")
    p.add_argument("--resume", action="store_true", help="grpo: go on from the checkpoint in --out")
    p.add_argument("--epochs", type=float, help="passes over the data (default 4; grpo: over the tasks)")
    p.add_argument("--max-steps", type=int, help="at most this many optimizer steps (the fewer of this and "
                   "--epochs' steps); grpo: this many steps, in place of --epochs")
    p.add_argument("--lr", type=float)
    p.add_argument("--examples-per-step", type=int, help="effective batch, all GPUs together (default 64)")
    p.add_argument("--max-len", type=int, help="longest example in tokens; longer ones are dropped (default 1280)")
    p.add_argument("--token-budget", type=_budget,
                   help="tokens per packed micro-batch per GPU, or auto (default: sized from the GPU's free memory)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16-master", "bf16-mixed", "bf16"])
    p.add_argument("--attention", choices=["auto", "varlen", "sdpa", "eager"])
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-alpha", type=int)
    p.add_argument("--merge-lora", action="store_true", default=None, help="save the merged model, not the adapter")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--seed", type=int)
    p.add_argument("--overwrite", action="store_true", help="write into an --out that already holds a model")
    p.add_argument("--print-accelerate-config", choices=["ddp", "fsdp"],
                   help="print the path of a shipped accelerate config and exit")
    p.set_defaults(func=run)


def _budget(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of tokens or auto, got {text!r}") from None


def _band(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (e.g. 0.1,0.9), got {text!r}") from None
    if not 0 <= lo <= hi <= 1:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI <= 1, got {text!r}")
    return lo, hi


def accelerate_config(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "configs" / f"accelerate_{name}.yaml"


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError

    if args.print_accelerate_config:
        print(accelerate_config(args.print_accelerate_config))
        return 0
    if args.data is None or args.out is None:
        raise UserError("give --data DATASET.jsonl and --out DIR")
    from selfcodealign.train.config import load_config
    from selfcodealign.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keys = ["model", "method", "objective", "dpo_beta", "grpo_group_size", "grpo_prompts_per_step", "grpo_kl_coef",
            "grpo_temperature", "grpo_max_new_tokens", "grpo_reward_timeout", "grpo_shuffle_rewards", "grpo_rollouts",
            "epochs", "max_steps", "lr", "examples_per_step", "max_len", "token_budget", "precision", "attention", "lora_r", "lora_alpha", "merge_lora",
            "compile", "seed"]
    band = args.grpo_pass_rate or (None, None)
    flags = {k: getattr(args, k) for k in keys} | {"grpo_pass_rate_min": band[0], "grpo_pass_rate_max": band[1]}
    cfg = load_config(args.config, flags)
    grpo = cfg.objective == "grpo"
    if args.resume and not grpo:
        raise UserError("--resume goes on with a GRPO run (--objective grpo); SFT and DPO runs start again")
    if not (args.data.is_dir() if grpo else args.data.is_file()):
        raise UserError(f"{'run directory' if grpo else 'dataset'} not found: {args.data}")
    if grpo:
        from selfcodealign.train.grpo import train as train_grpo

        summary = train_grpo(cfg, args.data, args.out, overwrite=args.overwrite, resume=args.resume)
    else:
        summary = train(cfg, args.data, args.out, overwrite=args.overwrite)
    print(json.dumps({k: summary[k] for k in ("base_model", "method", "examples", "dropped", "steps",
                                              "final_loss", "seconds")}))
    print(f"model saved to {args.out}")
    return 0
