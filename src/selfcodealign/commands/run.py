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
    cfg = sized(cfg, out, args.verbose)
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


def sized(cfg, out: Path, verbose: bool):
    """``cfg`` with ``seeds.max_seeds`` set from ``budget_minutes`` and this machine's
    speed (measured now, or as sized when this run directory was started)."""
    if cfg.budget_minutes is None or cfg.seeds.max_seeds is not None:
        return cfg
    from selfcodealign import sizing

    before = previous_max_seeds(out, cfg.budget_minutes)
    if before is not None:
        print(f"sized when this run started: {before} seeds", file=sys.stderr)
        return with_max_seeds(cfg, before)
    from selfcodealign.backends import make_backend

    print(f"measuring this machine's speed to fit {cfg.budget_minutes:g} minutes...", file=sys.stderr)
    with make_backend(cfg.backend, verbose=verbose) as backend:
        speed = sizing.measure(backend, cfg.backend.n_parallel)
    n = sizing.seeds_for(cfg.budget_minutes * 60, speed, cfg.responses.n)
    eta = (speed.probe_s + sizing.FIXED_S + n * sizing.seconds_per_seed(speed, cfg.responses.n)) / 60
    print(f"engine: reads {speed.prompt_tps:,.0f} prompt tokens/s, writes {speed.decode_tps:,.0f} tokens/s "
          f"({cfg.backend.n_parallel} slots); sized to {n} seeds: about {eta:.0f} minutes in all", file=sys.stderr)
    return with_max_seeds(cfg, n)


def with_max_seeds(cfg, n: int):
    return cfg.model_copy(update={"seeds": cfg.seeds.model_copy(update={"max_seeds": n})})


def previous_max_seeds(out: Path, budget: float) -> int | None:
    """The seeds a sized run in ``out`` was given, if it mined any under the same budget:
    a resumed run keeps them, so the seeds stage sees the settings it ran with."""
    from selfcodealign.merge import run_config

    before = run_config(out)
    n = (before.get("seeds") or {}).get("max_seeds")
    if (out / "seeds.jsonl").exists() and before.get("budget_minutes") == budget and isinstance(n, int):
        return n
    return None


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
