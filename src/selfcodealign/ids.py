"""Deterministic ids and sampling seeds from content and lineage.

Ids never come from a clock or a random source: a rerun, a resumed run and another
executor all derive the same id for the same record.
"""

from __future__ import annotations

import hashlib


def make_id(*parts: object, length: int = 16) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:length]


def sampling_seed(record_id: str, stage: str, sample_index: int = 0, base_seed: int = 0) -> int:
    """A per-request sampling seed (31 bits, accepted by every backend we talk to)."""
    return int(make_id(base_seed, stage, record_id, sample_index), 16) % (2**31 - 1)


def shard_of(record_id: str, n: int) -> int:
    """Which of ``n`` shards a record belongs to (0-based): a hash of its id, so parts are
    even in size and the same on every machine."""
    return int(make_id(record_id, "shard"), 16) % n
