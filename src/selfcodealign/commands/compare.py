"""`selfcodealign compare`: two eval results side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="show two `eval` results side by side",
        description="Print the pass@k of two eval output directories (or results.json files) side by side, "
        "with a paired bootstrap 95%% interval for each pass@k difference (tasks resampled 10,000 times, "
        "fixed seed) where both directories hold their per-sample results (BENCH/eval_results.json), "
        "and the primary endpoint: HumanEval+ and MBPP+ pooled into one benchmark.",
    )
    p.add_argument("a", type=Path, help="eval --out directory of model A (e.g. before training)")
    p.add_argument("b", type=Path, help="eval --out directory of model B (e.g. after training)")
    p.add_argument("--report", type=Path, metavar="FILE.html",
                   help="also write a self-contained HTML report: pass@k per benchmark and the tasks "
                   "B gained or lost against A, with both models' samples side by side")
    p.set_defaults(func=run)


def load(path: Path) -> dict:
    from selfcodealign.errors import UserError

    f = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(f.read_text())
    except FileNotFoundError:
        raise UserError(f"no eval results at {f}") from None
    except ValueError:
        raise UserError(f"{f} is not valid JSON") from None


LABELS = {"humaneval": "HumanEval", "mbpp": "MBPP", "selfval": "SelfVal"}


def per_sample(pa: Path | None, pb: Path | None, bench: str) -> tuple[dict | None, dict | None]:
    """Both sides' per-sample results for ``bench`` (None where a side has none)."""
    from selfcodealign.report.eval_report import load_samples

    if pa is None or pb is None:
        return None, None
    return load_samples(pa, bench, [], ""), load_samples(pb, bench, [], "")


def table(a: dict, b: dict, name_a: str, name_b: str, pa: Path | None = None, pb: Path | None = None) -> list[str]:
    from selfcodealign.report.eval_report import delta_interval

    rows = [("benchmark", name_a, name_b, "delta", "95% CI")]
    plus_samples: dict[str, tuple[dict | None, dict | None]] = {}
    for ds in [d for d in LABELS if d in a.get("benchmarks", {}) or d in b.get("benchmarks", {})]:
        sa, sb = per_sample(pa, pb, ds)  # read once per benchmark, not once per row
        plus_samples[ds] = (sa, sb)
        ma, mb = a["benchmarks"].get(ds, {}), b["benchmarks"].get(ds, {})
        ks = sorted(set(ma.get("base", {})) | set(mb.get("base", {})), key=lambda k: int(k.split("@")[1]))
        for part, suffix in (("base", ""), ("plus", "+"))[: 1 if ds == "selfval" else 2]:
            for k in ks:
                va, vb = ma.get(part, {}).get(k), mb.get(part, {}).get(k)
                ci = delta_interval(sa, sb, part, int(k.split("@")[1]))
                rows.append((f"{LABELS[ds]}{suffix} {k}", *_cells(va, vb), ci))
        if ma.get("tasks") != mb.get("tasks"):
            rows.append((f"  ({LABELS[ds]}: {ma.get('tasks')} vs {mb.get('tasks')} tasks scored)", "", "", "", ""))
    rows += pooled_rows(plus_samples)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]


POOLED = ("humaneval", "mbpp")


def pooled_rows(samples: dict[str, tuple[dict | None, dict | None]]) -> list[tuple[str, ...]]:
    """The primary endpoint: HumanEval+ and MBPP+ as one benchmark (their tasks pooled,
    plus tests), pass@k as the mean per-task estimate over the tasks both sides scored,
    with the paired bootstrap interval over those tasks. Needs both sides' per-sample
    results for both benchmarks."""
    from selfcodealign.evaluate.score import task_rates
    from selfcodealign.report.eval_report import delta_interval

    got = [samples.get(ds, (None, None)) for ds in POOLED]
    if any(sa is None or sb is None for sa, sb in got):
        return []
    sa = {t: v for side, _ in got for t, v in side.items()}
    sb = {t: v for _, side in got for t, v in side.items()}
    shared = set(sa) & set(sb)
    sa, sb = {t: sa[t] for t in shared}, {t: sb[t] for t in shared}
    n = min([len(v) for v in sa.values()] + [len(v) for v in sb.values()], default=0)
    rows = []
    for k in [k for k in (1, 10, 100) if k <= n]:
        ra, rb = task_rates(sa, "plus", k), task_rates(sb, "plus", k)
        va, vb = sum(ra.values()) / len(ra), sum(rb.values()) / len(rb)
        rows.append((f"HumanEval+ & MBPP+ pass@{k}", *_cells(va, vb), delta_interval(sa, sb, "plus", k)))
    if rows:
        rows.append((f"  (pooled: the {len(shared)} tasks both scored)", "", "", "", ""))
    return rows


def _cells(va: float | None, vb: float | None) -> tuple[str, str, str]:
    fa = f"{100 * va:.1f}" if va is not None else "-"
    fb = f"{100 * vb:.1f}" if vb is not None else "-"
    d = f"{100 * (vb - va):+.1f}" if va is not None and vb is not None else "-"
    return fa, fb, d


def _name(res: dict, path: Path) -> str:
    m = res.get("model") or {}
    return str(m.get("name") or path.name)[:40]


def run(args: argparse.Namespace) -> int:
    a, b = load(args.a), load(args.b)
    for line in table(a, b, _name(a, args.a), _name(b, args.b), args.a, args.b):
        print(line)
    if args.report:
        from selfcodealign.report import write_eval_report

        out = write_eval_report(a, b, args.a, args.b, _name(a, args.a), _name(b, args.b), args.report)
        print(f"report: {out}")
    return 0
