"""Reading a dataset file into encoded examples, counting what was dropped and why."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_lines
from selfcodealign.train.format import Encoded, encode_chat, example_messages

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    examples: list[Encoded]
    sha256: str
    lines: int
    dropped: Counter = field(default_factory=Counter)

    @property
    def lengths(self) -> list[int]:
        return [len(e) for e in self.examples]

    @property
    def label_tokens(self) -> list[int]:
        return [e.n_label_tokens for e in self.examples]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def load_dataset(path: str | Path, tokenizer, max_len: int) -> Dataset:
    path = Path(path)
    examples: list[Encoded] = []
    dropped: Counter = Counter()
    lines = 0
    for lineno, obj in read_lines(path):
        if not obj:
            continue
        lines += 1
        try:
            enc = encode_chat(tokenizer, example_messages(obj))
        except (ValueError, KeyError, TypeError) as e:
            dropped["unreadable"] += 1
            log.warning("%s:%d dropped: %s", path, lineno, e)
            continue
        if len(enc) > max_len:
            dropped["too_long"] += 1
            continue
        if enc.n_label_tokens == 0:
            dropped["empty_response"] += 1
            continue
        examples.append(enc)
    if not examples:
        why = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "file is empty"
        raise UserError(f"{path}: no usable training examples ({lines} lines; {why})")
    return Dataset(examples, file_sha256(path), lines, dropped)
