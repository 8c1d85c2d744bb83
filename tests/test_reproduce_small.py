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


def _resp(rid: str, parent: str) -> str:
    return json.dumps({"id": rid, "parent_id": parent, "response": "x"}) + "\n"


def test_ready_responses_follow_only_committed_instructions(tmp_path):
    shard = tmp_path / "s"
    shard.mkdir()
    src, done = shard / "responses.jsonl", shard / "responses.done.jsonl"
    src.write_text(_resp("a1", "A") + _resp("a2", "A") + _resp("b1", "B") + '{"id": "b2", "par')
    done.write_text('{"id": "A", "out": 2}\n')
    ready = repro.ReadyResponses(shard)
    assert ready.update() == 2  # B is not committed yet, and its last line is half written
    assert [json.loads(x)["id"] for x in ready.dst.read_text().splitlines()] == ["a1", "a2"]
    with open(src, "a") as f:
        f.write('ent_id": "B", "response": "x"}\n')
    with open(done, "a") as f:
        f.write('{"id": "B", "out": 2}\n')
    assert ready.update() == 2
    assert [json.loads(x)["id"] for x in ready.dst.read_text().splitlines()] == ["a1", "a2", "b1", "b2"]
    assert ready.update() == 0
    # a resume rewrites the file (a new inode): the ready list is rebuilt, not doubled
    tmp = shard / "x.tmp"
    tmp.write_text(_resp("a1", "A") + _resp("a2", "A"))
    tmp.replace(src)
    assert ready.update() == 2 and ready.count == 2


def _example(i: int, text: str) -> str:
    return json.dumps({"id": f"e{i}", "instruction": f"Task: {text}", "response": f"Answer: {text}"}) + "\n"


def test_merged_dataset_drops_what_an_earlier_part_already_has(tmp_path):
    ctx = repro.Ctx(tmp_path / "w", None, tiny=True)
    ctx.run.mkdir(parents=True)
    words = ["alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi",
             "red orange yellow green blue indigo violet black white grey brown pink cyan teal",
             "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"]
    (ctx.run / "dataset.jsonl").write_text(_example(0, words[0]) + _example(1, words[1]))
    for name, rows, complete in (("a", _example(2, words[0]) + _example(3, words[2]) + _example(1, words[1]), True),
                                 ("b", _example(4, "not finished yet, left out of the merge"), False)):
        d = ctx.run / "shards" / name
        d.mkdir(parents=True)
        (d / "dataset.jsonl").write_text(rows)
        (d / "shard.json").write_text(json.dumps({"spec": {}, "complete": complete}))
    out = repro.merged_dataset(ctx)
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["e0", "e1", "e3"]
    info = json.loads((ctx.run / "merge.json").read_text())
    assert info["parts"] == {"run": 2, "a": 3} and info["dropped"]["near_duplicate"] == 1
    assert info["dropped"]["same_id"] == 1 and info["examples"] == 3


def test_pack_carries_a_shards_dataset_and_counts_but_not_its_responses(tmp_path):
    ctx = repro.Ctx(tmp_path / "w", tmp_path / "out", tiny=True)
    shard = ctx.run / "shards" / "a"
    shard.mkdir(parents=True)
    _stage(shard, "responses", 3, 10)
    _stage(shard, "executed", 3, 10)
    (shard / "responses.ready.jsonl").write_text("{}\n")
    (shard / "dataset.jsonl").write_text('{"id": "e"}\n')
    ctx.pack()
    with tarfile.open(ctx.out / "run.tar.gz") as tar:
        names = set(tar.getnames())
    assert "run/shards/a/dataset.jsonl" in names and "run/shards/a/funnel.json" in names
    assert not any(n.startswith(("run/shards/a/responses.", "run/shards/a/executed.")) for n in names)
    assert json.loads((shard / "funnel.json").read_text())["responses"]["in"] == 3


def test_a_launched_command_is_logged_timed_and_stopped_at_its_deadline(tmp_path):
    import sys
    import time

    ctx = repro.Ctx(tmp_path / "w", None, tiny=True)
    ok = ctx.launch("p/quick", [sys.executable, "-c", "print('hi')"], log_name="quick")
    while ok.wait(5.0):
        pass
    assert ok.result() == "ok" and ok.result() == "ok"  # recorded once
    slow = ctx.launch("p/slow", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert slow.wait(0.1)  # still running, and the caller got control back
    slow.end = time.monotonic()  # its deadline has come: SIGINT, then the verdict
    t = time.monotonic()
    assert slow.result() == "out_of_time" and time.monotonic() - t < 20
    phases = [json.loads(x) for x in ctx.phases.read_text().splitlines()]
    assert [(p["phase"], p["finished"]) for p in phases] == [("p/quick", True), ("p/slow", False)]
    assert "hi" in (ctx.run / "logs" / "quick.log").read_text()
    assert (ctx.run / "logs" / "slow.log").exists()
