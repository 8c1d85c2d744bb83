"""What a stage is: records in, records (or counted drops) out.

Stages know nothing about threads, servers, Ray or files. A generation stage turns one
input into one prompt (with n samples) and parses the completions; the execute stage
turns one input into one sandbox program and reads its verdict. Executors (see
``selfcodealign.executors``) own the parallelism and the files.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from selfcodealign.backends.base import Completion, Prompt, SamplingParams
from selfcodealign.records import Drop, Record

if TYPE_CHECKING:
    from selfcodealign.config import GenerationConfig
    from selfcodealign.prompts import PromptBuilder
    from selfcodealign.records import GenMeta


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the generating model, recorded in every generated record."""

    model: str
    model_sha256: str | None
    backend: str
    prompt_style: str
    model_sha256_note: str | None = None  # why model_sha256 is None


class Stage(abc.ABC):
    name: ClassVar[str]
    input_type: ClassVar[type[Record]]
    output_type: ClassVar[type[Record]]

    def drop(self, rec: Record, reason: str, detail: str = "", raw: str = "") -> Drop:
        return Drop(input_id=rec.id, stage=self.name, reason=reason, detail=detail[:500], raw=raw)

    @abc.abstractmethod
    def config_key(self) -> dict[str, Any]:
        """The settings that change this stage's output (a change needs --force)."""


class GenerationStage(Stage):
    @abc.abstractmethod
    def request(self, rec: Record) -> tuple[Prompt, SamplingParams]:
        """One prompt for this input (``SamplingParams.n`` samples of it)."""

    @abc.abstractmethod
    def parse(self, rec: Record, completions: list[Completion]) -> list[Record | Drop]:
        """Outputs and drops for this input."""


class ExecutionStage(Stage):
    @abc.abstractmethod
    def programs(self, rec: Record) -> list[Any]:
        """The ``selfcodealign.sandbox.Program``s to run for this input (maybe none)."""

    @abc.abstractmethod
    def parse(self, rec: Record, verdicts: list[Any]) -> list[Record | Drop]:
        """Outputs and drops for this input, given its programs' verdicts, in order."""


def gen_meta(info: ModelInfo, sp: SamplingParams, sample: int, comp: Completion) -> "GenMeta":
    from selfcodealign.records import GenMeta

    return GenMeta(
        model=info.model,
        model_sha256=info.model_sha256,
        model_sha256_note=info.model_sha256_note,
        backend=info.backend,
        prompt_style=info.prompt_style,
        temperature=sp.temperature,
        top_p=sp.top_p,
        max_tokens=sp.max_tokens,
        seed=(sp.seed + sample) % (2**31 - 1),
        finish_reason=comp.finish_reason,
        prompt_tokens=comp.prompt_tokens,
        completion_tokens=comp.completion_tokens,
    )


class PromptedStage(GenerationStage):
    """A generation stage driven by a GenerationConfig and the prompt builder: subclasses
    say which prompt to build (``prompt``) and how to read one completion (``parse_one``)."""

    step: ClassVar[str]  # key for shots and stop strings

    def __init__(self, gen: "GenerationConfig", prompts: "PromptBuilder", info: ModelInfo,
                 base_seed: int = 0, key: dict[str, Any] | None = None):
        self.gen, self.prompts, self.info, self.base_seed = gen, prompts, info, base_seed
        # What identifies this stage's settings (see pipeline.generation_key).
        self.key = key if key is not None else {"generation": gen.model_dump(mode="json")}

    def config_key(self) -> dict[str, Any]:
        return self.key

    def sampling(self, rec: Record) -> SamplingParams:
        from selfcodealign.ids import sampling_seed

        return SamplingParams(
            n=self.gen.n, temperature=self.gen.temperature, top_p=self.gen.top_p,
            max_tokens=self.gen.max_tokens, stop=self.prompts.stops(self.step),
            seed=sampling_seed(rec.id, self.name, 0, self.base_seed),
            require=self.prompts.required_section(self.step),
        )

    @abc.abstractmethod
    def prompt(self, rec: Record) -> Prompt: ...

    @abc.abstractmethod
    def parse_one(self, rec: Record, index: int, comp: Completion, meta: "GenMeta") -> Record | Drop: ...

    def request(self, rec: Record) -> tuple[Prompt, SamplingParams]:
        return self.prompt(rec), self.sampling(rec)

    def parse(self, rec: Record, completions: list[Completion]) -> list[Record | Drop]:
        sp = self.sampling(rec)
        out: list[Record | Drop] = []
        for i, comp in enumerate(completions):
            if comp.finish_reason == "error":
                out.append(self.drop(rec, "engine_error"))
            else:
                out.append(self.parse_one(rec, i, comp, gen_meta(self.info, sp, i, comp)))
        return out
