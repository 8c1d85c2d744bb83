"""One progress bar per stage: records done / total, tokens/s, passing so far."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

console = Console(stderr=True)


class StageProgress:
    def __init__(self, name: str, total: int | None, done: int = 0, quiet: bool = False,
                 passed: int = 0) -> None:
        self.name = name
        self.quiet = quiet
        self.tokens = 0
        self.passed = passed
        self.done = done
        self.total = total
        self._t0 = time.monotonic()
        self._progress: Progress | None = None
        if quiet:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[passing]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task(name, total=total, completed=done, rate="", passing="")
        self._progress.start()

    def _fields(self) -> dict[str, str]:
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        rate = f"{self.tokens / elapsed:,.1f} tok/s" if self.tokens else ""
        passing = f"{self.passed} passing" if self.name == "execute" else ""
        return {"rate": rate, "passing": passing}

    def advance(self, tokens: int = 0, passed: int = 0) -> None:
        self.tokens += tokens
        self.passed += passed
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, **self._fields())

    def update_total(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total, **self._fields())

    def close(self, summary: bool = True) -> None:
        """``summary=False``: the work failed, and its error is the one line to show."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if summary and not self.quiet and not console.is_terminal:
            # Logs and CI get one line per stage instead of a live bar.
            f = self._fields()
            extra = " ".join(v for v in f.values() if v)
            print(f"{self.name}: {self.done}/{self.total if self.total is not None else '?'} {extra}",
                  file=sys.stderr)
