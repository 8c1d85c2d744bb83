"""What a stage is: records in, records (or counted drops) out.

Stages know nothing about threads, servers, Ray or files. A generation stage turns one
input into one prompt (with n samples) and parses the completions; the execute stage
turns one input into one sandbox program and reads its verdict. Executors (see
``selfcodealign.executors``) own the parallelism and the files.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from selfcodealign.backends.base import Completion, Prompt, SamplingParams
from selfcodealign.records import Drop, Record

if TYPE_CHECKING:
    from selfcodealign.config import GenerationConfig, RunConfig
    from selfcodealign.ledger import StageFiles
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
    """One step of the pipeline. The registry (``selfcodealign.stages.STAGES``) lists them
    in order; ``reads`` names the stages whose outputs a stage takes (the first is its
    command's --in)."""

    name: ClassVar[str]
    input_type: ClassVar[type]
    output_type: ClassVar[type[Record]]
    reads: ClassVar[tuple[str, ...]] = ()
    # Whether a single-stage command may take only the first N inputs (--limit).
    takes_limit: ClassVar[bool] = True
    # The stage whose commits may feed this one while it runs (execution following generation).
    follows: ClassVar[str | None] = None
    # False: redone on every run (it takes seconds), rather than kept once complete; its
    # settings are then not checked against the saved ones.
    keeps_output: ClassVar[bool] = True

    @classmethod
    @abc.abstractmethod
    def from_config(cls, cfg: RunConfig, env: StageEnv) -> Stage:
        """The stage as a run with this config makes it."""

    @classmethod
    @abc.abstractmethod
    def settings(cls, cfg: RunConfig) -> dict[str, Any]:
        """The settings that change this stage's output (a change needs --force)."""

    @classmethod
    def enabled(cls, cfg: RunConfig) -> bool:
        return True

    def config_key(self) -> dict[str, Any]:
        return self.key

    def inputs(self, upstream: dict[str, Any]) -> Any:
        """This stage's input, from the outputs of the stages it reads."""
        return upstream[self.reads[0]]

    @classmethod
    def outputs(cls, files: StageFiles, cfg: RunConfig) -> Any:
        """What the next stages read of this one's output file."""
        from selfcodealign.jsonl import read_records

        return list(read_records(files.out, cls.output_type))

    @classmethod
    def summarize(cls, files: StageFiles, outputs: Any) -> dict[str, Any]:
        from selfcodealign.ledger import stage_summary

        return stage_summary(files)

    def drop(self, rec: Record, reason: str, detail: str = "", raw: str = "") -> Drop:
        return Drop(input_id=rec.id, stage=self.name, reason=reason, detail=detail[:500], raw=raw)


class WholeStage(Stage):
    """A stage that writes its output whole, not input by input through a ledger."""

    @abc.abstractmethod
    def write(self, inputs: Any, files: StageFiles, quiet: bool) -> None:
        """Write the output (and the state, with ``complete``) for these inputs."""


class StageEnv:
    """What stages are made of besides the config: the executor (made on first use, so a
    stage that needs no model or sandbox starts none) and the model's identity and prompts
    (read once)."""

    def __init__(self, cfg: RunConfig, make_executor: Callable[[], Any]) -> None:
        self.cfg = cfg
        self._make_executor = make_executor
        self._executor = None
        self._model: tuple[ModelInfo, PromptBuilder] | None = None
        self.model_load_s: float | None = None

    @property
    def executor(self):
        if self._executor is None:
            self._executor = self._make_executor()
        return self._executor

    def model(self) -> tuple[ModelInfo, PromptBuilder]:
        if self._model is None:
            t = time.monotonic()
            self._model = model_info_and_prompts(self.cfg, self.executor.backend)
            self.model_load_s = round(time.monotonic() - t, 2)
        return self._model

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()


def generation_key(cfg: RunConfig, stage: str) -> dict[str, Any]:
    """The settings that change a generation stage's output; engine speed knobs
    (slots, threads, concurrency, timeouts) are left out."""
    b = cfg.backend
    return {
        "generation": getattr(cfg, stage).model_dump(mode="json"),
        "backend": {"kind": b.kind, "model": b.model, "base_url": b.base_url, "model_name": b.model_name,
                    "engine": b.engine},
        "prompts": cfg.prompts.model_dump(mode="json"),
        "seed": cfg.seed,
        "shard": cfg.shard,
    }


def model_info_and_prompts(cfg: RunConfig, backend) -> tuple[ModelInfo, PromptBuilder]:
    from selfcodealign.prompts import PromptBuilder

    style = cfg.prompts.style
    if style == "auto":
        style = "chat" if backend.has_chat_template else "completion"
    info = ModelInfo(model=backend.model_id, model_sha256=backend.model_sha256,
                     model_sha256_note=backend.model_sha256_note,
                     backend=backend.name, prompt_style=style)
    prompts = PromptBuilder.load(
        style, cfg.prompts.examples,
        shots_concepts=cfg.prompts.shots_concepts,
        shots_instructions=cfg.prompts.shots_instructions,
        shots_responses=cfg.prompts.shots_responses,
    )
    return info, prompts


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


def gen_meta(info: ModelInfo, sp: SamplingParams, sample: int, comp: Completion) -> GenMeta:
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

    def __init__(self, gen: GenerationConfig, prompts: PromptBuilder, info: ModelInfo,
                 base_seed: int = 0, key: dict[str, Any] | None = None):
        self.gen, self.prompts, self.info, self.base_seed = gen, prompts, info, base_seed
        self.key = key if key is not None else {"generation": gen.model_dump(mode="json")}

    @classmethod
    def from_config(cls, cfg: RunConfig, env: StageEnv) -> PromptedStage:
        info, prompts = env.model()
        return cls(getattr(cfg, cls.name), prompts, info, cfg.seed, cls.settings(cfg))

    @classmethod
    def settings(cls, cfg: RunConfig) -> dict[str, Any]:
        return generation_key(cfg, cls.name)

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
    def parse_one(self, rec: Record, index: int, comp: Completion, meta: GenMeta) -> Record | Drop: ...

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
