"""`selfcodealign report`: a run directory as one self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a run's HTML report (funnel, pass rates, failures, every example with its lineage)",
        description="Write one self-contained HTML file (no network requests; CSS and JS inline) "
        "about a run directory: the funnel with drops, tokens and time per stage; pass rates by "
        "category, difficulty and seed source; per-instruction pass rates and test strength; "
        "failing responses by error type; and a searchable browser of every instruction with its "
        "seed, concepts and responses. `run` writes it at its end; for evaluations see "
        "`compare A B --report FILE.html`.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a `run` output directory")
    p.add_argument("--out", type=Path, metavar="FILE.html", help="where to write it (default: RUN_DIR/report.html)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from selfcodealign.report import write_run_report

    out, stats = write_run_report(args.run_dir, args.out)
    print(f"report: {out} ({stats['bytes'] / 1e6:.1f} MB; {stats['instructions']:,} instructions, "
          f"{stats['responses']:,} responses)", file=sys.stderr)
    return 0
