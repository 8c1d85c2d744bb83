"""The HTML reports (`selfcodealign report`, the one `run` writes, `compare --report`),
checked in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright;
`make test` installs both when root).

The run directory comes from the project's own pipeline: the real Pipeline, ledger,
sandbox and verify stage, with a scripted backend (as in test_shards_overlap.py) whose
answers pass, fail an assertion, raise NameError or assert nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from scripted_backend import scripted_run, words

from selfcodealign.cli import main
from selfcodealign.jsonl import read_lines

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run made by `selfcodealign run` (the CLI) with the scripted backend; `run` writes
    the report at its end."""
    out, err = scripted_run(tmp_path_factory.mktemp("run"))
    assert f"report: {out / 'report.html'}" in err
    return out


def records(path: Path) -> list[dict]:
    return [o for _, o in read_lines(path) if o] if path.exists() else []


# ---- without a browser ---------------------------------------------------------------


def test_run_writes_the_report_and_report_rewrites_it(run_dir, tmp_path, capsys):
    assert (run_dir / "report.html").stat().st_size > 0
    assert main(["report", str(run_dir), "--out", str(tmp_path / "x" / "r.html")]) == 0
    err = capsys.readouterr().err
    assert "report:" in err and (tmp_path / "x" / "r.html").exists()
    html = (tmp_path / "x" / "r.html").read_text()
    # Self-contained: no external URL a browser would fetch.
    for bad in ("src=\"http", "href=\"http", "src='http", "@import", "url(http"):
        assert bad not in html


