"""`selfcodealign export`: a model (GGUF, the embedded one, a LoRA output) saved as a plain
model directory, or as a GGUF file for llama.cpp, Ollama and the embedded engine.

Dequantising a GGUF takes about a minute on each load; the saved directory loads in about
a second, so GPU runs made of several commands export once and pass ``--model DIR``.
An OUT ending in ``.gguf`` writes one GGUF file (``--type``; a LoRA output is merged first),
which ``--model OUT.gguf`` then runs on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    from selfcodealign.models.gguf_write import TYPES

    p = subparsers.add_parser(
        "export",
        help="save a model (GGUF, embedded, LoRA output) as a bf16 model directory or a GGUF file",
        description=__doc__.split("\n\n")[0].replace("`selfcodealign export`: a", "Save a")
        .replace(") saved as", ") as"),
    )
    p.add_argument("model", help="GGUF file, model directory, LoRA output of `train`, or 'embedded'")
    p.add_argument("out", type=Path, help="directory to write (a Hugging Face model directory), "
                                          "or a file ending in .gguf")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                   help="weights of a model directory")
    p.add_argument("--type", default="f16", choices=TYPES, help="weights of a GGUF file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError

    to_gguf = args.out.suffix.lower() == ".gguf"
    if to_gguf and args.out.exists():
        raise UserError(f"{args.out} exists; choose another OUT")
    if not to_gguf and args.out.exists() and (args.out.is_file() or any(args.out.iterdir())):
        raise UserError(f"{args.out} exists and is not empty; choose another OUT")
    t0 = time.perf_counter()
    if to_gguf:
        from selfcodealign.models.gguf_write import write_gguf

        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_gguf(args.model, args.out, args.type)
    else:
        from selfcodealign.models import export

        export(args.model, args.out, args.dtype)
    print(f"saved {args.out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
