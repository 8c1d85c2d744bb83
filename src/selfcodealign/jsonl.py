"""JSONL files that survive kill -9: appends are flushed and fsynced line by line, and a
torn last line (a kill in the middle of a write) is tolerated on read and cut on resume.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from selfcodealign.errors import UserError

T = TypeVar("T", bound=BaseModel)


def _dumps(obj: Any) -> str:
    if isinstance(obj, BaseModel):
        return obj.model_dump_json()
    return json.dumps(obj, ensure_ascii=False)


def read_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object). An unparsable *last* line is skipped (torn write);
    an unparsable line elsewhere is a user error naming the file and line."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"input is a directory, expected a JSONL file: {path}") from None
    with f:
        pending: tuple[int, bytes] | None = None
        for lineno, raw in enumerate(f, 1):
            if pending is not None:
                yield pending[0], _parse(path, *pending)
            pending = (lineno, raw)
        if pending is not None:
            lineno, raw = pending
            if raw.strip():
                try:
                    yield lineno, json.loads(raw)
                except ValueError:
                    return  # torn last line


def _parse(path: Path, lineno: int, raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise UserError(f"{path}:{lineno}: not valid JSON") from None


def read_records(path: Path, model: type[T]) -> Iterator[T]:
    for lineno, obj in read_lines(path):
        if not obj:
            continue
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise UserError(
                f"{path}:{lineno}: not a {model.__name__} record ({where}: {first['msg']})"
            ) from None


def repair_tail(path: Path) -> None:
    """Cut a torn (unterminated) last line so that appends start on a fresh line."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        # Walk back to the previous newline.
        pos = size - 1
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                f.truncate(pos - step + idx + 1)
                return
            pos -= step
        f.truncate(0)


class Appender:
    """Append-only JSONL writer; each ``write`` is durable once it returns."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_tail(self.path)
            self._f = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write {self.path}: {e.strerror}") from None
        self._fsync = fsync

    def write_many(self, objs: Iterable[Any]) -> None:
        data = "".join(_dumps(o) + "\n" for o in objs)
        if not data:
            return
        self._f.write(data)
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def write(self, obj: Any) -> None:
        self.write_many([obj])

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_atomic(path: Path, objs: Iterable[Any]) -> None:
    """Write a whole JSONL file via a temp file and rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for o in objs:
                f.write(_dumps(o) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
