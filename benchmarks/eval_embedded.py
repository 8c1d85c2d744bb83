"""The embedded model on the full HumanEval+ and MBPP+ (EvalPlus chat protocol, greedy,
768 new tokens, 2,048 context per slot) against the scores measured with EvalPlus itself
(../shared/FACTS.md). Slow on CPU: 542 tasks at ~70 tokens/s is about an hour on an idle
2-core machine; generation resumes if interrupted.

    python benchmarks/eval_embedded.py --out runs/eval-embedded [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REFERENCE = {"humaneval": (57.3, 53.7), "mbpp": (50.3, 42.1)}  # base, plus (FACTS.md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/eval-embedded"))
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--n-parallel", type=int, default=8)
    args = ap.parse_args()
    from selfcodealign.cli import main as cli

    t0 = time.perf_counter()
    rc = cli(["eval", "--benchmarks", "humaneval+,mbpp+", "--data-dir", str(args.data_dir),
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
