"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

import os

from selfcodealign.sandbox import Program, run_program


def run(code: str, tests: str = "", timeout: float = 5.0, memory_mb: int = 512):
    return run_program(
        Program(id="t", code=code, tests=tests, timeout=timeout, memory_mb=memory_mb)
    )


def host_processes_with(marker: str) -> list[int]:
    """Pids on the host whose command line contains `marker` (not this test process)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(name))
        except OSError:
            pass
    return out


def host_processes_of_uids(lo: int, hi: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
            except OSError:
                continue
            if lo <= uid < hi:
                out.append(int(name))
    return out
