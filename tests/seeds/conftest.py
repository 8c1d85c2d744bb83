"""Fixtures for the seed-mining tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from seeds_corpus import CONTAMINATED, FILTERED, GOOD, NEAR_COPY, TYPE_ERROR


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "good.py").write_text(GOOD)
    (root / "pkg" / "copy.py").write_text(NEAR_COPY)
    (root / "contaminated.py").write_text(CONTAMINATED)
    (root / "typed.py").write_text(TYPE_ERROR)
    (root / "filtered.py").write_text(FILTERED)
    (root / "latin1.py").write_bytes("# caf\xe9\ndef f(x):\n    '''d'''\n    return x\n".encode("latin-1"))
    (root / "broken.py").write_text('def f(x):\n    """Doc."""\n    return (x\n')
    (root / "py2.py").write_text('def f(x):\n    """Doc."""\n    print "hello"\n')
    (root / "data.py").write_text("X = [1, 2, 3]\n")
    return root
