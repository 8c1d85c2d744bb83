"""The sandbox: one entry point that runs untrusted code plus tests and returns a verdict.

Contract used by the pipeline (the execute stage) and by `selfcodealign sandbox`:

    Program(id, code, tests="", timeout=10.0, memory_mb=1024)
    run_program(program) -> Verdict
    iter_batch(programs, workers=None) -> Iterator[tuple[int, Verdict]]   # as finished
    run_batch(programs, workers=None) -> list[Verdict]                    # input order
    check() -> SandboxInfo                                                # mode in use

``tests`` runs after ``code`` in the same namespace (``__name__ == "__main__"``). A
program passes only if it reaches its last statement and ends with status 0; an early
``sys.exit(0)``/``os._exit(0)`` or an exit hook that forces status 0 does not pass.
Verdict statuses: passed, failed, timeout, oom, crashed (killed by a signal), error (the
sandbox itself failed). See docs/sandbox.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from selfcodealign.records import Verdict
from selfcodealign.sandbox.modes import SandboxInfo, detect

__all__ = ["Program", "SandboxInfo", "check", "iter_batch", "run_batch", "run_program"]

log = logging.getLogger(__name__)
_warned = threading.Event()


@dataclass(frozen=True)
class Program:
    id: str
    code: str
    tests: str = ""
    timeout: float = 10.0
    memory_mb: int = 1024


def check() -> SandboxInfo:
    """The isolation mode in use here (probed once per process), with what is missing."""
    info = detect()
    if not info.strong and not _warned.is_set():
        _warned.set()
        log.warning(
            "sandbox: weak mode %r (%s); %s",
            info.mode,
            "; ".join(info.reasons) or "forced",
            "run `selfcodealign sandbox --check` for details",
        )
    return info


def iter_batch(
    programs: Iterable[Program], workers: int | None = None
) -> Iterator[tuple[int, Verdict]]:
    """Run programs on a pool of sandbox servers; yield (input index, verdict) as each
    finishes. Programs are read lazily, so the input may be a generator."""
    from selfcodealign.sandbox.pool import iter_batch as _iter

    return _iter(programs, check(), workers)


def run_batch(programs: Iterable[Program], workers: int | None = None) -> list[Verdict]:
    """Like iter_batch, in input order."""
    out: dict[int, Verdict] = {}
    for i, v in iter_batch(programs, workers):
        out[i] = v
    return [out[i] for i in range(len(out))]


def run_program(program: Program) -> Verdict:
    return run_batch([program], workers=1)[0]
