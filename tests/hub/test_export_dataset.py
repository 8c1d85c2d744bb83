"""`selfcodealign export-dataset`: a run directory made by the real pipeline (scripted
backend, tests/scripted_backend.py) written as a Hub dataset folder, read back with
`datasets.load_dataset` and huggingface_hub's card parser.

The Hub itself cannot be reached from the tests: `--push-to-hub` is tested up to the
network boundary, against a closed loopback port and a loopback HTTP server that records
what huggingface_hub sends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scripted_backend import scripted_run
from test_cli_errors import cli, one_line_error

from selfcodealign.cli import main
from selfcodealign.jsonl import read_lines

datasets = pytest.importorskip("datasets", reason="the hf extra (datasets) is not installed")
huggingface_hub = pytest.importorskip("huggingface_hub", reason="the hf extra is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="the hf extra (pyarrow) is not installed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out, _ = scripted_run(tmp_path_factory.mktemp("run"), "select.holdout_seeds=3",
                          "select.system_prompt=You write Python.")
    return out


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ds"
    assert main(["export-dataset", str(run_dir), str(out), "--license", "apache-2.0"]) == 0
    return out


def records(path: Path) -> list[dict]:
    return [o for _, o in read_lines(path) if o]


def load(folder: Path, config: str, split: str, tmp_path: Path):
    # a cache of its own: datasets' default cache may hold an earlier folder of that path
    return datasets.load_dataset(str(folder), config, split=split, cache_dir=str(tmp_path / "cache"))


def test_datasets_loads_every_example_and_field_of_every_config(run_dir, exported, tmp_path):
    examples = records(run_dir / "dataset.jsonl")
    pairs = records(run_dir / "dataset.pairs.jsonl")
    held = records(run_dir / "dataset.heldout.jsonl")
    assert examples and pairs and held  # the run made all three

    # the default config: load_dataset(OUT) with no config name gives the dataset
    train = datasets.load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))
    assert list(train) == ["train"]
    assert train["train"].to_list() == examples
    assert [m["role"] for m in train["train"][0]["messages"]] == ["system", "user", "assistant"]

    got = load(exported, "pairs", "train", tmp_path).to_list()
    want = [{**p, "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    assert got == want

    got = load(exported, "heldout", "test", tmp_path).to_list()
    assert [{k: v for k, v in g.items() if k != "prompt"} for g in got] == held
    assert [g["prompt"] for g in got] == [[{"role": "system", "content": "You write Python."},
                                          {"role": "user", "content": h["instruction"]}] for h in held]


def test_columns_are_typed_from_the_records_even_when_all_null(exported, tmp_path):
    # The scripted backend hashes no model: model_sha256 is null in every row.
    train = load(exported, "default", "train", tmp_path)
    assert set(train["model_sha256"]) == {None}
    assert train.features["model_sha256"] == datasets.Value("string")
    assert train.features["quality"]["unexercised"] == datasets.List(datasets.Value("string"))


def test_the_card_parses_with_its_configs_funnel_model_and_config(run_dir, exported):
    from huggingface_hub import DatasetCard

    from selfcodealign.hub.card import FIELDS, FUNNEL

    card = DatasetCard.load(exported / "README.md")
    d = card.data.to_dict()
    assert d["license"] == "apache-2.0" and d["task_categories"] == ["text-generation"]
    n = len(records(run_dir / "dataset.jsonl"))
    assert d["size_categories"] == ["n<1K"] and n < 1000
    assert d["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]},
        {"config_name": "pairs", "data_files": [{"split": "train", "path": "pairs/train-*"}]},
        {"config_name": "heldout", "data_files": [{"split": "test", "path": "heldout/test-*"}]},
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    text = card.text
    for stage, count in summary["funnel"].items():
        assert f"| {FUNNEL[stage]} | {count:,} |" in text
    assert "verification found its tests strong" in text
    mutation = summary["stages"]["verify"]["mutation"]
    assert f"mean score {mutation['mean_score']:.3f}" in text
    assert "| `scripted` | `none (this backend does not hash its model)` |" in text
    assert (run_dir / "config.yaml").read_text().strip() in text
    assert (exported / "run_config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    for config in ("data", "pairs", "heldout"):
        for f in (exported / config).iterdir():
            for column in pq.read_schema(f).names:
                assert FIELDS.get(column) and f"| `{column}` |" in text, column


def test_a_run_without_pairs_or_held_out_tasks_exports_the_dataset_alone(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "dataset.heldout.jsonl").unlink()
    (run / "dataset.pairs.jsonl").write_text("")
    summary = json.loads((run / "summary.json").read_text())
    del summary["stages"]["verify"]  # as a run with verification off leaves it
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["export-dataset", str(run), str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "data", "run_config.yaml", "run_summary.json"]
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(tmp_path / "out" / "README.md")
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["default"]
    assert card.data.license == "other" and "--license" in card.text
    assert "did not verify them further" in card.text and "Mutation analysis" not in card.text


def test_bad_input_is_a_one_line_error(run_dir, tmp_path):
    one_line_error(cli("export-dataset", str(tmp_path / "nope"), str(tmp_path / "o")), "no run directory")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("export-dataset", str(tmp_path / "empty"), str(tmp_path / "o")), "has no dataset.jsonl")
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "dataset.jsonl").write_text("")
    one_line_error(cli("export-dataset", str(tmp_path / "zero"), str(tmp_path / "o")), "holds no examples")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    one_line_error(cli("export-dataset", str(run_dir), str(tmp_path / "full")), "not empty")
    one_line_error(cli("export-dataset", str(run_dir), str(tmp_path / "o2"), "--private"), "--push-to-hub")
    one_line_error(cli("export-dataset", str(run_dir), str(tmp_path / "o2"), "--push-to-hub", "a b"),
                   "not a Hub repository id")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-written folder


def _hub_env(endpoint: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_ENDPOINT": endpoint, "HF_TOKEN": "hf_test_token", "HF_HOME": str(home)}


def test_push_to_an_unreachable_hub_is_a_one_line_error(run_dir, tmp_path):
    """Network boundary: HF_ENDPOINT names a loopback port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    res = cli("export-dataset", str(run_dir), str(tmp_path / "o"), "--push-to-hub", "me/data",
              env=_hub_env(endpoint, tmp_path / "hf"))
    one_line_error(res, f"pushing to {endpoint} failed")
    assert (tmp_path / "o" / "README.md").is_file()  # the folder is written before the push


