"""Verification: do a response's tests test, and does it answer what was asked?

One input is an instruction with its executed responses. For each response that passed
its own tests (meaningfully), three checks:

- faithfulness (static): the names and arities the instruction asks for exist, the
  solution holds no tests of its own, the tests call nothing only the example usage
  defines (``selfcodealign.verify.faithful``);
- mutation: mutants of its solution run against its tests; the share they kill is how
  much the tests check, and a function whose body can raise unnoticed is unexercised
  (``selfcodealign.verify.mutants``);
- agreement: its tests run against every sibling's code, and its code against every
  passing sibling's tests (dual execution agreement, as in CodeT);
- probes: the task's function runs on new inputs (the tests' literal arguments, mutated
  by type) beside every passing sibling's, and returned values that differ are counted
  (``selfcodealign.verify.probes``).

All programs of an instruction go to the sandbox as one batch. Mutants and sibling code
are hostile like any generated code; they get a short timeout derived from the original
run's duration (a mutant that loops forever is killed, and should not cost 10 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfcodealign.checks import build_program, parse_ok, strip_main_guard
from selfcodealign.ids import make_id
from selfcodealign.records import (
    Agreement,
    Checks,
    Drop,
    Executed,
    Mutation,
    Probes,
    Record,
    Verdict,
)
from selfcodealign.stages.base import ExecutionStage
from selfcodealign.verify import faithful
from selfcodealign.verify import probes as probing
from selfcodealign.verify.mutants import mutants

KILLED = {"failed", "timeout", "crashed", "oom"}


@dataclass(frozen=True)
class InstructionResponses:
    """One instruction's executed responses: the verify stage's input (made from
    executed.jsonl, not stored)."""

    id: str  # the instruction's id
    executed: tuple[Executed, ...]


@dataclass(frozen=True)
class _Job:
    kind: str  # "mutant" | "cross" | "probe"
    owner: int  # index (in the group) of the response whose tests (probe: code) run
    other: int  # cross: whose code runs; mutant and probe: -1
    detail: str  # mutant: operator:detail; probe: the function called


def group_by_instruction(executed: list[Executed]) -> list[InstructionResponses]:
    groups: dict[str, list[Executed]] = {}
    for e in executed:
        groups.setdefault(e.response.parent_id, []).append(e)
    return [InstructionResponses(k, tuple(sorted(v, key=lambda e: e.response.sample_index)))
            for k, v in sorted(groups.items())]


class VerifyStage(ExecutionStage):
    name = "verify"
    input_type = InstructionResponses
    output_type = Checks
    reads = ("execute",)
    takes_limit = False  # its inputs are groups: a cut would split one

    @classmethod
    def from_config(cls, cfg, env=None) -> VerifyStage:
        from selfcodealign.stages.execute import ExecuteStage

        return cls(cfg.verify, cfg.execute.timeout, cfg.execute.memory_mb,
                   ExecuteStage(cfg.execute).counts_as_pass)

    @classmethod
    def settings(cls, cfg) -> dict[str, Any]:
        return cls.from_config(cfg).config_key()

    @classmethod
    def enabled(cls, cfg) -> bool:
        v = cfg.verify
        return bool(v.mutation or v.agreement or v.faithfulness or v.probes)

    def inputs(self, upstream: dict[str, Any]) -> list[InstructionResponses]:
        return group_by_instruction(upstream["execute"])

    @classmethod
    def summarize(cls, files, outputs) -> dict[str, Any]:
        from selfcodealign.ledger import stage_summary

        return {**stage_summary(files), **summarize_checks(outputs)}

    def __init__(self, cfg, timeout: float, memory_mb: int, passes: Callable[[Executed], bool]):
        self.cfg = cfg
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.passes = passes
        self._plans: dict[str, tuple[list[_Job], Any]] = {}  # jobs and the probe plan, by instruction

    def config_key(self) -> dict[str, Any]:
        return {"verify": self.cfg.model_dump(mode="json"), "timeout": self.timeout,
                "memory_mb": self.memory_mb}

    # ---- what to run ---------------------------------------------------------------

    def _limit(self, *durations: float) -> float:
        return min(self.timeout, max(self.cfg.min_timeout, self.cfg.timeout_factor * max(durations)))

    def _plan(self, rec: InstructionResponses) -> tuple[list[_Job], list, Any]:
        """The jobs, their programs, and the probe plan (the function and its probes, or
        None)."""
        group = rec.executed
        passing = [i for i, e in enumerate(group) if self.passes(e)]
        jobs: list[_Job] = []
        programs: list = []
        from selfcodealign.sandbox import Program

        def add(job: _Job, code: str, tests: str, timeout: float) -> None:
            c, t = build_program(code, tests)
            jobs.append(job)
            programs.append(Program(id=f"{rec.id}:{len(jobs)}", code=c, tests=t, timeout=timeout,
                                    memory_mb=self.memory_mb))

        for i in passing:
            e = group[i]
            if self.cfg.mutation:
                for m in mutants(e.response.code, self.cfg.max_mutants, seed=0):
                    add(_Job("mutant", i, -1, f"{m.operator}:{m.detail}"), m.code, e.response.tests,
                        self._limit(e.verdict.duration))
            if self.cfg.agreement:
                for j, other in enumerate(group):
                    if j != i and parse_ok(other.response.code):
                        add(_Job("cross", i, j, ""), other.response.code, e.response.tests,
                            self._limit(e.verdict.duration, other.verdict.duration))
        plan = self._probe_plan(group, passing)
        if plan is not None:
            name, inputs = plan
            source = probing.harness(name, inputs)
            for i in passing:
                # Each call has its own alarm: the run takes its usual time plus the probes'.
                limit = min(self.timeout, self._limit(group[i].verdict.duration)
                            + len(inputs) * probing.CALL_LIMIT_S)
                jobs.append(_Job("probe", i, -1, name))
                programs.append(Program(id=f"{rec.id}:{len(jobs)}", code=strip_main_guard(group[i].response.code),
                                        tests=source, timeout=limit, memory_mb=self.memory_mb))
        return jobs, programs, plan

    def _probe_plan(self, group, passing: list[int]):
        """The function to probe and the probes, when at least two passing responses
        define it (else None)."""
        if not self.cfg.probes or len(passing) < 2 or group[0].response.instruction.category == "program":
            return None
        codes = [group[i].response.code for i in passing]
        tests = [e.response.tests for e in group]
        name = probing.entry_point(codes, tests)
        if name is None:
            return None
        seeds = [p for t in tests for _, p in probing.literal_calls(t, {name})]
        inputs = probing.make_probes(seeds, self.cfg.probes)
        return (name, inputs) if inputs else None

    def _unfaithful(self, e: Executed) -> list[str]:
        if not self.cfg.faithfulness:
            return []
        return faithfulness(e)

    def programs(self, rec: InstructionResponses) -> list:
        jobs, programs, plan = self._plan(rec)
        self._plans[rec.id] = (jobs, plan)
        return programs

    # ---- what it means -------------------------------------------------------------

    def parse(self, rec: InstructionResponses, verdicts: list[Verdict]) -> list[Record | Drop]:
        planned = self._plans.pop(rec.id, None)
        if planned is None:
            jobs, _, plan = self._plan(rec)
        else:
            jobs, plan = planned
        group = rec.executed
        passing = [i for i, e in enumerate(group) if self.passes(e)]
        rate = (len(passing), len(group))
        runs: dict[int, list[tuple[_Job, Verdict]]] = {i: [] for i in passing}
        for job, v in zip(jobs, verdicts):
            runs[job.owner].append((job, v))
        cross = {(job.owner, job.other): v.status == "passed"
                 for jobs_of in runs.values() for job, v in jobs_of if job.kind == "cross"}
        probed = self._probe_results(runs, plan) if plan is not None else {}
        out: list[Record | Drop] = []
        for i in passing:
            e = group[i]
            mine = runs[i]
            mutation = _mutation([(j, v) for j, v in mine if j.kind == "mutant"]) if self.cfg.mutation else None
            agreement = None
            if self.cfg.agreement:
                others = [j for j in range(len(group)) if (i, j) in cross]
                peers = [k for k in passing if k != i]
                mine_passed = sum(cross[(i, j)] for j in others)
                others_agree = any(cross.get((a, b)) and cross.get((b, a)) for a in peers for b in peers if a < b)
                agreement = Agreement(
                    siblings=len(others), pass_my_tests=mine_passed, passing_siblings=len(peers),
                    my_code_passes=sum(cross.get((k, i), False) for k in peers),
                    suspect=bool(others) and mine_passed == 0 and others_agree)
            out.append(Checks(id=make_id(e.id, self.name), parent_id=e.id, instruction_id=rec.id,
                              faithfulness=self._unfaithful(e), mutation=mutation,
                              agreement=agreement, probes=probed.get(i), pass_rate=rate))
        return out

    @staticmethod
    def _probe_results(runs: dict[int, list[tuple[_Job, Verdict]]], plan) -> dict[int, Probes]:
        """Each probed response's answers beside its passing siblings'. A response whose
        run printed no answers (it crashed, or the run timed out) gets no record."""
        name, inputs = plan
        answers: dict[int, list[str]] = {}
        for i, jobs_of in runs.items():
            for job, v in jobs_of:
                out = probing.read_outputs(v.stdout, len(inputs)) if job.kind == "probe" else None
                if out is not None:
                    answers[i] = out
        results: dict[int, Probes] = {}
        for i, mine in answers.items():
            others = [theirs for j, theirs in answers.items() if j != i]
            differing = [(theirs, d) for theirs in others if (d := probing.disagreements(mine, theirs))]
            example = ""
            if differing:
                theirs, (k, *_) = differing[0]
                example = f"{inputs[k].show(name)}: {probing.shown(mine[k])} != {probing.shown(theirs[k])}"
            results[i] = Probes(function=name, made=len(mine), answered=sum(map(probing.is_value, mine)),
                                compared=len(others), disagreeing=len(differing), example=example)
        return results


def faithfulness(e: Executed) -> list[str]:
    """Why a response does not answer its instruction, or cannot teach it (empty: no
    reason found). Each reason reads "category: detail"; selection counts the category."""
    from selfcodealign.parsing import ParseError, parse_response
    from selfcodealign.verify import assertions, explanation, requirements, trivial

    r = e.response
    ins = r.instruction
    reasons = [f"missing: {m}" for m in faithful.missing_names(ins.instruction, r.code)]
    reasons += [f"tests in solution: {t}" for t in faithful.solution_test_code(r.code)]
    reasons += [f"example usage in solution: {t}" for t in faithful.solution_example_code(r.code, ins.category)]
    parsed = parse_response(r.response)
    blocks = list(parsed.blocks) if not isinstance(parsed, ParseError) else []
    reasons += [f"tests use example code: {n}" for n in faithful.names_from_examples(blocks, r.tests)]
    for req in requirements.unmet(ins.instruction, r.code, ins.category):
        kind = req.split(" ", 1)[0]
        reasons.append(f"complexity claim: {req.split(' ', 1)[1]}" if kind == "complexity"
                       else f"unmet requirement: {req}")
    answer = parsed.answer if not isinstance(parsed, ParseError) and parsed.answer else r.response
    reasons += [f"explanation names: {n}" for n in explanation.unknown_names(answer, r.code, ins.instruction)]
    reasons += [f"unused import: {n}" for n in explanation.unused_imports(r.code)]
    reasons += [f"undefined name: {n}" for n in explanation.undefined_names(r.code)]
    reasons += [f"tests raise what they expect: {x}" for x in assertions.self_raised(r.tests)]
    reasons += [f"tests swallow failures: {x}" for x in assertions.swallowed(r.tests)]
    reasons += [f"tests cannot fail: {x}" for x in assertions.no_fail_expectation(r.tests)]
    reasons += [f"special-cases the example: {x}" for x in assertions.special_cases(ins.instruction, r.code)]
    reasons += [f"tests only the example: {x}" for x in assertions.only_the_example(ins.instruction, r.tests)]
    reasons += [f"untested error: {x}" for x in assertions.untested_errors(ins.instruction, ins.category, r.tests)]
    reasons += [f"trivial: {x}" for x in trivial.one_liner(r.code) or trivial.spelled_out(ins.instruction, r.code)]
    return reasons


def _mutation(runs: list[tuple[_Job, Verdict]]) -> Mutation:
    made = [(j, v) for j, v in runs if v.status != "error"]
    killed = [(j, v) for j, v in made if v.status in KILLED]
    survived = {j.detail.split(":", 1)[1] for j, v in made
                if v.status == "passed" and j.detail.startswith("raise:")}
    return Mutation(
        made=len(made), killed=len(killed),
        timeouts=sum(v.status == "timeout" for _, v in killed),
        crashed=sum(v.status in ("crashed", "oom") for _, v in killed),
        errors=len(runs) - len(made), unexercised=sorted(survived),
    )


def summarize_checks(checks: list[Checks]) -> dict[str, Any]:
    """Quality figures over verified responses, for summary.json and `audit`."""
    scored = [c.mutation for c in checks if c.mutation is not None and c.mutation.made]
    scores = [m.score for m in scored]
    unfaithful: dict[str, int] = {}
    for c in checks:
        for reason in {r.split(":", 1)[0] for r in c.faithfulness}:
            unfaithful[reason] = unfaithful.get(reason, 0) + 1
    out: dict[str, Any] = {"responses_checked": len(checks), "unfaithful": unfaithful}
    probed = [c.probes for c in checks if c.probes is not None]
    if probed:
        out["probes"] = {"responses_probed": len(probed), "made": sum(p.made for p in probed),
                         "disagreeing_with_a_sibling": sum(p.disagreeing > 0 for p in probed),
                         "unsettled": sum(p.unsettled for p in probed)}
    agreed = [c.agreement for c in checks if c.agreement is not None]
    if agreed:
        out["agreement"] = {
            "with_siblings": sum(a.siblings > 0 for a in agreed),
            "tests_no_sibling_passes": sum(a.siblings > 0 and a.pass_my_tests == 0 for a in agreed),
            "suspect_tests": sum(a.suspect for a in agreed),
        }
    if scored:
        out["mutation"] = {
            "mean_score": round(sum(scores) / len(scores), 4),
            "share_at_least_0.5": round(sum(s >= 0.5 for s in scores) / len(scores), 4),
            "share_unexercised": round(sum(bool(m.unexercised) for m in scored) / len(scored), 4),
            "mutants": sum(m.made for m in scored), "killed": sum(m.killed for m in scored),
            "timeouts": sum(m.timeouts for m in scored), "crashed": sum(m.crashed for m in scored),
        }
    return out
