"""Where seed code comes from, as a deterministic stream of documents.

A source string is one of:
- ``stdlib``: the running interpreter's standard library (its tests excluded);
- directories (every ``*.py`` below them, comma-separated) or ``.py`` files (globs);
- JSONL (``.jsonl``, ``.jsonl.gz``) or Parquet (``.parquet``) files, globs allowed, several
  separated by commas, with one file's text per row in a content column;
- ``hf:NAME[:CONFIG]``: a Hugging Face dataset, streamed (``datasets`` package).

File lists are shuffled with the sample seed; row streams go through a seeded shuffle
buffer. Either way, the same source and seed always give the same order, which is what
makes ``max_seeds`` samples and resumption reproducible.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError, missing_extra

CONTENT_COLUMNS = ("content", "code", "text", "source", "func_code_string", "whole_func_string")
PATH_COLUMNS = ("path", "max_stars_repo_path", "file_path", "repo_path", "filename")
LICENSE_COLUMNS = ("license", "licenses", "max_stars_repo_licenses", "license_type")
STDLIB_LICENSE = "PSF-2.0"
_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".tox", "node_modules"}
_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


@dataclass
class Doc:
    """One file's worth of code. ``text`` is None for files the worker reads itself."""

    path: str
    text: str | None = None
    license: str | list[str] | None = None
    file: str | None = None  # filesystem path to read


@dataclass
class Source:
    name: str  # recorded in each seed
    docs: Iterator[Doc]
    total: int | None  # number of documents when known up front


def open_source(
    spec: str,
    *,
    sample_seed: int = 0,
    content_column: str | None = None,
    hf_split: str = "train",
    shuffle_buffer: int = 10_000,
) -> Source:
    spec = spec.strip()
    if spec == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        files = _py_files(root, skip=_STDLIB_SKIP)
        return _file_source("stdlib", root, files, sample_seed, STDLIB_LICENSE)
    if spec.startswith("hf:"):
        return _hf_source(spec, sample_seed, content_column, hf_split, shuffle_buffer)
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if parts and all(Path(p).expanduser().is_dir() for p in parts):
        roots = [Path(p).expanduser().resolve() for p in parts]
        files = sorted({f for r in roots for f in _py_files(r, skip=_SKIP_DIRS)})
        root = roots[0] if len(roots) == 1 else Path(os.path.commonpath([str(r) for r in roots]))
        name = "dir:" + ",".join(str(r) for r in roots)
        return _file_source(name, root, files, sample_seed, None)
    files: list[Path] = []
    for p in parts:
        matched = sorted(glob.glob(os.path.expanduser(p), recursive=True))
        if not matched:
            raise UserError(f"seed source not found: {p} (expected stdlib, a directory, .py, .jsonl[.gz], .parquet or hf:NAME)")
        files.extend(Path(m) for m in matched)
    if all(f.suffix == ".py" for f in files):
        root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
        return _file_source(f"files:{spec}", root, sorted(f.resolve() for f in files), sample_seed, None)
    for f in files:
        if not (f.name.endswith((".jsonl", ".jsonl.gz", ".parquet"))):
            raise UserError(f"unsupported seed source file {f}: expected .py, .jsonl, .jsonl.gz or .parquet")
    rng = random.Random(sample_seed)
    rng.shuffle(files)
    rows = _rows_of_files(files, content_column)
    return Source(spec, _shuffle_buffer(rows, shuffle_buffer, sample_seed), None)


def _py_files(root: Path, skip: set[str]) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    return out


def _file_source(name: str, root: Path, files: list[Path], seed: int, license: str | None) -> Source:
    if not files:
        raise UserError(f"no .py files found in {root}")
    files = list(files)
    random.Random(seed).shuffle(files)

    def docs() -> Iterator[Doc]:
        for f in files:
            try:
                rel = str(f.relative_to(root))
            except ValueError:
                rel = str(f)
            yield Doc(path=rel, file=str(f), license=license)

    return Source(name, docs(), len(files))


