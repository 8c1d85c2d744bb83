"""benchmarks/labelled_checks.py: why the checked selection keeps no good answer where
plain selection kept one (records and labels made by hand; no sandbox)."""

from repo_scripts import load_script

from selfcodealign.config import ExecuteConfig, SelectConfig
from selfcodealign.records import Agreement, Checks, Executed, GenMeta, Instruction, Mutation, Response, Verdict
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.select import select

META = GenMeta(model="m", backend="x", prompt_style="chat", temperature=0.7, top_p=1.0, max_tokens=9,
               seed=0, finish_reason="stop")


def load():
    return load_script("benchmarks/labelled_checks.py")


def _task(ins_id: str, passing: list[tuple[list[str], int]], failing: int):
    """An instruction's responses: the passing ones (their verify reasons, how many
    siblings' code passes their tests), then ``failing`` that fail."""
    ins = Instruction(id=ins_id, parent_id="c", seed_id=f"s{ins_id}", seed_source="x", seed_path="x", concepts=[],
                      category="function", difficulty="easy", raw="", gen=META,
                      instruction=f"Write `double(x)` ({ins_id}).")
    code, tests = "def double(x):\n    return 2 * x\n", "assert double(2) == 4\n"
    text = f"```python\n{code}```\n\n### Tests\n```python\n{tests}```"
    n = len(passing) + failing
    executed, checks = [], {}
    for k in range(n):
        r = Response(id=f"r{ins_id}{k}", parent_id=ins_id, sample_index=k, instruction=ins, response=text,
                     code=code, tests=tests, raw=text, gen=META)
        ok = k < len(passing)
        e = Executed(id=f"{ins_id}{k}", parent_id=r.id, response=r, meaningful_tests=True,
                     verdict=Verdict(id=r.id, status="passed" if ok else "failed"))
        executed.append(e)
        if ok:
            flags, agree = passing[k]
            checks[e.id] = Checks(
                id=f"c{e.id}", parent_id=e.id, instruction_id=ins_id, faithfulness=flags, pass_rate=(len(passing), n),
                mutation=Mutation(made=4, killed=4),
                agreement=Agreement(siblings=n - 1, pass_my_tests=agree, passing_siblings=len(passing) - 1,
                                    my_code_passes=len(passing) - 1))
    return executed, checks


def test_lost_good_examples_are_counted_by_drop_reason_or_by_the_class_of_the_sibling_kept():
    lc = load()
    lone, lone_checks = _task("x", [([], 3)], failing=4)  # 1 of 5 passes: outside the band
    flagged, flagged_checks = _task("z", [(["trivial: one return"], 2), ([], 2)], failing=0)
    kept, kept_checks = _task("w", [([], 1), ([], 1)], failing=0)
    executed = lone + flagged + kept
    passes = ExecuteStage(ExecuteConfig()).counts_as_pass
    checked = select(executed, SelectConfig(sanitize=False), passes, None,
                     {**lone_checks, **flagged_checks, **kept_checks})
    w, z = sorted(e.parent_id for e in checked.examples)
    assert z == "z1" and w in ("w0", "w1")
    good, trivial = {"label": "good", "format_ok": True}, {"label": "trivial", "format_ok": True}
    labels = {"x0": good, "z0": good, "z1": trivial, "w0": good, "w1": good}
    good_instr = {"w"}  # the checked selection keeps a good answer to w
    lost = lc.lost_reasons(executed, {"x0", "z0", "w1"}, good_instr, checked, labels)
    assert lost == {"pass_rate_outside_band (1/5)": 1, "kept a trivial sibling": 1}
    assert lc.selection_lines({"plain": {"kept": 3, "classes": {"good": 3}, "good_share": 1.0},
                               "checked": {"kept": 2, "classes": {"good": 1, "trivial": 1}, "good_share": 0.5},
                               "plain_good_kept_by_checked": {"plain_good": 3, "kept": 1},
                               "plain_good_lost": lost})[-1] == \
        "  the others: kept a trivial sibling 1, pass_rate_outside_band (1/5) 1"


def test_the_fresh_labels_are_counted_by_run_prompts_and_selection(tmp_path, capsys):
    import json

    lc = load_script("benchmarks/labelled_checks.py")
    rows = [{"source": "r1", "prompts": "built-in", "selection": "default", "label": "good", "format_ok": True},
            {"source": "r1", "prompts": "built-in", "selection": "default", "label": "good", "format_ok": False},
            {"source": "r1", "prompts": "built-in", "selection": "plain", "label": "wrong", "format_ok": True}]
    f = tmp_path / "fresh.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = lc.fresh_table(f)
    assert [(t["selection"], t["read"], t["classes"]) for t in table] == [
        ("default", 2, {"good": 1, "broken": 1}), ("plain", 1, {"wrong": 1})]
    assert table[0]["good_share"] == 0.5 and table[0]["good_interval"][0] < 0.5 < table[0]["good_interval"][1]
    assert lc.main(["--fresh", str(f)]) == 0
    assert "good 50%" in capsys.readouterr().out
    assert lc.main(["--fresh", str(tmp_path / "missing.jsonl")]) == 2
