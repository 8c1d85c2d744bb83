"""Checks and selection measured against the labelled responses (docs/labelling.md).

Reads the labels (data/labels/responses-labelled.jsonl) and the responses they label
(data/responses-real-sample.jsonl.gz and data/labels/mbpp-responses-cpu.jsonl.gz), which
it executes and verifies again with this version (or takes an executed.jsonl and
verified.jsonl made by the product commands, ``--dir``). Reports, on one half of the
labelled set (split by instruction):

- each check (a category of verify's reasons, and the agreement and mutation figures):
  how many passing responses it flags, their classes, its precision and recall for
  "not good";
- selection: the classes of what plain selection (a seeded random passing response, no
  verify) and the default selection keep, and how many of plain's good examples the
  default selection still keeps.

    python benchmarks/labelled_checks.py [--half dev|test|all] [--set KEY=VALUE ...]
    # or on files made by the product commands (execute, verify; judge for --judge):
    python benchmarks/labelled_checks.py --dir DIR [--judge] ...
    # the labels of fresh responses, by run and selection:
    python benchmarks/labelled_checks.py --fresh
    # only the tasks the default settings generate:
    python benchmarks/labelled_checks.py --categories function,program ...

Tune checks and thresholds with ``--half dev``; report ``--half test``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "data" / "labels" / "responses-labelled.jsonl"
CLASSES = ("good", "unfaithful", "wrong", "broken", "trivial")


def half_of(instruction_id: str) -> str:
    """The labelled set's split: by a hash of the instruction id, so that sibling
    responses stay together."""
    return "dev" if int(hashlib.sha256(instruction_id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def read_labels(path: Path = LABELS) -> dict[str, dict]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                out[obj["id"]] = obj
    return out


def klass(label: dict) -> str:
    """The class reported in tables: broken when the format is, else the label."""
    return "broken" if not label["format_ok"] else label["label"]


def flags(c, judged=None) -> set[str]:
    """The names of the checks that flag one response's ``Checks`` (and its judgements)."""
    out = {r.split(":", 1)[0] for r in c.faithfulness}
    if judged is not None and any(not j.satisfied for j in judged.get(c.parent_id, ())):
        out.add("judge: a requirement unmet")
    out |= {"unmet requirement: " + r.split(":", 1)[1].split()[0] for r in c.faithfulness
            if r.startswith("unmet requirement")}
    m, a = c.mutation, c.agreement
    if m is not None and (m.score is None or m.score < 0.6):
        out.add("mutation score < 0.6")
    if m is not None and m.unexercised:
        out.add("unexercised function")
    if a is not None:
        if a.passing_siblings == 0:
            out.add("no other passing response")
        elif a.my_code_passes < a.passing_siblings:
            out.add("fails a passing sibling's tests")
        if a.siblings and a.pass_my_tests == 0:
            out.add("no sibling passes its tests")
    if c.probes is not None and c.probes.unsettled:
        out.add("half its siblings differ on a probe")
    return out


