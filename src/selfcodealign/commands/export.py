"""`selfcodealign export`: a model (GGUF, the embedded one, a LoRA output) saved as a plain
model directory.

Dequantising a GGUF takes about a minute on each load; the saved directory loads in about
a second, so GPU runs made of several commands export once and pass ``--model DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="save a model (GGUF, embedded, LoRA output) as a plain bf16 model directory",
        description=__doc__.split("\n\n")[0].replace("`selfcodealign export`: a", "Save a"),
    )
    p.add_argument("model", help="GGUF file, model directory, LoRA output of `train`, or 'embedded'")
    p.add_argument("out", type=Path, help="directory to write (a Hugging Face model directory)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError

    if args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"{args.out} exists and is not empty; choose another OUT")
    t0 = time.perf_counter()
    from selfcodealign.models import export

    export(args.model, args.out, args.dtype)
    print(f"saved {args.out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
