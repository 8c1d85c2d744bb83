"""The command lines that start something in the sandbox: a sandbox server for a mode
(build_launch, with what it is sent first: server_preamble), and one whole trusted
process inside the same namespaces (wrap_command)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.sandbox.modes import (
    AUTO,
    FILE_SIZE_BYTES,
    NAMESPACE_MODES,
    OPEN_FILES,
    OUTPUT_CAP,
    PROCESSES,
    STRONG_MISSING_HELP,
    TMP_BYTES,
    mode_named,
)

PRELOAD_ENV = "SELFCODEALIGN_SANDBOX_PRELOAD"

# The server binds every symbol of the interpreter's libraries when it starts: left to
# lazy binding, each forked run would resolve (and copy-on-write the pages of) the ones
# it is first to call. The server clears its environment before any run, so programs
# and what they start never see it.
BIND_NOW = ("LD_BIND_NOW", "1")

HIDDEN_DIRS = ("/root", "/home", "/run", "/var/tmp", "/mnt", "/media", "/srv")
# Directories the namespace modes replace with an empty tmpfs (hidden, or a private /tmp).
REPLACED_DIRS = HIDDEN_DIRS + ("/tmp",)


def sandbox_uid(slot: int) -> int:
    """An unused uid per server slot (root only): RLIMIT_NPROC counts per uid, so distinct
    uids keep one server's fork bomb from starving the others, and the pid mixes in so
    that two pools on one host do not share uids."""
    return 100_000 + (os.getpid() % 4000) * 256 + slot % 256


def _interpreter() -> str:
    """The Python binary the server runs, in isolated mode. Inside a virtualenv that is
    the venv's own binary, path unresolved, so programs import what the venv has (numpy,
    say) and not what its base interpreter happens to have. A venv under /tmp is bound
    read-only into the sandbox's private /tmp (see _paths_to_rebind); one under /dev/shm,
    which the server empties after every run, gets its base interpreter."""
    exe = os.path.abspath(sys.executable)
    real = os.path.realpath(exe)
    if sys.prefix != sys.base_prefix and not exe.startswith("/dev/shm/"):
        return exe
    if real.startswith("/dev/shm/"):
        base = os.path.realpath(getattr(sys, "_base_executable", "") or "")
        if base and os.path.isfile(base):
            return base
    return real


def _paths_to_rebind() -> list[str]:
    """Interpreter and import paths that live under a directory the sandbox hides or
    replaces (a venv in a clone under /tmp, say): bound read-only at the same place."""
    wanted = {sys.prefix, sys.base_prefix, os.path.dirname(_interpreter())}
    wanted.update(p for p in sys.path if p and os.path.isdir(p))
    out = []
    for p in sorted(wanted):
        real = os.path.realpath(p)
        for cand in {p, real}:
            if any(cand.startswith(h + "/") for h in REPLACED_DIRS):
                out.append(cand)
    # Drop paths already covered by a parent in the list.
    out = sorted(set(out))
    return [p for p in out if not any(p != q and p.startswith(q + "/") for q in out)]


def kept_in_tmp(rebinds: list[str]) -> list[str]:
    """The entries of the private /tmp that rebinds made: the server must not wipe them."""
    return sorted({p.split("/")[2] for p in rebinds if p.startswith("/tmp/")})


def _parents_below_hidden(path: str) -> list[str]:
    hidden = next(h for h in REPLACED_DIRS if path.startswith(h + "/"))
    parts = path[len(hidden) + 1 :].split("/")[:-1]
    return [hidden + "/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def world_readable(path: str) -> bool:
    """Can any uid reach and read `path` (every parent directory searchable)?"""
    p = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(p).st_mode
        except OSError:
            return False
        needed = 0o001 if os.path.isdir(p) else 0o004  # others may search / read
        if not mode & needed:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


def _source(name: str) -> bytes:
    return (Path(__file__).with_name(name)).read_bytes()


# The server's source comes first on its stdin (a length line, then the source), so that
# neither the package's location nor a 30 KB argv matters; the child's follows the same
# way, read by the server itself. The host sends jobs only after the server's hello.
BOOTSTRAP = (
    "import sys;n=int(sys.stdin.buffer.readline());"
    "exec(compile(sys.stdin.buffer.read(n),'<sandbox-server>','exec'),{'__name__':'__main__'})"
)


def server_preamble() -> bytes:
    sources = [_source(name) for name in ("fork_server.py", "warmup.py", "child.py")]
    return b"".join(str(len(src)).encode() + b"\n" + src for src in sources)


@dataclass
class Launch:
    argv: list[str]
    workdir_host: str | None = None  # rlimits mode: a private directory to delete later
    uid: int | None = None


def _bwrap_filesystem(rebind: list[str], writable: list[str] = ()) -> list[str]:
    """bwrap arguments: the host's root read-only, HIDDEN_DIRS empty, a private /tmp and
    /dev/shm, then ``rebind`` (paths the tmpfs mounts hid) read-only and ``writable``
    read-write at their own places."""
    argv = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for d in HIDDEN_DIRS:
        if os.path.isdir(d):
            argv += ["--tmpfs", d]
    # The private /tmp first: paths rebound into it come after.
    argv += ["--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/dev/shm"]
    made: set[str] = set()
    for p in [*rebind, *writable]:
        # bwrap makes missing mount points 0700; the sandbox uid must traverse them.
        if any(p.startswith(h + "/") for h in REPLACED_DIRS):
            for d in _parents_below_hidden(p):
                if d not in made:
                    made.add(d)
                    argv += ["--perms", "0755", "--dir", d]
        argv += ["--bind" if p in writable else "--ro-bind", p, p]
    return argv


_UNSHARE_PROCESS = ["--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]


def _wrap_argv(mode: str, readable: list[str], writable: list[str]) -> list[str]:
    if mode == "bwrap":
        rebind = sorted(set(_paths_to_rebind()) | set(readable) - set(writable))
        return [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                *_bwrap_filesystem(rebind, list(writable)), "--"]
    return [shutil.which("unshare") or "unshare", *_UNSHARE_PROCESS, "--"]


@functools.lru_cache(maxsize=None)
def _wrap_works(mode: str) -> bool:
    import subprocess

    if mode == "bwrap" and not shutil.which("bwrap"):
        return False
    if mode == "unshare" and (not shutil.which("unshare") or os.geteuid() != 0):
        return False
    try:
        return subprocess.run(_wrap_argv(mode, [], []) + ["true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wrap_command(cmd: list[str], mode: str = AUTO, readable: list[str] = (),
                 writable: list[str] = ()) -> list[str]:
    """``cmd`` as one process inside the sandbox's namespaces, for a trusted program that
    runs untrusted code itself (evalplus's checker): no network, its own PID and IPC
    namespaces, and under bwrap the same read-only filesystem with a private /tmp and
    /dev/shm as the sandbox servers. ``readable`` / ``writable``: host paths it needs
    (under bwrap nothing else is writable). ``unshare`` (root without bubblewrap) gives the
    namespaces without the read-only filesystem; ``rlimits`` (old name ``none``) runs
    ``cmd`` as it is, with only the limits it sets itself, and must be asked for: ``auto``
    is a namespace mode or an error."""
    mode = mode_named(mode, "isolation")
    if mode == "rlimits":
        return list(cmd)
    if mode == AUTO:
        mode = next((m for m in NAMESPACE_MODES if _wrap_works(m)), "")
        if not mode:
            raise UserError(f"no isolation for running model code here: {STRONG_MISSING_HELP}, or run as "
                            "root with unshare; --isolation rlimits runs it without namespaces")
    elif not _wrap_works(mode):
        raise UserError(f"isolation {mode} does not work on this machine")
    return _wrap_argv(mode, [os.path.realpath(p) for p in readable],
                      [os.path.realpath(p) for p in writable]) + list(cmd)


def build_launch(
    mode: str, slot: int, nproc_base: int = 0, heavy: tuple[str, ...] = ()
) -> Launch:
    """The command that starts a server; `heavy`: the groups of warmup.HEAVY it imports."""
    root = os.geteuid() == 0
    uid = sandbox_uid(slot) if root else None
    cfg = {
        "fsize": FILE_SIZE_BYTES,
        "nofile": OPEN_FILES,
        "nproc": PROCESSES + nproc_base,
        "output_cap": OUTPUT_CAP,
        "drop_to_uid": uid,
        "pid_ns_init": mode in NAMESPACE_MODES,
        # Own IPC namespace and /dev/shm: the server empties both after each run.
        "private_ipc": mode in NAMESPACE_MODES,
        "workdir": "/tmp",
        "keep_in_workdir": kept_in_tmp(_paths_to_rebind()) if mode in NAMESPACE_MODES else [],
        "setup_mounts": False,
        "die_with_parent": mode != "bwrap",
        "heavy": list(heavy),
    }
    # More modules for the servers to import once (e.g. "numpy" if most programs use it).
    cfg["preload"] = os.environ.get(PRELOAD_ENV, "").replace(",", " ").split()
    python = [_interpreter(), "-I", "-c", BOOTSTRAP]
    if mode == "bwrap":
        argv = [shutil.which("bwrap") or "bwrap"]
        if root:
            # Privileged bwrap (no user namespace): the server drops to `uid` itself, so
            # that the kernel's RLIMIT_NPROC applies (it never does for uid 0).
            argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
            argv += ["--unshare-cgroup-try"]
        else:
            argv += ["--unshare-all", "--disable-userns"]
        argv += ["--as-pid-1", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        argv += _bwrap_filesystem(_paths_to_rebind())
        argv += ["--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
        argv += ["--setenv", "LANG", "C.UTF-8"]
        argv += ["--setenv", *BIND_NOW, "--chdir", "/tmp", "--"]
        return Launch(argv + python + [json.dumps(cfg)], uid=uid)
    if mode == "unshare":
        cfg.update(
            setup_mounts=True,
            hide=[d for d in HIDDEN_DIRS if os.path.isdir(d)],
            rebind=_paths_to_rebind(),
            tmp_bytes=TMP_BYTES,
        )
        argv = [shutil.which("unshare") or "unshare", "--net", "--pid", "--fork", "--mount"]
        argv += ["--ipc", "--uts", "--kill-child", "--mount-proc", "--"]
        return Launch(argv + python + [json.dumps(cfg)], uid=uid)
    if uid is not None and not all(world_readable(p) for p in (sys.executable, sys.prefix)):
        # Without a mount namespace an unprivileged uid cannot reach an interpreter
        # kept under a private directory (e.g. /root/.pyenv): run as root, and say so.
        cfg["drop_to_uid"] = uid = None
    workdir = tempfile.mkdtemp(prefix="selfcodealign-sandbox-")
    if uid is not None:
        os.chown(workdir, uid, uid)
    cfg["workdir"] = workdir
    return Launch(python + [json.dumps(cfg)], workdir_host=workdir, uid=uid)


def user_process_count() -> int:
    """Processes of this uid (rlimits mode as non-root: RLIMIT_NPROC counts them all)."""
    uid, n = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n
