"""The instructions stage drops, before any response is generated, a task that names a
package outside the standard library (the library its seed came from included) or that no
answer can meet; each drop is counted by its reason, and each can be switched off."""

import pytest

from selfcodealign.backends.base import Completion
from selfcodealign.config import InstructionsConfig
from selfcodealign.prompts import PromptBuilder
from selfcodealign.records import Concepts, Drop, GenMeta, Instruction, Seed
from selfcodealign.stages.base import ModelInfo
from selfcodealign.stages.instructions import InstructionsStage
from selfcodealign.verify.requirements import seed_package

INFO = ModelInfo(model="m", model_sha256=None, backend="scripted", prompt_style="completion")


def _concepts(path: str = "f.py") -> Concepts:
    seed = Seed(id="s1", code="def f(x):\n    '''X.'''\n    return x\n", name="f", source="test", path=path,
                line_start=1, line_end=3)
    meta = GenMeta(model="m", backend="scripted", prompt_style="completion", temperature=0.0, top_p=1.0,
                   max_tokens=10, seed=0, finish_reason="stop")
    return Concepts(id="c1", parent_id="s1", seed=seed, concepts=["lists"], raw="lists", gen=meta)


def _parse(text: str, path: str = "f.py", **cfg) -> Instruction | Drop:
    stage = InstructionsStage(InstructionsConfig(**cfg), PromptBuilder.load("completion"), INFO)
    [out] = stage.parse(_concepts(path), [Completion(text, "stop")])
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


def test_a_task_that_names_its_seeds_library_is_dropped():
    text = "Write a Python function `get_chords(score)` that returns the chords of a music21 score as strings."
    out = _parse(text, path="music21/chord/tables.py")
    assert isinstance(out, Drop) and out.reason == "names_a_package" and out.detail == "music21"
    # the same task from another library's seed or the standard library is not read as one
    assert isinstance(_parse(text, path="json/decoder.py"), Instruction)
    assert isinstance(_parse(text, path="shapely/ops.py"), Instruction)
    assert isinstance(_parse("Write a Python function `xray(img)` that inverts an x-ray image.",
                             path="ray/util.py"), Instruction)
    assert isinstance(_parse("Write a Python function `f(x)` that returns `x` without using Dask.",
                             path="dask/array/core.py"), Instruction)
    assert isinstance(_parse(text, path="music21/chord/tables.py", drop_packages=False), Instruction)


@pytest.mark.parametrize("path, package", [
    ("music21/chord/tables.py", "music21"),
    ("src/mypkg/util.py", "mypkg"),
    ("lib/python3.11/site-packages/ray/util/x.py", "ray"),
    ("json/decoder.py", None),  # the standard library
    ("textwrap.py", None),  # a file at the source's top names no library
    ("rows.jsonl#3:repo/a.py", None),  # a dataset row
    ("my-project/a.py", None),  # not an importable name
])
def test_the_seeds_library_is_read_from_its_path(path, package):
    assert seed_package(path) == package
