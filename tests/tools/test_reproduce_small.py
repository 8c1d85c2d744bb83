"""The GPU ferry driver's own logic: how the model is split over device calls, and how
results come back in volumes small enough for the device tool."""

import os
from pathlib import Path

import pytest

from repo_scripts import load_script

repro = load_script("tools/reproduce_small.py")


@pytest.mark.parametrize("extras, size, cap", [(0, 100, 30), (25, 100, 30), (8 << 20, 491_400_064, 62 << 20)])
def test_plan_calls_fills_each_call_and_covers_the_model(extras, size, cap):
    sizes = repro.plan_calls(extras, size, cap)
    assert sum(sizes) == size
    assert sizes[0] + extras <= cap and all(s <= cap for s in sizes)
    assert all(s == cap for s in sizes[1:-1])  # only the last call is short
    assert len(sizes) == -(-(size + extras) // cap)


def test_pack_cuts_one_stream_into_volumes_and_collect_restores_every_file(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    files = {}
    for i in range(6):
        data = os.urandom(40_000)  # incompressible
        p = run / ("sub" if i % 2 else ".") / f"f{i}.bin"
        p.write_bytes(data)
        files[p.relative_to(tmp_path)] = data
    big = tmp_path / "big.bin"  # a file larger than a volume comes back too
    big.write_bytes(os.urandom(250_000))
    files[Path("big.bin")] = big.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    k = repro.pack([run, big], out, volume=150_000)
    volumes = sorted(out.glob("results.tar.gz.*"))
    assert k == len(volumes) == 4
    assert all(v.stat().st_size == 150_000 for v in volumes[:-1]) and volumes[-1].stat().st_size <= 150_000
    repro.main(["collect", str(out), str(tmp_path / "back")])
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data


def test_files_of_one_name_in_two_folders_both_come_back(tmp_path):
    for arm in ("a", "b"):
        (tmp_path / "runs" / arm).mkdir(parents=True)
        (tmp_path / "runs" / arm / "summary.json").write_text(arm)
    out = tmp_path / "out"
    out.mkdir()
    repro.pack([tmp_path / "runs" / "a" / "summary.json", tmp_path / "runs" / "b" / "summary.json"], out)
    repro.main(["collect", str(out), str(tmp_path / "back")])
    assert [(tmp_path / "back" / arm / "summary.json").read_text() for arm in ("a", "b")] == ["a", "b"]


def test_pack_refuses_more_than_comes_back_and_leaves_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    for i in range(4):
        (run / f"f{i}.bin").write_bytes(os.urandom(50_000))
    monkeypatch.setattr(repro, "MAX_VOLUMES", 2)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SystemExit):
        repro.pack([run], out, volume=60_000)
    assert list(out.iterdir()) == []


def test_a_started_job_outlives_its_starter_and_wait_reports_it(tmp_path, monkeypatch, capsys):
    import argparse

    monkeypatch.setattr(repro, "JOB", tmp_path / "job")
    repro.cmd_start(argparse.Namespace(command="sleep 1; echo made; exit 3"))
    with pytest.raises(SystemExit):  # one job at a time
        repro.cmd_start(argparse.Namespace(command="true"))
    repro.cmd_wait(argparse.Namespace(seconds=0, lines=5))
    assert "job: running" in capsys.readouterr().out
    repro.cmd_wait(argparse.Namespace(seconds=30, lines=5))
    out = capsys.readouterr().out
    assert "made" in out and "job: exit 3" in out
