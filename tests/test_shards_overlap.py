"""Shards, merge and execution following generation, through the real pipeline, ledger and
sandbox. The model is a scripted backend (this tests our own scheduling logic; the real
engines are tested elsewhere): it answers each step's prompt with text derived from the
prompt and seed, so runs are deterministic, and its samples pass or fail their tests."""

import json

import pytest
from scripted_backend import Scripted

from selfcodealign.cli import main
from selfcodealign.config import build_config
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.ids import make_id
from selfcodealign.jsonl import read_lines, write_atomic
from selfcodealign.pipeline import Pipeline
from selfcodealign.records import Seed

STAGE_FILES = ["concepts", "instructions", "responses", "executed", "dataset"]


def seeds_file(tmp_path, n=12):
    seeds = [Seed(id=make_id("seed", i), code=f"def g{i}(x):\n    \"\"\"Doc {i}.\"\"\"\n    return x + {i}\n",
                  name=f"g{i}", source="test", path=f"m{i}.py", line_start=1, line_end=3)
             for i in range(n)]
    path = tmp_path / "seeds.jsonl"
    write_atomic(path, seeds)
    return path


def run(tmp_path, out, seeds, *sets, backend=None):
    cfg = build_config(sets=[f"seeds.source=seeds:{seeds}", "prompts.style=completion",
                             "responses.n=3", "execute.overlap=true", "execute.workers=2",
                             # the scripted answers are one-line functions: kept here despite that
                             "select.keep_reasons=[trivial]", *sets])
    backend = backend or Scripted()
    return Pipeline(cfg, out, lambda: LocalExecutor(lambda: backend, 2), quiet=True).run()


def ids(path):
    return [o["id"] for _, o in read_lines(path) if o] if path.exists() else []


def test_the_union_of_the_shards_is_the_unsharded_run_and_merge_joins_them(tmp_path):
    seeds = seeds_file(tmp_path)
    whole = run(tmp_path, tmp_path / "whole", seeds)
    parts = [run(tmp_path, tmp_path / f"part{k}", seeds, f"shard={k}/3") for k in (1, 2, 3)]
    assert sum(p["stages"]["seeds"]["out"] for p in parts) == whole["stages"]["seeds"]["out"] == 12
    assert all(p["stages"]["seeds"]["out"] > 0 and p["stages"]["seeds"]["mined"] == 12 for p in parts)
    for stage in STAGE_FILES:
        full = ids(tmp_path / "whole" / f"{stage}.jsonl")
        shards = [ids(tmp_path / f"part{k}" / f"{stage}.jsonl") for k in (1, 2, 3)]
        assert full, stage
        assert sorted(sum(shards, [])) == sorted(full), stage  # same records, none twice
    # The records themselves are the same (ids and sampling seeds come from lineage).
    a = {o["id"]: o for _, o in read_lines(tmp_path / "whole" / "responses.jsonl")}
    for k in (1, 2, 3):
        for _, o in read_lines(tmp_path / f"part{k}" / "responses.jsonl"):
            assert o == a[o["id"]]

    assert main(["merge", *(str(tmp_path / f"part{k}") for k in (1, 2, 3)),
                 str(tmp_path / "part1"), "--out", str(tmp_path / "m")]) == 2  # a run twice
    assert main(["merge", *(str(tmp_path / f"part{k}") for k in (1, 2, 3)), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert sorted(ids(tmp_path / "m" / "dataset.jsonl")) == sorted(ids(tmp_path / "whole" / "dataset.jsonl"))
    assert [p["examples"] for p in merged["parts"]] == [p["stages"]["select"]["out"] for p in parts]
    assert merged["out"] == sum(p["kept"] for p in merged["parts"]) == whole["stages"]["select"]["out"]

    # A part given twice under another name: its ids are kept once.
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "dataset.jsonl").write_text((tmp_path / "part2" / "dataset.jsonl").read_text())
    assert main(["merge", str(tmp_path / "part2"), str(tmp_path / "copy"), "--out", str(tmp_path / "m2")]) == 0
    twice = json.loads((tmp_path / "m2" / "summary.json").read_text())
    assert twice["parts"][1]["duplicate_id"] == twice["parts"][1]["examples"] > 0
    assert twice["out"] == twice["parts"][0]["kept"]


def test_a_changed_shard_is_refused(tmp_path, capsys):
    seeds = seeds_file(tmp_path, 4)
    run(tmp_path, tmp_path / "r", seeds, "shard=1/2")
    with pytest.raises(Exception, match="shard"):
        run(tmp_path, tmp_path / "r", seeds, "shard=2/2")


def test_responses_are_executed_while_the_model_generates(tmp_path):
    seeds = seeds_file(tmp_path, 8)
    out = tmp_path / "r"
    backend = Scripted(delay=0.2, watch=lambda: sum(1 for _ in read_lines(out / "executed.done.jsonl"))
                       if (out / "executed.done.jsonl").exists() else 0)
    s = run(tmp_path, out, seeds, backend=backend)
    # Before the model wrote its last responses, earlier ones had verdicts.
    assert backend.seen[-1] > 0
    st = s["stages"]
    assert st["execute"]["in"] == st["responses"]["out"] == 24
    assert 0 < s["busy"]["execution_s"] < st["execute"]["wall_s"] + 1e-6
    assert s["busy"]["generation_s"] > 0


def test_interrupted_generation_resumes_with_every_response_executed_once(tmp_path):
    seeds = seeds_file(tmp_path, 6)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, out, seeds, backend=Scripted(delay=0.05, interrupt_after=7))
    executed_before = ids(out / "executed.done.jsonl")
    assert executed_before  # the follower committed verdicts before the interrupt
    s = run(tmp_path, out, seeds)
    responses = ids(out / "responses.jsonl")
    ledger = ids(out / "executed.done.jsonl")
    assert sorted(ledger) == sorted(responses) and len(set(ledger)) == len(ledger) == 18
    assert len(ids(out / "executed.jsonl")) == 18
    assert s["stages"]["execute"]["in"] == 18


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "r"), "--shard", "3/2"]) == 2
    assert "K/N" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "r"), "--set", f"seeds.source=seeds:{tmp_path}/none.jsonl"]) == 2
    assert "seeds file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["merge", str(tmp_path / "empty"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "no dataset.jsonl" in err and "Traceback" not in err


def test_a_run_made_before_a_setting_existed_resumes_while_it_keeps_its_default(tmp_path):
    from selfcodealign.errors import UserError

    seeds = seeds_file(tmp_path, 4)
    out = tmp_path / "r"
    run(tmp_path, out, seeds)
    # As an older version saved it: without the settings added since.
    for stage in ("concepts", "instructions", "responses"):
        p = out / f"{stage}.state.json"
        state = json.loads(p.read_text())
        del state["config"]["shard"]
        state["config"]["generation"].pop("categories", None)
        p.write_text(json.dumps(state))
    before = (out / "responses.jsonl").read_text()
    run(tmp_path, out, seeds)
    assert (out / "responses.jsonl").read_text() == before
    with pytest.raises(UserError, match=r'stage instructions .*\(generation\.categories: null, now \["function"\]\)'):
        run(tmp_path, out, seeds, "instructions.categories=[function]")
