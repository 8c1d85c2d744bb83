from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from selfcodealign.sandbox import check
from selfcodealign.sandbox.modes import detect

DATA = Path(
    os.environ.get("SELFCODEALIGN_DATA", Path(__file__).resolve().parents[3] / "shared/data")
)
HUMANEVAL_PLUS = DATA / "HumanEvalPlus-v0.1.10.jsonl.gz"


@pytest.fixture(scope="session")
def humaneval_plus() -> list[dict]:
    if not HUMANEVAL_PLUS.exists():
        raise FileNotFoundError(
            f"{HUMANEVAL_PLUS} is missing: set SELFCODEALIGN_DATA to the folder that holds "
            "HumanEvalPlus-v0.1.10.jsonl.gz"
        )
    with gzip.open(HUMANEVAL_PLUS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def mode() -> str:
    return check().mode


@pytest.fixture
def force_mode(monkeypatch):
    """Switch the sandbox to one mode for a test, then back."""

    def use(name: str) -> None:
        monkeypatch.setenv("SELFCODEALIGN_SANDBOX", name)
        detect.cache_clear()
        assert check().mode == name

    yield use
    monkeypatch.delenv("SELFCODEALIGN_SANDBOX", raising=False)
    detect.cache_clear()
