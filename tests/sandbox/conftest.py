from __future__ import annotations

import pytest

from selfcodealign.sandbox import check
from selfcodealign.sandbox.detect import detect


@pytest.fixture(scope="session")
def humaneval_plus(test_data) -> list[dict]:
    return test_data.read_jsonl_gz(test_data.humaneval_plus)


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
