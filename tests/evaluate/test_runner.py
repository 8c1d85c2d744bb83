"""The eval runner's own logic with a scripted backend (the real engines are tested in
test_eval_embedded.py): protocol, files, resume, settings guard."""

import json
from pathlib import Path

import pytest

from selfcodealign.backends.base import Backend, Completion
from selfcodealign.errors import UserError
from selfcodealign.evaluate.data import BENCHMARKS
from selfcodealign.evaluate.runner import EvalSettings, run


CODE = {
    "HumanEval/23": "def strlen(string: str) -> int:\n    return len(string)\n```\nDone.",
    "HumanEval/53": "def add(x: int, y: int):\n    return x - y\n```\n",
}


class Scripted(Backend):
    name = "scripted"

    def __init__(self, model="scripted"):
        super().__init__()
        self.model, self.seen = model, []

    @property
    def model_id(self):
        return self.model

    def iter_generate(self, prompts, params):
        for i, (p, sp) in enumerate(zip(prompts, params)):
            self.seen.append((p, sp))
            task = "HumanEval/23" if "strlen" in p[0]["content"] else "HumanEval/53"
            yield i, [Completion(sp.prefill + CODE[task], "stop")] * sp.n


@pytest.fixture
def settings(test_data):
    """Fresh settings for each run: two tasks of the packaged data."""
    return lambda: EvalSettings(tasks=["HumanEval/23", "HumanEval/53"], data_dir=test_data.eval_dir)


def test_generate_score_and_resume(tmp_path, settings):
    b = Scripted()
    rep = run([BENCHMARKS["humaneval"]], tmp_path, settings(), backend=b)
    m = rep["benchmarks"]["humaneval"]
    assert m["base"]["pass@1"] == 0.5 and m["generation"]["protocol"] == "chat"
    prompt, sp = b.seen[0]
    assert sp.prefill.endswith("```python\n") and "\n```\n" in sp.stop and sp.temperature == 0
    sani = [json.loads(x) for x in (tmp_path / "humaneval" / "samples.jsonl").read_text().splitlines()]
    assert {s["task_id"]: s["solution"] for s in sani}["HumanEval/23"].startswith("def strlen")
    assert all("Done." not in s["solution"] for s in sani)
    raw = (tmp_path / "humaneval" / "samples.raw.jsonl").read_text()
    assert "Below is a Python script" in raw

    again = Scripted()
    rep2 = run([BENCHMARKS["humaneval"]], tmp_path, settings(), backend=again)
    assert again.seen == [] and rep2["benchmarks"]["humaneval"]["base"] == m["base"]


def test_refuses_to_mix_models_in_one_output(tmp_path, settings):
    run([BENCHMARKS["humaneval"]], tmp_path, settings(), backend=Scripted("a"))
    with pytest.raises(UserError, match="other settings"):
        run([BENCHMARKS["humaneval"]], tmp_path, settings(), backend=Scripted("b"))


def test_generate_only_then_score_the_directory_elsewhere(tmp_path, monkeypatch, settings):
    import selfcodealign.evaluate.runner as runner

    def no_evalplus(*a, **k):
        raise AssertionError("evalplus used while only generating")

    # Generation must not need evalplus (a GPU machine may lack it and its dependencies).
    monkeypatch.setattr(runner.protocol, "sanitize", no_evalplus)
    monkeypatch.setattr(runner, "load_problems", no_evalplus)
    monkeypatch.setattr(runner, "score", no_evalplus)
    gen = tmp_path / "gen"
    rep = run([BENCHMARKS["humaneval"]], gen, settings(), backend=Scripted("m"),
              model_info={"name": "m"}, generate_only=True)
    m = rep["benchmarks"]["humaneval"]
    assert m["samples"] == 2 and "base" not in m
    assert not (gen / "humaneval" / "samples.jsonl").exists()
    monkeypatch.undo()

    scored = run([BENCHMARKS["humaneval"]], tmp_path / "scored", settings(), samples_file=gen)
    direct = run([BENCHMARKS["humaneval"]], tmp_path / "direct", settings(), backend=Scripted("m"))
    assert scored["benchmarks"]["humaneval"]["base"] == direct["benchmarks"]["humaneval"]["base"]
    assert scored["benchmarks"]["humaneval"]["plus"] == direct["benchmarks"]["humaneval"]["plus"]
    assert scored["model"] == {"name": "m"}  # from the generating run's results.json
    assert (tmp_path / "scored" / "humaneval" / "samples.jsonl").read_text() == \
        (tmp_path / "direct" / "humaneval" / "samples.jsonl").read_text()
    with pytest.raises(UserError, match="not an `eval` output directory"):
        run([BENCHMARKS["humaneval"]], tmp_path / "x", settings(), samples_file=tmp_path / "scored" / "humaneval")
