"""A run directory written by an earlier version resumes under this one.

tests/data/run-30a7e3d/run was made by selfcodealign at commit 30a7e3d (before the stage
registry and backend.engine), with tests/scripted_backend.py, 8 seeds, responses.n=3, and
interrupted during the responses stage. This version must take it as it is: keep every
committed record, finish the rest, and end where an uninterrupted run ends."""

import json
import shutil
from pathlib import Path

import pytest

from interrupted import mine_interrupted
from scripted_backend import Scripted

from selfcodealign.config import build_config
from selfcodealign.errors import UserError
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.jsonl import read_lines
from selfcodealign.pipeline import Pipeline
from selfcodealign.stages.seeds import SeedsStage

SETS = ["seeds.source=seeds:input-seeds.jsonl", "prompts.style=completion", "responses.n=3",
        "execute.overlap=true", "execute.workers=2",
        # that version sampled class tasks by default; the refusal says to set it so
        "instructions.categories=[function,class,program]",
        "select.keep_reasons=[trivial]"]  # the scripted answers are one-line functions


def run(out: Path) -> tuple[dict, Scripted]:
    backend = Scripted()
    summary = Pipeline(build_config(sets=SETS), out, lambda: LocalExecutor(lambda: backend, 2),
                       quiet=True).run()
    return summary, backend


def test_a_run_made_under_another_default_is_refused_with_the_setting_it_was_made_with(tmp_path, monkeypatch, test_data):
    shutil.copytree(test_data.old_run, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    cfg = build_config(sets=[s for s in SETS if not s.startswith("instructions.categories")])
    with pytest.raises(UserError) as err:
        Pipeline(cfg, tmp_path / "old" / "run", lambda: LocalExecutor(lambda: Scripted(), 2), quiet=True).run()
    msg = str(err.value)
    assert "\n" not in msg and 'categories: ["function", "class", "program"], now ["function", "program"]' in msg


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


def _corpus(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for k in range(n):
        (root / f"m{k}.py").write_text(
            f"def scale_{k}(x, y):\n    \"\"\"Scale x by {k}, shift it by y and clamp it at zero.\"\"\"\n"
            f"    z = x * {k} + y\n    if z < 0:\n        return 0\n    return z + {k}\n")
    return root


def test_seeds_mining_interrupted_under_the_two_state_files_of_an_earlier_version_resumes(tmp_path):
    # Before one state file per stage, the seeds stage kept seeds.state.json (its settings and
    # completion) and mining kept its progress in seeds.jsonl.state.json.
    corpus = _corpus(tmp_path / "corpus", 8)
    sets = [s for s in SETS if not s.startswith("seeds.source=")] + [
        f"seeds.source={corpus}", "seeds.typecheck=false", "seeds.dedup=false", "seeds.workers=1",
        "seeds.typecheck_batch=1"]
    cfg = build_config(sets=sets)
    old = tmp_path / "old"
    mine_interrupted(cfg.seeds, old / "seeds.jsonl")
    progress = json.loads((old / "seeds.state.json").read_text())["mining"]
    assert not progress["done"] and progress["docs_done"] < 8
    (old / "seeds.jsonl.state.json").write_text(json.dumps(progress))
    (old / "seeds.state.json").write_text(json.dumps({"config": SeedsStage.settings(cfg), "complete": False}))

    def run_mined(out: Path) -> dict:
        return Pipeline(cfg, out, lambda: LocalExecutor(lambda: Scripted(), 2), quiet=True).run()

    resumed, fresh = run_mined(old), run_mined(tmp_path / "fresh")
    assert (old / "seeds.jsonl").read_bytes() == (tmp_path / "fresh" / "seeds.jsonl").read_bytes()
    assert resumed["funnel"] == fresh["funnel"] and fresh["funnel"]["seeds"] == 8
    assert not (old / "seeds.jsonl.state.json").exists()
    state = json.loads((old / "seeds.state.json").read_text())
    assert state["complete"] and state["mining"]["done"]
    assert sorted(p.name for p in old.glob("seeds*")) == ["seeds.jsonl", "seeds.state.json"]
