"""`selfcodealign export-dataset`: a run's dataset as a Hugging Face dataset folder
(Parquet configs and a dataset card), optionally pushed to the Hub."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-dataset",
        help="write a run's dataset as a Hugging Face dataset folder (Parquet + card); --push-to-hub uploads it",
        description="Write OUT, a folder that the Hugging Face Hub and `datasets.load_dataset(OUT)` read as it "
        "is: the dataset (config `default`, split train: `messages` for TRL's SFTTrainer), the preference "
        "pairs (config `pairs`: `prompt`/`chosen`/`rejected` for TRL's DPOTrainer) and the held-out tasks "
        "(config `heldout`, split test) as Parquet, every record's provenance as extra columns, and "
        "README.md: the dataset card (funnel, model and its hash, quality figures, the run's config, "
        "what each column means).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished `run` (or `merge`) output directory")
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write (new or empty)")
    p.add_argument("--license", default="other",
                   help="the card's licence, a Hub licence id such as apache-2.0 (default: other)")
    p.add_argument("--push-to-hub", metavar="REPO", help="then upload OUT to this Hub dataset repository "
                   "(NAMESPACE/NAME; token: HF_TOKEN or `hf auth login`)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from selfcodealign.errors import UserError
    from selfcodealign.hub import export_dataset, push_folder
    from selfcodealign.hub.push import check_repo_id

    if args.private and not args.push_to_hub:
        raise UserError("--private needs --push-to-hub REPO")
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)
    written = export_dataset(args.run_dir, args.out, license=args.license)
    parts = ", ".join(f"{c} ({w['split']}: {w['rows']:,} row{'s' * (w['rows'] != 1)})" for c, w in written.items())
    print(f"dataset folder: {args.out} ({parts})", file=sys.stderr)
    if args.push_to_hub:
        url = push_folder(args.out, args.push_to_hub, private=args.private)
        print(f"pushed to {url}", file=sys.stderr)
    return 0
