"""Which isolation is available here, and the command line that starts a sandbox server.

Three modes, strongest first:

- ``bwrap``: bubblewrap. As root it runs privileged (no user namespace) and the server
  drops to an unprivileged uid itself; as a normal user it makes a user namespace.
- ``unshare``: util-linux ``unshare`` as root (no bubblewrap): the server remounts the
  filesystem read-only itself, then drops privileges the same way.
- ``rlimits``: no namespaces; rlimits, a private directory and (as root) an
  unprivileged uid. No network isolation and no read-only filesystem.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

MODES = ("bwrap", "unshare", "rlimits")
FORCE_ENV = "SELFCODEALIGN_SANDBOX"
PRELOAD_ENV = "SELFCODEALIGN_SANDBOX_PRELOAD"

# Limits every run gets besides its own timeout and memory_mb.
FILE_SIZE_BYTES = 32 << 20  # each file, stdout and stderr included
OPEN_FILES = 256
PROCESSES = 64  # processes and threads of the sandbox uid, the server included
OUTPUT_CAP = 16_384  # characters of stdout / stderr kept in a verdict
TMP_BYTES = 256 << 20  # size of the private /tmp in namespace modes

# The server binds every symbol of the interpreter's libraries when it starts: left to
# lazy binding, each forked run would resolve (and copy-on-write the pages of) the ones
# it is first to call. The server clears its environment before any run, so programs
# and what they start never see it.
BIND_NOW = ("LD_BIND_NOW", "1")

HIDDEN_DIRS = ("/root", "/home", "/run", "/var/tmp", "/mnt", "/media", "/srv")
# Directories the namespace modes replace with an empty tmpfs (hidden, or a private /tmp).
REPLACED_DIRS = HIDDEN_DIRS + ("/tmp",)
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
        return self.mode in ("bwrap", "unshare")

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


def sandbox_uid(worker_index: int) -> int:
    """An unused uid per worker (root only): RLIMIT_NPROC counts per uid, so distinct
    uids keep one worker's fork bomb from starving the others, and the pid mixes in so
    that two pools on one host do not share uids."""
    return 100_000 + (os.getpid() % 4000) * 256 + worker_index % 256


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
    return b"".join(str(len(src)).encode() + b"\n" + src
                    for src in (_source("fork_server.py"), _source("child.py")))


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


WRAP_MODES = ("auto", "bwrap", "unshare", "none")
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


def wrap_command(cmd: list[str], mode: str = "auto", readable: list[str] = (),
                 writable: list[str] = ()) -> list[str]:
    """``cmd`` as one process inside the sandbox's namespaces, for a trusted program that
    runs untrusted code itself (evalplus's checker): no network, its own PID and IPC
    namespaces, and under bwrap the same read-only filesystem with a private /tmp and
    /dev/shm as the sandbox servers. ``readable`` / ``writable``: host paths it needs
    (under bwrap nothing else is writable). ``unshare`` (root without bubblewrap) gives the
    namespaces without the read-only filesystem; ``none`` runs ``cmd`` as it is, and must be
    asked for."""
    from selfcodealign.errors import UserError

    if mode not in WRAP_MODES:
        raise UserError(f"unknown isolation {mode!r}; choose from {', '.join(WRAP_MODES)}")
    if mode == "none":
        return list(cmd)
    if mode == "auto":
        mode = next((m for m in ("bwrap", "unshare") if _wrap_works(m)), "")
        if not mode:
            raise UserError(f"no isolation for running model code here: {STRONG_MISSING_HELP}, or run as "
                            "root with unshare; --isolation none runs it unprotected")
    elif not _wrap_works(mode):
        raise UserError(f"isolation {mode} does not work on this machine")
    return _wrap_argv(mode, [os.path.realpath(p) for p in readable],
                      [os.path.realpath(p) for p in writable]) + list(cmd)


def build_launch(
    mode: str, worker_index: int, nproc_base: int = 0, heavy: tuple[str, ...] = ()
) -> Launch:
    """The command that starts a server; `heavy`: the groups of fork_server.HEAVY it imports."""
    root = os.geteuid() == 0
    uid = sandbox_uid(worker_index) if root else None
    cfg = {
        "fsize": FILE_SIZE_BYTES,
        "nofile": OPEN_FILES,
        "nproc": PROCESSES + nproc_base,
        "output_cap": OUTPUT_CAP,
        "drop_to_uid": uid,
        "pid_ns_init": mode in ("bwrap", "unshare"),
        # Own IPC namespace and /dev/shm: the server empties both after each run.
        "private_ipc": mode in ("bwrap", "unshare"),
        "workdir": "/tmp",
        "keep_in_workdir": kept_in_tmp(_paths_to_rebind()) if mode in ("bwrap", "unshare") else [],
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
    from selfcodealign.sandbox.pool import SandboxStartError, Worker

    root = os.geteuid() == 0
    forced = os.environ.get(FORCE_ENV, "").strip()
    if forced and forced not in MODES:
        from selfcodealign.errors import UserError

        raise UserError(f"{FORCE_ENV}={forced!r}: expected one of {', '.join(MODES)}")
    missing, reasons = [], []
    candidates = [forced] if forced else list(MODES)
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
        from selfcodealign.sandbox import cgroups

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
            Worker(info, 0).probe()
        except SandboxStartError as e:
            reasons.append(f"{mode}: {e}")
            continue
        return info
    from selfcodealign.errors import UserError

    raise UserError("no sandbox mode works here: " + "; ".join(reasons))
