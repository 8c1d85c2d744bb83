"""The embedded model on the full HumanEval+ and MBPP+ (EvalPlus chat protocol, greedy,
768 new tokens, 2,048 context per slot) against the scores measured with EvalPlus itself
(measured with EvalPlus 0.3.1 on the same GGUF). Slow on CPU: 542 tasks at ~70 tokens/s is about an hour on an idle
2-core machine; generation resumes if interrupted.

    python benchmarks/eval_embedded.py --out runs/eval-embedded [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REFERENCE = {"humaneval": (57.3, 53.7), "mbpp": (50.3, 42.1)}  # base, plus: EvalPlus 0.3.1 itself, same model file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/eval-embedded"))
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="EvalPlus data files (default: the copies shipped in the package)")
    ap.add_argument("--n-parallel", type=int, default=8)
    args = ap.parse_args()
    from selfcodealign.cli import main as cli

    t0 = time.perf_counter()
    data = ["--data-dir", str(args.data_dir)] if args.data_dir else []
    rc = cli(["eval", "--benchmarks", "humaneval+,mbpp+", *data,
              "--n-parallel", str(args.n_parallel), "--ctx-per-slot", "2048", "--max-tokens", "768",
              "--out", str(args.out)])
    if rc:
        return rc
    res = json.loads((args.out / "results.json").read_text())["benchmarks"]
    print(f"\n{'':<12}{'ours':>8}{'EvalPlus':>10}{'diff':>8}   ({time.perf_counter() - t0:.0f} s)")
    for ds, (rb, rp) in REFERENCE.items():
        label = "HumanEval" if ds == "humaneval" else "MBPP"
        for name, ref, part in ((label, rb, "base"), (label + "+", rp, "plus")):
            v = 100 * res[ds][part]["pass@1"]
            print(f"{name:<12}{v:>8.1f}{ref:>10.1f}{v - ref:>+8.1f}")
        gen = res[ds].get("generation", {})
        if gen.get("seconds"):
            print(f"  {label}: generation {gen['seconds']:.0f} s, finish reasons {gen.get('finish')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
