"""Which cache slots hold which token prefixes, so a prompt can start from one.

A slot's cache keeps the K/V of every token it has seen until the slot is prefilled
again, so a new prompt that starts with those tokens needs to compute only the rest: a
continuation (prompt, first part, then the required section's opening) after its first
part, a few-shot prompt after another with the same examples. Prefixes are indexed by
blocks of ``block`` tokens, each block's key a hash of everything up to its end, so a
lookup walks a prompt's blocks once; the match found is then checked and extended token
by token.
"""

from __future__ import annotations


class PrefixIndex:
    def __init__(self, block: int = 64) -> None:
        self.block = block
        self._slots: dict[int, set[int]] = {}  # block key -> slots holding that prefix
        self._keys: dict[int, list[int]] = {}  # slot -> its block keys
        self._tokens: dict[int, tuple[int, ...]] = {}  # slot -> the tokens its cache holds

    def _block_keys(self, tokens: tuple[int, ...]) -> list[int]:
        keys, h, b = [], 0, self.block
        for i in range(0, len(tokens) - b + 1, b):
            h = hash((h, tokens[i : i + b]))
            keys.append(h)
        return keys

    def put(self, slot: int, tokens: tuple[int, ...]) -> None:
        """``slot``'s cache now holds ``tokens`` (positions 0..len-1), nothing more."""
        self.drop(slot)
        keys = self._block_keys(tokens)
        if not keys:
            return
        self._keys[slot] = keys
        self._tokens[slot] = tokens
        for k in keys:
            self._slots.setdefault(k, set()).add(slot)

    def drop(self, slot: int) -> None:
        """``slot`` is about to be overwritten."""
        for k in self._keys.pop(slot, ()):
            held = self._slots[k]
            held.discard(slot)
            if not held:
                del self._slots[k]
        self._tokens.pop(slot, None)

    def tokens(self, slot: int) -> tuple[int, ...] | None:
        return self._tokens.get(slot)

    def longest(self, tokens: tuple[int, ...], prefer=frozenset()) -> tuple[int, int]:
        """``(slot, n)``: a slot whose cache holds the first ``n`` of ``tokens``, ``n`` as
        large as the index knows (a slot in ``prefer`` when one matches as far); ``(-1, 0)``
        when no slot holds even the first block."""
        found: set[int] | None = None
        for k in self._block_keys(tokens):
            held = self._slots.get(k)
            if not held:
                break
            found = held
        if not found:
            return -1, 0
        slot = next((s for s in found if s in prefer), None)
        if slot is None:
            slot = min(found)
        held_tokens = self._tokens[slot]
        n = 0
        limit = min(len(held_tokens), len(tokens))
        # Blocks matched by hash; compare to be sure and to extend past the last block.
        while n < limit and held_tokens[n] == tokens[n]:
            n += 1
        return slot, n
