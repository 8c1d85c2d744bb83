from __future__ import annotations

import pytest
from datafiles import HUMANEVAL_PLUS, read_jsonl_gz

from selfcodealign.sandbox import check
from selfcodealign.sandbox.modes import detect


@pytest.fixture(scope="session")
def humaneval_plus() -> list[dict]:
    return read_jsonl_gz(HUMANEVAL_PLUS)


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
