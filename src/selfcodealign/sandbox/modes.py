"""The sandbox's isolation modes: their names, what each gives a run, and the limits
every run gets.

Three modes, strongest first (MODES):

- ``bwrap``: bubblewrap. As root it runs privileged (no user namespace) and the server
  drops to an unprivileged uid itself; as a normal user it makes a user namespace.
- ``unshare``: util-linux ``unshare`` as root (no bubblewrap): the server remounts the
  filesystem read-only itself, then drops privileges the same way.
- ``rlimits``: no namespaces; rlimits, a private directory and (as root) an
  unprivileged uid. No network isolation and no read-only filesystem.

Wherever a mode is named (``SELFCODEALIGN_SANDBOX``, eval's ``isolation``), ``auto``
asks for the strongest that works here. Around one whole process (``wrap_command``)
``rlimits`` adds nothing of ours: the process sets its own limits (evalplus's checker
does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from selfcodealign.errors import UserError

MODES = ("bwrap", "unshare", "rlimits")
NAMESPACE_MODES = MODES[:2]  # the strong ones
AUTO = "auto"
# Names a setting used before there was one list: eval's `--isolation none`.
OLD_NAMES = {"none": "rlimits"}
CHOICES = (AUTO, *MODES, *OLD_NAMES)  # what a setting may say
FORCE_ENV = "SELFCODEALIGN_SANDBOX"

# Limits every run gets besides its own timeout and memory_mb.
FILE_SIZE_BYTES = 32 << 20  # each file, stdout and stderr included
OPEN_FILES = 256
PROCESSES = 64  # processes and threads of the sandbox uid, the server included
OUTPUT_CAP = 16_384  # characters of stdout / stderr kept in a verdict
TMP_BYTES = 256 << 20  # size of the private /tmp in namespace modes
STRONG_MISSING_HELP = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; "
    "Fedora: dnf install bubblewrap; Arch: pacman -S bubblewrap)"
)


@dataclass(frozen=True)
class SandboxInfo:
    """What `selfcodealign sandbox --check` prints."""

    mode: str
    root: bool
    missing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why stronger modes were not used
    isolation: tuple[str, ...] = ()  # what this mode gives every run
    gaps: tuple[str, ...] = ()  # what it does not
    python: str = sys.executable
    cgroups: bool = False  # memory + pids cgroup per server (root with writable cgroupfs)

    @property
    def strong(self) -> bool:
        return self.mode in NAMESPACE_MODES

    def summary(self) -> str:
        lines = [f"sandbox mode: {self.mode}" + (" (running as root)" if self.root else "")]
        lines += [f"  + {x}" for x in self.isolation]
        lines += [f"  - {x}" for x in self.gaps]
        for m in self.missing:
            lines.append(f"missing: {m}")
        for r in self.reasons:
            lines.append(f"not used: {r}")
        if self.mode == "rlimits":
            lines.append(f"to get the strong sandbox: {STRONG_MISSING_HELP}")
        return "\n".join(lines)


def mode_named(value: str, where: str) -> str:
    """``value`` as AUTO or one of MODES (an old name becomes its mode); a UserError
    that names ``where`` (the setting) otherwise."""
    value = OLD_NAMES.get(value, value)
    if value == AUTO or value in MODES:
        return value
    raise UserError(f"{where}={value!r}: expected one of {', '.join((AUTO, *MODES))}")


ISOLATION = {
    "bwrap": (
        "own network namespace (no network), PID, IPC and UTS namespaces",
        "filesystem read-only; /root, /home, /run hidden; private /tmp (tmpfs)",
        "private /tmp, /dev/shm and SysV IPC emptied after every run",
        "environment cleared (no variables from the parent)",
        "unprivileged uid, no capabilities, no_new_privs",
        "rlimits: CPU seconds, address space, file size, open files, processes",
        "wall-clock timeout; every process of a run killed at its end",
    ),
    "unshare": (
        "own network namespace (no network), PID, IPC and UTS namespaces",
        "filesystem remounted read-only; /root, /home, /run hidden; private /tmp",
        "private /tmp, /dev/shm and SysV IPC emptied after every run",
        "environment cleared (no variables from the parent)",
        "unprivileged uid, no capabilities, no_new_privs",
        "rlimits: CPU seconds, address space, file size, open files, processes",
        "wall-clock timeout; every process of a run killed at its end",
    ),
    "rlimits": (
        "environment cleared (no variables from the parent)",
        "rlimits: CPU seconds, address space, file size, open files, processes",
        "wall-clock timeout; every process of a run killed at its end",
        "private working directory",
    ),
}

GAPS = {
    "bwrap": ("total memory of a run bounded only as processes x address space",),
    "unshare": ("total memory of a run bounded only as processes x address space",),
    "rlimits": (
        "NO network isolation: programs can open connections",
        "NO read-only filesystem: programs can write wherever the uid may",
        "host /dev/shm and SysV IPC: what a run leaves there stays for later runs",
        "total memory of a run bounded only as processes x address space",
    ),
}
