"""Memory and process-count cgroups per sandbox server (root only).

RLIMIT_AS bounds one process; a program that forks 60 children of 1 GiB each would
still take 60 GiB. A memory cgroup bounds the whole run, a pids cgroup bounds how many
processes it can have whatever uid accounting says. Used where the cgroup filesystem
is writable (root on a normal host, not inside most containers); otherwise `check()`
says that total memory is bounded only as processes x address space.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
SERVER_ALLOWANCE = 64 << 20  # the sandbox server's own memory, beside the run's


@dataclass
class Group:
    memory: Path | None  # directory whose limit files we write
    pids: Path | None
    v2: bool
    _oom_fd: int | None = field(default=None, repr=False, compare=False)

    @property
    def procs_files(self) -> list[str]:
        dirs = {d for d in (self.memory, self.pids) if d is not None}
        return [str(d / "cgroup.procs") for d in sorted(dirs)]

    def set_memory(self, limit_bytes: int) -> None:
        if self.memory is None:
            return
        name = "memory.max" if self.v2 else "memory.limit_in_bytes"
        try:
            (self.memory / name).write_text(str(limit_bytes))
        except OSError:
            pass  # lowering below current usage can fail; the previous limit stays

    @property
    def oom_file(self) -> str | None:
        if self.memory is None:
            return None
        return str(self.memory / ("memory.events" if self.v2 else "memory.oom_control"))

    def oom_kills(self) -> int:
        # Read around every run: one open descriptor re-read with pread (the kernel
        # regenerates the file at offset 0) costs a fraction of opening it each time.
        if self.memory is None:
            return 0
        try:
            if self._oom_fd is None:
                self._oom_fd = os.open(self.oom_file, os.O_RDONLY | os.O_CLOEXEC)
            data = b"\n" + os.pread(self._oom_fd, 4096, 0)
            i = data.index(b"\noom_kill ")
            return int(data[i + 10 :].split(None, 1)[0])
        except (OSError, ValueError, IndexError):
            return 0

    def remove(self) -> None:
        if self._oom_fd is not None:
            os.close(self._oom_fd)
            self._oom_fd = None
        # Killed processes leave the group a moment after they are reaped.
        for d in {self.memory, self.pids}:
            if d is None:
                continue
            for _ in range(200):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)


def _v1(controller: str) -> Path | None:
    d = ROOT / controller
    return d if (d / "cgroup.procs").exists() and os.access(d, os.W_OK) else None


def _v2_root() -> Path | None:
    for d in (ROOT, ROOT / "unified"):
        try:
            controllers = (d / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if {"memory", "pids"} <= set(controllers) and os.access(d, os.W_OK):
            return d
    return None


def available() -> bool:
    if os.geteuid() != 0:
        return False
    return (_v1("memory") is not None and _v1("pids") is not None) or _v2_root() is not None


_swept = False


def sweep_stale(prefix: str = "selfcodealign-") -> None:
    """Remove empty groups left by pools whose process died before it could clean up
    (named PREFIX<pid>-<slot>)."""
    roots = [d for d in (_v1("memory"), _v1("pids"), _v2_root()) if d is not None]
    for root in roots:
        for d in root.glob(prefix + "*"):
            try:
                pid = int(d.name[len(prefix) :].split("-")[0])
            except ValueError:
                continue
            if pid == os.getpid() or _alive(pid):
                continue
            try:
                d.rmdir()  # fails (EBUSY) while any process is still inside
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create(name: str, pids_max: int, memory_bytes: int) -> Group | None:
    """Make the groups and set their limits; None where cgroups can't be used here."""
    global _swept
    if os.geteuid() != 0:
        return None
    if not _swept:
        _swept = True
        sweep_stale()
    try:
        mem, pids = _v1("memory"), _v1("pids")
        if mem is not None and pids is not None:
            g = Group(memory=mem / name, pids=pids / name, v2=False)
            for d in (g.memory, g.pids):
                d.mkdir(exist_ok=True)
            (g.pids / "pids.max").write_text(str(pids_max))
            g.set_memory(memory_bytes)
            return g
        root = _v2_root()
        if root is not None:
            d = root / name
            d.mkdir(exist_ok=True)
            g = Group(memory=d, pids=d, v2=True)
            (d / "pids.max").write_text(str(pids_max))
            (d / "memory.swap.max").write_text("0")
            g.set_memory(memory_bytes)
            return g
    except OSError:
        return None
    return None
