"""Benchmark decontamination: drop text that shares a long word n-gram with a benchmark.

The benchmarks are HumanEval(+) and MBPP(+): each task's prompt and reference solution.
We ship a derived index (hashes of their word n-grams, no benchmark text) inside the
package, so nothing needs downloading. ``SELFCODEALIGN_BENCHMARK_DATA`` (or the
``benchmark_data`` option) names other JSONL(.gz) files with ``prompt`` and
``canonical_solution``/``code`` fields to check against instead.

Rebuild the shipped index from the original files with
``python -m selfcodealign.cleaning.decontam build OUT FILE...``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
import sys
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from selfcodealign.errors import UserError

# Long enough that ordinary code idioms do not collide with a benchmark (checked against
# the CPython stdlib, see ``build``), short enough to catch a pasted prompt or solution.
NGRAM = 10
HASH_BYTES = 8
ENV_VAR = "SELFCODEALIGN_BENCHMARK_DATA"
SHIPPED = Path(__file__).parent / "data" / "benchmark_ngrams.bin"
_MAGIC = b"SCA-NGRAM1"

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: punctuation, layout and case do not hide a copy."""
    return _WORD.findall(text.lower())


def _hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=HASH_BYTES).digest(), "little")


def ngram_hashes(text: str, n: int = NGRAM) -> Iterator[int]:
    toks = words(text)
    # Runs of numbers ("0 1 2 ... 9", test data) are shared by unrelated code: an n-gram
    # counts only when at least half of its tokens are words.
    wordy = [not t.isdigit() for t in toks]
    for i in range(len(toks) - n + 1):
        if 2 * sum(wordy[i : i + n]) >= n:
            yield _hash(" ".join(toks[i : i + n]))


class BenchmarkIndex:
    def __init__(self, hashes: set[int], n: int, sources: list[str]) -> None:
        self.hashes = hashes
        self.n = n
        self.sources = sources

    def contaminated(self, text: str) -> bool:
        h = self.hashes
        return any(x in h for x in ngram_hashes(text, self.n))

    # -- storage ---------------------------------------------------------------------
    def save(self, path: Path) -> None:
        meta = json.dumps({"n": self.n, "hash_bytes": HASH_BYTES, "sources": self.sources}).encode()
        body = b"".join(x.to_bytes(HASH_BYTES, "little") for x in sorted(self.hashes))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_MAGIC + struct.pack("<I", len(meta)) + meta + body)

    @classmethod
    def load(cls, path: Path) -> BenchmarkIndex:
        raw = Path(path).read_bytes()
        if not raw.startswith(_MAGIC):
            raise UserError(f"{path}: not a benchmark n-gram index")
        off = len(_MAGIC)
        (mlen,) = struct.unpack_from("<I", raw, off)
        meta = json.loads(raw[off + 4 : off + 4 + mlen])
        body = raw[off + 4 + mlen :]
        k = meta["hash_bytes"]
        hashes = {int.from_bytes(body[i : i + k], "little") for i in range(0, len(body), k)}
        return cls(hashes, meta["n"], meta["sources"])

    @classmethod
    def from_texts(cls, texts: Iterable[str], sources: list[str], n: int = NGRAM) -> BenchmarkIndex:
        hashes: set[int] = set()
        for t in texts:
            hashes.update(ngram_hashes(t, n))
        return cls(hashes, n, sources)


def benchmark_texts(path: Path) -> Iterator[str]:
    """Prompt + solution of every task in an EvalPlus / HumanEval style JSONL(.gz) file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                task = json.loads(line)
                prompt = task.get("prompt") or task.get("text") or ""
                solution = task.get("canonical_solution") or task.get("code") or ""
                if not prompt and not solution:
                    raise UserError(f"{path}: a task has neither 'prompt' nor a solution field")
                yield prompt + "\n" + solution
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read benchmark data {path}: {e}") from None


def _paths_from(spec: str | list[str] | None) -> list[Path] | None:
    if spec is None:
        spec = os.environ.get(ENV_VAR) or None
        if spec is None:
            return None
    parts = spec.split(os.pathsep) if isinstance(spec, str) else spec
    paths: list[Path] = []
    for p in parts:
        p = Path(p).expanduser()
        if p.is_dir():
            paths.extend(sorted(q for q in p.iterdir() if q.name.endswith((".jsonl", ".jsonl.gz"))))
        elif p.exists():
            paths.append(p)
        else:
            raise UserError(f"benchmark data not found: {p} (from {ENV_VAR} or benchmark_data)")
    if not paths:
        raise UserError(f"no .jsonl / .jsonl.gz benchmark files in {spec}")
    return paths


@lru_cache(maxsize=4)
def _load(key: tuple[str, ...] | None) -> BenchmarkIndex:
    if key is None:
        if not SHIPPED.exists():
            raise UserError(
                f"the shipped benchmark index is missing ({SHIPPED}); reinstall selfcodealign "
                f"or point {ENV_VAR} at HumanEval/MBPP JSONL files"
            )
        return BenchmarkIndex.load(SHIPPED)
    paths = [Path(p) for p in key]
    texts = (t for p in paths for t in benchmark_texts(p))
    return BenchmarkIndex.from_texts(texts, [p.name for p in paths])


def load_index(spec: str | list[str] | None = None) -> BenchmarkIndex:
    """The shipped index, or one built from ``spec`` / $SELFCODEALIGN_BENCHMARK_DATA."""
    paths = _paths_from(spec)
    return _load(None if paths is None else tuple(str(p) for p in paths))


def build(out: Path, files: list[Path]) -> BenchmarkIndex:
    texts = [t for f in files for t in benchmark_texts(f)]
    index = BenchmarkIndex.from_texts(texts, [f.name for f in files])
    index.save(out)
    return index


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "build":
        sys.exit("usage: python -m selfcodealign.cleaning.decontam build OUT FILE...")
    idx = build(Path(sys.argv[2]), [Path(a) for a in sys.argv[3:]])
    print(f"{len(idx.hashes)} {idx.n}-grams from {len(idx.sources)} files -> {sys.argv[2]}")
