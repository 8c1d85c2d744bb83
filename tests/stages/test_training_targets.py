"""No kept training target is malformed: every example that selection keeps from the real
responses (the repository's GPU sample and the MBPP+ answers, parsed again from the
model's raw text as a new run would) has closed fences, no tests section, and the code
that was executed. No sandbox: the recorded verdicts stand."""

import json
from selfcodealign.config import ExecuteConfig, SelectConfig
from selfcodealign.parsing import ParseError, parse_response
from selfcodealign.records import Executed
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.select import select
from selfcodealign.verify.target import problems


def _reparsed(records: list[dict]) -> tuple[list[Executed], int]:
    """The records with their responses parsed again; how many had the tests heading
    inside their solution's code (a fence the model never closed)."""
    out, heading_in_code = [], 0
    for obj in records:
        r = obj["response"]
        heading_in_code += "### Tests" in r["code"]
        p = parse_response(r["raw"], r["gen"]["finish_reason"])
        if isinstance(p, ParseError):
            continue
        r = {**r, "response": p.response, "code": p.code, "tests": p.tests}
        out.append(Executed.model_validate({**obj, "response": r}))
    return out, heading_in_code


def test_every_kept_training_target_of_real_runs_is_well_formed(test_data):
    records = test_data.read_jsonl_gz(test_data.real_sample) + test_data.read_jsonl_gz(test_data.mbpp_responses)
    executed, heading_in_code = _reparsed(records)
    # The parser these responses were made with kept the heading in the code and cut the
    # target there, leaving its fence open.
    assert heading_in_code > 50 and not any("### Tests" in e.response.code for e in executed)
    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    for cfg in (SelectConfig(sanitize=False, pass_rate=(0.0, 1.0)), SelectConfig(sanitize=False, pick="any")):
        examples = select(executed, cfg, passes).examples
        assert len(examples) > 60
        code = {x.id: x.response.code for x in executed}
        bad = {e.id: problems(e.response, code[e.parent_id]) for e in examples}
        assert not any(bad.values()), {k: v for k, v in bad.items() if v}
        for e in examples:
            assert e.messages[-1].content == e.response and "### Tests" not in e.response


def test_the_labelled_set_names_real_responses_and_valid_classes(test_data):
    labels = [json.loads(line) for line in test_data.labels.read_text().splitlines() if line.strip()]
    records = test_data.read_jsonl_gz(test_data.real_sample) + test_data.read_jsonl_gz(test_data.mbpp_responses)
    passing = {r["id"] for r in records if r["verdict"]["status"] == "passed"}
    assert len(labels) >= 300 and len({x["id"] for x in labels}) == len(labels)
    assert {x["id"] for x in labels} <= passing  # passing responses, kept or not
    assert {x["label"] for x in labels} == {"good", "unfaithful", "wrong", "trivial"}
    assert all(x["reason"].strip() and isinstance(x["format_ok"], bool) for x in labels)


def test_selection_drops_a_response_whose_training_target_is_malformed():
    from selfcodealign.records import GenMeta, Instruction, Response, Verdict

    meta = GenMeta(model="m", backend="x", prompt_style="chat", temperature=0.7, top_p=1.0, max_tokens=9,
                   seed=0, finish_reason="stop")
    ins = Instruction(id="i", parent_id="c", seed_id="s", seed_source="x", seed_path="x", concepts=[],
                      category="function", difficulty="easy", instruction="Write `one()`.", raw="", gen=meta)
    code, tests = "def one():\n    return 1\n", "assert one() == 1\n"
    texts = {"fine": f"```python\n{code}```\n\n### Tests\n```python\n{tests}```",
             # the executed code is not the code the answer shows
             "other_code": f"```python\ndef one():\n    return 2 - 1\n```\n\n### Tests\n```python\n{tests}```"}
    executed = [Executed(id=k, parent_id=k, meaningful_tests=True, verdict=Verdict(id=k, status="passed"),
                         response=Response(id=k, parent_id="i", sample_index=n, instruction=ins, response=t,
                                           code=code, tests=tests, raw=t, gen=meta))
                for n, (k, t) in enumerate(texts.items())]
    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    sel = select(executed[1:], SelectConfig(sanitize=False), passes)
    assert sel.examples == [] and sel.drops[0].reason == "rejected_malformed_target"
    assert [e.parent_id for e in select(executed, SelectConfig(sanitize=False), passes).examples] == ["fine"]
