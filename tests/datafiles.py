"""The data files tests read. All of them are in the repository (the EvalPlus files ship
in the package); a missing one fails the test with its name, it never skips."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from selfcodealign.evaluate.data import PACKAGED_DATA

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLE = REPO / "data" / "responses-real-sample.jsonl.gz"
HUMANEVAL_PLUS = PACKAGED_DATA / "HumanEvalPlus-v0.1.10.jsonl.gz"
MBPP_PLUS = PACKAGED_DATA / "MbppPlus-v0.2.0.jsonl.gz"
EVAL_DATA = PACKAGED_DATA


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"test data file missing: {path} (it belongs to the repository: "
                    "restore it with `git checkout -- {path.name}` or reinstall the package)")
    return path


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(need(path), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
