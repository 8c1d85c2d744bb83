"""Reading a dataset file into encoded examples, counting what was dropped and why."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_lines
from selfcodealign.models.embedded import sha256_file
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


def encode_file(path: Path, encode, max_len: int, errors: tuple = ()) -> tuple[list[tuple[Encoded, ...]], Counter, int]:
    """Each JSONL line of ``path`` encoded by ``encode(obj) -> tuple of Encoded``; a line is
    dropped (and counted) when it cannot be read (``errors`` too), when one of its
    sequences is longer than ``max_len`` or has no response token. Returns the kept
    tuples, the drops by reason and the number of lines."""
    out: list[tuple[Encoded, ...]] = []
    dropped: Counter = Counter()
    lines = 0
    for lineno, obj in read_lines(path):
        if not obj:
            continue
        lines += 1
        try:
            encs = encode(obj)
        except (ValueError, KeyError, TypeError, *errors) as e:
            dropped["unreadable"] += 1
            log.warning("%s:%d dropped: %s", path, lineno, str(e).splitlines()[0] if str(e) else type(e).__name__)
            continue
        if max(len(e) for e in encs) > max_len:
            dropped["too_long"] += 1
        elif min(e.n_label_tokens for e in encs) == 0:
            dropped["empty_response"] += 1
        else:
            out.append(encs)
    return out, dropped, lines


def load_dataset(path: str | Path, tokenizer, max_len: int) -> Dataset:
    path = Path(path)
    kept, dropped, lines = encode_file(path, lambda obj: (encode_chat(tokenizer, example_messages(obj)),), max_len)
    if not kept:
        why = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "file is empty"
        raise UserError(f"{path}: no usable training examples ({lines} lines; {why})")
    return Dataset([e for (e,) in kept], sha256_file(path), lines, dropped)
