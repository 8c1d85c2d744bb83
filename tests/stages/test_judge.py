"""The judge stage's own logic: which responses and requirements it asks about, how it
reads the answers, and how selection uses them. The engine is replaced by its answers
(the real judge ran on the embedded model: docs/verification.md)."""

from selfcodealign.backends.base import Completion
from selfcodealign.config import ExecuteConfig, RunConfig, SelectConfig
from selfcodealign.prompts import PromptBuilder
from selfcodealign.records import Checks, Drop, Executed, GenMeta, Instruction, Judgement, Response, Verdict
from selfcodealign.stages.base import ModelInfo
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.judge import JudgeStage
from selfcodealign.stages.select import judgements_by_response, select

META = GenMeta(model="m", backend="x", prompt_style="chat", temperature=0.7, top_p=1.0, max_tokens=9,
               seed=0, finish_reason="stop")
INS = Instruction(id="i", parent_id="c", seed_id="s", seed_source="x", seed_path="x", concepts=[],
                  category="function", difficulty="easy", raw="", gen=META,
                  instruction="Write `double(x)` that returns twice `x`. Raise `TypeError` for strings.")


def _executed(k: str, n: int) -> Executed:
    code, tests = "def double(x):\n    return 2 * x\n", "assert double(2) == 4\n"
    text = f"```python\n{code}```\n\n### Tests\n```python\n{tests}```"
    r = Response(id=f"r{k}", parent_id="i", sample_index=n, instruction=INS, response=text, code=code,
                 tests=tests, raw=text, gen=META)
    return Executed(id=k, parent_id=r.id, response=r, meaningful_tests=True, verdict=Verdict(id=r.id, status="passed"))


def test_the_judge_asks_about_each_requirement_of_clean_passing_responses_and_select_drops_a_no():
    cfg = RunConfig()
    stage = JudgeStage(cfg.judge, PromptBuilder.load("chat"),
                       ModelInfo(model="m", model_sha256=None, backend="x", prompt_style="chat"))
    a, b, c = _executed("a", 0), _executed("b", 1), _executed("c", 2)
    checks = [Checks(id=f"k{e.id}", parent_id=e.id, instruction_id="i", pass_rate=(3, 3),
                     faithfulness=["unmet requirement: raises TypeError"] if e is c else []) for e in (a, b, c)]
    items = stage.inputs({"execute": [a, b, c], "verify": checks})
    assert [(i.executed.id, i.requirement) for i in items] == [
        ("a", "Write `double(x)` that returns twice `x`."), ("a", "Raise `TypeError` for strings."),
        ("b", "Write `double(x)` that returns twice `x`."), ("b", "Raise `TypeError` for strings.")]
    assert "Requirement: Raise `TypeError` for strings." in stage.prompt(items[1])[-1]["content"]
    answers = {0: "Yes", 1: "Yes.", 2: "Yes", 3: "No, it returns"}
    out = [x for k, item in enumerate(items) for x in stage.parse(item, [Completion(answers[k], "stop")])]
    assert all(isinstance(x, Judgement) for x in out) and [x.satisfied for x in out] == [True, True, True, False]
    [drop] = stage.parse(items[0], [Completion("I think so", "stop")])
    assert isinstance(drop, Drop) and drop.reason == "unclear_judgement"

    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    by_id = {x.parent_id: x for x in checks}
    sel_cfg = SelectConfig(sanitize=False, require_agreement=False, min_mutation_score=0)
    kept = select([a, b, c], sel_cfg, passes, None, by_id, judgements_by_response(out))
    assert [e.parent_id for e in kept.examples] == ["a"]
    assert kept.stats["rejected"] == {"judged_unmet": 1, "unmet_requirement": 1}
    assert not JudgeStage.enabled(cfg) and JudgeStage.enabled(cfg.model_copy(update={"judge": cfg.judge.model_copy(update={"enabled": True})}))


def test_without_verify_the_judge_asks_about_every_meaningful_pass():
    cfg = RunConfig()
    stage = JudgeStage(cfg.judge, PromptBuilder.load("completion"),
                       ModelInfo(model="m", model_sha256=None, backend="x", prompt_style="completion"))
    a, b = _executed("a", 0), _executed("b", 1)
    b = b.model_copy(update={"meaningful_tests": False})
    items = stage.inputs({"execute": [a, b], "verify": None})
    assert {i.executed.id for i in items} == {"a"} and stage.prompt(items[0]).endswith("Answer:")
