"""`selfcodealign audit`: quality figures for any instruction dataset (see audit.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "audit",
        help="how much a dataset's tests test, and whether its answers do what was asked",
        description="For every example (instruction, response with fenced Python code, and tests "
        "in a `tests` field or a tests section): its solution's mutants run against its tests in "
        "the sandbox (mutation score, unexercised functions), and static checks that the "
        "asked-for names exist, the solution holds no tests, and the tests call no example code.",
    )
    p.add_argument("dataset", type=Path, help="a JSONL dataset (dataset.jsonl of `run`, or any "
                   "with instruction/response or chat messages)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE")
    p.add_argument("--workers", type=int, help="sandbox workers (default: cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from selfcodealign.audit import audit, format_audit

    figures = audit(args.dataset, workers=args.workers)
    for line in format_audit(figures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures in {args.json}", file=sys.stderr)
    return 0
