"""`selfcodealign report`: a run directory, or a `train` output, as one self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a run's HTML report (funnel, pass rates, failures, every example with its lineage), "
        "or a training's (recipe and curves)",
        description="Write one self-contained HTML file (no network requests; CSS and JS inline) "
        "about a run directory: the funnel with drops, tokens and time per stage; pass rates by "
        "category, difficulty and seed source; per-instruction pass rates and test strength; "
        "failing responses by error type; and a searchable browser of every instruction with its "
        "seed, concepts and responses. `run` writes it at its end. On a `train` output directory "
        "(train_config.json; GRPO's grpo_steps.jsonl) it writes the training report: the recipe, "
        "the final figures and the curves by step (GRPO: reward, KL, loss, signal and clip "
        "fractions, the step's time split, rollout tokens/s, outcomes; SFT and DPO: loss, "
        "learning rate, tokens/s and DPO's reward accuracy and margin). For evaluations see "
        "`compare A B --report FILE.html`.",
    )
    p.add_argument("run_dir", type=Path, metavar="DIR", help="a `run` or `train` output directory")
    p.add_argument("--out", type=Path, metavar="FILE.html", help="where to write it (default: DIR/report.html)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from selfcodealign.report import is_train_dir, write_run_report, write_train_report

    if args.run_dir.is_dir() and is_train_dir(args.run_dir):
        out, stats = write_train_report(args.run_dir, args.out)
        print(f"report: {out} ({stats['bytes'] / 1e6:.1f} MB; {stats['objective']} training, "
              f"{stats['steps']:,} steps)", file=sys.stderr)
        return 0
    out, stats = write_run_report(args.run_dir, args.out)
    print(f"report: {out} ({stats['bytes'] / 1e6:.1f} MB; {stats['instructions']:,} instructions, "
          f"{stats['responses']:,} responses)", file=sys.stderr)
    return 0
