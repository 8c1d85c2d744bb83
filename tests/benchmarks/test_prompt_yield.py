"""benchmarks/prompt_yield.py: the yield of two runs and the interval of its difference
(run directories written by hand; no model, no sandbox)."""

import json

import pytest
from repo_scripts import load_script


def load():
    return load_script("benchmarks/prompt_yield.py")


def _run(d, asked, kept_instructions, passing):
    """A finished run: ``asked`` instructions, one example for each of
    ``kept_instructions``, and ``passing`` passing responses (one per instruction)."""
    d.mkdir()
    stages = {"seeds": {"out": asked}, "instructions": {"in": asked, "out": asked - 1, "drops": {"truncated": 1}},
              "responses": {"drops": {}}, "select": {"drops": {"no_passing_response": asked - passing},
                                                     "rejected": {}}}
    (d / "summary.json").write_text(json.dumps({"stages": stages}))
    with open(d / "executed.jsonl", "w") as f:
        for i in range(asked - 1):
            status = "passed" if i < passing else "failed"
            f.write(json.dumps({"response": {"instruction": {"id": f"i{i}", "category": "function"}},
                                "verdict": {"status": status}, "meaningful_tests": True}) + "\n")
    with open(d / "dataset.jsonl", "w") as f:
        for i in range(kept_instructions):
            f.write(json.dumps({"id": f"e{i}", "category": "function"}) + "\n")
    return d


def test_yield_is_counted_per_instruction_asked_for_and_the_difference_has_an_interval(tmp_path, capsys):
    py = load()
    before = py.run_figures(_run(tmp_path / "a", 1000, 20, 100))
    after = py.run_figures(_run(tmp_path / "b", 1000, 45, 180))
    assert (before["instructions"], before["instructions_kept"], before["kept"], before["passing"]) == (1000, 999, 20, 100)
    out = py.report(before, after)
    assert out["difference_per_1000"] == pytest.approx(25.0)
    lo, hi = out["difference_interval_per_1000"]
    assert 0 < lo < 25 < hi  # 20 against 45 per 1,000 is a difference that 1,000 instructions each can see
    assert "20.0 [" in capsys.readouterr().out


def test_wilson_and_newcombe_intervals():
    py = load()
    lo, hi = py.wilson(20, 1000)
    assert (round(1000 * lo, 1), round(1000 * hi, 1)) == (13.0, 30.7)
    lo, hi = py.newcombe(20, 1000, 20, 1000)
    assert lo < 0 < hi and lo == pytest.approx(-hi, abs=1e-9)


def test_a_directory_that_is_not_a_finished_run_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="no summary.json"):
        load().run_figures(tmp_path)


def test_the_instruction_profile_reads_what_the_instructions_ask(tmp_path, capsys):
    py = load()
    rows = [{"instruction": "Write a function `f(xs)` using `numpy.mean` that raises `ValueError` on an empty list.",
             "category": "function"},
            {"instruction": "Write a function `g(s)` that returns `s` reversed in O(n) time.", "category": "function"},
            {"instruction": "Write a function `h(d)` that uses `collections.Counter` to count words.",
             "category": "function"},
            {"instruction": "Write a function `k(n)` that returns n squared.", "category": "function"}]
    p = py.instruction_profile(rows)
    assert (p["share_package"], p["share_error"], p["share_complexity"]) == (0.25, 0.25, 0.25)
    assert p["median_words"] == sorted(len(r["instruction"].split()) for r in rows)[2]
    f = tmp_path / "instructions.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert py.main(["--instructions-only", str(tmp_path), str(f)]) == 0
    assert capsys.readouterr().out.count("25% name a package") == 2
    with pytest.raises(SystemExit, match="not found"):
        py.main(["--instructions-only", str(tmp_path / "none"), str(f)])
