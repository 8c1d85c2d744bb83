"""The few-shot examples stay correct, the built-in ones and the candidate prompts of
benchmarks/prompts: every response's code passes its own tests in the sandbox, and the
tests catch a broken solution (what the models copy from the shots is a response whose
tests test)."""

from pathlib import Path

import pytest

from selfcodealign.parsing import fenced_blocks
from selfcodealign.prompts import SHOT_ORDER, load_examples
from selfcodealign.sandbox import Program, run_batch

FILES = [None, *sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "prompts").glob("*.yaml"))]


def _code(response: str) -> str:
    return "\n".join(b.code for b in fenced_blocks(response) if b.lang in ("python", "py", ""))


@pytest.mark.parametrize("path", FILES, ids=lambda p: "built-in" if p is None else p.name)
def test_every_example_passes_its_tests_and_they_fail_a_broken_solution(path):
    examples = load_examples(path)
    assert sorted((e.category, e.difficulty) for e in examples) == sorted(SHOT_ORDER)
    programs = []
    for e in examples:
        code = _code(e.response)
        assert code.strip(), e.name
        programs.append(Program(id=e.name, code=code, tests=e.tests))
        # Every function body replaced by `raise NotImplementedError`: the tests must notice.
        broken = "\n".join(line if not line.strip().startswith("return ") else
                           line[: len(line) - len(line.lstrip())] + "raise NotImplementedError"
                           for line in code.splitlines())
        programs.append(Program(id=e.name + "/broken", code=broken, tests=e.tests))
    verdicts = {v.id: v.status for v in run_batch(programs)}
    for e in examples:
        assert verdicts[e.name] == "passed", e.name
        assert verdicts[e.name + "/broken"] != "passed", e.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: "built-in" if p is None else p.name)
def test_every_example_meets_every_requirement_and_claims_nothing_it_does_not_do(path):
    """What verify checks on the model's answers, the shots it copies from pass first."""
    from selfcodealign.records import Executed, GenMeta, Instruction, Response, Verdict
    from selfcodealign.stages.verify import faithfulness
    from selfcodealign.verify.requirements import unanswerable

    meta = GenMeta(model="m", backend="x", prompt_style="chat", temperature=0.0, top_p=1.0, max_tokens=1,
                   seed=0, finish_reason="stop")
    for e in load_examples(path):
        assert unanswerable(e.instruction) == [], e.name
        ins = Instruction(id="i", parent_id="c", seed_id="s", seed_source="x", seed_path="x", concepts=e.concepts,
                          category=e.category, difficulty=e.difficulty, instruction=e.instruction, raw="", gen=meta)
        text = e.response.rstrip() + "\n\n### Tests\n```python\n" + e.tests + "```"
        r = Response(id="r", parent_id="i", sample_index=0, instruction=ins, response=text, code=_code(e.response),
                     tests=e.tests, raw=text, gen=meta)
        ex = Executed(id="e", parent_id="r", response=r, meaningful_tests=True,
                      verdict=Verdict(id="r", status="passed"))
        # A complexity bound is flagged because nothing static can check it; the examples'
        # bounds are true of their code.
        assert [r for r in faithfulness(ex) if not r.startswith("complexity claim")] == [], e.name
