"""Prompts for the three generation steps, in two styles over the same examples.

- completion: plain few-shot text, as in the paper; what base models need.
- chat: the same examples as user/assistant turns through the model's chat template.

Prompt evaluation dominates on a CPU, so every request of a step starts with the same
few-shot prefix (fixed shots in a fixed order) and only the last part varies: llama.cpp
and vLLM then serve the prefix from their prompt cache. The paper sampled shots at
random per request, which buys diversity but defeats the cache; we get diversity from
the seeds and from the category and difficulty sampled per task instead. The response
step uses one shot of the task's own category, so it has three cacheable prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from selfcodealign.backends.base import Prompt
from selfcodealign.errors import UserError
from selfcodealign.records import Category, Difficulty


class FewShotExample(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    language: str = "python"
    category: Category
    difficulty: Difficulty
    seed: str
    concepts: list[str]
    instruction: str
    response: str
    tests: str


# A Latin square over (category, difficulty): any first three shots cover every category
# and every difficulty once.
SHOT_ORDER = [
    ("function", "easy"), ("class", "medium"), ("program", "hard"),
    ("class", "easy"), ("program", "medium"), ("function", "hard"),
    ("program", "easy"), ("function", "medium"), ("class", "hard"),
]


class SystemPrompts(BaseModel):
    """Each generation step's system prompt (chat style; a completion prompt is its
    examples under a fixed header)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    concepts: str
    instructions: str
    responses: str


class PromptSet(BaseModel):
    """A prompts file: the system prompts and the few-shot examples (a file may give only
    some of them: ``_over_built_in``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    system: SystemPrompts
    examples: list[FewShotExample]


def load_prompts(path: str | Path | None = None) -> PromptSet:
    if path is None:
        text = resources.files("selfcodealign.prompts").joinpath("examples.yaml").read_text()
        where = "built-in prompts"
    else:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise UserError(f"cannot read prompts file {path}: {e.strerror}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text)
        if path is not None:
            data = _over_built_in(data)
        prompts = PromptSet.model_validate(data)
    except (yaml.YAMLError, TypeError, ValidationError) as e:
        raise UserError(
            f"{where}: not a prompts file (system prompts and few-shot examples: {type(e).__name__})"
        ) from None
    if not prompts.examples:
        raise UserError(f"{where}: no few-shot examples")
    rank = {key: i for i, key in enumerate(SHOT_ORDER)}
    ordered = sorted(prompts.examples, key=lambda e: rank.get((e.category, e.difficulty), len(rank)))
    return prompts.model_copy(update={"examples": ordered})


def _over_built_in(data):
    """A prompts file gives what it changes: a bare list of examples, or a mapping whose
    `system` may name only some steps and whose `examples` may be left out; the rest are
    the built-in prompts'."""
    built_in = load_prompts()
    if isinstance(data, list):
        return {"system": built_in.system.model_dump(), "examples": data}
    if not isinstance(data, dict):
        return data
    system = data.get("system", {})
    if isinstance(system, dict):
        system = {**built_in.system.model_dump(), **system}
    examples = data["examples"] if "examples" in data else [e.model_dump() for e in built_in.examples]
    return {**data, "system": system, "examples": examples}


def load_examples(path: str | Path | None = None) -> list[FewShotExample]:
    return load_prompts(path).examples


def _fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _example_response(ex: FewShotExample) -> str:
    return f"{ex.response.rstrip()}\n\n### Tests\n{_fence(ex.tests)}"


CONCEPTS_USER = "List the key programming concepts in this code:\n\n{code}"
INSTRUCTIONS_USER = "Concepts: {concepts}\nCategory: {category}\nDifficulty: {difficulty}"