def _pick(columns: list[str], wanted: str | None, options: tuple[str, ...], what: str, where: str) -> str | None:
    if wanted:
        if wanted not in columns:
            raise UserError(f"{where}: no column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for c in options:
        if c in columns:
            return c
    if what == "content":
        raise UserError(
            f"{where}: none of the columns {', '.join(options)} holds the code; "
            f"name it with content_column (columns: {', '.join(columns)})"
        )
    return None


def _rows_of_files(files: list[Path], content_column: str | None) -> Iterator[Doc]:
    for f in files:
        if f.suffix == ".parquet":
            yield from _parquet_rows(f, content_column)
        else:
            yield from _jsonl_rows(f, content_column)


def _row_doc(row: dict, where: str, i: int, ccol: str, pcol: str | None, lcol: str | None) -> Doc:
    text = row.get(ccol)
    path = row.get(pcol) if pcol else None
    lic = row.get(lcol) if lcol else None
    if isinstance(lic, str) and lic.startswith("["):
        try:
            lic = json.loads(lic)
        except ValueError:
            pass
    return Doc(
        path=f"{where}#{i}" + (f":{path}" if path else ""),
        text=text if isinstance(text, str) else None,
        license=lic or None,
    )


def _jsonl_rows(f: Path, content_column: str | None) -> Iterator[Doc]:
    opener = gzip.open if f.name.endswith(".gz") else open
    ccol = pcol = lcol = None
    try:
        with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    yield Doc(path=f"{f.name}#{i}", text=None)  # counted as unreadable
                    continue
                if not isinstance(row, dict):
                    yield Doc(path=f"{f.name}#{i}", text=None)
                    continue
                if ccol is None:
                    cols = list(row)
                    ccol = _pick(cols, content_column, CONTENT_COLUMNS, "content", str(f))
                    pcol = _pick(cols, None, PATH_COLUMNS, "path", str(f))
                    lcol = _pick(cols, None, LICENSE_COLUMNS, "license", str(f))
                yield _row_doc(row, f.name, i, ccol, pcol, lcol)
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read {f}: {e}") from None


def _parquet_rows(f: Path, content_column: str | None) -> Iterator[Doc]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "seeds") from None
    try:
        pf = pq.ParquetFile(f)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise UserError(f"cannot read {f} as Parquet: {e}") from None
    cols = pf.schema_arrow.names
    ccol = _pick(cols, content_column, CONTENT_COLUMNS, "content", str(f))
    pcol = _pick(cols, None, PATH_COLUMNS, "path", str(f))
    lcol = _pick(cols, None, LICENSE_COLUMNS, "license", str(f))
    wanted = [c for c in (ccol, pcol, lcol) if c]
    i = 0
    # Small batches keep memory bounded whatever the file's row-group size.
    for batch in pf.iter_batches(batch_size=256, columns=wanted):
        for row in batch.to_pylist():
            yield _row_doc(row, f.name, i, ccol, pcol, lcol)
            i += 1


def _hf_source(spec: str, seed: int, content_column: str | None, split: str, buffer: int) -> Source:
    try:
        import datasets
    except ImportError:
        raise missing_extra("datasets", "hf") from None
    rest = spec[3:]
    name, _, config = rest.partition(":")
    if not name:
        raise UserError("hf source needs a dataset name: hf:NAME[:CONFIG]")
    try:
        ds = datasets.load_dataset(name, config or None, split=split, streaming=True)
    except Exception as e:  # network, auth, missing config: all are the user's to fix
        raise UserError(f"cannot open Hugging Face dataset {name!r}: {str(e).splitlines()[0]}") from None
    cols = list(ds.features) if ds.features else None
    # The stream's shuffle buffer comes from datasets, which knows its shards.
    ds = ds.shuffle(seed=seed, buffer_size=buffer)

    def docs() -> Iterator[Doc]:
        nonlocal cols
        ccol = pcol = lcol = None
        for i, row in enumerate(ds):
            if ccol is None:
                cols = cols or list(row)
                ccol = _pick(cols, content_column, CONTENT_COLUMNS, "content", spec)
                pcol = _pick(cols, None, PATH_COLUMNS, "path", spec)
                lcol = _pick(cols, None, LICENSE_COLUMNS, "license", spec)
            yield _row_doc(row, name, i, ccol, pcol, lcol)

    return Source(spec, docs(), None)


def _shuffle_buffer(items: Iterator[Doc], size: int, seed: int) -> Iterator[Doc]:
    """Seeded reservoir-style shuffle with bounded memory (``size`` documents)."""
    if size <= 1:
        yield from items
        return
    rng = random.Random(seed)
    buf: list[Doc] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = rng.randrange(size)
        yield buf[j]
        buf[j] = item
    rng.shuffle(buf)
    yield from buf
