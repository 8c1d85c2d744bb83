"""Verdicts: the ones given without a run (bad parameters, syntax errors: precheck) and
how a run ended, from its wait status and what its report pipe says (classify). Read
here, on the host, where no fork makes memory copy-on-write (fork_server.py says why
that matters)."""

from __future__ import annotations

import os
import signal

from selfcodealign.records import Verdict
from selfcodealign.sandbox.compiling import CompileFailed, compile_program
from selfcodealign.sandbox.program import Program

REPORT_CAP = 8192  # what the run's report pipe may say; the runner writes < 4 KiB


def precheck(program: Program) -> tuple[Verdict | None, object]:
    """(a verdict given without the sandbox: bad parameters, syntax error; or None, and
    the compiled program to send)."""
    bad = _invalid(program)
    if bad:
        return Verdict(id=program.id, status="error", detail=bad), None
    try:
        return None, compile_program(program.code, program.tests)
    except CompileFailed as e:
        return Verdict(
            id=program.id, status="failed", exit_code=1, stderr=e.stderr, detail=e.detail
        ), None


def drain_report(fd: int) -> str:
    """What the run's report pipe holds, without blocking (every process of the run is
    gone, so nothing writes any more)."""
    data = b""
    try:
        while len(data) < REPORT_CAP:
            more = os.read(fd, 4096)
            if not more:
                break
            data += more
    except (BlockingIOError, OSError):
        pass
    return data.decode("utf-8", "replace")


def read_capped(fd: int, cap: int) -> str:
    size = os.lseek(fd, 0, os.SEEK_END)
    if size <= cap:
        return os.pread(fd, size, 0).decode("utf-8", "replace")
    half = cap // 2
    head = os.pread(fd, half, 0).decode("utf-8", "replace")
    tail = os.pread(fd, half, size - half).decode("utf-8", "replace")
    return f"{head}\n... [{size - 2 * half} bytes cut] ...\n{tail}"


def classify(
    program: Program, status: int, timed_out: bool, report: str, nonce: str, fsize: int
) -> tuple[str, int | None, str]:
    """How the run ended -> (status, exit_code, detail)."""
    if timed_out:
        return "timeout", None, f"wall-clock limit of {float(program.timeout):g}s"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        if sig == signal.SIGXCPU:
            return "timeout", -sig, f"CPU time limit ({name})"
        if sig == signal.SIGXFSZ:
            return "crashed", -sig, f"output or a file exceeded {fsize} bytes ({name})"
        return "crashed", -sig, f"killed by {name}"
    code = os.WEXITSTATUS(status)
    if report.startswith("SETUP"):
        return "error", code, report
    if report == "OOM":
        return "oom", code, "MemoryError"
    if code == 0 and report == "DONE " + nonce:
        return "passed", 0, ""
    if code == 0:
        return "failed", 0, "exited with status 0 before the end of the program"
    if report.startswith("EXC "):
        return "failed", code, report[4:]
    if report == "EXIT early":
        return "failed", code, "exited before the end of the program"
    return "failed", code, f"exit status {code}"


def _invalid(p: Program) -> str:
    if not isinstance(p.code, str) or not isinstance(p.tests, str):
        return "code and tests must be strings"
    try:
        t, m = float(p.timeout), int(p.memory_mb)
    except (TypeError, ValueError):
        return "timeout and memory_mb must be numbers"
    if not 0 < t <= 3600:
        return f"timeout must be in (0, 3600] seconds, got {p.timeout!r}"
    if not 32 <= m <= 1 << 20:
        return f"memory_mb must be in [32, 1048576], got {p.memory_mb!r}"
    return ""
