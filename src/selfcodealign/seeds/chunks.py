"""Mining one chunk of documents, in a worker process: read, parse, extract, cheap filters,
decontamination and dedup signatures.

It returns plain tuples (cheap to pickle) and keeps no state between chunks except
per-process caches of the filter and the benchmark index.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from selfcodealign.seeds.extract import FileSkip, decode, extract
from selfcodealign.seeds.filters import make_cheap_filter
from selfcodealign.seeds.sources import Doc

log = logging.getLogger("selfcodealign.seeds")


@dataclass(frozen=True)
class Settings:
    min_lines: int
    max_lines: int
    unwanted_words: tuple[str, ...]
    unsafe_imports: tuple[str, ...]
    decontaminate: bool
    benchmark_data: tuple[str, ...] | None
    signatures: str | None  # "minhash", "exact" or None (no dedup)
    license_allowlist: frozenset[str] | None
    max_file_bytes: int


@dataclass
class Passed:
    """A candidate that passed every filter a worker can apply."""

    name: str
    code: str
    line_start: int
    line_end: int
    sig: Any


@dataclass
class DocResult:
    path: str
    license: str | None
    skip: str | None  # why the whole document was skipped
    outcomes: list  # per candidate, in source order: a drop reason (str) or Passed


@lru_cache(maxsize=2)
def _filter(s: Settings):
    return make_cheap_filter(
        min_lines=s.min_lines,
        max_lines=s.max_lines,
        unwanted_words=s.unwanted_words,
        unsafe_imports=s.unsafe_imports,
    )


def _license_text(lic: Any) -> str | None:
    if lic is None:
        return None
    if isinstance(lic, (list, tuple)):
        return ", ".join(str(x) for x in lic) or None
    return str(lic)


def _license_ok(lic: Any, allow: frozenset[str] | None) -> bool:
    if allow is None or not lic:
        return True  # no information: the allowlist only acts on what the source says
    items = list(lic) if isinstance(lic, (list, tuple)) else [str(lic)]
    return all(str(x).strip() in allow for x in items)


def process_chunk(docs: list[Doc], s: Settings) -> tuple[list[DocResult], dict[str, float]]:
    from selfcodealign.cleaning import decontam, dedup

    check = _filter(s)
    index = decontam.load_index(list(s.benchmark_data) if s.benchmark_data else None) if s.decontaminate else None
    t_extract = t_decon = t_sig = 0.0
    results: list[DocResult] = []
    for d in docs:
        t0 = time.perf_counter()
        lic = _license_text(d.license)
        res = DocResult(d.path, lic, None, [])
        results.append(res)
        if not _license_ok(d.license, s.license_allowlist):
            res.skip = "license"
            continue
        try:
            if d.text is not None:
                text = d.text
                if len(text) > s.max_file_bytes:
                    raise FileSkip("too_large")
            elif d.file is not None:
                try:
                    with open(d.file, "rb") as f:
                        data = f.read(s.max_file_bytes + 1)
                except OSError:
                    raise FileSkip("unreadable") from None
                if len(data) > s.max_file_bytes:
                    raise FileSkip("too_large")
                text = decode(data)
            else:
                raise FileSkip("no_content")
            cands = extract(text)
            passed = []
            for c in cands:
                reason = check(c)
                res.outcomes.append(reason)
                if reason is None:
                    passed.append((len(res.outcomes) - 1, c))
        except FileSkip as e:
            res.skip = e.args[0]
            t_extract += time.perf_counter() - t0
            continue
        except (RecursionError, MemoryError, ValueError, SyntaxError) as e:
            # One pathological file must not end a corpus-scale run: count it, say which.
            log.warning("seeds: skipped %s (%s: %s)", d.path, type(e).__name__, str(e)[:200])
            res.skip, res.outcomes = "extract_error", []
            t_extract += time.perf_counter() - t0
            continue
        t1 = time.perf_counter()
        t_extract += t1 - t0
        for i, c in passed:
            if index is not None and index.contaminated(c.code):
                res.outcomes[i] = "benchmark_contamination"
        t2 = time.perf_counter()
        t_decon += t2 - t1
        for i, c in passed:
            if res.outcomes[i] is None:
                sig = dedup.signature(c.code, s.signatures == "minhash") if s.signatures else None
                res.outcomes[i] = Passed(c.name, c.code, c.line_start, c.line_end, sig)
        t_sig += time.perf_counter() - t2
    return results, {
        "extract_filter_cpu": t_extract,
        "decontaminate_cpu": t_decon,
        "dedup_signature_cpu": t_sig,
    }
