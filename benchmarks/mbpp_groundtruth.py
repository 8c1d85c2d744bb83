"""Ground truth from human tests: MBPP+ tasks posed as the pipeline's own instructions.

Each MBPP+ task becomes an ``Instruction`` record whose text is the task's own text (its
sentence and its one example assert). The product commands then answer, execute, verify
and select them like any generated task; this script measures what selection keeps
against EvalPlus's plus tests, which the model never saw:

- precision: the share of kept answers whose code passes the task's base and plus tests;
- coverage: the share of tasks with a kept answer.

These tasks never enter a training set (they live only in this benchmark's directory),
and HumanEval+ stays untouched for the final benchmark.

    python benchmarks/mbpp_groundtruth.py instructions DIR      # DIR/instructions.jsonl
    selfcodealign responses --in DIR/instructions.jsonl --out DIR/responses.jsonl ...
    selfcodealign execute --in DIR/responses.jsonl --out DIR/executed.jsonl
    python benchmarks/mbpp_groundtruth.py score DIR [--verified DIR/verified.jsonl] [--set KEY=VALUE ...]

``score`` selects twice from DIR/executed.jsonl (plain: a seeded random passing
response; and the current default selection with the verify stage's checks, when
given) and scores both selections' kept code with EvalPlus's checker in the sandbox, on
all tasks and on each half (split by instruction as the labelled set is: rules are
chosen on the development half).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = "mbpp+"


def instruction_text(task: dict) -> str:
    """The task's sentence and its example assert, as MBPP poses them."""
    body = task["prompt"].strip().strip('"').strip()
    lines = [ln for ln in body.splitlines() if ln.strip()]
    text = [ln for ln in lines if not ln.lstrip().startswith("assert")]
    asserts = [ln.strip() for ln in lines if ln.lstrip().startswith("assert")]
    out = " ".join(t.strip() for t in text)
    if asserts:
        out += "\n\nYour function must pass this example:\n```python\n" + "\n".join(asserts) + "\n```"
    return out


def make_instructions(limit: int | None = None):
    from selfcodealign.evaluate.data import BENCHMARKS, read_problems
    from selfcodealign.ids import make_id
    from selfcodealign.records import GenMeta, Instruction

    problems = read_problems(BENCHMARKS["mbpp"])
    gen = GenMeta(model="mbpp+", backend="benchmark", prompt_style="mbpp+", temperature=0.0, top_p=1.0,
                  max_tokens=0, seed=0, finish_reason="stop")
    out = []
    for task_id, task in list(problems.items())[:limit]:
        text = instruction_text(task)
        out.append(Instruction(id=make_id(SOURCE, task_id), parent_id=make_id(SOURCE, task_id, "concepts"),
                               seed_id=task_id, seed_source=SOURCE, seed_path=task_id, concepts=[],
                               category="function", difficulty="medium", instruction=text, raw=task["prompt"],
                               gen=gen))
    return out


def cmd_instructions(a) -> int:
    from selfcodealign.jsonl import write_atomic

    a.dir.mkdir(parents=True, exist_ok=True)
    recs = make_instructions(a.limit)
    write_atomic(a.dir / "instructions.jsonl", recs)
    print(f"{len(recs)} MBPP+ instructions -> {a.dir / 'instructions.jsonl'}")
    return 0


def plus_results(examples, workers: int | None) -> dict[str, bool]:
    """Whether each kept example's code passes its MBPP+ task's base and plus tests, by
    executed id."""
    from selfcodealign.evaluate.data import BENCHMARKS, load_problems
    from selfcodealign.evaluate.score import check_samples

    bench = BENCHMARKS["mbpp"]
    problems = load_problems(bench)
    pairs = [(e.seed_id, e.code) for e in examples]
    results = check_samples(bench, problems, pairs, workers=workers)
    return {e.id: r.base == "pass" and r.plus == "pass" for e, r in zip(examples, results)}


def score(executed, checks, workers: int | None = None, select_cfg=None) -> dict[str, dict]:
    """Precision and coverage of plain and checked selection over one set of executed
    responses to MBPP+ instructions."""
    from dataclasses import dataclass

    from selfcodealign.config import ExecuteConfig, SelectConfig
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.select import select

    @dataclass(frozen=True)
    class Kept:
        id: str
        seed_id: str
        code: str

    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    tasks = len({e.response.parent_id for e in executed})
    by_id = {e.id: e for e in executed}
    # plain: the paper's selection (any passing response, every task); checked: the defaults.
    arms = {"plain": (SelectConfig(sanitize=False, pass_rate=(0.0, 1.0)), None)}
    if checks is not None:
        arms["checked"] = (select_cfg or SelectConfig(sanitize=False), checks)
    kept = {}
    for arm, (cfg, c) in arms.items():
        sel = select(executed, cfg, passes, None, c)
        kept[arm] = [Kept(e.parent_id, e.seed_id, by_id[e.parent_id].response.code) for e in sel.examples]
    everything = {k.id: k for ks in kept.values() for k in ks}
    ok = plus_results(list(everything.values()), workers)
    out = {}
    for arm, ks in kept.items():
        good = sum(ok[k.id] for k in ks)
        out[arm] = {"tasks": tasks, "kept": len(ks), "plus_pass": good,
                    "precision": good / len(ks) if ks else None, "coverage": len(ks) / tasks if tasks else 0.0}
    return out


def cmd_score(a) -> int:
    from selfcodealign.jsonl import read_records
    from selfcodealign.records import Checks, Executed

    executed = list(read_records(a.dir / "executed.jsonl", Executed))
    checks = None
    if a.verified is not None:
        checks = {c.parent_id: c for c in read_records(a.verified, Checks)}
    from labelled_checks import half_of

    from selfcodealign.config import build_config
    from selfcodealign.errors import UserError

    try:
        select_cfg = build_config(sets=a.set).select.model_copy(update={"sanitize": False})
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The halves split the tasks as the labelled set's are split (by instruction id):
    # choose rules on the development half, report the test half.
    res = {}
    for half in ("all", "dev", "test"):
        part = [e for e in executed if half == "all" or half_of(e.response.parent_id) == half]
        res[half] = score(part, checks, a.workers, select_cfg)
        for arm, r in res[half].items():
            prec = "n/a" if r["precision"] is None else f"{100 * r['precision']:.1f}%"
            print(f"{half:<4} {arm:<8} kept {r['kept']:>4} of {r['tasks']} tasks (coverage "
                  f"{100 * r['coverage']:.1f}%), pass MBPP+ base+plus: {r['plus_pass']} (precision {prec})")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("instructions", help="write DIR/instructions.jsonl from MBPP+")
    p.add_argument("dir", type=Path)
    p.add_argument("--limit", type=int)
    p.set_defaults(func=cmd_instructions)
    p = sub.add_parser("score", help="precision and coverage of selection on DIR/executed.jsonl")
    p.add_argument("dir", type=Path)
    p.add_argument("--verified", type=Path, help="the verify stage's output for DIR/executed.jsonl")
    p.add_argument("--workers", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a selection setting of the checked arm (select.pass_rate=[0.6,1])")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.set_defaults(func=cmd_score)
    a = ap.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
