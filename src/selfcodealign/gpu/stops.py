"""Where a sequence ends: end-of-sequence tokens, stop strings, the token budget.

Checked on the host every few decode steps, on the tokens that arrived since the last
check. Stop strings are searched in a decoded tail window (the new tokens plus enough
earlier ones to hold a stop string that straddles the boundary), so the cost per check
does not grow with the length of the sequence.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class End:
    tokens: int  # generated tokens that count (the end-of-sequence token excluded)
    reason: str  # "stop" | "length"


def scan_eos(ids: Sequence[int], old: int, eos: frozenset[int], max_tokens: int) -> tuple[int, bool]:
    """Tokens that count (up to the first EOS at or after ``old``, or the budget) and
    whether an EOS ended them."""
    limit = min(len(ids), max_tokens)
    if eos.isdisjoint(ids[old:limit]):  # the usual case, without a Python loop
        return limit, False
    for j in range(old, limit):
        if ids[j] in eos:
            return j, True
    return limit, False


def window_start(old: int, stops: Sequence[str]) -> int:
    """Where to start decoding to see every stop string that may end after ``old``: each
    token decodes to at least one character (special tokens aside), so ``longest`` tokens
    back hold any stop string that began before ``old``."""
    return max(0, old - _longest(tuple(stops)))


@functools.lru_cache(maxsize=256)
def _longest(stops: tuple[str, ...]) -> int:
    return max(len(s) for s in stops)


def first_stop(decode, ids: Sequence[int], start: int, old: int, limit: int, stops: Sequence[str]) -> int | None:
    """The fewest tokens (in ``old+1..limit``) whose text holds a stop string."""
    for c in range(old + 1, limit + 1):
        if any(s in decode(list(ids[start:c])) for s in stops):
            return c
    return None


def find_end(
    decode,
    ids: Sequence[int],
    old: int,
    *,
    eos: frozenset[int],
    stops: Sequence[str],
    max_tokens: int,
    window_text: str | None = None,
    scanned: tuple[int, bool] | None = None,
) -> End | None:
    """Whether ``ids`` (all generated tokens; the first ``old`` were checked before) has
    ended. ``decode(list_of_ids) -> str``; ``window_text`` is the decoded
    ``ids[window_start(old, stops):limit]`` and ``scanned`` what ``scan_eos`` returned,
    when the caller has them already."""
    limit, hit_eos = scanned or scan_eos(ids, old, eos, max_tokens)
    if stops and limit > old:
        start = window_start(old, stops)
        text = decode(list(ids[start:limit])) if window_text is None else window_text
        if any(s in text for s in stops):
            c = first_stop(decode, ids, start, old, limit, stops)
            if c is not None:
                return End(c, "stop")
    if hit_eos:
        return End(limit, "stop")
    if limit >= max_tokens:
        return End(max_tokens, "length")
    return None


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
