"""The pipeline's stages, in order: one registry that `run`, the single-stage commands and
the run directory's file names all come from. Each stage's class gives its name, its
input and output record types and the stages it reads (``Stage.reads``)."""

from __future__ import annotations

from dataclasses import dataclass

from selfcodealign.stages.base import Stage
from selfcodealign.stages.concepts import ConceptsStage
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.instructions import InstructionsStage
from selfcodealign.stages.judge import JudgeStage
from selfcodealign.stages.responses import ResponsesStage
from selfcodealign.stages.seeds import SeedsStage
from selfcodealign.stages.select import SelectStage
from selfcodealign.stages.verify import VerifyStage


@dataclass(frozen=True)
class StageSpec:
    cls: type[Stage]
    file: str  # its output in a run directory
    help: str

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def defaults(self) -> dict:
        """Its settings under a default config: a setting newer than an output counts as
        unchanged while it keeps its default (``settings_diff.changed_keys``)."""
        from selfcodealign.config import RunConfig

        return self.cls.settings(RunConfig())


STAGES: tuple[StageSpec, ...] = (
    StageSpec(SeedsStage, "seeds.jsonl", "mine seed functions (with docstrings, filtered) from a corpus"),
    StageSpec(ConceptsStage, "concepts.jsonl", "S->C: list the programming concepts of each seed"),
    StageSpec(InstructionsStage, "instructions.jsonl", "C->I: write a new task from each seed's concepts"),
    StageSpec(ResponsesStage, "responses.jsonl", "I->R: answer each task several times, with tests"),
    StageSpec(ExecuteStage, "executed.jsonl", "run every response with its tests in the sandbox"),
    StageSpec(VerifyStage, "verified.jsonl",
              "check the passing responses: mutants, faithfulness, agreement"),
    StageSpec(JudgeStage, "judged.jsonl",
              "ask the model whether each passing response meets each requirement (judge.enabled)"),
    StageSpec(SelectStage, "dataset.jsonl", "keep one passing response per task; write the dataset"),
)
BY_NAME: dict[str, StageSpec] = {s.name: s for s in STAGES}
