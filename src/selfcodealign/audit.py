"""Quality figures for any instruction dataset: how much its tests test (mutation score,
unexercised functions) and whether its answers do what was asked (asked-for names, tests
in the solution, tests that call example code).

An example needs an instruction, a response with its solution in fenced Python blocks,
and tests: a ``tests`` field, or a tests section in the response. Its solution's mutants
run against its tests in the sandbox, through the verify stage's own code.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from selfcodealign.errors import UserError
from selfcodealign.records import Executed, GenMeta, Instruction, Response, Verdict

_META = GenMeta(model="audit", backend="audit", prompt_style="audit", temperature=0.0, top_p=1.0,
                max_tokens=0, seed=0, finish_reason="stop")


def _fields(obj: dict) -> tuple[str, str, str | None] | None:
    """(instruction, response, tests or None) of a dataset line in any of the usual shapes."""
    ins, resp = obj.get("instruction"), obj.get("response")
    msgs = obj.get("messages")
    if (ins is None or resp is None) and isinstance(msgs, list):
        users = [m.get("content") for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        bots = [m.get("content") for m in msgs if isinstance(m, dict) and m.get("role") == "assistant"]
        ins = ins if ins is not None else (users[-1] if users else None)
        resp = resp if resp is not None else (bots[-1] if bots else None)
    if not isinstance(ins, str) or not isinstance(resp, str):
        return None
    tests = obj.get("tests")
    return ins, resp, tests if isinstance(tests, str) and tests.strip() else None


def as_executed(line: int, obj: dict) -> Executed | str:
    """A dataset line as the verify stage's input, or why it cannot be audited."""
    from selfcodealign.parsing import ParseError, fenced_blocks, parse_response

    f = _fields(obj)
    if f is None:
        return "no instruction and response"
    ins, resp, tests = f
    parsed = parse_response(resp)
    if not isinstance(parsed, ParseError):
        code, tests = parsed.code, tests or parsed.tests
    else:
        code = "\n".join(b.code for b in fenced_blocks(resp) if b.lang in ("", "python", "python3", "py"))
    if not code.strip():
        return "no code block"
    if not tests:
        return "no tests"
    oid = str(obj.get("id") or f"line{line}")
    duration = float((obj.get("verdict") or {}).get("duration") or 1.0)
    category = obj.get("category") if obj.get("category") in ("function", "class", "program") else "function"
    instruction = Instruction(id=f"{oid}:i", parent_id="", seed_id="", seed_source="", seed_path="",
                              concepts=[], category=category, difficulty="medium",
                              instruction=ins, raw="", gen=_META)
    r = Response(id=f"{oid}:r", parent_id=instruction.id, sample_index=0, instruction=instruction,
                 response=resp, code=code, tests=tests, raw=resp, gen=_META)
    return Executed(id=oid, parent_id=r.id, response=r, meaningful_tests=True,
                    verdict=Verdict(id=r.id, status="passed", duration=duration))


def _count(v) -> int:
    return v if isinstance(v, int) else 0


def audit(path: Path, cfg=None, workers: int | None = None) -> dict[str, Any]:
    """The quality figures of a JSONL dataset (see module docstring)."""
    from selfcodealign.jsonl import read_lines

    lines = [(n, obj) for n, obj in read_lines(path) if obj]
    if not lines:
        raise UserError(f"{path} holds no examples")
    return audit_records(lines, cfg, workers)


