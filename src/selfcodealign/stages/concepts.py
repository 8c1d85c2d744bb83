"""S->C: list the programming concepts a seed function uses."""

from __future__ import annotations

from selfcodealign.backends.base import Completion, Prompt
from selfcodealign.ids import make_id
from selfcodealign.parsing import ParseError, parse_concepts
from selfcodealign.records import Concepts, Drop, GenMeta, Record, Seed
from selfcodealign.stages.base import PromptedStage


class ConceptsStage(PromptedStage):
    name = "concepts"
    step = "concepts"
    input_type = Seed
    output_type = Concepts
    reads = ("seeds",)

    def prompt(self, rec: Seed) -> Prompt:
        return self.prompts.concepts(rec.code)

    def parse_one(self, rec: Seed, index: int, comp: Completion, meta: GenMeta) -> Record | Drop:
        parsed = parse_concepts(comp.text)
        if isinstance(parsed, ParseError):
            return self.drop(rec, parsed.reason, parsed.detail, comp.text)
        return Concepts(
            id=make_id(rec.id, self.name, index), parent_id=rec.id, seed=rec,
            concepts=parsed, raw=comp.text, gen=meta,
        )
