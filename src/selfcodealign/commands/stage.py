"""The single-stage commands, one per stage of the registry (``selfcodealign.stages``)
without a command module of its own: each reads its --in file and writes --out.

Stages that keep a ledger (OUT.done.jsonl) resume when the same command is rerun;
`select` rewrites its output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from selfcodealign.commands.common import (
    add_config_args,
    config_epilog,
    local_executor,
    resolve_config,
    setup_logging,
)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


def register_stage(sub, spec) -> None:
    from selfcodealign.stages import BY_NAME

    reads = [BY_NAME[r] for r in spec.cls.reads]
    p = sub.add_parser(
        spec.name, help=spec.help,
        description=f"{spec.help}. Reads --in (JSONL, e.g. {reads[0].file}) and writes --out "
        f"(JSONL, e.g. {spec.file}); drops go to OUT.drops.jsonl with a reason.",
        epilog=config_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--in", dest="inp", required=True, metavar="FILE", help=f"input JSONL ({reads[0].file})")
    p.add_argument("--out", required=True, metavar="FILE", help=f"output JSONL ({spec.file})")
    for other in reads[1:]:
        # Another stage's output this one can use (select: the verify stage's checks).
        p.add_argument("--" + other.file.removesuffix(".jsonl"), dest=f"with_{other.name}", metavar="FILE",
                       help=f"the {other.name} stage's output for these records ({other.file})")
    if spec.cls.takes_limit:
        p.add_argument("--limit", type=_positive, metavar="N",
                       help="only the first N input records (a later run without it goes on with the rest)")
    add_config_args(p)
    p.set_defaults(func=lambda args: run_stage_command(spec, args))


def run_stage_command(spec, args) -> int:
    from selfcodealign.jsonl import read_records
    from selfcodealign.ledger import StageFiles
    from selfcodealign.pipeline import run_stage, settings_changed
    from selfcodealign.stages import BY_NAME
    from selfcodealign.stages.base import StageEnv

    cfg = resolve_config(args)
    out = Path(args.out)
    setup_logging(out.with_suffix(".log"), args.verbose)
    first, *others = spec.cls.reads
    upstream = {first: list(read_records(Path(args.inp), BY_NAME[first].cls.output_type))}
    if spec.cls.takes_limit:
        upstream[first] = upstream[first][: args.limit]
    for name in others:
        path = getattr(args, f"with_{name}")
        upstream[name] = list(read_records(Path(path), BY_NAME[name].cls.output_type)) if path else None
    files = StageFiles(out)
    if settings_changed(spec, cfg, files, args.force):
        files.remove()
    env = StageEnv(cfg, lambda: local_executor(cfg, args.verbose))
    try:
        run_stage(spec, cfg, env, upstream, files, force=args.force, quiet=args.quiet)
    finally:
        env.close()
    summary = spec.cls.summarize(files, spec.cls.outputs(files, cfg))
    print(f"{spec.name}: {json.dumps(summary)}", file=sys.stderr)
    return 0
