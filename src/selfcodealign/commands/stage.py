"""The single-stage commands: each reads one JSONL file and writes the next.

`concepts`, `instructions`, `responses`, `execute` and `verify` keep a ledger beside
--out (OUT.done.jsonl), so rerunning the same command resumes; `select` rewrites its
output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from selfcodealign.commands.common import (
    add_config_args, config_epilog, local_executor, resolve_config, setup_logging,
)

HELP = {
    "concepts": ("S->C: list the programming concepts of each seed", "seeds.jsonl", "concepts.jsonl"),
    "instructions": ("C->I: write a new task from each seed's concepts", "concepts.jsonl", "instructions.jsonl"),
    "responses": ("I->R: answer each task several times, with tests", "instructions.jsonl", "responses.jsonl"),
    "execute": ("run every response with its tests in the sandbox", "responses.jsonl", "executed.jsonl"),
    "verify": ("check the passing responses: mutants, faithfulness, agreement", "executed.jsonl",
               "verified.jsonl"),
    "select": ("keep one passing response per task; write the dataset", "executed.jsonl", "dataset.jsonl"),
}


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


def register_stage(sub, name: str) -> None:
    help_text, default_in, default_out = HELP[name]
    p = sub.add_parser(
        name, help=help_text,
        description=f"{help_text}. Reads --in (JSONL, e.g. {default_in}) and writes --out "
        f"(JSONL, e.g. {default_out}); drops go to OUT.drops.jsonl with a reason.",
        epilog=config_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--in", dest="inp", required=True, metavar="FILE", help=f"input JSONL ({default_in})")
    p.add_argument("--out", required=True, metavar="FILE", help=f"output JSONL ({default_out})")
    if name not in ("select", "verify"):
        p.add_argument("--limit", type=_positive, metavar="N",
                       help="only the first N input records (a later run without it goes on with the rest)")
    if name == "select":
        p.add_argument("--verified", metavar="FILE",
                       help="the verify stage's output for these records (verified.jsonl): select "
                       "by its checks; without it, a seeded random passing response per task")
    add_config_args(p)
    p.set_defaults(func=lambda args: run_stage_command(name, args))


def run_stage_command(name: str, args) -> int:
    from selfcodealign.jsonl import read_records
    from selfcodealign.ledger import StageFiles
    from selfcodealign.pipeline import generation_key, model_info_and_prompts, run_generation_or_execution

    cfg = resolve_config(args)
    out = Path(args.out)
    setup_logging(out.with_suffix(".log"), args.verbose)
    files = StageFiles(out)
    if name == "select":
        return _select(cfg, Path(args.inp), files, args.verified)
    if name == "verify":
        from selfcodealign.records import Executed
        from selfcodealign.stages.execute import ExecuteStage
        from selfcodealign.stages.verify import VerifyStage, group_by_instruction

        stage = VerifyStage(cfg.verify, cfg.execute.timeout, cfg.execute.memory_mb,
                            ExecuteStage(cfg.execute).counts_as_pass)
        inputs = group_by_instruction(list(read_records(Path(args.inp), Executed)))
        executor = local_executor(cfg, args.verbose)
    elif name == "execute":
        from selfcodealign.stages.execute import ExecuteStage

        stage = ExecuteStage(cfg.execute)
        inputs = list(read_records(Path(args.inp), stage.input_type))[: args.limit]
        executor = local_executor(cfg, args.verbose)
    else:
        from selfcodealign.stages.concepts import ConceptsStage
        from selfcodealign.stages.instructions import InstructionsStage
        from selfcodealign.stages.responses import ResponsesStage

        cls = {"concepts": ConceptsStage, "instructions": InstructionsStage,
               "responses": ResponsesStage}[name]
        inputs = list(read_records(Path(args.inp), cls.input_type))[: args.limit]
        executor = local_executor(cfg, args.verbose)
        info, prompts = model_info_and_prompts(cfg, executor.backend)
        stage = cls(getattr(cfg, name), prompts, info, cfg.seed, generation_key(cfg, name))
    try:
        summary = run_generation_or_execution(stage, inputs, files, executor, force=args.force,
                                              quiet=args.quiet)
    finally:
        executor.close()
    print(f"{name}: {json.dumps(summary)}", file=sys.stderr)
    return 0


def _select(cfg, inp: Path, files, verified: str | None) -> int:
    from selfcodealign.jsonl import read_records
    from selfcodealign.pipeline import write_dataset
    from selfcodealign.records import Checks, Executed

    checks = {c.parent_id: c for c in read_records(Path(verified), Checks)} if verified else None
    s = write_dataset(cfg, list(read_records(inp, Executed)), files, checks)
    print(f"select: {s['in']} instructions -> {s['out']} examples", file=sys.stderr)
    return 0