class _Recorder(BaseHTTPRequestHandler):
    """Answers the repository creation and the card's validation as the Hub does, and
    fails everything after them."""

    seen: list = []

    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.seen.append((self.command, self.path, dict(self.headers), body))

    def do_POST(self):
        self._record()
        if self.path == "/api/repos/create":
            payload = json.dumps({"url": f"http://{self.headers['Host']}/datasets/me/data", "name": "me/data"})
            self._send(200, payload)
        elif self.path == "/api/validate-yaml":
            self._send(200, json.dumps({"errors": [], "warnings": []}))
        else:
            self._send(403, json.dumps({"error": "recorder: stop here"}))

    do_GET = do_PUT = do_POST

    def _send(self, code, payload):
        data = payload.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_push_asks_the_hub_for_a_private_dataset_repository_with_the_token(run_dir, tmp_path):
    """Network boundary: a loopback HTTP server in place of the Hub records the requests;
    it accepts the repository and refuses the upload, whose failure is one line."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.seen = []
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        res = cli("export-dataset", str(run_dir), str(tmp_path / "o"), "--push-to-hub", "me/data", "--private",
                  env=_hub_env(endpoint, tmp_path / "hf"))
    finally:
        server.shutdown()
    one_line_error(res, f"pushing to {endpoint} failed", "403")
    created = [i for i, (m, p, _, _) in enumerate(_Recorder.seen) if (m, p) == ("POST", "/api/repos/create")]
    assert len(created) == 1, [r[:2] for r in _Recorder.seen]
    _, _, headers, body = _Recorder.seen[created[0]]
    req = json.loads(body)
    assert (req["name"], req["organization"], req["type"]) == ("data", "me", "dataset")
    assert req.get("visibility") == "private" or req.get("private") is True, req  # by huggingface_hub's version
    assert {k.lower(): v for k, v in headers.items()}.get("authorization") == "Bearer hf_test_token", headers
    validated = [json.loads(b) for m, p, _, b in _Recorder.seen if p == "/api/validate-yaml"]
    assert validated == [{"content": (tmp_path / "o" / "README.md").read_text(), "repoType": "dataset"}]
    # then the upload, aimed at that dataset
    assert any("/api/datasets/me/data/" in p for _, p, _, _ in _Recorder.seen[created[0] + 1:]), \
        [r[:2] for r in _Recorder.seen]


def test_a_merged_run_exports_with_its_parts_in_the_card(run_dir, tmp_path):
    from huggingface_hub import DatasetCard

    assert main(["merge", str(run_dir), "--out", str(tmp_path / "m")]) == 0
    assert main(["export-dataset", str(tmp_path / "m"), str(tmp_path / "out")]) == 0
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    n = len(records(run_dir / "dataset.jsonl"))
    assert "Merged from several runs" in card.text and f"| {run_dir} | {n} | 0 | 0 | {n} |" in card.text
    assert load(tmp_path / "out", "default", "train", tmp_path).num_rows == n
