"""The whole pipeline on the real embedded model, killed with SIGKILL mid-run and resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfcodealign.jsonl import read_lines

SMALL = [
    "--preset", "quickstart", "--quiet",
    "--set", "seeds.max_seeds=3", "--set", "responses.n=3",
    "--set", "backend.n_parallel=2", "--set", "backend.ctx_per_slot=3072",
    "--set", "responses.max_tokens=600", "--set", "instructions.max_tokens=256",
]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "selfcodealign.cli", *args],
                          capture_output=True, text=True, **kw)


def lines(p: Path) -> list[dict]:
    return [o for _, o in read_lines(p) if o] if p.exists() else []


def wait_for(path: Path, n: int, proc, timeout: float) -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if len(lines(path)) >= n or proc.poll() is not None:
            return
        time.sleep(0.2)


@pytest.mark.model
def test_run_killed_mid_stage_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "selfcodealign.cli", "run", "--out", str(out), *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Kill once the first instruction is committed, in the middle of that stage.
    wait_for(out / "instructions.done.jsonl", 1, proc, timeout=900)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # A kill in the middle of writing a record leaves a torn line: simulate one.
    with open(out / "instructions.jsonl", "a") as f:
        f.write('{"id": "torn", "parent_id": "x", "instruc')
    done_before = {o["id"] for o in lines(out / "instructions.done.jsonl")}

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "funnel: seeds 3" in res.stderr

    # Every stage: each input exactly once in the ledger, no output twice, none orphaned.
    chain = [("seeds.jsonl", "concepts"), ("concepts.jsonl", "instructions"),
             ("instructions.jsonl", "responses"), ("responses.jsonl", "executed")]
    for inp, stage in chain:
        inputs = [o["id"] for o in lines(out / inp)]
        ledger = [o["id"] for o in lines(out / f"{stage}.done.jsonl")]
        assert sorted(ledger) == sorted(set(inputs)), stage
        outs = lines(out / f"{stage}.jsonl")
        assert len({o["id"] for o in outs}) == len(outs), stage
        assert {o["parent_id"] for o in outs} <= set(ledger), stage
        entries = {o["id"]: o for o in lines(out / f"{stage}.done.jsonl")}
        drops = lines(out / f"{stage}.drops.jsonl")
        for i in set(inputs):
            n_out = sum(1 for o in outs if o["parent_id"] == i)
            n_drop = sum(1 for d in drops if d["input_id"] == i)
            assert entries[i]["out"] == n_out and sum(entries[i]["drops"].values()) == n_drop
    assert done_before <= {o["id"] for o in lines(out / "instructions.done.jsonl")}
    assert "torn" not in (out / "instructions.jsonl").read_text()

    # Every response got 3 samples or counted drops; ids are per (instruction, sample).
    summary = json.loads((out / "summary.json").read_text())
    st = summary["stages"]
    assert st["responses"]["out"] + sum(st["responses"]["drops"].values()) == 3 * st["instructions"]["out"]
    assert summary["funnel"]["dataset"] == len(lines(out / "dataset.jsonl"))

    # The dataset traces back to seeds and holds only passing, meaningful responses.
    seeds = {o["id"]: o for o in lines(out / "seeds.jsonl")}
    executed = {o["id"]: o for o in lines(out / "executed.jsonl")}
    for ex in lines(out / "dataset.jsonl"):
        assert ex["seed_id"] in seeds
        assert ex["verdict"]["status"] == "passed"
        assert executed[ex["parent_id"]]["meaningful_tests"]
        assert [m["role"] for m in ex["messages"]][-2:] == ["user", "assistant"]
        assert ex["model_sha256"] and ex["sampling"]["seed"] >= 0
    config = (out / "config.yaml").read_text()
    assert "max_seeds: 3" in config

    # Same command again: everything is done, nothing changes.
    before = (out / "responses.jsonl").read_text()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and (out / "responses.jsonl").read_text() == before

    # A changed setting is refused with the key named; --force redoes from that stage.
    res = subprocess.run(cmd + ["--set", "execute.timeout=5"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "execute" in res.stderr and "timeout" in res.stderr and "--force" in res.stderr
    assert "Traceback" not in res.stderr
    res = subprocess.run(cmd + ["--set", "execute.timeout=5", "--force"], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "responses.jsonl").read_text() == before  # generation was not redone
    assert "timeout: 5.0" in (out / "config.yaml").read_text()
