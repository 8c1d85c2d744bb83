"""`eval --samples`: evalplus verdicts for a samples file, with 0.3.1's problems handled."""

import json

import pytest

from selfcodealign.cli import main


def tasks(test_data, path):
    return {t["task_id"]: t for t in test_data.read_jsonl_gz(path)}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_scores_solutions_and_completions_and_fixes_humaneval_32(tmp_path, capsys, test_data):
    he = tasks(test_data, test_data.humaneval_plus)
    rows = [
        {"task_id": "HumanEval/0", "completion": he["HumanEval/0"]["canonical_solution"]},
        {"task_id": "HumanEval/32", "solution": he["HumanEval/32"]["prompt"] + he["HumanEval/32"]["canonical_solution"]},
        {"task_id": "HumanEval/2", "solution": "def truncate_number(number):\n    return number\n"},
    ]
    out = tmp_path / "ev"
    rc = main(["eval", "--samples", str(write(tmp_path / "s.jsonl", rows)), "--benchmarks", "humaneval+",
               "--tasks", "HumanEval/0,HumanEval/2,HumanEval/32", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())["benchmarks"]["humaneval"]
    assert (res["tasks"], res["of_tasks"], res["samples"]) == (3, 3, 3)
    assert res["base"]["pass@1"] == pytest.approx(2 / 3) and res["plus"]["pass@1"] == pytest.approx(2 / 3)
    per = json.loads((out / "humaneval" / "eval_results.json").read_text())["eval"]
    # evalplus 0.3.1 fails every HumanEval/32 solution; with our fix the reference passes.
    assert per["HumanEval/32"][0]["base_status"] == "pass"
    assert per["HumanEval/2"][0]["base_status"] == "fail"
    assert "HumanEval: 66.7  HumanEval+: 66.7" in capsys.readouterr().out


def test_pass_at_k_with_several_samples(tmp_path, test_data):
    mb = tasks(test_data, test_data.mbpp_plus)
    good = mb["Mbpp/2"]["prompt"] + mb["Mbpp/2"]["canonical_solution"]
    rows = [{"task_id": "Mbpp/2", "solution": good}] + [
        {"task_id": "Mbpp/2", "solution": "def similar_elements(a, b):\n    return ()\n"}] * 2
    out = tmp_path / "ev"
    assert main(["eval", "--samples", str(write(tmp_path / "s.jsonl", rows)), "--benchmarks", "mbpp+",
                 "--tasks", "Mbpp/2", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["benchmarks"]["mbpp"]
    assert res["base"]["pass@1"] == pytest.approx(1 / 3)


def test_bad_samples_are_one_line_errors(tmp_path, capsys):
    bad = write(tmp_path / "bad.jsonl", [{"task_id": "HumanEval/999", "solution": "x"}])
    assert main(["eval", "--samples", str(bad), "--benchmarks", "humaneval+",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "HumanEval/999" in err and len(err.splitlines()) == 1
    nosol = write(tmp_path / "nosol.jsonl", [{"task_id": "HumanEval/0"}])
    assert main(["eval", "--samples", str(nosol), "--benchmarks", "humaneval+",
                 "--out", str(tmp_path / "o")]) == 2
    assert "needs task_id and solution or completion" in capsys.readouterr().err


def test_compare_prints_both_models(tmp_path, capsys):
    for name, v in (("a", 0.5), ("b", 0.625)):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps({"model": {"name": name}, "benchmarks": {
            "humaneval": {"tasks": 164, "base": {"pass@1": v}, "plus": {"pass@1": v - 0.1}}}}))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "HumanEval pass@1" in out and "50.0" in out and "62.5" in out and "+12.5" in out


def test_paired_bootstrap_interval():
    import numpy as np

    from selfcodealign.evaluate.score import paired_bootstrap

    a = {f"t{i}": float(i % 2) for i in range(200)}
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0, 200)
    assert paired_bootstrap(a, {"other": 1.0}) is None
    # B passes 30 more of 200 tasks and fails 10 that A passed: +0.10, and the percentile
    # interval is close to the normal one (sd of the per-task differences / sqrt(n)).
    d = np.array([1.0] * 30 + [-1.0] * 10 + [0.0] * 160)
    a = {f"t{i}": 0.5 for i in range(200)}
    b = {f"t{i}": 0.5 + d[i] / 2 for i in range(200)}
    diff, lo, hi, n = paired_bootstrap(a, b)
    half = 1.96 * (d / 2).std() / np.sqrt(200)
    assert n == 200 and diff == pytest.approx(0.05)
    assert lo == pytest.approx(0.05 - half, abs=0.006) and hi == pytest.approx(0.05 + half, abs=0.006)
    assert paired_bootstrap(a, b) == (diff, lo, hi, n)  # fixed seed


def test_compare_prints_intervals_from_per_sample_results(tmp_path, capsys):
    for name, passing in (("a", {0, 1}), ("b", {0, 1, 2, 3})):
        d = tmp_path / name
        (d / "humaneval").mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({"model": {"name": name}, "benchmarks": {
            "humaneval": {"tasks": 6, "base": {"pass@1": len(passing) / 6}, "plus": {"pass@1": len(passing) / 6}}}}))
        (d / "humaneval" / "eval_results.json").write_text(json.dumps({"eval": {
            f"HumanEval/{t}": [{"base_status": "pass" if t in passing else "fail", "plus_status": "pass"}]
            for t in range(6)}}))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("HumanEval+ pass@1"))
    # Two of six tasks gained, none lost: the interval is inside [0, +66.7].
    assert "+33.3" in line and "[+0.0, +66.7]" in line


def test_task_pass_at_k_matches_evalplus():
    import numpy as np
    from evalplus.eval import estimate_pass_at_k

    from selfcodealign.evaluate.score import task_rates

    samples = {f"t{c}": [{"base_status": "pass" if i < c else "fail", "plus_status": "pass"} for i in range(10)]
               for c in range(11)}
    for k in (1, 5, 10):
        got = task_rates(samples, "plus", k)
        want = estimate_pass_at_k(np.full(11, 10), np.arange(11), k)
        assert [got[f"t{c}"] for c in range(11)] == pytest.approx(list(want))
    assert task_rates(samples, "plus", 11) == {}  # fewer samples than k: no estimate


def test_compare_pools_humaneval_and_mbpp_into_the_primary_endpoint(tmp_path, capsys):
    """The pooled row is the mean per-task pass@k over both benchmarks' tasks, and its
    interval is the paired bootstrap over those tasks, not over each benchmark apart."""
    rng = __import__("random").Random(3)
    rates = {}
    for name in ("a", "b"):
        d = tmp_path / name
        res = {"model": {"name": name}, "benchmarks": {}}
        for bench, prefix, n_tasks in (("humaneval", "HumanEval", 20), ("mbpp", "Mbpp", 30)):
            (d / bench).mkdir(parents=True)
            ev = {}
            for t in range(n_tasks):
                c = rng.randint(0, 10)
                ev[f"{prefix}/{t}"] = [{"base_status": "pass" if i < c else "fail", "plus_status": "pass"}
                                       for i in range(10)]
                rates[(name, f"{prefix}/{t}")] = c / 10
            (d / bench / "eval_results.json").write_text(json.dumps({"eval": ev}))
            res["benchmarks"][bench] = {"tasks": n_tasks, "base": {"pass@1": 0.5, "pass@10": 0.9},
                                        "plus": {"pass@1": 0.5, "pass@10": 0.9}}
        (d / "results.json").write_text(json.dumps(res))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out.splitlines()
    pooled = next(x for x in out if x.startswith("HumanEval+ & MBPP+ pass@1"))
    va = sum(v for (s, _), v in rates.items() if s == "a") / 50
    vb = sum(v for (s, _), v in rates.items() if s == "b") / 50
    assert f"{100 * va:.1f}" in pooled and f"{100 * vb:.1f}" in pooled and f"{100 * (vb - va):+.1f}" in pooled
    from selfcodealign.evaluate.score import paired_bootstrap

    _, lo, hi, n = paired_bootstrap({t: v for (s, t), v in rates.items() if s == "a"},
                                    {t: v for (s, t), v in rates.items() if s == "b"})
    assert n == 50 and f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" in pooled
    assert any(x.startswith("HumanEval+ & MBPP+ pass@10") for x in out)
    assert any("the 50 tasks both scored" in x for x in out)