def test_bad_run_directories_are_one_line_errors_or_notes(run_dir, tmp_path, capsys):
    assert main(["report", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no run directory" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "holds no run files" in capsys.readouterr().err
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "results.json").write_text("{}")
    assert main(["report", str(ev)]) == 2
    assert "compare" in capsys.readouterr().err
    # Broken files: the report is written, with notes saying what was wrong.
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    (bad / "summary.json").write_text("{not json")
    with open(bad / "executed.jsonl", "a") as f:
        f.write('{"id": "torn", "verd')
    (bad / "seeds.jsonl").unlink()
    (bad / "concepts.jsonl").unlink()
    (bad / "verified.jsonl").unlink()
    assert main(["report", str(bad)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    html = (bad / "report.html").read_text()
    assert "summary.json is not valid JSON" in html
    assert "executed.jsonl: 1 unreadable line(s) skipped" in html
    assert "no verified.jsonl" in html
    assert "in neither seeds.jsonl nor concepts.jsonl" in html


def test_a_merged_run_shows_its_parts_and_kept_examples(run_dir, tmp_path):
    assert main(["merge", str(run_dir), "--out", str(tmp_path / "m")]) == 0
    assert main(["report", str(tmp_path / "m")]) == 0
    html = (tmp_path / "m" / "report.html").read_text()
    assert 'data-testid="parts"' in html and "kept examples only" in html


def test_run_survives_a_report_that_cannot_be_written(run_dir, tmp_path, monkeypatch, capsys):
    from selfcodealign.commands import run as run_cmd

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("selfcodealign.report.write_run_report", boom)
    assert run_cmd.write_report(run_dir).startswith("not written (RuntimeError: disk on fire")


# ---- in Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: `apt-get install chromium chromium-driver` (make test does it when root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    profile = tempfile.mkdtemp(prefix="report-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                   args=FLAGS, viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


class Opened:
    def __init__(self, ctx, path: Path):
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page = ctx.new_page()
        self.page.on("request", lambda r: r.url != self.url and self.requests.append(r.url))
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)

    def clean(self) -> None:
        assert self.requests == [], self.requests
        assert self.errors == [], self.errors


@pytest.fixture
def report(browser, run_dir):
    o = Opened(browser, run_dir / "report.html")
    yield o
    o.page.close()


def _value(summary: dict, path: list[str]):
    v = summary
    for k in path:
        v = v[k]
    return v


def test_page_loads_with_no_network_and_no_console_errors(report):
    report.page.click("#rows tr")
    report.page.click("details.resp >> nth=0")
    report.page.fill("#q", "f_")
    report.page.select_option("#f-outcome", index=1)
    report.clean()


def test_funnel_numbers_in_the_dom_equal_summary_json(report, run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    cells = report.page.eval_on_selector_all("[data-k]", "els => els.map(e => [e.dataset.k, e.textContent])")
    shown = {tuple(json.loads(k)): text for k, text in cells}
    for path, text in shown.items():
        want = _value(summary, list(path))
        got = float(text.replace(",", ""))
        assert got == pytest.approx(want, abs=0.051), path
    # Every funnel number and every stage's in / out / drops are there.
    need = [("funnel", k) for k in summary["funnel"]] + [("wall_s",), ("model_load_s",)]
    need += [("busy", k) for k in summary["busy"]]
    for st, x in summary["stages"].items():
        need += [("stages", st, k) for k in ("in", "out") if k in x]
        need += [("stages", st, "drops", r) for r in x.get("drops", {})]
        need += [("stages", st, k) for k in ("prompt_tokens", "completion_tokens", "wall_s", "busy_s") if k in x]
    missing = [p for p in need if p not in shown]
    assert not missing
    funnel = report.page.inner_text("[data-testid=funnel]")
    assert f"{summary['funnel']['responses']:,}" in funnel


def _lineage_of(run_dir: Path, instruction: dict) -> dict:
    executed = [e for e in records(run_dir / "executed.jsonl") if e["response"]["parent_id"] == instruction["id"]]
    seed = next(s for s in records(run_dir / "seeds.jsonl") if s["id"] == instruction["seed_id"])
    chosen = {x["parent_id"] for x in records(run_dir / "dataset.jsonl")}
    return {"executed": executed, "seed": seed,
            "chosen": [e["response"]["sample_index"] for e in executed if e["id"] in chosen]}


def _check_lineage(page, instruction: dict, lin: dict) -> None:
    box = page.locator("[data-testid=lineage]")
    assert box.get_attribute("data-id") == instruction["id"]
    seed = lin["seed"]
    assert page.inner_text("#detail .seed-name") == seed["name"]
    assert seed["path"] in page.inner_text("#detail .seed-where")
    assert seed["code"].strip() in page.inner_text("[data-step=seed] pre")
    chips = page.locator("[data-step=concepts] .chip").all_inner_texts()
    assert chips == instruction["concepts"]
    assert page.inner_text("[data-step=instruction] .text") == instruction["instruction"]
    cards = page.locator("details.resp")
    assert cards.count() == len(lin["executed"])
    by_sample = {e["response"]["sample_index"]: e for e in lin["executed"]}
    for k in range(cards.count()):
        c = cards.nth(k)
        e = by_sample[int(c.get_attribute("data-sample"))]
        assert e["verdict"]["status"] in c.locator("summary").inner_text()
    chosen = page.locator("details.resp[data-chosen]")
    assert [int(x) for x in chosen.evaluate_all("els => els.map(e => e.dataset.sample)")] == lin["chosen"]
    if lin["chosen"]:
        assert "chosen for the dataset" in chosen.locator("summary").inner_text()


def test_clicking_an_example_shows_its_lineage(report, run_dir):
    instructions = records(run_dir / "instructions.jsonl")
    kept_ids = {e["response"]["parent_id"] for e in records(run_dir / "executed.jsonl")
                if e["id"] in {x["parent_id"] for x in records(run_dir / "dataset.jsonl")}}
    kept = [i for i in instructions if i["id"] in kept_ids]
    lost = [i for i in instructions if i["id"] not in kept_ids]
    assert kept and lost
    page = report.page
    for ins in (kept[-1], lost[0]):
        page.fill("#q", ins["id"])
        assert page.locator("#rows tr").count() == 1
        page.click("#rows tr")
        _check_lineage(page, ins, _lineage_of(run_dir, ins))
    # A failing response shows its stderr tail.
    page.fill("#q", "")
    page.select_option("#f-group", label=next(
        t for t in page.locator("#f-group option").all_inner_texts() if t.startswith("NameError")))
    page.click("#rows tr >> nth=0")
    failing = page.locator("details.resp[data-status=failed]").filter(has_text="NameError").first
    if not failing.evaluate("e => e.open"):  # a task with no kept example opens its first card
        failing.locator("summary").click()
    assert "NameError" in failing.locator("pre.err").inner_text()
    report.clean()


def test_failures_are_grouped_by_error_type_and_link_to_examples(report, run_dir):
    executed = records(run_dir / "executed.jsonl")
    names = sum(1 for e in executed if e["verdict"]["status"] == "failed" and e["verdict"]["detail"] == "NameError")
    asserts = sum(1 for e in executed if e["verdict"]["status"] == "failed" and e["verdict"]["detail"] == "AssertionError")
    weak = sum(1 for e in executed if e["verdict"]["status"] == "passed" and not e["meaningful_tests"])
    assert names and asserts and weak
    page = report.page
    rows = dict(page.eval_on_selector_all(
        "[data-testid=failures] tr[data-group]",
        "els => els.map(e => [e.dataset.group, e.querySelector('td.n').textContent])"))
    assert rows["NameError"] == str(names) and rows["AssertionError"] == str(asserts)
    assert rows["passed, tests not meaningful"] == str(weak)
    link = page.locator("tr[data-group=NameError] a.exlink").first
    iid, sample = link.get_attribute("href").removeprefix("#ex=").split(":")
    link.click()
    # A locator waits without evaluating a string (the report's CSP forbids eval).
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=lineage]")).to_have_attribute("data-id", iid)
    opened = page.locator(f"details.resp[data-sample='{sample}']")
    assert opened.get_attribute("open") is not None
    assert "NameError" in opened.locator("summary").inner_text()
    # "show all" filters the browser to the instructions with such a response.
    page.click("tr[data-group=NameError] button.show")
    with_name_error = {e["response"]["parent_id"] for e in executed if e["verdict"]["detail"] == "NameError"}
    assert page.inner_text("#count").startswith(f"{len(with_name_error)} of ")
    report.clean()


def _synthetic_run(root: Path, n_ins: int, n: int) -> None:
    """A run directory written directly (as a big run would leave it), for scale."""
    root.mkdir(parents=True)
    gen = {"model": "m", "backend": "x", "prompt_style": "chat", "temperature": 0.7, "top_p": 1.0,
           "max_tokens": 512, "seed": 0, "finish_reason": "stop"}
    with open(root / "instructions.jsonl", "w") as fi, open(root / "executed.jsonl", "w") as fe, \
            open(root / "seeds.jsonl", "w") as fs, open(root / "dataset.jsonl", "w") as fd:
        for i in range(n_ins):
            seed = {"id": f"s{i}", "code": f"def g{i}(x):\n    return x\n" * 3, "name": f"g{i}", "source": "t",
                    "path": f"lib{i % 7}/m.py", "line_start": 1, "line_end": 6}
            ins = {"id": f"i{i:06d}", "parent_id": f"c{i}", "seed_id": f"s{i}", "seed_source": "t",
                   "seed_path": seed["path"], "concepts": ["a", "b"], "category": "function",
                   "difficulty": "easy", "instruction": f"Task number {i}: " + words(str(i), 30), "raw": "", "gen": gen}
            fs.write(json.dumps(seed) + "\n")
            fi.write(json.dumps(ins) + "\n")
            for k in range(n):
                ok = (i + k) % 7 == 0
                resp = {"id": f"r{i}-{k}", "parent_id": ins["id"], "sample_index": k, "instruction": ins,
                        "response": "", "code": "def f(x):\n    return x\n" * 20, "tests": "assert f(1) == 1\n" * 10,
                        "raw": "", "gen": gen}
                fe.write(json.dumps({"id": f"e{i}-{k}", "parent_id": resp["id"], "response": resp,
                                     "verdict": {"id": "v", "status": "passed" if ok else "failed",
                                                 "detail": "" if ok else "AssertionError",
                                                 "stderr": "" if ok else "Traceback\n" * 40 + "AssertionError"},
                                     "meaningful_tests": True}) + "\n")
                if ok and k == 0:
                    fd.write(json.dumps({"parent_id": f"e{i}-{k}", "id": f"x{i}"}) + "\n")


def test_a_large_run_stays_usable_every_instruction_reachable(browser, tmp_path):
    root = tmp_path / "big"
    _synthetic_run(root, 2000, 10)
    assert main(["report", str(root)]) == 0
    o = Opened(browser, root / "report.html")
    page = o.page
    assert page.locator("#rows tr").count() == 50  # one page at a time
    assert page.inner_text("#count") == "2,000 of 2,000 instructions"
    page.click("#next")
    assert page.inner_text("#page") == "page 2 of 40"
    page.fill("#q", "i001999")  # the last instruction, by search
    assert page.locator("#rows tr").count() == 1
    page.click("#rows tr")
    assert page.locator("details.resp").count() == 10
    assert "no summary.json" in page.inner_text("[data-testid=notes]")
    o.clean()
    o.page.close()


def _eval_dir(path: Path, name: str, statuses: dict[str, tuple[str, str]]) -> None:
    (path / "humaneval").mkdir(parents=True)
    ev = {t: [{"task_id": t, "solution": f"def f():  # {name} {t}\n    return 1", "base_status": b,
               "plus_status": p}] for t, (b, p) in statuses.items()}
    (path / "humaneval" / "eval_results.json").write_text(json.dumps({"dataset": "humaneval", "eval": ev}))
    passed = sum(b == "pass" for b, _ in statuses.values()) / len(statuses)
    plus = sum(b == "pass" and p == "pass" for b, p in statuses.values()) / len(statuses)
    (path / "results.json").write_text(json.dumps({"model": {"name": name}, "settings": {"n": 1}, "benchmarks": {
        "humaneval": {"tasks": len(statuses), "samples": len(statuses), "base": {"pass@1": passed},
                      "plus": {"pass@1": plus}},
        "mbpp": {"tasks": 2, "samples": 2, "base": {"pass@1": 0.5}, "plus": {"pass@1": 0.5}}}}))


def test_compare_report_shows_scores_and_tasks_gained_and_lost(browser, tmp_path, capsys):
    a, b = tmp_path / "base", tmp_path / "tuned"
    _eval_dir(a, "base", {"HumanEval/0": ("pass", "pass"), "HumanEval/1": ("fail", "fail"),
                          "HumanEval/2": ("pass", "pass"), "HumanEval/3": ("pass", "fail")})
    _eval_dir(b, "tuned", {"HumanEval/0": ("pass", "pass"), "HumanEval/1": ("pass", "pass"),
                           "HumanEval/2": ("fail", "fail"), "HumanEval/3": ("pass", "pass")})
    out = tmp_path / "cmp.html"
    assert main(["compare", str(a), str(b), "--report", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    o = Opened(browser, out)
    page = o.page
    res = {"a": json.loads((a / "results.json").read_text()), "b": json.loads((b / "results.json").read_text())}
    for k, text in page.eval_on_selector_all("[data-k]", "els => els.map(e => [e.dataset.k, e.textContent])"):
        side, ds, part, metric = json.loads(k)
        assert float(text) == pytest.approx(100 * res[side]["benchmarks"][ds][part][metric], abs=0.051)
    # pass@1 rows carry the paired bootstrap interval of the delta (per-task results on both
    # sides); mbpp has no per-sample results here: "-".
    from selfcodealign.evaluate.score import paired_bootstrap, task_rates
    from selfcodealign.report.eval_report import load_samples

    sa, sb = load_samples(a, "humaneval", [], ""), load_samples(b, "humaneval", [], "")
    _, lo, hi, n = paired_bootstrap(task_rates(sa, "plus"), task_rates(sb, "plus"))
    assert n == 4 and lo < 0.25 < hi
    rows = page.inner_text("[data-testid=scores-humaneval]")
    assert f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" in rows
    assert "-" in page.inner_text("[data-testid=scores-mbpp]")

    def tasks(sel):
        return page.eval_on_selector_all(f"[data-testid={sel}] details.task", "els => els.map(e => e.dataset.task)")

    assert tasks("humaneval-plus-gained") == ["HumanEval/1", "HumanEval/3"]
    assert tasks("humaneval-plus-lost") == ["HumanEval/2"]
    assert tasks("humaneval-base-gained") == ["HumanEval/1"]
    # Both models' samples, side by side.
    d = page.locator("[data-testid=humaneval-plus-lost] details.task").first
    d.locator("summary").click()
    pres = d.locator("pre").all_inner_texts()
    assert "base HumanEval/2" in pres[0] and "tuned HumanEval/2" in pres[1]
    # mbpp has no eval_results.json: a note, not an error.
    assert "no " in page.inner_text("[data-testid=notes]") and "mbpp" in page.inner_text("[data-testid=notes]")
    o.clean()
    o.page.close()


def test_every_stage_of_the_registry_in_the_summary_is_shown_the_judge_too(tmp_path):
    from selfcodealign.report.load import load_run
    from selfcodealign.report.run_report import cost, drops, funnel
    from selfcodealign.stages import STAGES

    stages = {s.name: {"in": 10 + k, "out": 5 + k, "drops": {f"why_{s.name}": 5}, "wall_s": 1.5 + k}
              for k, s in enumerate(STAGES)}
    (tmp_path / "summary.json").write_text(json.dumps({"stages": stages, "wall_s": 60.0}))
    d = load_run(tmp_path)
    shown = funnel(d) + drops(d) + cost(d)
    assert "judge" in stages
    for name in stages:
        assert f"<td>{name}</td>" in shown, name
        assert f"why_{name}" in shown or name == "seeds", name  # seeds shows its mining funnel instead
