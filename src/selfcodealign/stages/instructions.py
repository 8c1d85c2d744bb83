"""C->I: a new, self-contained task from concepts, a category and a difficulty."""

from __future__ import annotations

import random

from selfcodealign.backends.base import Completion, Prompt
from selfcodealign.ids import make_id
from selfcodealign.parsing import ParseError, parse_instruction
from selfcodealign.records import Concepts, Drop, GenMeta, Instruction, Record
from selfcodealign.stages.base import PromptedStage
from selfcodealign.verify.requirements import packages, seed_package, unanswerable

CATEGORIES = ("function", "class", "program")
DIFFICULTIES = ("easy", "medium", "hard")


def task_properties(record_id: str, base_seed: int = 0, categories=CATEGORIES,
                    difficulties=DIFFICULTIES) -> tuple[str, str]:
    """Category and difficulty, sampled uniformly from the allowed ones but fixed by the
    record id."""
    rng = random.Random(make_id(base_seed, "properties", record_id))
    return rng.choice(list(categories)), rng.choice(list(difficulties))


class InstructionsStage(PromptedStage):
    name = "instructions"
    step = "instructions"
    input_type = Concepts
    output_type = Instruction
    reads = ("concepts",)

    def properties(self, rec: Concepts) -> tuple[str, str]:
        return task_properties(rec.id, self.base_seed, self.gen.categories, self.gen.difficulties)

    def concepts(self, rec: Concepts) -> list[str]:
        """The concepts the task is written from: all of them, or a sample of
        `max_concepts` (in their listed order) fixed by the record id."""
        k = self.gen.max_concepts
        if k is None or len(rec.concepts) <= k:
            return list(rec.concepts)
        rng = random.Random(make_id(self.base_seed, "concepts", rec.id))
        return [rec.concepts[i] for i in sorted(rng.sample(range(len(rec.concepts)), k))]

    def prompt(self, rec: Concepts) -> Prompt:
        category, difficulty = self.properties(rec)
        return self.prompts.instruction(self.concepts(rec), category, difficulty)

    def parse_one(self, rec: Concepts, index: int, comp: Completion, meta: GenMeta) -> Record | Drop:
        parsed = parse_instruction(comp.text, comp.finish_reason)
        if isinstance(parsed, ParseError):
            return self.drop(rec, parsed.reason, parsed.detail, comp.text)
        if self.gen.drop_unanswerable:
            why = unanswerable(parsed)
            if why:
                return self.drop(rec, "unanswerable_instruction", "; ".join(why), comp.text)
        category, difficulty = self.properties(rec)
        if self.gen.drop_packages:
            named = packages(parsed, category, seed_package(rec.seed.path))
            if named:
                return self.drop(rec, "names_a_package", ", ".join(named), comp.text)
        return Instruction(
            id=make_id(rec.id, self.name, index), parent_id=rec.id, seed_id=rec.seed.id,
            seed_source=rec.seed.source, seed_path=rec.seed.path, concepts=self.concepts(rec),
            category=category, difficulty=difficulty, instruction=parsed, raw=comp.text, gen=meta,
        )
