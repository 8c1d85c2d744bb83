"""A run directory written by an earlier version resumes under this one.

tests/data/run-30a7e3d/run was made by selfcodealign at commit 30a7e3d (before the stage
registry and backend.engine), with tests/scripted_backend.py, 8 seeds, responses.n=3, and
interrupted during the responses stage. This version must take it as it is: keep every
committed record, finish the rest, and end where an uninterrupted run ends."""

import shutil
from pathlib import Path

from scripted_backend import Scripted

from selfcodealign.config import build_config
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.jsonl import read_lines
from selfcodealign.pipeline import Pipeline

SETS = ["seeds.source=seeds:input-seeds.jsonl", "prompts.style=completion", "responses.n=3",
        "execute.overlap=true", "execute.workers=2",
        "select.keep_reasons=[trivial]"]  # the scripted answers are one-line functions


def run(out: Path) -> tuple[dict, Scripted]:
    backend = Scripted()
    summary = Pipeline(build_config(sets=SETS), out, lambda: LocalExecutor(lambda: backend, 2),
                       quiet=True).run()
    return summary, backend


def ids(path: Path) -> list[str]:
    return sorted(o["id"] for _, o in read_lines(path) if o)


def test_an_interrupted_run_of_an_earlier_version_resumes_without_loss_or_redo(tmp_path, monkeypatch, test_data):
    shutil.copytree(test_data.old_run, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")  # the old run names its seeds by a relative path
    old = tmp_path / "old" / "run"
    before = {name: (old / name).read_bytes() for name in ("concepts.jsonl", "instructions.jsonl")}
    committed = len(ids(old / "responses.done.jsonl"))
    assert committed > 0 and not (old / "dataset.jsonl").exists()

    resumed, b_resumed = run(old)
    fresh, b_fresh = run(tmp_path / "fresh")

    # The finished stages are kept as they were, and only the unfinished work is done.
    assert {name: (old / name).read_bytes() for name in before} == before
    assert b_resumed.responses == b_fresh.responses - 3 * committed
    for name in ("concepts.jsonl", "instructions.jsonl", "responses.jsonl", "executed.jsonl",
                 "verified.jsonl", "dataset.jsonl"):
        assert ids(old / name) == ids(tmp_path / "fresh" / name), name
    assert resumed["funnel"] == fresh["funnel"] and fresh["funnel"]["dataset"] > 0
