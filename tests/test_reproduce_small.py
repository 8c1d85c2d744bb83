"""The GPU reproduction driver's own logic: how the model is split over device calls, and
how a run is snapshotted into $OUT and restored after a lost machine."""

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

from selfcodealign.ledger import LedgerWriter, StageFiles
from selfcodealign.records import Drop

SPEC = importlib.util.spec_from_file_location(
    "reproduce_small", Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_small.py")
repro = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(repro)


@pytest.mark.parametrize("extras, size, cap", [(0, 100, 30), (25, 100, 30), (8 << 20, 491_400_064, 62 << 20)])
def test_plan_calls_fills_each_call_and_covers_the_model(extras, size, cap):
    sizes = repro.plan_calls(extras, size, cap)
    assert sum(sizes) == size
    assert sizes[0] + extras <= cap and all(s <= cap for s in sizes)
    assert all(s == cap for s in sizes[1:-1])  # only the last call is short
    assert len(sizes) == -(-(size + extras) // cap)


def _stage(run: Path, name: str, n: int, payload: int) -> None:
    w = LedgerWriter(StageFiles(run / f"{name}.jsonl"))
    for i in range(n):
        w.commit(f"in{i}", [Drop(input_id=f"in{i}", stage=name, reason="bad", raw="x" * payload)])
    w.close()
    StageFiles(run / f"{name}.jsonl").save_state({"complete": True, "wall_s": 2.0, "config": {}})


def test_pack_leaves_out_whole_stages_and_keeps_their_counts(tmp_path, monkeypatch):
    ctx = repro.Ctx(tmp_path / "w", tmp_path / "out", tiny=True)
    ctx.run.mkdir(parents=True)
    _stage(ctx.run, "concepts", 3, 10)
    _stage(ctx.run, "responses", 50, 20_000)  # ~1 MB: over the limit set below
    (ctx.run / "dataset.jsonl").write_text('{"id": "e"}\n')
    monkeypatch.setattr(repro, "SNAPSHOT_RAW_TRY", 100_000)
    ctx.pack()
    with tarfile.open(ctx.out / "run.tar.gz") as tar:
        names = set(tar.getnames())
    assert not any(n.startswith("run/responses.") for n in names)  # all four files, or none
    assert {"run/concepts.done.jsonl", "run/concepts.drops.jsonl", "run/concepts.state.json",
            "run/dataset.jsonl", "run/funnel.json"} <= names
    funnel = json.loads((ctx.run / "funnel.json").read_text())
    assert funnel["responses"]["in"] == 50 and funnel["responses"]["drops"] == {"bad": 50}
    assert funnel["left_out_of_snapshot"] == ["responses"]


def test_restore_unpacks_a_snapshot_only_before_generation_started(tmp_path, monkeypatch):
    src = repro.Ctx(tmp_path / "a", tmp_path / "out", tiny=True)
    src.run.mkdir(parents=True)
    (src.run / "seeds.jsonl").write_text('{"id": "s"}\n')
    (src.run / "phases.jsonl").write_text('{"phase": "concepts"}\n')
    src.pack()
    state = tmp_path / "ferry" / "state"
    state.mkdir(parents=True)
    (state / "run.tar.gz").write_bytes((tmp_path / "out" / "run.tar.gz").read_bytes())
    monkeypatch.setattr(repro, "STATE", state)

    fresh = repro.Ctx(tmp_path / "b", None)  # a new machine: only setup has run
    fresh.run.mkdir(parents=True)
    (fresh.run / "phases.jsonl").write_text('{"phase": "export"}\n')
    fresh.restore()
    assert (fresh.run / "seeds.jsonl").exists()
    assert [json.loads(x)["phase"] for x in (fresh.run / "phases.jsonl").read_text().splitlines()] == [
        "concepts", "export"]
    (fresh.run / "seeds.jsonl").write_text("newer\n")
    fresh.restore()  # generation started here: the machine's files win
    assert (fresh.run / "seeds.jsonl").read_text() == "newer\n"
