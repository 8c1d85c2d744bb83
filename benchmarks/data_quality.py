"""What selection keeps, and how much its tests test: plain selection against the new one.

Re-executes the responses of a file of executed records (default: the repo's real sample,
data/responses-real-sample.jsonl.gz, 3,533 responses to 373 instructions from a GPU run)
with the current sandbox, then selects twice:

- plain: one seeded random passing response per instruction (meaningful tests), as the
  paper does;
- new: the verify stage (mutants, faithfulness, agreement) and selection by its checks,
  with the default settings.

Both datasets are then measured the same way, by `selfcodealign audit`'s code: mean
mutation score, share of examples at >= 0.5, share with an unexercised function, share
missing an asked-for name. The same measure of HumanEval+'s canonical solutions with
HumanEval's own tests is the calibration row: a measure that scores them high and plain
selection well below tells weak tests from strong ones.

Beside the test-strength figures, what a reader would judge: the classes of the kept
examples among the labelled responses (data/labels, docs/labelling.md; by default the
test half, on which nothing was tuned), and the precision of the kept answers to MBPP+
tasks posed as instructions against EvalPlus's plus tests, with their coverage
(benchmarks/mbpp_groundtruth.py; the labelled answers in data/labels, or ``--mbpp DIR``).

    python benchmarks/data_quality.py [--in FILE] [--workers N] [--half test] [--mbpp DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IN = REPO / "data" / "responses-real-sample.jsonl.gz"
HUMANEVAL = REPO / "src" / "selfcodealign" / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz"


def read(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_lines() -> list[tuple[int, dict]]:
    """HumanEval+'s canonical solutions as dataset lines, with HumanEval's own tests."""
    out = []
    for k, t in enumerate(read(HUMANEVAL)):
        code = t["prompt"] + t["canonical_solution"]
        out.append((k, {"id": t["task_id"], "instruction": t["prompt"],
                        "response": f"```python\n{code}\n```",
                        "tests": t["test"] + f"\ncheck({t['entry_point']})\n"}))
    return out


def row(label: str, a: dict) -> str:
    m = a.get("mutation", {})
    n = max(1, a["audited"])
    return (f"{label:<34}{a['audited']:>9}{m.get('mean_score', 0):>9.3f}"
            f"{100 * m.get('share_at_least_0.5', 0):>9.1f}%{100 * m.get('share_unexercised', 0):>12.1f}%"
            f"{100 * a['unfaithful'].get('missing', 0) / n:>10.1f}%")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--in", dest="inp", type=Path, default=DEFAULT_IN, help="executed records (JSONL[.gz])")
    ap.add_argument("--workers", type=int, help="sandbox workers (default: cores)")
    ap.add_argument("--half", choices=["dev", "test", "all"], default="test",
                    help="which half of the labelled responses to report (default: test)")
    ap.add_argument("--mbpp", type=Path, help="a directory with executed.jsonl and verified.jsonl of MBPP+ "
                    "tasks posed as instructions (default: the labelled answers in data/labels, re-executed)")
    args = ap.parse_args()

    from selfcodealign.audit import audit_records
    from selfcodealign.config import RunConfig
    from selfcodealign.executors.local import LocalExecutor
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.select import select
    from selfcodealign.stages.verify import VerifyStage, group_by_instruction

    cfg = RunConfig()
    from labelled_checks import reparsed

    # Parsed again from the raw text, as a run of this version would record them.
    responses = [reparsed(r["response"]) for r in read(args.inp)]
    executor = LocalExecutor(lambda: None, args.workers)
    ex_stage = ExecuteStage(cfg.execute)
    t0 = time.perf_counter()
    executed = [e for r, v in executor.execute(ex_stage, responses) for e in ex_stage.parse(r, v)]
    base_s = time.perf_counter() - t0
    stage = VerifyStage(cfg.verify, cfg.execute.timeout, cfg.execute.memory_mb, ex_stage.counts_as_pass)
    t0 = time.perf_counter()
    checks = {c.parent_id: c for rec, v in executor.execute(stage, group_by_instruction(executed))
              for c in stage.parse(rec, v)}
    verify_s = time.perf_counter() - t0

    plain_cfg = cfg.select.model_copy(update={"by_agreement": False, "pass_rate": (0.0, 1.0)})
    plain = select(executed, plain_cfg, ex_stage.counts_as_pass).examples
    chosen = select(executed, cfg.select, ex_stage.counts_as_pass, None, checks)
    new, stats = chosen.examples, chosen.stats
    passing = sum(ex_stage.counts_as_pass(e) for e in executed)
    print(f"{args.inp.name}: {len(executed)} responses to {len(group_by_instruction(executed))} "
          f"instructions, re-executed: {passing} pass with meaningful tests")
    print(f"selection defaults: min_mutation_score {cfg.select.min_mutation_score}, reject_unexercised "
          f"{cfg.select.reject_unexercised}, reject_unfaithful {cfg.select.reject_unfaithful}, by_agreement "
          f"{cfg.select.by_agreement}; rejected responses: {json.dumps(stats['rejected'])}\n")

    def lines(examples):
        return [(k, json.loads(e.model_dump_json())) for k, e in enumerate(examples)]

    print(f"{'':<34}{'examples':>9}{'mutation':>9}{'>= 0.5':>10}{'unexercised':>13}{'missing':>11}")
    a_plain = audit_records(lines(plain), cfg, args.workers)
    a_new = audit_records(lines(new), cfg, args.workers)
    a_he = audit_records(humaneval_lines(), cfg, args.workers)
    print(row("plain selection", a_plain))
    print(row("new selection", a_new))
    print(row("HumanEval+ canonical, HumanEval tests", a_he))
    n_ins = len(group_by_instruction(executed))
    print(f"\nexamples per 1,000 instructions: plain {1000 * len(plain) / n_ins:.0f}, "
          f"new {1000 * len(new) / n_ins:.0f}")
    print(f"execution: {base_s:.1f} s; verification added {verify_s:.1f} s "
          f"({verify_s / base_s:.2f}x the execution; {sum(c.mutation.made for c in checks.values() if c.mutation)} "
          f"mutants, {sum(c.agreement.siblings for c in checks.values() if c.agreement)} sibling runs)")
    m_new, m_he, m_plain = a_new.get("mutation", {}), a_he.get("mutation", {}), a_plain.get("mutation", {})
    n_new = max(1, a_new["audited"])
    goals = [
        ("mean mutation score >= 0.85", m_new.get("mean_score", 0) >= 0.85),
        (">= 90% of examples at >= 0.5", m_new.get("share_at_least_0.5", 0) >= 0.9),
        ("<= 3% with an unexercised function", m_new.get("share_unexercised", 1) <= 0.03),
        ("<= 3% missing an asked-for name", a_new["unfaithful"].get("missing", 0) / n_new <= 0.03),
        ("at least half as many examples as plain", len(new) >= len(plain) / 2),
        ("added execution time <= the base execution time", verify_s <= base_s),
        ("calibration: HumanEval >= 0.9, plain well below",
         m_he.get("mean_score", 0) >= 0.9 and m_plain.get("mean_score", 1) <= m_he.get("mean_score", 0) - 0.1),
    ]
    from labelled_checks import DEFAULT_IN as LABELLED_IN
    from labelled_checks import execute_and_verify, read_labels, selection_lines, selection_table

    # The labelled responses also hold answers to MBPP+ tasks posed as instructions.
    m_ex, m_checks = execute_and_verify(LABELLED_IN[1:], args.workers)
    labels = read_labels()
    sel = selection_table(labels, executed + m_ex, {**checks, **m_checks}, cfg, args.half)
    print(f"\nlabelled responses ({args.half} half), classes of the kept examples:")
    print("\n".join("  " + line for line in selection_lines(sel)))
    kept_good = sel["plain_good_kept_by_checked"]
    goals += [
        (">= 80% good among the kept labelled examples", (sel["checked"]["good_share"] or 0) >= 0.8),
        (">= 60% of plain's good examples kept",
         kept_good["kept"] >= 0.6 * kept_good["plain_good"] if kept_good["plain_good"] else False),
        ("no malformed training target", a_new.get("malformed_target", 0) == 0),
    ]
    from mbpp_groundtruth import score as mbpp_score

    source = LABELLED_IN[1].name
    if args.mbpp:
        from selfcodealign.jsonl import read_records
        from selfcodealign.records import Checks, Executed

        m_ex = list(read_records(args.mbpp / "executed.jsonl", Executed))
        m_checks = {c.parent_id: c for c in read_records(args.mbpp / "verified.jsonl", Checks)}
        source = str(args.mbpp)
    res = mbpp_score(m_ex, m_checks, args.workers)
    print(f"\nMBPP+ tasks as instructions ({source}):")
    for arm, r in res.items():
        prec = "n/a" if r["precision"] is None else f"{100 * r['precision']:.1f}%"
        print(f"  {arm:<8} keeps {r['kept']} of {r['tasks']} tasks (coverage {100 * r['coverage']:.1f}%); "
              f"pass base+plus tests: {r['plus_pass']} (precision {prec})")
    goals.append(("MBPP+ precision of kept answers >= 95%", (res["checked"]["precision"] or 0) >= 0.95))
    print("\n" + "\n".join(f"  [{'x' if ok else ' '}] {name}" for name, ok in goals))
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
