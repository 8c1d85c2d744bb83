"""Yield at the source: examples kept per 1,000 instructions by two runs that differ only
in their prompts (the same seeds, model, settings and sampling seed).

    selfcodealign run --out BEFORE --set seeds.source=seeds:SEEDS ...
    selfcodealign run --out AFTER --set seeds.source=seeds:SEEDS \\
        --set prompts.examples=benchmarks/prompts/checkable.yaml ...
    python benchmarks/prompt_yield.py BEFORE AFTER [--json FILE]
    # only what the instructions ask (cheap: no responses needed)
    python benchmarks/prompt_yield.py --instructions-only BEFORE/instructions.jsonl AFTER/instructions.jsonl

(tools/prompt_yield_gpu.sh makes both runs on the GPU machine.)

Per run: instructions made, responses, the share that pass with meaningful tests, the
instructions with any passing response, the default selection's examples and its drops
by reason, and examples per 1,000 instructions with a Wilson 95% interval. Instructions
are counted as asked of the model (one per seed), so an instruction the run drops counts
as one without an example; a run keeps at most one example per instruction, so the yield
is a proportion. The
difference AFTER - BEFORE gets Newcombe's hybrid score interval. Read the kept examples
of both runs too: a prompt that makes checks pass more easily is not a better prompt.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

Z = 1.959964


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p2 - p1 (Newcombe 1998, method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p2 - p1
    return (d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_figures(run: Path) -> dict:
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise SystemExit(f"error: {run} has no summary.json (not a finished `selfcodealign run`)")
    stages = json.loads(summary_path.read_text())["stages"]
    asked = stages["instructions"]["in"]  # instructions asked of the model: one per seed
    executed = _lines(run / "executed.jsonl")
    passed_by_instr: Counter = Counter()
    for e in executed:
        ins = e["response"]["instruction"]
        if e["verdict"]["status"] == "passed" and e.get("meaningful_tests"):
            passed_by_instr[ins["id"]] += 1
    kept = _lines(run / "dataset.jsonl")
    kept_by_category = Counter(k.get("category", "?") for k in kept)
    select = stages["select"]
    return {
        "seeds": stages["seeds"]["out"],
        "instructions": asked,
        "instructions_kept": stages["instructions"]["out"],
        "instruction_drops": stages["instructions"].get("drops", {}),
        "responses": len(executed),
        "response_drops": stages["responses"].get("drops", {}),
        "passing": sum(passed_by_instr.values()),
        "instructions_with_a_pass": len(passed_by_instr),
        "kept": len(kept),
        "kept_by_category": dict(kept_by_category),
        "selection_drops": select.get("drops", {}),
        "rejected": select.get("rejected", {}),
        "instruction_profile": instruction_profile(_lines(run / "instructions.jsonl")),
    }


def instruction_profile(records: list[dict]) -> dict:
    """What the instructions ask, read by verify's requirement rules: the share that name a
    package outside the standard library, that say to raise an error, that claim a
    complexity bound; and their median length in words. A proxy, cheap enough to compare
    prompts on a CPU before any response is generated."""
    from selfcodealign.verify.requirements import requirements

    n = len(records)
    asks: Counter = Counter()
    words = sorted(len(r["instruction"].split()) for r in records)
    for r in records:
        reqs = requirements(r["instruction"], r.get("category", "function"))
        kinds = {q.kind for q in reqs}
        asks["package"] += any(q.kind == "module" and q.detail.split(".")[0] not in sys.stdlib_module_names for q in reqs)
        asks["error"] += "raises" in kinds
        asks["complexity"] += "complexity" in kinds
    return {"instructions": n, **{f"share_{k}": asks[k] / n if n else 0.0 for k in ("package", "error", "complexity")},
            "median_words": words[n // 2] if n else 0}


def profile_line(p: dict) -> str:
    return (f"{p['instructions']} instructions: {100 * p['share_package']:.0f}% name a package, "
            f"{100 * p['share_error']:.0f}% ask for an error, {100 * p['share_complexity']:.0f}% claim a "
            f"complexity; median {p['median_words']} words")


def per_1000(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{1000 * k / n:.1f} [{1000 * lo:.1f}, {1000 * hi:.1f}]" if n else "n/a"


def report(before: dict, after: dict) -> dict:
    rows = [("seeds", "seeds"), ("instructions asked for", "instructions"),
            ("instructions kept", "instructions_kept"), ("responses", "responses"),
            ("passing responses", "passing"), ("instructions with a passing response", "instructions_with_a_pass"),
            ("examples kept", "kept")]
    print(f"{'':<40}{'before':>16}{'after':>16}")
    for label, key in rows:
        print(f"{label:<40}{before[key]:>16}{after[key]:>16}")
    for name, arm in (("before", before), ("after", after)):
        n = arm["instructions"]
        print(f"{name}: pass rate {100 * arm['passing'] / max(arm['responses'], 1):.1f}% of responses; "
              f"examples per 1,000 instructions {per_1000(arm['kept'], n)}")
        print(f"  instruction drops {arm['instruction_drops']}; response drops {arm['response_drops']}")
        print(f"  selection drops {arm['selection_drops']}")
        print(f"  rejected {arm['rejected']}; kept by category {arm['kept_by_category']}")
        print(f"  {profile_line(arm['instruction_profile'])}")
    lo, hi = newcombe(before["kept"], before["instructions"], after["kept"], after["instructions"])
    diff = 1000 * (after["kept"] / after["instructions"] - before["kept"] / before["instructions"])
    print(f"difference (after - before) per 1,000 instructions: {diff:+.1f} [{1000 * lo:+.1f}, {1000 * hi:+.1f}]")
    return {"before": before, "after": after, "difference_per_1000": diff,
            "difference_interval_per_1000": [1000 * lo, 1000 * hi]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="the run with the earlier prompts")
    ap.add_argument("after", type=Path, help="the run with the changed prompts")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--instructions-only", action="store_true",
                    help="compare only what the instructions ask (BEFORE and AFTER: instructions.jsonl files "
                    "or folders holding one), e.g. of `selfcodealign instructions` runs on a CPU")
    args = ap.parse_args(argv)
    if args.instructions_only:
        out = {}
        for name, path in (("before", args.before), ("after", args.after)):
            f = path / "instructions.jsonl" if path.is_dir() else path
            if not f.is_file():
                raise SystemExit(f"error: {f} not found")
            out[name] = instruction_profile(_lines(f))
            print(f"{name}: {profile_line(out[name])}")
    else:
        out = report(run_figures(args.before), run_figures(args.after))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
