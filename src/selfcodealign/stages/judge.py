"""The judge: the model asked, for each requirement sentence of an instruction, whether a
passing response meets it (``selfcodealign.verify.judge``). Off by default (``judge.enabled``).

Its input is one (response, requirement) pair; only the passing responses that verify
found no reason against are judged, since selection drops the others anyway (without
verify, every response that passed with meaningful tests). An answer
that is neither yes nor no is a counted drop (``unclear_judgement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfcodealign.backends.base import Completion, Prompt
from selfcodealign.ids import make_id
from selfcodealign.records import Checks, Drop, Executed, GenMeta, Judgement, Record
from selfcodealign.stages.base import PromptedStage
from selfcodealign.verify.judge import judge_prompt, parse_verdict, requirement_sentences


@dataclass(frozen=True)
class JudgeItem:
    """One requirement of one passing response: the judge stage's input (made from
    executed.jsonl and verified.jsonl, not stored)."""

    id: str
    executed: Executed
    requirement: str


class JudgeStage(PromptedStage):
    name = "judge"
    step = "judge"
    input_type = JudgeItem
    output_type = Judgement
    reads = ("execute", "verify")
    takes_limit = False

    @classmethod
    def enabled(cls, cfg) -> bool:
        return cfg.judge.enabled

    def inputs(self, upstream: dict[str, Any]) -> list[JudgeItem]:
        checks: list[Checks] | None = upstream.get("verify")
        clean = None if checks is None else {c.parent_id for c in checks if not c.faithfulness}
        items = []
        for e in upstream["execute"]:
            # Without verify: every response that passed with meaningful tests.
            if (e.id not in clean) if clean is not None else not (e.verdict.status == "passed" and e.meaningful_tests):
                continue
            ins = e.response.instruction.instruction
            for k, sentence in enumerate(requirement_sentences(ins, self.gen.max_requirements)):
                items.append(JudgeItem(make_id(e.id, self.name, k), e, sentence))
        return items

    def prompt(self, rec: JudgeItem) -> Prompt:
        r = rec.executed.response
        return judge_prompt(r.instruction.instruction, r.code, rec.requirement, self.prompts.style)

    def parse_one(self, rec: JudgeItem, index: int, comp: Completion, meta: GenMeta) -> Record | Drop:
        verdict = parse_verdict(comp.text)
        if verdict is None:
            return self.drop(rec, "unclear_judgement", rec.requirement, comp.text)
        return Judgement(id=make_id(rec.id, index), parent_id=rec.executed.id,
                         instruction_id=rec.executed.response.parent_id, requirement=rec.requirement,
                         satisfied=verdict, raw=comp.text, gen=meta)
