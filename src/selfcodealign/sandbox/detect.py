"""Which mode works here: each one probed, strongest first, by starting a real server
and running a program."""

from __future__ import annotations

import functools
import os
import shutil
import sys

from selfcodealign.errors import UserError
from selfcodealign.sandbox import cgroups
from selfcodealign.sandbox.launch import world_readable
from selfcodealign.sandbox.modes import (
    AUTO,
    FORCE_ENV,
    GAPS,
    ISOLATION,
    MODES,
    PROCESSES,
    SandboxInfo,
    mode_named,
)
from selfcodealign.sandbox.process import SandboxProcess, SandboxStartError


def _rlimits_gaps(root: bool) -> tuple[str, ...]:
    if root:
        if all(world_readable(p) for p in (sys.executable, sys.prefix)):
            return GAPS["rlimits"] + ("runs as an unprivileged uid (root was dropped)",)
        return GAPS["rlimits"] + (
            f"RUNS AS ROOT: the interpreter {sys.executable} is not readable by other "
            "users, and without a mount namespace there is no way to show it to one",
        )
    return GAPS["rlimits"] + (
        "runs as YOUR uid: programs can read your files and signal your processes",
    )


@functools.lru_cache(maxsize=None)
def detect() -> SandboxInfo:
    """Probe the modes, strongest first, by starting a real server and running a program."""
    root = os.geteuid() == 0
    forced = mode_named(os.environ.get(FORCE_ENV, "").strip() or AUTO, FORCE_ENV)
    missing, reasons = [], []
    candidates = list(MODES) if forced == AUTO else [forced]
    for mode in candidates:
        if mode == "bwrap" and not shutil.which("bwrap"):
            missing.append("bwrap (bubblewrap)")
            reasons.append("bwrap: not installed")
            continue
        if mode == "unshare":
            if not shutil.which("unshare"):
                missing.append("unshare (util-linux)")
                reasons.append("unshare: not installed")
                continue
            if not root:
                reasons.append("unshare: needs root (use bubblewrap as a normal user)")
                continue
        use_cg = cgroups.available()
        gaps = _rlimits_gaps(root) if mode == "rlimits" else GAPS[mode]
        isolation = ISOLATION[mode]
        if use_cg:
            gaps = tuple(g for g in gaps if not g.startswith("total memory"))
            isolation += ("memory cgroup per run (memory_mb + the server's own size + 64 MiB), pids cgroup",)
        else:
            gaps += (
                "(no writable cgroup filesystem"
                + ("" if root else "; needs root")
                + f": processes are capped at {PROCESSES}, each at memory_mb)",
            )
        info = SandboxInfo(
            mode=mode,
            root=root,
            missing=tuple(missing),
            reasons=tuple(reasons),
            isolation=isolation,
            gaps=gaps,
            cgroups=use_cg,
        )
        try:
            SandboxProcess(info, 0).probe()
        except SandboxStartError as e:
            reasons.append(f"{mode}: {e}")
            continue
        return info
    raise UserError("no sandbox mode works here: " + "; ".join(reasons))
