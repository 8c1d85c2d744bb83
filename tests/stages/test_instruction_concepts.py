"""`instructions.max_concepts`: a task is written from at most that many of its seed's
concepts, a sample fixed by the record id, in their listed order, and the instruction
record names the concepts it was written from."""

from selfcodealign.backends.base import Completion
from selfcodealign.config import InstructionsConfig
from selfcodealign.prompts import PromptBuilder
from selfcodealign.records import Concepts, GenMeta, Instruction, Seed
from selfcodealign.stages.base import ModelInfo
from selfcodealign.stages.instructions import InstructionsStage

INFO = ModelInfo(model="m", model_sha256=None, backend="scripted", prompt_style="completion")
LISTED = ["lists", "sorting with a key", "recursion", "dictionaries", "generators"]


def _concepts(record_id: str, concepts: list[str]) -> Concepts:
    seed = Seed(id="s1", code="def f(x):\n    '''X.'''\n    return x\n", name="f", source="test", path="f.py",
                line_start=1, line_end=3)
    meta = GenMeta(model="m", backend="scripted", prompt_style="completion", temperature=0.0, top_p=1.0,
                   max_tokens=10, seed=0, finish_reason="stop")
    return Concepts(id=record_id, parent_id="s1", seed=seed, concepts=concepts, raw=", ".join(concepts), gen=meta)


def _stage(**cfg) -> InstructionsStage:
    return InstructionsStage(InstructionsConfig(**cfg), PromptBuilder.load("completion"), INFO)


def test_by_default_every_concept_reaches_the_prompt():
    rec = _concepts("c1", LISTED)
    last = _stage().prompt(rec).split("### Concepts\n")[-1]
    assert last.startswith(", ".join(LISTED) + "\n")


def test_a_cap_samples_that_many_concepts_in_order_fixed_by_the_record():
    stage = _stage(max_concepts=2)
    picks = {tuple(stage.concepts(_concepts(f"c{i}", LISTED))) for i in range(40)}
    assert all(len(p) == 2 and list(p) == sorted(p, key=LISTED.index) for p in picks)
    assert len(picks) > 3  # a sample, not always the first two
    rec = _concepts("c7", LISTED)
    assert stage.concepts(rec) == _stage(max_concepts=2).concepts(rec)
    used = stage.concepts(rec)
    assert stage.prompt(rec).split("### Concepts\n")[-1].startswith(", ".join(used) + "\n### Category")
    [out] = stage.parse(rec, [Completion("Write a Python function `f(xs)` that returns `xs` sorted.", "stop")])
    assert isinstance(out, Instruction) and out.concepts == used


def test_a_seed_with_fewer_concepts_than_the_cap_keeps_them_all():
    rec = _concepts("c1", LISTED[:2])
    assert _stage(max_concepts=3).concepts(rec) == LISTED[:2]
