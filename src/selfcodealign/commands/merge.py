"""`selfcodealign merge`: one dataset from several run directories (see merge.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "merge",
        help="join the datasets of several runs (e.g. the shards of one run) into one",
        description="Join the dataset.jsonl of several run directories: ids are deduplicated, "
        "then decontamination and near-duplicate removal run again over the union (an "
        "example that duplicates one of an earlier run is dropped). Writes OUT/dataset.jsonl, "
        "OUT/dataset.drops.jsonl and OUT/summary.json with per-run counts.",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories, in order")
    p.add_argument("--out", required=True, type=Path, help="directory for the merged dataset")
    p.add_argument("--dedup-threshold", type=float,
                   help="MinHash Jaccard threshold (default: the first run's select.dedup_threshold)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError
    from selfcodealign.merge import merge_runs

    if args.dedup_threshold is not None and not 0 < args.dedup_threshold <= 1:
        raise UserError("--dedup-threshold must be in (0, 1]")
    s = merge_runs(args.runs, args.out, args.dedup_threshold)
    for p in s["parts"]:
        print(f"{p['run_dir']}: {p['examples']} examples, {p['kept']} kept "
              f"({p['duplicate_id']} duplicate ids, {p['sanitized']} sanitized)", file=sys.stderr)
    print(f"merged: {s['out']} examples -> {args.out / 'dataset.jsonl'}", file=sys.stderr)
    return 0
