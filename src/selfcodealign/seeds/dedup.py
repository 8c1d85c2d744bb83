"""Near-duplicate removal: MinHash-LSH over word shingles at Jaccard 0.5, as in the paper.

Signatures are computed where the text is (worker processes); the index that decides
lives in one place and only ever holds what was kept, so the first occurrence in the
(deterministic) processing order wins. Without ``datasketch`` the index falls back to
exact Jaccard against every kept item: same decisions in spirit, fine for a few thousand
seeds, quadratic beyond that (a one-time warning says how to install datasketch).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("selfcodealign.seeds")

NUM_PERM = 128
SCHEME = "affine32"  # datasketch >= 2.0
SHINGLE = 3
_WORD = re.compile(r"\w+")
_warned = False


def have_datasketch() -> bool:
    try:
        import datasketch  # noqa: F401
    except ImportError:
        return False
    return True


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    toks = _WORD.findall(text)
    if len(toks) < n:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def signature(text: str, use_minhash: bool) -> Any:
    """A MinHash's hash values (numpy array) or, in fallback mode, the shingle set."""
    sh = shingles(text)
    if not use_minhash:
        return frozenset(sh)
    m = _minhash()
    m.update_batch([s.encode("utf-8") for s in sh])
    return m.hashvalues


_template: Any = None


def _minhash(hashvalues: Any = None) -> Any:
    """A MinHash with our fixed permutations (made once per process: they cost more
    than the hashing of a short function)."""
    global _template
    from datasketch import MinHash

    if _template is None:
        _template = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    return MinHash(
        seed=1, hashvalues=hashvalues if hashvalues is not None else _template.hashvalues,
        permutations=_template.permutations, scheme=SCHEME,
    )


class NearDupIndex:
    def __init__(self, threshold: float = 0.5, use_minhash: bool | None = None) -> None:
        global _warned
        if use_minhash is None:
            use_minhash = have_datasketch()
            if not use_minhash and not _warned:
                _warned = True
                log.warning(
                    "datasketch is not installed: near-duplicates are found by exact "
                    "comparison, which slows down past a few thousand seeds; install it "
                    "with: pip install 'selfcodealign[seeds]'"
                )
        self.use_minhash = use_minhash
        self.threshold = threshold
        self._n = 0
        if use_minhash:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        else:
            self._sets: list[frozenset[str]] = []

    def __len__(self) -> int:
        return self._n

    def signature(self, text: str) -> Any:
        return signature(text, self.use_minhash)

    def is_dup(self, sig: Any) -> bool:
        if self.use_minhash:
            return bool(self._lsh.query(_minhash(sig)))
        for other in self._sets:
            inter = len(sig & other)
            if inter and inter >= self.threshold * (len(sig) + len(other) - inter):
                return True
        return False

    def add(self, sig: Any) -> None:
        if self.use_minhash:
            self._lsh.insert(self._n, _minhash(sig), check_duplication=False)
        else:
            self._sets.append(sig)
        self._n += 1

    def add_if_new(self, sig: Any) -> bool:
        if self.is_dup(sig):
            return False
        self.add(sig)
        return True
