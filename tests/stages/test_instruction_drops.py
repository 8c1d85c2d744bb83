"""The instructions stage drops, before any response is generated, a task that names a
package outside the standard library or that no answer can meet; each drop is counted by
its reason, and each can be switched off."""

from selfcodealign.backends.base import Completion
from selfcodealign.config import InstructionsConfig
from selfcodealign.prompts import PromptBuilder
from selfcodealign.records import Concepts, Drop, GenMeta, Instruction, Seed
from selfcodealign.stages.base import ModelInfo
from selfcodealign.stages.instructions import InstructionsStage

INFO = ModelInfo(model="m", model_sha256=None, backend="scripted", prompt_style="completion")


def _concepts() -> Concepts:
    seed = Seed(id="s1", code="def f(x):\n    '''X.'''\n    return x\n", name="f", source="test", path="f.py",
                line_start=1, line_end=3)
    meta = GenMeta(model="m", backend="scripted", prompt_style="completion", temperature=0.0, top_p=1.0,
                   max_tokens=10, seed=0, finish_reason="stop")
    return Concepts(id="c1", parent_id="s1", seed=seed, concepts=["lists"], raw="lists", gen=meta)


def _parse(text: str, **cfg) -> Instruction | Drop:
    stage = InstructionsStage(InstructionsConfig(**cfg), PromptBuilder.load("completion"), INFO)
    [out] = stage.parse(_concepts(), [Completion(text, "stop")])
    return out


def test_a_task_that_names_a_package_is_dropped_by_name():
    text = "Write a Python function `mean(xs)` that uses `numpy.mean` to return the mean of `xs`."
    out = _parse(text)
    assert isinstance(out, Drop) and out.reason == "names_a_package" and out.detail == "numpy"
    assert isinstance(_parse(text, drop_packages=False), Instruction)
    # the standard library is not a package to drop
    assert isinstance(_parse("Write a Python function `count(xs)` that uses `collections.Counter`."), Instruction)


def test_a_task_no_answer_can_meet_is_dropped():
    out = _parse("Write a Python function `fact(n)` using recursion in O(1) space.")
    assert isinstance(out, Drop) and out.reason == "unanswerable_instruction"
    assert isinstance(_parse("Write a Python function `fact(n)` using recursion in O(1) space.",
                             drop_unanswerable=False), Instruction)