@dataclass(frozen=True)
class PromptBuilder:
    style: str  # "chat" | "completion"
    examples: tuple[FewShotExample, ...]
    system: SystemPrompts
    shots_concepts: int = 6
    shots_instructions: int = 6
    shots_responses: int = 1

    @classmethod
    def load(cls, style: str, path: str | Path | None = None, **shots: int) -> PromptBuilder:
        """The prompts of a prompts file (None: the built-in one)."""
        prompts = load_prompts(path)
        return cls(style=style, examples=tuple(prompts.examples), system=prompts.system, **shots)

    # --- seed -> concepts -------------------------------------------------------------
    def concepts(self, seed_code: str) -> Prompt:
        shots = self.examples[: self.shots_concepts]
        if self.style == "chat":
            msgs = [{"role": "system", "content": self.system.concepts}]
            for ex in shots:
                msgs.append({"role": "user", "content": CONCEPTS_USER.format(code=_fence(ex.seed))})
                msgs.append({"role": "assistant", "content": ", ".join(ex.concepts)})
            msgs.append({"role": "user", "content": CONCEPTS_USER.format(code=_fence(seed_code))})
            return msgs
        parts = ["Key programming concepts used by Python code snippets.\n"]
        for ex in shots:
            parts.append(f"### Snippet\n{_fence(ex.seed)}\n### Concepts\n{', '.join(ex.concepts)}\n")
        parts.append(f"### Snippet\n{_fence(seed_code)}\n### Concepts\n")
        return "\n".join(parts)

    # --- concepts -> instruction ------------------------------------------------------
    def instruction(self, concepts: list[str], category: str, difficulty: str) -> Prompt:
        shots = self.examples[: self.shots_instructions]
        if self.style == "chat":
            msgs = [{"role": "system", "content": self.system.instructions}]
            for ex in shots:
                msgs.append({"role": "user", "content": INSTRUCTIONS_USER.format(
                    concepts=", ".join(ex.concepts), category=ex.category, difficulty=ex.difficulty)})
                msgs.append({"role": "assistant", "content": ex.instruction.strip()})
            msgs.append({"role": "user", "content": INSTRUCTIONS_USER.format(
                concepts=", ".join(concepts), category=category, difficulty=difficulty)})
            return msgs
        parts = ["Self-contained Python programming tasks written from a list of concepts.\n"]
        for ex in shots:
            parts.append(
                f"### Concepts\n{', '.join(ex.concepts)}\n### Category\n{ex.category}\n"
                f"### Difficulty\n{ex.difficulty}\n### Instruction\n{ex.instruction.strip()}\n"
            )
        parts.append(
            f"### Concepts\n{', '.join(concepts)}\n### Category\n{category}\n"
            f"### Difficulty\n{difficulty}\n### Instruction\n"
        )
        return "\n".join(parts)

    # --- instruction -> response ------------------------------------------------------
    def _response_shots(self, category: str) -> list[FewShotExample]:
        # Shots of the task's own category first (medium difficulty preferred).
        order = sorted(
            self.examples,
            key=lambda e: (e.category != category, e.difficulty != "medium"),
        )
        return order[: self.shots_responses]

    def response(self, instruction: str, category: str) -> Prompt:
        shots = self._response_shots(category)
        if self.style == "chat":
            msgs = [{"role": "system", "content": self.system.responses}]
            for ex in shots:
                msgs.append({"role": "user", "content": ex.instruction.strip()})
                msgs.append({"role": "assistant", "content": _example_response(ex)})
            msgs.append({"role": "user", "content": instruction.strip()})
            return msgs
        parts = ["Python programming tasks, each answered with a solution and its tests.\n"]
        for ex in shots:
            parts.append(f"### Instruction\n{ex.instruction.strip()}\n### Response\n{_example_response(ex)}\n")
        parts.append(f"### Instruction\n{instruction.strip()}\n### Response\n")
        return "\n".join(parts)

    def required_section(self, step: str) -> tuple[str, str] | None:
        """Responses must end with their tests: one that stops without them is continued
        from "### Tests" (see SamplingParams.require)."""
        return ("### Tests", "\n\n### Tests\n```python\n") if step == "responses" else None

    # Stop strings per step (completion style needs them to end one example).
    def stops(self, step: str) -> tuple[str, ...]:
        if self.style == "chat":
            return ()
        return {
            "concepts": ("\n###", "\n\n"),
            "instructions": ("\n### ",),
            "responses": ("\n### Instruction",),
            "judge": ("\n",),
        }[step]
