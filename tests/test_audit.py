"""`audit` on dataset lines: mutants in the real sandbox, lines it cannot audit counted,
and the probe figures the pipeline recorded."""

import json

import pytest

from selfcodealign.audit import audit, audit_records, format_audit
from selfcodealign.errors import UserError

CODE = "def double(x):\n    if x < 0:\n        return -2 * -x\n    return 2 * x\n"
RESPONSE = f"Doubles x.\n```python\n{CODE}```"
PROBES = {"function": "double", "made": 24, "answered": 24, "compared": 3, "disagreeing": 1}


def test_audit_runs_mutants_counts_what_it_cannot_audit_and_reports_recorded_probes():
    lines = [
        (1, {"instruction": "Write `double(x)`.", "response": RESPONSE,
             "tests": "assert double(3) == 6\nassert double(-2) == -4\n",
             "quality": {"pass_rate": [4, 10], "probes": PROBES}}),
        (2, {"instruction": "Write `double(x)`.", "response": RESPONSE, "tests": "assert double(0) == 0\n",
             "quality": {"probes": {**PROBES, "disagreeing": 0}}}),
        (3, {"instruction": "Write `double(x)`.", "response": RESPONSE}),
        # what a hand-made dataset may hold where this project writes its figures
        (4, {"instruction": "Write `double(x)`.", "response": RESPONSE, "tests": "assert double(2) == 4\n",
             "quality": {"pass_rate": "high", "probes": "none"}}),
        (5, {"instruction": "Write `double(x)`.", "response": RESPONSE, "tests": "assert double(2) == 4\n",
             "quality": "good"}),
    ]
    a = audit_records(lines)
    assert a["examples"] == 5 and a["audited"] == 4 and a["not_audited"] == {"no tests": 1}
    assert a["pass_rate"]["40-60%"] == 1 and sum(a["pass_rate"].values()) == 1
    assert a["mutation"]["mutants"] > 0 and 0 < a["mutation"]["mean_score"] < 1  # double(0) kills few
    assert a["probes_recorded"] == {"examples": 2, "disagreeing_with_a_sibling": 1}
    text = "\n".join(format_audit(a))
    assert "examples run on probes beside their siblings: 2 (1 differed from some sibling on a probe)" in text


def test_an_empty_dataset_is_a_one_line_error(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    with pytest.raises(UserError, match="holds no examples"):
        audit(p)
    p.write_text(json.dumps({"instruction": "x", "response": RESPONSE, "tests": "assert double(1) == 2\n"}) + "\n")
    assert audit(p)["audited"] == 1