def check_table(labels: dict, checks: dict, half: str, judged=None) -> list[dict]:
    rows = [(klass(labels[i]), c) for i, c in checks.items()
            if i in labels and (half == "all" or half_of(c.instruction_id) == half)]
    by_flag: dict[str, Counter] = defaultdict(Counter)
    for k, c in rows:
        for f in flags(c, judged):
            by_flag[f][k] += 1
    not_good = sum(k != "good" for k, _ in rows)
    out = []
    for f, counts in sorted(by_flag.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(counts.values())
        ng = n - counts["good"]
        out.append({"check": f, "flagged": n, "classes": dict(counts),
                    "precision_not_good": ng / n, "recall_not_good": ng / not_good if not_good else 0.0})
    return out


def selection_table(labels: dict, executed: list, checks: dict, cfg, half: str, judged=None) -> dict:
    from selfcodealign.config import ExecuteConfig, SelectConfig
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.select import select

    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    mine = [e for e in executed if half == "all" or half_of(e.response.parent_id) == half]
    # Plain: the paper's selection with the default settings; checked: the settings given.
    arms = {"plain": (SelectConfig(sanitize=False, pass_rate=(0.0, 1.0)), None),
            "checked": (cfg.select.model_copy(update={"sanitize": False, "holdout_seeds": 0}), checks)}
    out = {}
    kept_good = {}
    for arm, (sel_cfg, c) in arms.items():
        sel = select(mine, sel_cfg, passes, None, c, judged if arm == "checked" else None)
        ids = [e.parent_id for e in sel.examples]
        if arm == "checked":
            checked = sel
        classes = Counter(klass(labels[i]) if i in labels else "unlabelled" for i in ids)
        kept_good[arm] = {i for i in ids if i in labels and klass(labels[i]) == "good"}
        out[arm] = {"kept": len(ids), "classes": dict(classes),
                    "good_share": classes["good"] / len(ids) if ids else None,
                    "examples": {i: klass(labels[i]) if i in labels else "unlabelled" for i in ids}}
    plain_good = kept_good["plain"]
    # Plain selection draws one response per instruction: an instruction whose kept good
    # example the checked arm replaces by a sibling that is also good still counts.
    good_instr = {e.response.parent_id for e in mine if e.id in kept_good["checked"]}
    out["plain_good_kept_by_checked"] = {
        "plain_good": len(plain_good),
        "kept": sum(1 for e in mine if e.id in plain_good and e.response.parent_id in good_instr)}
    out["plain_good_lost"] = lost_reasons(mine, plain_good, good_instr, checked, labels)
    return out


def lost_reasons(executed: list, plain_good: set[str], good_instr: set[str], checked, labels: dict) -> dict[str, int]:
    """Why the checked selection keeps no good answer to an instruction whose good answer
    plain selection keeps: its drop reason (with the pass count, for the pass-rate band),
    or the class of the sibling it keeps instead."""
    by_id = {e.id: e for e in executed}
    drops = {d.input_id: d for d in checked.drops}
    kept = {by_id[ex.parent_id].response.parent_id: ex.parent_id for ex in checked.examples}
    out: Counter = Counter()
    for i in plain_good:
        ins = by_id[i].response.parent_id
        if ins in good_instr:
            continue
        if ins in kept:
            k = kept[ins]
            out[f"kept a {klass(labels[k]) if k in labels else 'unlabelled'} sibling"] += 1
        else:
            d = drops[ins]
            out[d.reason + (f" ({d.detail})" if d.reason == "pass_rate_outside_band" else "")] += 1
    return dict(out)


FRESH = REPO / "data" / "labels" / "fresh-labelled.jsonl"


def fresh_table(path: Path = FRESH) -> list[dict]:
    """The labels of fresh responses (runs no check was chosen on), by run, prompts and
    selection: each group's classes and good share with a Wilson 95% interval."""
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))  # its neighbour, also when loaded by path
    from prompt_yield import wilson

    groups: dict[tuple, Counter] = defaultdict(Counter)
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                groups[(r["source"], r["prompts"], r["selection"])][klass(r)] += 1
    out = []
    for (source, prompts, selection), counts in sorted(groups.items()):
        n = sum(counts.values())
        lo, hi = wilson(counts["good"], n)
        out.append({"source": source, "prompts": prompts, "selection": selection, "read": n,
                    "classes": dict(counts), "good_share": counts["good"] / n, "good_interval": [lo, hi]})
    return out


def fresh_lines(rows: list[dict]) -> list[str]:
    return [f"{r['source']:<18}{r['prompts']:<10}{r['selection']:<8} read {r['read']:>3}: good "
            f"{100 * r['good_share']:.0f}% [{100 * r['good_interval'][0]:.0f}, {100 * r['good_interval'][1]:.0f}]; "
            + ", ".join(f"{k} {r['classes'][k]}" for k in CLASSES if r["classes"].get(k)) for r in rows]


def reparsed(obj: dict):
    """A stored response with its fields parsed again from the model's raw text by this
    version's parser, as a new run would record it (same id)."""
    from selfcodealign.parsing import ParseError, parse_response
    from selfcodealign.records import Response

    p = parse_response(obj["raw"], obj["gen"]["finish_reason"])
    if not isinstance(p, ParseError):
        obj = {**obj, "response": p.response, "code": p.code, "tests": p.tests}
    return Response.model_validate(obj)


def execute_and_verify(paths: list[Path], workers: int | None = None):
    """The responses of executed-record files (JSONL[.gz]) executed and verified again with
    this version's sandbox and checks, as the pipeline would: (executed, checks by id)."""
    import gzip

    from selfcodealign.config import RunConfig
    from selfcodealign.executors.local import LocalExecutor
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.verify import VerifyStage, group_by_instruction

    cfg = RunConfig()
    responses = []
    for path in paths:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as f:
            responses += [reparsed(json.loads(line)["response"]) for line in f if line.strip()]
    executor = LocalExecutor(lambda: None, workers)
    ex_stage = ExecuteStage(cfg.execute)
    executed = [e for r, v in executor.execute(ex_stage, responses) for e in ex_stage.parse(r, v)]
    stage = VerifyStage(cfg.verify, cfg.execute.timeout, cfg.execute.memory_mb, ex_stage.counts_as_pass)
    checks = {c.parent_id: c for rec, v in executor.execute(stage, group_by_instruction(executed))
              for c in stage.parse(rec, v)}
    return executed, checks


