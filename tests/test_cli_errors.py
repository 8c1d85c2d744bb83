"""User mistakes end in one line on stderr and exit status 2, never a traceback."""

import subprocess
import sys


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "selfcodealign", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    err = [ln for ln in res.stderr.splitlines() if "error:" in ln]
    assert len(err) == 1, res.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_bad_yaml(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("seeds: [oops\n")
    one_line_error(cli("run", "--out", str(tmp_path / "r"), "--config", str(y)), "not valid YAML")


def test_unknown_key(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("responses:\n  temprature: 0.3\n")
    one_line_error(cli("run", "--out", str(tmp_path / "r"), "--config", str(y)),
                   "unknown config key: responses.temprature")


def test_missing_and_corrupt_model(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id":"a","code":"def f(x):\\n    return x\\n","name":"f","source":"t","path":"p","line_start":1,"line_end":2}\n')
    one_line_error(cli("concepts", "--in", str(seeds), "--out", str(tmp_path / "c.jsonl"),
                       "--model", str(tmp_path / "nope.gguf")), "model file not found")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    one_line_error(cli("concepts", "--in", str(seeds), "--out", str(tmp_path / "c.jsonl"),
                       "--model", str(bad)), "not a GGUF file")


def test_unreachable_server(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id":"a","code":"def f(x):\\n    return x\\n","name":"f","source":"t","path":"p","line_start":1,"line_end":2}\n')
    one_line_error(cli("concepts", "--in", str(seeds), "--out", str(tmp_path / "c.jsonl"),
                       "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                       "--set", "backend.retries=0"), "unreachable")


def test_empty_seed_source(tmp_path):
    empty = tmp_path / "corpus"
    empty.mkdir()
    one_line_error(cli("run", "--out", str(tmp_path / "r"), "--quiet", "--set",
                       f"seeds.source={empty}", "--set", "seeds.typecheck=false"), str(empty))


def test_output_path_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(cli("run", "--out", str(f / "r"), "--quiet"), "not writable")


def test_bad_input_file(tmp_path):
    one_line_error(cli("execute", "--in", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.jsonl")),
                   "input file not found")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{"id": 2}\n')
    one_line_error(cli("execute", "--in", str(bad), "--out", str(tmp_path / "o.jsonl")),
                   "not a Response record")
