"""Save a model (GGUF, the embedded one, a LoRA output) as a plain bf16 model directory.

Dequantising a GGUF takes about a minute on each load; the saved directory loads in about
a second, so GPU runs made of several commands save it once and pass ``--model DIR``.

    python -m selfcodealign.gpu.export [MODEL] OUT_DIR
"""

from __future__ import annotations

import argparse
import sys
import time


def export(model: str | None, out: str, dtype: str = "bfloat16") -> None:
    from selfcodealign.train.modelio import load_model, load_tokenizer, resolve_source

    src = resolve_source(model)
    m = load_model(src, dtype=dtype)
    if src.adapter:
        m = m.merge_and_unload()
    m.save_pretrained(out)
    load_tokenizer(src).save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="GGUF file or model directory (default: the embedded model)")
    ap.add_argument("out", help="directory to write")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args(argv)
    from selfcodealign.errors import UserError

    t0 = time.perf_counter()
    try:
        export(args.model, args.out, args.dtype)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved {args.out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
