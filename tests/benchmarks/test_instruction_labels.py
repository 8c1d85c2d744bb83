"""benchmarks/instruction_labels.py and the instruction labels it reads: the shares, the
ranking figure, one-line errors for a bad file, and the real embedded model's verdict."""

import json

import pytest
from repo_scripts import ROOT, load_script


def load():
    return load_script("benchmarks/instruction_labels.py")


def _row(ok, words, arm="built-in", reviewer="r0", trivial=False, source="s1"):
    return {"id": "x", "source": source, "arm": arm, "reviewer": reviewer, "category": "function",
            "ok": ok, "trivial": trivial, "reason": "r", "instruction": " ".join(["w"] * words)}


def test_the_committed_labels_are_complete_and_every_set_has_a_built_in_arm():
    rows = [json.loads(line) for line in (ROOT / "data/labels/instructions-labelled.jsonl").read_text().splitlines()]
    assert len(rows) == 1107
    assert len({(r["source"], r["id"], r["arm"]) for r in rows}) == len(rows)
    assert all(isinstance(r["seed_path"], str) for r in rows)
    assert all(isinstance(r["ok"], bool) and isinstance(r["trivial"], bool) and r["reason"].strip() for r in rows)
    for source in {r["source"] for r in rows}:
        arms = {r["arm"] for r in rows if r["source"] == source}
        assert "built-in" in arms and len(arms) >= 2, source


def test_shares_difference_and_length_ranking(tmp_path, capsys):
    rows = ([_row(True, 10, "cool")] * 3 + [_row(False, 60, "cool")] + [_row(True, 20)] + [_row(False, 50)] * 3
            + [_row(True, 5, source="s2")] + [_row(True, 5, "short", source="s2")])
    rows[-1] = {**rows[-1], "seed_path": "w/core.py"}  # its instruction names its seed's library
    f = tmp_path / "l.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out_json = tmp_path / "o.json"
    assert load().main(["--labels", str(f), "--json", str(out_json)]) == 0
    out = json.loads(out_json.read_text())
    assert out["arm"]["cool"] == {"n": 4, "ok": 3, "trivial": 0}
    # each arm against the built-in rows of its own sets only
    assert out["against_built_in"]["cool"]["points"] == pytest.approx(50.0)
    assert out["against_built_in"]["short"]["points"] == pytest.approx(0.0)
    assert out["dropped_now"] == {"n": 1, "ok": 1}
    assert out["auc_shorter"] == 1.0  # every ok instruction is shorter than every other
    assert capsys.readouterr().out.startswith("10 labelled instructions; ok   6 of  10 (60%")


def test_agreement_pairs_the_same_instruction_labelled_by_two_reviewers():
    py = load()
    a, b = _row(True, 3, reviewer="r0"), _row(True, 3, reviewer="r1")
    c, d = _row(False, 4, reviewer="r0"), _row(True, 4, reviewer="r1")
    e = _row(False, 5, reviewer="r0")  # labelled once
    out = py.agreement([a, b, c, d, e])
    assert out["n"] == 2 and out["agree"] == 1
    assert out["kappa"] == pytest.approx(0.0)  # one agreement in two is what chance gives here
    assert py.agreement([a, c, e]) is None


def test_auc_counts_ties_half():
    py = load()
    rows = [{"ok": True, "s": 1}, {"ok": False, "s": 1}, {"ok": False, "s": 0}]
    assert py.auc(rows, lambda r: r["s"]) == pytest.approx(0.75)
    assert py.auc([{"ok": True, "s": 1}], lambda r: r["s"]) is None


@pytest.mark.parametrize("text, says", [("{not json\n", "Expecting"), ('{"ok": true}\n', "line 1 lacks"), ("", "no labels")])
def test_a_bad_labels_file_is_a_one_line_error(tmp_path, capsys, text, says):
    f = tmp_path / "l.jsonl"
    f.write_text(text)
    assert load().main(["--labels", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_the_real_model_gives_a_probability_of_yes(model_path):
    rows = [_row(True, 0), _row(False, 0)]
    rows[0]["instruction"] = "Write a Python function `add(a, b)` that returns the sum of two integers."
    rows[1]["instruction"] = ("Write a Python function `f()` with no parameters that sorts the given list "
                              "in O(1) time using the rolling rows technique of the provided docstring.")
    ps = load().p_yes(rows, model_path)
    assert all(p is not None and 0.0 <= p <= 1.0 for p in ps)
    assert ps[0] > ps[1]