def audit_records(lines: list[tuple[int, dict]], cfg=None, workers: int | None = None) -> dict[str, Any]:
    """The quality figures of dataset lines given as (line number, object)."""
    from selfcodealign.config import RunConfig
    from selfcodealign.executors.local import LocalExecutor
    from selfcodealign.stages.verify import InstructionResponses, VerifyStage, faithfulness, summarize_checks

    cfg = cfg or RunConfig()
    # Every example gets its mutants (the pipeline spares those it rejects anyway); its
    # faithfulness is added to its checks after.
    verify = cfg.verify.model_copy(update={"agreement": False, "mutation": True, "faithfulness": False})
    skipped: Counter[str] = Counter()
    groups, pass_rates, probed = [], [], []
    for line, obj in lines:
        e = as_executed(line, obj)
        if isinstance(e, str):
            skipped[e] += 1
            continue
        groups.append(InstructionResponses(e.response.parent_id, (e,)))
        quality = obj.get("quality") if isinstance(obj.get("quality"), dict) else {}
        rate = quality.get("pass_rate")
        if isinstance(rate, (list, tuple)) and len(rate) == 2 and all(isinstance(x, int) for x in rate):
            pass_rates.append(rate)
        if isinstance(quality.get("probes"), dict):
            probed.append(quality["probes"])
    stage = VerifyStage(verify, cfg.execute.timeout, cfg.execute.memory_mb, lambda e: True)
    checks = []
    for rec, verdicts in LocalExecutor(lambda: None, workers).execute(stage, groups):
        checks += [c.model_copy(update={"faithfulness": faithfulness(rec.executed[0])})
                   for c in stage.parse(rec, verdicts)]
    from selfcodealign.verify.target import problems

    malformed = sum(bool(problems(g.executed[0].response.response, g.executed[0].response.code)) for g in groups)
    out = {"examples": len(groups) + sum(skipped.values()), "audited": len(groups),
           "not_audited": dict(skipped), **summarize_checks(checks), "malformed_target": malformed}
    if pass_rates:
        bins = Counter(min(4, int(5 * k / n)) if n else 0 for k, n in pass_rates)
        out["pass_rate"] = {f"{20 * b}-{20 * b + 20}%": bins[b] for b in range(5)}
    if probed:
        # Recorded by the pipeline's verify stage, which had the siblings an example lacks.
        out["probes_recorded"] = {"examples": len(probed),
                                  "disagreeing_with_a_sibling": sum(_count(p.get("disagreeing")) > 0 for p in probed)}
    return out


def format_audit(a: dict[str, Any]) -> list[str]:
    n = max(1, a["audited"])
    lines = [f"examples: {a['examples']} ({a['audited']} audited"
             + (f"; not audited: {json.dumps(a['not_audited'])}" if a["not_audited"] else "") + ")"]
    m = a.get("mutation")
    if m:
        lines += [f"mean mutation score: {m['mean_score']:.3f} ({m['mutants']} mutants, {m['killed']} killed, "
                  f"{m['timeouts']} by timeout, {m['crashed']} by crash)",
                  f"share with mutation score >= 0.5: {100 * m['share_at_least_0.5']:.1f}%",
                  f"share with an unexercised function: {100 * m['share_unexercised']:.1f}%"]
    for reason, label in (("missing", "missing an asked-for name"),
                          ("tests in solution", "with tests in the solution"),
                          ("tests use example code", "whose tests call example-usage code")):
        lines.append(f"share {label}: {100 * a['unfaithful'].get(reason, 0) / n:.1f}%")
    others = sorted((k, v) for k, v in a["unfaithful"].items()
                    if k not in ("missing", "tests in solution", "tests use example code"))
    for reason, count in sorted(others, key=lambda kv: -kv[1]):
        lines.append(f"share with {reason}: {100 * count / n:.1f}%")
    lines.append(f"share with a malformed training target: {100 * a.get('malformed_target', 0) / n:.1f}%")
    if "probes_recorded" in a:
        p = a["probes_recorded"]
        lines.append(f"examples run on probes beside their siblings: {p['examples']} "
                     f"({p['disagreeing_with_a_sibling']} differed from some sibling on a probe)")
    if "pass_rate" in a:
        lines.append("instruction pass rate (share of its responses passing): "
                     + ", ".join(f"{k} {v}" for k, v in a["pass_rate"].items()))
    return lines
