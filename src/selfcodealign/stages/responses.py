"""I->R: several responses per task, each with its own tests."""

from __future__ import annotations

from selfcodealign.backends.base import Completion, Prompt
from selfcodealign.ids import make_id
from selfcodealign.parsing import ParseError, parse_response
from selfcodealign.records import Drop, GenMeta, Instruction, Record, Response
from selfcodealign.stages.base import PromptedStage


class ResponsesStage(PromptedStage):
    name = "responses"
    step = "responses"
    input_type = Instruction
    output_type = Response
    reads = ("instructions",)

    def prompt(self, rec: Instruction) -> Prompt:
        return self.prompts.response(rec.instruction, rec.category)

    def parse_one(self, rec: Instruction, index: int, comp: Completion, meta: GenMeta) -> Record | Drop:
        parsed = parse_response(comp.text, comp.finish_reason)
        if isinstance(parsed, ParseError):
            return self.drop(rec, parsed.reason, parsed.detail, comp.text)
        return Response(
            id=make_id(rec.id, self.name, index), parent_id=rec.id, sample_index=index,
            instruction=rec, response=parsed.response, code=parsed.code, tests=parsed.tests,
            raw=comp.text, gen=meta,
        )
