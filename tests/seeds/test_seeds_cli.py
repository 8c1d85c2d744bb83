import json

from selfcodealign.cli import main


def test_cli_mines_and_reports_funnel(corpus, tmp_path, capsys):
    out = tmp_path / "seeds.jsonl"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seeds:\n  source: {corpus}\n  typecheck: false\n")
    rc = main(["seeds", "--config", str(cfg), "--out", str(out), "--workers", "1",
               "--funnel", str(tmp_path / "f.json"), "--unwanted-words", "TODO,Shannon"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "f.json").read_text())
    assert printed["dropped"]["unwanted_words"] == 3  # with_todo, entropy and its copy
    assert printed["kept"] == len(out.read_text().splitlines()) == 2


def test_cli_bad_input_is_one_line_error(tmp_path, capsys):
    assert main(["seeds", "--out", str(tmp_path / "s.jsonl"), "--source", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfcodealign seeds: error: seed source not found") and "\n" not in err
    assert main(["seeds", "--out", str(tmp_path / "s.jsonl"), "--dedup-threshold", "2"]) == 2
