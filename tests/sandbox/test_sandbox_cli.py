"""`selfcodealign sandbox --in --out`: order, resume, bad lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from selfcodealign.cli import main


def _write(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_verdicts_in_input_order_with_all_fields(tmp_path):
    inp, out = tmp_path / "programs.jsonl", tmp_path / "verdicts.jsonl"
    _write(
        inp,
        [
            {"id": "slow", "code": "import time\ntime.sleep(0.3)\nprint('s')"},
            {"id": "ok", "code": "def f():\n    return 1", "tests": "assert f() == 1"},
            {"id": 7, "code": "while True: pass", "timeout": 0.5},
            {"id": "big", "code": "x = bytearray(1 << 30)", "memory_mb": 256},
            {"id": "bad", "code": "raise ValueError('boom')"},
        ],
    )
    assert main(["sandbox", "--in", str(inp), "--out", str(out), "--workers", "2"]) == 0
    rows = _read(out)
    assert [r["id"] for r in rows] == ["slow", "ok", "7", "big", "bad"]
    assert [r["status"] for r in rows] == ["passed", "passed", "timeout", "oom", "failed"]
    assert set(rows[0]) == {"id", "status", "exit_code", "duration", "stdout", "stderr", "detail"}
    assert rows[0]["stdout"] == "s\n" and "ValueError: boom" in rows[4]["stderr"]


def test_rerun_skips_finished_ids_and_resumes_after_a_torn_line(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": f"p{i}", "code": f"print({i})"} for i in range(6)]
    _write(inp, rows)
    # As if a run was killed after two verdicts, in the middle of writing the third.
    out.write_text(
        json.dumps({"id": "p0", "status": "passed", "stdout": "0\n"})
        + "\n"
        + json.dumps({"id": "p1", "status": "passed", "stdout": "1\n"})
        + "\n"
        + '{"id": "p2", "sta'
    )
    assert main(["sandbox", "--in", str(inp), "--out", str(out)]) == 0
    got = _read(out)
    assert [r["id"] for r in got] == [f"p{i}" for i in range(6)]
    assert "skipped 2" in capsys.readouterr().err
    assert main(["sandbox", "--in", str(inp), "--out", str(out)]) == 0
    assert len(_read(out)) == 6
    assert "skipped 6" in capsys.readouterr().err


def test_bad_lines_are_counted_drops(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(
        inp,
        [
            {"id": "a", "code": "pass"},
            {"code": "pass"},
            {"id": "b"},
            {"id": "c", "code": "pass", "timeout": "soon"},
            {"id": "d", "code": "pass", "memory_mb": 1.5},
            {"id": "a", "code": "pass"},
            [1, 2],
            {"id": "e", "code": "pass", "tset": "typo"},
            {"id": "f", "code": "pass"},
        ],
    )
    assert main(["sandbox", "--in", str(inp), "--out", str(out)]) == 0
    assert [r["id"] for r in _read(out)] == ["a", "f"]
    err = capsys.readouterr().err
    assert "dropped 7 bad line(s)" in err
    assert "in.jsonl:2: dropped: missing or invalid 'id'" in err
    assert "unknown field(s): tset" in err


def test_invalid_json_and_missing_file_are_one_line_errors(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, ['{"id": "a", "code": "pass"}', "{not json", '{"id": "b", "code": "pass"}'])
    for args in (["--in", str(inp)], ["--in", str(tmp_path / "nope.jsonl")]):
        r = subprocess.run(
            [sys.executable, "-m", "selfcodealign.cli", "sandbox", *args, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2
        errors = [line for line in r.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
