"""The wrapper around the process that runs model-written programs during scoring.

evalplus's checker guards against accidents (rlimits, disabled ``os`` functions), not
against hostile code: its own docstring says it is not a sandbox. So the whole checker
process runs inside:

- ``bwrap``: read-only root, private /tmp, no network, own PID/IPC namespaces (preferred);
- ``unshare``: no network, own PID namespace (root only; for machines without bubblewrap,
  such as the GPU image);
- ``none``: only when asked for explicitly (``--isolation none``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from selfcodealign.errors import UserError

MODES = ("auto", "bwrap", "unshare", "none")


_HIDDEN = ("/tmp", "/dev/shm")


def _interpreter_paths() -> list[str]:
    """Directories the checker's Python needs that the private /tmp would hide: a
    virtualenv or a checkout (editable install) that lives under /tmp, as CI's may."""
    import sys

    import selfcodealign

    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix,
                  os.path.dirname(os.path.dirname(os.path.abspath(selfcodealign.__file__)))]
    candidates += [p for p in sys.path if p]
    out: list[str] = []
    for path in candidates:
        path = os.path.realpath(path)
        if os.path.isdir(path) and path.startswith(tuple(h + "/" for h in _HIDDEN)):
            if not any(path == o or path.startswith(o + "/") for o in out):
                out = [o for o in out if not o.startswith(path + "/")] + [path]
    return out


def _bwrap_cmd(readable: list[str], writable: list[str] = ()) -> list[str]:
    readable = _interpreter_paths() + list(readable)
    cmd = [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--tmpfs", "/tmp", "--tmpfs", "/dev/shm", "--unshare-all", "--die-with-parent",
        "--new-session",
    ]
    for path in readable:  # job files live under the host's /tmp, hidden by the tmpfs
        cmd += ["--ro-bind", path, path]
    for path in writable:
        cmd += ["--bind", path, path]
    return cmd


_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


@functools.cache
def _works(mode: str) -> bool:
    if mode == "bwrap":
        if not shutil.which("bwrap"):
            return False
        cmd = _bwrap_cmd([]) + ["true"]
    elif mode == "unshare":
        if not shutil.which("unshare") or os.geteuid() != 0:
            return False
        cmd = _UNSHARE + ["true"]
    else:
        return True
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve(mode: str = "auto") -> str:
    if mode not in MODES:
        raise UserError(f"unknown isolation {mode!r}; choose from {', '.join(MODES)}")
    if mode == "auto":
        for m in ("bwrap", "unshare"):
            if _works(m):
                return m
        raise UserError(
            "no isolation for running model code: install bubblewrap (apt-get install "
            "bubblewrap) or run as root with unshare; --isolation none runs it unprotected"
        )
    if not _works(mode):
        raise UserError(f"isolation {mode} does not work on this machine")
    return mode


def wrap(cmd: list[str], mode: str = "auto", readable: list[str] = (), writable: list[str] = ()) -> list[str]:
    """``cmd`` run isolated; ``readable`` / ``writable`` are host paths it needs (under
    bubblewrap everything else is read-only and /tmp is private)."""
    mode = resolve(mode)
    if mode == "bwrap":
        return _bwrap_cmd(list(readable), list(writable)) + cmd
    if mode == "unshare":
        return _UNSHARE + cmd
    return list(cmd)
