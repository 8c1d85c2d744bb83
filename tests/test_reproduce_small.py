"""The GPU ferry driver's own logic: how the model is split over device calls, and how
results come back in volumes small enough for the device tool."""

import importlib.util
import os
import tarfile
from pathlib import Path

import pytest

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


def test_pack_splits_into_volumes_and_collect_restores_every_file(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    files = {}
    for i in range(6):
        # incompressible: each file fills most of a small volume
        data = os.urandom(40_000)
        p = run / ("sub" if i % 2 else ".") / f"f{i}.bin"
        p.write_bytes(data)
        files[p.relative_to(tmp_path)] = data
    out = tmp_path / "out"
    out.mkdir()
    left = repro.pack([run], out, volume=100_000)
    volumes = sorted(out.glob("results*.tar.gz"))
    assert left == [] and 2 <= len(volumes) <= repro.MAX_VOLUMES
    assert all(v.stat().st_size <= 100_000 + 50_000 for v in volumes)
    repro.main(["collect", str(out), str(tmp_path / "back")])
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    names = [m for v in volumes for m in tarfile.open(v).getnames()]
    assert len(names) == len(set(names)) == 6


def test_pack_reports_what_does_not_fit(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    for i in range(4):
        (run / f"f{i}.bin").write_bytes(os.urandom(50_000))
    monkeypatch.setattr(repro, "MAX_VOLUMES", 2)
    out = tmp_path / "out"
    out.mkdir()
    left = repro.pack([run], out, volume=60_000)
    assert len(list(out.glob("results*.tar.gz"))) == 2
    assert left == ["run/f2.bin", "run/f3.bin"]
