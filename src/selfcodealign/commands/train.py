"""`selfcodealign train`: supervised fine-tuning on a dataset.jsonl (full or LoRA)."""

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
            "Supervised fine-tuning (or DPO on preference pairs, --objective dpo) with loss on the reply "
            "only, the model's chat template "
            "(the same one eval uses) and sequence packing. Defaults follow the paper: "
            "lr 1e-5 (LoRA: 2e-4), linear schedule, warmup 0.05, 64 examples per step, "
            "examples up to 1280 tokens, 4 epochs. For several GPUs: accelerate launch "
            "--config_file $(selfcodealign train --print-accelerate-config ddp) -m "
            "selfcodealign.cli train ..."
        ),
    )
    p.add_argument("--data", type=Path, help="dataset.jsonl (messages, or instruction/response); with "
                   "--objective dpo, the pairs file select writes beside it (dataset.pairs.jsonl)")
    p.add_argument("--model", help="base model: GGUF file, HF model directory or hub id (default: embedded)")
    p.add_argument("--out", type=Path, help="output directory (HF model or LoRA adapter, train_config.json, tensorboard logs)")
    p.add_argument("--config", help="YAML file of training settings (keys as the flags, with underscores)")
    p.add_argument("--method", choices=["full", "lora"])
    p.add_argument("--objective", choices=["sft", "dpo"],
                   help="sft (default): the dataset; dpo: preference pairs (DATASET.pairs.jsonl)")
    p.add_argument("--dpo-beta", type=float, help="dpo: how far the model may move from the reference (default 0.1)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
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


def accelerate_config(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "configs" / f"accelerate_{name}.yaml"


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError

    if args.print_accelerate_config:
        print(accelerate_config(args.print_accelerate_config))
        return 0
    if args.data is None or args.out is None:
        raise UserError("give --data DATASET.jsonl and --out DIR")
    if not args.data.is_file():
        raise UserError(f"dataset not found: {args.data}")
    from selfcodealign.train.config import load_config
    from selfcodealign.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keys = ["model", "method", "objective", "dpo_beta", "epochs", "max_steps", "lr", "examples_per_step", "max_len",
            "token_budget", "precision", "attention", "lora_r", "lora_alpha", "merge_lora",
            "compile", "seed"]
    cfg = load_config(args.config, {k: getattr(args, k) for k in keys})
    summary = train(cfg, args.data, args.out, overwrite=args.overwrite)
    print(json.dumps({k: summary[k] for k in ("base_model", "method", "examples", "dropped", "steps",
                                              "final_loss", "seconds")}))
    print(f"model saved to {args.out}")
    return 0
