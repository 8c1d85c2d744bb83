"""Chat vs completion prompts on the same seeds: which gives more meaningful passes?

Runs the whole pipeline twice into OUT/chat and OUT/completion (resumable: rerun to
continue) with the same seeds, sampling settings and model, and prints the funnel of
each, the pass rate of responses, and the number of *meaningful* passes (tests that
assert on something the response defines).

    python benchmarks/prompt_styles.py --out runs/prompt-styles [--seeds 8] [--n 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/prompt-styles")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--n", type=int, default=4, help="responses per instruction")
    ap.add_argument("--model", help="GGUF (default: the embedded model)")
    args = ap.parse_args()
    rows = {}
    for style in ("chat", "completion"):
        out = Path(args.out) / style
        cmd = [sys.executable, "-m", "selfcodealign", "run", "--preset", "quickstart", "--quiet",
               "--out", str(out), "--prompt-style", style,
               "--set", f"seeds.max_seeds={args.seeds}", "--set", f"responses.n={args.n}"]
        if args.model:
            cmd += ["--model", args.model]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{style}: failed: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        summary = json.loads((out / "summary.json").read_text())
        executed = [json.loads(x) for x in (out / "executed.jsonl").read_text().splitlines() if x]
        passed = sum(1 for e in executed if e["verdict"]["status"] == "passed")
        meaningful = sum(1 for e in executed if e["verdict"]["status"] == "passed" and e["meaningful_tests"])
        rows[style] = {**summary["funnel"], "executed": len(executed), "passed": passed,
                       "meaningful_passes": meaningful,
                       "pass_rate": passed / max(1, len(executed)),
                       "wall_s": summary["wall_s"]}
    keys = ["seeds", "concepts", "instructions", "responses", "executed", "passed",
            "meaningful_passes", "dataset", "pass_rate", "wall_s"]
    print(f"{'':12}" + "".join(f"{k:>18}" for k in keys))
    for style, r in rows.items():
        print(f"{style:12}" + "".join(
            f"{r[k]:>18.2f}" if isinstance(r[k], float) else f"{r[k]:>18}" for k in keys))
    best = max(rows, key=lambda s: rows[s]["meaningful_passes"])
    print(f"more meaningful passes: {best}")
    (Path(args.out) / "styles.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
