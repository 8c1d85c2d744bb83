"""`selfcodealign run`: every stage in order into one run directory (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfcodealign.commands.common import (
    add_config_args,
    config_epilog,
    local_executor,
    resolve_config,
    setup_logging,
)


def register(sub) -> None:
    from selfcodealign.stages import STAGES

    p = sub.add_parser(
        "run",
        help=f"run the whole pipeline ({' -> '.join(s.name for s in STAGES)})",
        description="Run every stage in order into one run directory. Rerunning the same "
        "command resumes where it stopped (kill -9 included).",
        epilog=config_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/default", help="run directory (default: runs/default)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where stages run: this machine, or a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--shard", metavar="K/N",
                   help="do the K-th of N parts of the work (split by seed id), e.g. on N machines "
                   "into N run directories; `selfcodealign merge` joins them (config shard)")
    add_config_args(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from selfcodealign.pipeline import Pipeline

    if args.shard:
        args.sets = [*args.sets, f"shard={args.shard}"]
    cfg = resolve_config(args)
    out = Path(args.out)
    setup_logging(out / "run.log", args.verbose)
    if args.executor == "ray":
        from selfcodealign.executors.ray_executor import ray_executor_factory

        factory = ray_executor_factory(cfg, args.ray_address, args.verbose)
    else:
        factory = lambda: local_executor(cfg, args.verbose)
    summary = Pipeline(cfg, out, factory, force=args.force, quiet=args.quiet).run()
    f = summary["funnel"]
    print(
        f"funnel: seeds {f['seeds']} -> concepts {f['concepts']} -> instructions "
        f"{f['instructions']} -> responses {f['responses']} -> passing {f['passing']} -> "
        f"dataset {f['dataset']}",
        file=sys.stderr,
    )
    if f["passing"] and not f["dataset"]:
        drops = summary["stages"]["select"].get("drops", {})
        why = ", ".join(f"{k} {v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1]))
        print(f"no example kept: selection keeps only answers that hold up (tasks dropped: {why}); "
              "more seeds (seeds.max_seeds) or a larger model keep more", file=sys.stderr)
    b = summary["busy"]
    print(f"time: {summary['wall_s']:.0f} s wall; generation busy {b['generation_s']:.0f} s, "
          f"execution busy {b['execution_s']:.0f} s", file=sys.stderr)
    print(f"dataset: {out / 'dataset.jsonl'}  summary: {out / 'summary.json'}", file=sys.stderr)
    print(f"report: {write_report(out)}", file=sys.stderr)
    return 0


def write_report(out: Path) -> str:
    """The run's HTML report (RUN_DIR/report.html), written after the pipeline; a failure
    here costs the report, never the run."""
    import logging

    from selfcodealign.errors import UserError
    from selfcodealign.report import write_run_report

    try:
        path, _ = write_run_report(out)
        return str(path)
    except UserError as e:
        return f"not written ({e})"
    except Exception as e:
        logging.getLogger(__name__).exception("report not written")
        return f"not written ({type(e).__name__}: {e}; see {out / 'run.log'})"