DEFAULT_IN = [REPO / "data" / "responses-real-sample.jsonl.gz", REPO / "data" / "labels" / "mbpp-responses-cpu.jsonl.gz"]


def selection_lines(sel: dict) -> list[str]:
    """``selection_table``'s figures as lines of text."""
    out = []
    for arm in ("plain", "checked"):
        t = sel[arm]
        share = "n/a" if t["good_share"] is None else f"{100 * t['good_share']:.0f}%"
        out.append(f"selection {arm:<8} keeps {t['kept']:>3}: good {share}; "
                   + ", ".join(f"{k} {v}" for k, v in sorted(t["classes"].items())))
    g = sel["plain_good_kept_by_checked"]
    out.append(f"of plain selection's {g['plain_good']} good examples, the checked selection keeps a good "
               f"answer to the same instruction for {g['kept']}")
    if sel.get("plain_good_lost"):
        out.append("  the others: " + ", ".join(f"{k} {v}" for k, v in sorted(sel["plain_good_lost"].items())))
    return out


def main(argv: list[str] | None = None) -> int:
    from selfcodealign.config import build_config
    from selfcodealign.errors import UserError
    from selfcodealign.jsonl import read_records
    from selfcodealign.records import Checks, Executed

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--in", dest="inp", type=Path, nargs="+", default=DEFAULT_IN,
                    help="executed records holding the labelled responses (re-executed and verified here)")
    ap.add_argument("--dir", type=Path, help="use DIR/executed.jsonl and DIR/verified.jsonl as they are instead")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--half", choices=["dev", "test", "all"], default="dev")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a selection setting")
    ap.add_argument("--workers", type=int, help="sandbox workers (default: cores)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--fresh", nargs="?", const=FRESH, type=Path, metavar="FILE",
                    help="only print the labels of fresh responses by run and selection (default file: "
                    "data/labels/fresh-labelled.jsonl)")
    ap.add_argument("--categories", help="only responses to tasks of these categories (comma-separated: "
                    "function,program is what the default settings generate)")
    ap.add_argument("--judge", action="store_true",
                    help="also use DIR/judged.jsonl (`selfcodealign judge --set judge.enabled=true`)")
    a = ap.parse_args(argv)
    if a.fresh is not None:
        try:
            rows = fresh_table(a.fresh)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {a.fresh}: {e}", file=sys.stderr)
            return 2
        print("\n".join(fresh_lines(rows)))
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    try:
        cfg = build_config(sets=a.set)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        labels = read_labels(a.labels)
        if a.dir is not None:
            executed = list(read_records(a.dir / "executed.jsonl", Executed))
            checks = {c.parent_id: c for c in read_records(a.dir / "verified.jsonl", Checks)}
        else:
            executed, checks = execute_and_verify(a.inp, a.workers)
    except (UserError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.categories:
        wanted = set(a.categories.split(","))
        executed = [e for e in executed if e.response.instruction.category in wanted]
        ids = {e.id for e in executed}
        checks = {i: c for i, c in checks.items() if i in ids}
    judged = None
    if a.judge:
        from selfcodealign.records import Judgement
        from selfcodealign.stages.select import judgements_by_response

        if a.dir is None or not (a.dir / "judged.jsonl").is_file():
            print("error: --judge needs --dir DIR with DIR/judged.jsonl", file=sys.stderr)
            return 2
        judged = judgements_by_response(read_records(a.dir / "judged.jsonl", Judgement))
    report(labels, executed, checks, cfg, a.half, judged, a.json)
    return 0


def report(labels, executed, checks, cfg, half, judged=None, json_out: Path | None = None) -> dict:
    table = check_table(labels, checks, half, judged)
    sel = selection_table(labels, executed, checks, cfg, half, judged)
    n = sum(1 for i, c in checks.items() if i in labels and (half == "all" or half_of(c.instruction_id) == half))
    print(f"half: {half}; labelled passing responses verified: {n}")
    print(f"{'check':<42}{'flagged':>8}{'prec':>7}{'recall':>8}  classes")
    for r in table:
        print(f"{r['check'][:41]:<42}{r['flagged']:>8}{r['precision_not_good']:>7.2f}{r['recall_not_good']:>8.2f}  "
              + ", ".join(f"{k} {r['classes'][k]}" for k in CLASSES if r["classes"].get(k)))
    print("\n".join(selection_lines(sel)))
    out = {"half": half, "checks": table, "selection": sel}
    if json_out:
        json_out.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
