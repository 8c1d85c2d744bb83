"""Held-out generated tasks as a benchmark: `eval --benchmarks selfval:FILE` asks the
model with the instruction as the user turn and runs the code of its answer with the
task's tests in the real sandbox."""

import json

import pytest

from selfcodealign.backends.base import Completion, ThreadedBackend
from selfcodealign.cli import main
from selfcodealign.evaluate.data import parse_benchmarks
from selfcodealign.evaluate.runner import EvalSettings, run
from selfcodealign.records import HeldOutTask

ANSWER = "Here it is.\n\n```python\ndef inc(x):\n    return x + 1\n```\n"


class Fixed(ThreadedBackend):
    """Answers every prompt with ``ANSWER``; keeps the prompts it was given."""

    name = "fixed"

    def __init__(self):
        super().__init__()
        self.prompts = []

    model_id = "fixed"
    model_sha256 = None
    model_sha256_note = None
    has_chat_template = True

    def _request(self, prompt, sp, sample):
        self.prompts.append(prompt)
        return Completion(ANSWER, "stop", 10, 20)


def tasks_file(path):
    tasks = [HeldOutTask(id="t1", parent_id="i1", seed_id="s1", instruction="Write inc(x) that adds one.",
                         tests="assert inc(1) == 2\n", solution="def inc(x):\n    return x + 1\n"),
             HeldOutTask(id="t2", parent_id="i2", seed_id="s2", instruction="Write inc(x) that adds two.",
                         tests="assert inc(1) == 3\n", solution="def inc(x):\n    return x + 2\n")]
    path.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    return path


def test_selfval_generates_and_scores_in_the_sandbox(tmp_path, capsys):
    f = tasks_file(tmp_path / "dataset.heldout.jsonl")
    [bench] = parse_benchmarks(f"selfval:{f}")
    backend = Fixed()
    report = run([bench], tmp_path / "out", EvalSettings(), backend=backend, model_info={"name": "fixed"})
    m = report["benchmarks"]["selfval"]
    assert m["tasks"] == 2 and m["base"]["pass@1"] == 0.5
    assert sorted(p[0]["content"] for p in backend.prompts) == ["Write inc(x) that adds one.",
                                                                "Write inc(x) that adds two."]
    ev = json.loads((tmp_path / "out" / "selfval" / "eval_results.json").read_text())["eval"]
    assert ev["t1"][0]["base_status"] == "pass" and ev["t2"][0]["base_status"] == "fail"
    assert ev["t1"][0]["solution"] == "def inc(x):\n    return x + 1\n"
    # Scored again from the directory, by the command.
    assert main(["eval", "--samples", str(tmp_path / "out"), "--benchmarks", f"selfval:{f}",
                 "--out", str(tmp_path / "again")]) == 0
    assert "SelfVal: 50.0" in capsys.readouterr().out
    # compare shows the row with its interval (paired over the two tasks).
    assert main(["compare", str(tmp_path / "out"), str(tmp_path / "again")]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("SelfVal pass@1"))
    assert "[+0.0, +0.0]" in row and "SelfVal+" not in row


@pytest.mark.parametrize("content,msg", [(None, "no file"), ("", "holds no task"), ('{"id": "x"}\n', "not a held-out task")])
def test_bad_selfval_files_are_one_line_errors(tmp_path, capsys, content, msg):
    f = tmp_path / "h.jsonl"
    if content is not None:
        f.write_text(content)
    (tmp_path / "selfval").mkdir()
    (tmp_path / "selfval" / "samples.raw.jsonl").write_text('{"task_id": "x", "solution": "pass"}\n')
    assert main(["eval", "--samples", str(tmp_path), "--benchmarks", f"selfval:{f}", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
