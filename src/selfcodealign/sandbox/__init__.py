"""The sandbox: one entry point that runs untrusted code plus tests and returns a verdict.

This is the sandbox's only way in; nothing outside sandbox/ imports its modules. Contract
used by the pipeline (the execute stage), eval and `selfcodealign sandbox`:

    Program(id, code, tests="", timeout=10.0, memory_mb=1024)
    run_program(program) -> Verdict
    iter_batch(programs, workers=None) -> Iterator[tuple[int, Verdict]]   # as finished
    run_batch(programs, workers=None) -> list[Verdict]                    # input order
    check() -> SandboxInfo                                                # mode in use
    wrap_command(cmd, mode="auto", readable=(), writable=()) -> argv      # one process

``tests`` runs after ``code`` in the same namespace (``__name__ == "__main__"``). A
program passes only if it reaches its last statement and ends with status 0; an early
``sys.exit(0)``/``os._exit(0)`` or an exit hook that forces status 0 does not pass.
Verdict statuses: passed, failed, timeout, oom, crashed (killed by a signal), error (the
sandbox itself failed). Modes: MODES (strongest first); a setting may say any of
MODE_CHOICES. See docs/sandbox.md for the rooms inside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

from selfcodealign.records import Verdict
from selfcodealign.sandbox.detect import detect as _detect
from selfcodealign.sandbox.fork_server import children_by_parent
from selfcodealign.sandbox.launch import wrap_command
from selfcodealign.sandbox.modes import CHOICES as MODE_CHOICES
from selfcodealign.sandbox.modes import MODES, SandboxInfo
from selfcodealign.sandbox.program import Program
from selfcodealign.sandbox.schedule import iter_batch as _iter_batch
from selfcodealign.sandbox.server_flavors import flavors, installed_heavy, pick_flavor
from selfcodealign.sandbox.warmup import HEAVY

__all__ = [
    "MODES", "MODE_CHOICES", "Program", "SandboxInfo", "check", "iter_batch", "run_batch",
    "run_program", "wrap_command",
    # what the benchmarks measure with: server flavors and the process tree
    "HEAVY", "children_by_parent", "flavors", "installed_heavy", "pick_flavor",
]

log = logging.getLogger(__name__)
_warned = threading.Event()


def check(warn: bool = True) -> SandboxInfo:
    """The isolation mode in use here (probed once per process), with what is missing;
    a weak mode is logged once unless ``warn`` is off (``sandbox --check`` prints it all)."""
    info = _detect()
    if warn and not info.strong and not _warned.is_set():
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
    return _iter_batch(programs, check(), workers)


def run_batch(programs: Iterable[Program], workers: int | None = None) -> list[Verdict]:
    """Like iter_batch, in input order."""
    out: dict[int, Verdict] = {}
    for i, v in iter_batch(programs, workers):
        out[i] = v
    return [out[i] for i in range(len(out))]


def run_program(program: Program) -> Verdict:
    return run_batch([program], workers=1)[0]
