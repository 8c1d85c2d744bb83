"""The fork server that runs inside the sandbox (one per worker).

The host starts ``python -I -c BOOTSTRAP <config json>`` inside bubblewrap, ``unshare``
or bare rlimits and sends this file's source on stdin (see launch.BOOTSTRAP), then those
of warmup.py (what the server loads before its first job) and child.py (what each forked
child runs), so all three must use the standard library only and must not import
``selfcodealign`` (the package may not be readable by the sandbox uid).

Life of the server:
1. optional setup as root: private read-only mounts (``unshare`` mode), then drop to an
   unprivileged uid with no capabilities, an empty bounding set and no_new_privs;
2. import common modules once, and the heavy libraries it was started for (HEAVY), so
   that every run starts warm (warmup.py); say hello on stdout;
3. for each job on the jobs socket (a timeout, and four descriptors the host made: the
   run's stdout and stderr files, its report pipe, and its payload, which holds the
   compiled program and its rlimits): fork a fresh child that runs it; wait with a
   wall-clock deadline; kill every process the run left behind; wipe the writable
   directory; answer with the wait status, whether the deadline passed, and the duration.

The server does as little as it can between two forks: every page it writes then was
made copy-on-write by the last fork and costs a page fault (1.5-2.5 us each on the
development VM, ~200 of them per run when the server also read outputs, classified and
wrote JSON). Reading outputs and the report and classifying are the host's (process.py,
verdicts.py).

The child is forked, never exec'd, so whatever it patches (modules, environment, cwd)
dies with it. The server is non-dumpable so its same-uid children can neither ptrace it
nor open its file descriptors through /proc; in a PID namespace it is PID 1, which its
children cannot kill or stop.
"""

import _socket
import ctypes
import errno
import json
import marshal
import os
import resource
import select
import signal
import stat
import struct
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_pylibc = ctypes.PyDLL(None, use_errno=True)
_devnull = -1  # the server's /dev/null, for the runs' stdin


def _prctl(option, arg):
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}) failed: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None):
    rc = _libc.mount(
        src.encode() if src else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _private_readonly_root(cfg):
    """`unshare` mode: we are root in fresh mount/pid/net namespaces. Make every mount
    read-only, hide home directories behind empty tmpfs, give /tmp a bounded tmpfs."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = cfg["hide"]
    # Hold the interpreter's directories open: once their parents are hidden, the
    # originals are reachable only through these descriptors.
    keep = [(src, os.open(src, os.O_PATH | os.O_DIRECTORY)) for src in cfg["rebind"]]
    for d in hidden + ["/tmp", "/dev/shm"]:
        if os.path.isdir(d):
            size = cfg["tmp_bytes"] if d in ("/tmp", "/dev/shm") else 1 << 20
            mode = "1777" if d in ("/tmp", "/dev/shm") else "755"
            _mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")
    old_umask = os.umask(0o022)
    for src, fd in keep:
        os.makedirs(src, exist_ok=True)  # inside the fresh tmpfs
        _mount(f"/proc/self/fd/{fd}", src, None, MS_BIND | MS_REC)
        os.close(fd)
    os.umask(old_umask)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    writable = {"/tmp", "/dev/shm", "/proc"}
    for mp in points:
        mp = mp.replace("\\040", " ")
        if mp in writable or mp.startswith("/proc/"):
            continue
        try:
            _mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
        except OSError:
            # Mounts shadowed by a later mount are no longer reachable by path; the
            # remount of the mount on top covers them.
            pass


def _drop_privileges(uid):
    """Root only: no capabilities (permitted, effective, bounding), an unprivileged uid
    (so RLIMIT_NPROC is enforced) and no_new_privs (no setuid binary can give any back)."""
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last_cap + 1):
        try:
            _prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            pass
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears permitted and effective capabilities


def _identity():
    info = {"pid": os.getpid(), "uid": os.getuid(), "euid": os.geteuid()}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "VmRSS"):
                info[key] = value.strip()
    return info


def _status_bytes(*keys):
    """Sizes from /proc/self/status ("VmSize", ...), in bytes."""
    out = dict.fromkeys(keys, 0)
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in out:
                out[key] = int(value.split()[0]) << 10
    return [out[k] for k in keys]


def children_by_parent():
    """Every process's direct children, from one pass over /proc (the benchmarks' process
    figures use it too)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def _descendants(root_pid):
    children = children_by_parent()
    out, stack = [], [root_pid]
    while stack:
        for c in children.get(stack.pop(), ()):
            out.append(c)
            stack.append(c)
    return out


def _kill_all(pid_ns_init):
    """Kill and reap every process the run left, however it detached itself."""
    me = os.getpid()
    for _ in range(1000):
        if pid_ns_init:
            # As PID 1 of the namespace, -1 means every other process in it. Through
            # libc, not os.kill: after every run this usually fails, and an exception
            # would be objects made (and pages written) between two forks.
            if _libc.kill(-1, signal.SIGKILL) != 0:
                err = ctypes.get_errno()
                if err == errno.ESRCH:
                    # No other process in the namespace, not even a zombie (the kernel
                    # counts every task not yet reaped), so nothing is left to reap, and
                    # nothing can start one but us.
                    return
                raise OSError(err, os.strerror(err))
        else:
            # We are a child subreaper: setsid'd and double-forked processes are
            # reparented to us, so they are all our descendants.
            for pid in _descendants(me):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reaped = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
            reaped = True
        if not reaped:
            time.sleep(0.001)


def _wipe(path, keep=()):
    """Empty a directory that hostile code may have made unreadable or immutable-looking
    (but for the entries named in ``keep``: read-only binds the host made)."""
    try:
        entries = os.listdir(path)
    except PermissionError:
        os.chmod(path, 0o700)
        entries = os.listdir(path)
    except FileNotFoundError:
        return
    for name in entries:
        if name in keep:
            continue
        p = os.path.join(path, name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                os.chmod(p, 0o700)
            except OSError:
                pass
            _wipe(p)
            os.rmdir(p)
        else:
            os.unlink(p)


IPC_RMID = 0
SYSV_IPC = ("shm", "sem", "msg")


class _LeftBehind(Exception):
    """Something a run left that the server could not remove: it must not serve again."""


class _PrivateIpc:
    """What a run can leave in the server's private IPC and mount namespaces besides
    /tmp (namespace modes only): files in the private /dev/shm (POSIX shared memory is
    a file there) and SysV IPC objects (shared memory segments, semaphore sets, message
    queues). POSIX message queues need none: RLIMIT_MSGQUEUE is 0, so a run cannot make
    one. Each /proc/sysvipc file is read through a descriptor held open, one pread per
    run: with nothing in the namespace it holds only its header line, so a read of one
    byte more than the header says whether anything is there."""

    def __init__(self):
        # bwrap always mounts a private /dev/shm; `unshare` mode does where it exists.
        self.shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.fds = []
        for kind in SYSV_IPC:
            fd = os.open(f"/proc/sysvipc/{kind}", os.O_RDONLY)
            header = os.pread(fd, 4096, 0)
            self.fds.append((kind, fd, header.index(b"\n") + 1))

    def clean(self):
        """After a run, once every process of it is gone."""
        if self.shm and os.listdir(self.shm):
            _wipe(self.shm)
        for kind, fd, header in self.fds:
            if len(os.pread(fd, header + 1, 0)) > header:
                self._remove_all(kind, fd, header)

    @staticmethod
    def _remove_all(kind, fd, header):
        # The run's uid is the server's, and the kernel lets an object's creator remove
        # it whatever its mode or owner were changed to; a run cannot make an object of
        # another creator (no capabilities, no setuid). With every process of the run
        # gone, nothing is attached, so IPC_RMID frees each one at once.
        with open(f"/proc/sysvipc/{kind}", "rb") as f:
            ids = [int(line.split()[1]) for line in f.read().splitlines()[1:] if line.strip()]
        for ipc_id in ids:
            if kind == "shm":
                rc = _libc.shmctl(ipc_id, IPC_RMID, None)
            elif kind == "sem":
                rc = _libc.semctl(ipc_id, 0, IPC_RMID)
            else:
                rc = _libc.msgctl(ipc_id, IPC_RMID, None)
            if rc != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.EIDRM):
                err = ctypes.get_errno()
                raise _LeftBehind(f"SysV {kind} {ipc_id}: {os.strerror(err)}")
        if len(os.pread(fd, header + 1, 0)) > header:
            raise _LeftBehind(f"SysV {kind} objects left after removal")


def _child_starter(rundir):
    """What the forked child runs, with every call it makes bound here, in the server:
    a module attribute looked up in the child writes the lookup cache and so costs a
    copy-on-write fault, in every run."""
    setsid, dup2, closerange, setrlimit, chdir = (
        os.setsid, os.dup2, os.closerange, resource.setrlimit, os.chdir
    )
    write, _exit, devnull = os.write, os._exit, _devnull
    run = sys.modules["__sandbox_runner__"].run

    def start(fds, limits, prepared, main, nonce):
        """Take the run's descriptors, isolate further, then run the program
        (unmarshalled and given its __main__ by the server). Never returns."""
        try:
            setsid()
            dup2(devnull, 0)
            dup2(fds[0], 1)
            dup2(fds[1], 2)
            dup2(fds[2], 3)
            closerange(4, 65536)
            # All of them, every run, in the child: a run shares the server's uid, so it
            # can change the server's own limits (prlimit); limits set once in the server
            # could reach the runs after it.
            for which, value in limits:
                setrlimit(which, value)
            chdir(rundir)
        except BaseException as e:  # noqa: BLE001 - report any setup failure as an error
            try:
                write(3, f"SETUP {type(e).__name__}: {e}".encode()[:2000])
            finally:
                _exit(121)
        run(prepared, main, nonce)

    return start


def _loop_bindings(sock, rundir):
    """What the job loop calls, bound once to its locals: a module attribute looked up
    between two forks writes the lookup cache and so costs a copy-on-write fault."""
    # libc's fork, not os.fork: the server is single-threaded, and CPython's after-fork
    # hooks of the preloaded modules (threading, random, logging) touch enough of the
    # heap to double the cost of a run through copy-on-write faults.
    # Through PyDLL, which keeps the interpreter lock: the child does not take it back
    # (writing the lock's state) on its way out of the call.
    return (
        sock.recvmsg, sock.send, _socket.CMSG_SPACE(8 * 4),
        _socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.Struct("4i").unpack, _socket.MSG_CTRUNC,
        _pylibc.fork, marshal.loads, os.lseek, sys.modules, sys.path,
        sys.modules["__sandbox_runner__"].make_main, _child_starter(rundir),
        os.mkdir, os.rmdir, os.listdir, os.close, os.pread, os.pidfd_open, os.waitpid, os.kill,
        select.select, time.monotonic_ns, resource.RLIMIT_AS, resource.RLIMIT_DATA,
        *_status_bytes("VmSize", "VmData"),
    )


def _serve(sock, cfg, base, ipc):
    """Run jobs until the host closes the socket. This loop is all the server does
    between two forks, and each page it writes then costs a fault, so the usual path is
    one function with what it calls bound to locals; anything unusual (processes left
    behind, files left, a bad job) goes to the general helpers."""
    rundir = os.path.join(base, "run")
    pid_ns_init = cfg["pid_ns_init"]
    bound = _loop_bindings(sock, rundir)
    (recvmsg, send, anc_size, sol_socket, scm_rights, unpack_4i, ctrunc, fork, loads, lseek,
     modules, path, make_main, start_child, mkdir, rmdir, listdir, close, pread, pidfd_open,
     waitpid, kill, wait_for, now, rlimit_as, rlimit_data, own_as, own_data) = bound
    sys.modules["__sandbox_runner__"].RUNDIR = os.path.join(os.path.realpath(base), "run")
    keep = frozenset(cfg.get("keep_in_workdir", ()))
    n_keep = len(keep)
    while True:
        fds = ()
        try:
            msg, anc, flags, _ = recvmsg(64, anc_size)
            fds = []
            for level, kind, data in anc:
                if level == sol_socket and kind == scm_rights:
                    fds += unpack_4i(data) if len(data) == 16 else _ints(data)
            if not msg:
                return _close_all(fds)
            if len(fds) != 4 or flags & ctrunc:
                raise ValueError("a job needs exactly four descriptors")
            timeout = float(msg)
            # Unmarshalled here, not in the child: the objects it makes land on pages
            # this process owns alone once the last run has ended (a cheap fault each),
            # where in the child each page costs a copy (~5 us on the development VM).
            payload = fds[3]
            limits, memory, prepared, code, tests, nonce = loads(pread(payload, lseek(payload, 0, 2), 0))
            # memory_mb on top of what this server has mapped already: the preloaded
            # modules are the server's, not the run's.
            as_, data = memory + own_as, memory + own_data
            limits += ((rlimit_as, (as_, as_)), (rlimit_data, (data, data)))
            main = make_main(code, tests)
            try:
                mkdir(rundir, 0o700)
            except FileExistsError:  # normally emptied after each run; not if that failed
                _wipe(base, keep)
                mkdir(rundir, 0o700)
            modules["__main__"] = main
            path.insert(0, rundir)  # only while forking: this process imports nothing
            start = now()
            pid = fork()
            if pid == 0:
                try:
                    start_child(fds, limits, prepared, main, nonce)
                finally:
                    os._exit(122)
            del path[0]
            for fd in fds:  # the run's and the host's now: no end of file while we held one
                close(fd)
            fds = ()
            if pid < 0:
                raise OSError(ctypes.get_errno(), "fork failed")
            pidfd = pidfd_open(pid)
            timed_out = not wait_for((pidfd,), (), (), timeout)[0]
            if timed_out:
                kill(pid, 9)
            status = waitpid(pid, 0)[1]
            duration = now() - start
            # Dropped only now: freeing them while the run lived would copy their pages.
            limits = prepared = main = code = tests = None
            close(pidfd)
            _kill_all(pid_ns_init)
            try:
                rmdir(rundir)
                left = len(listdir(base)) > n_keep
            except OSError:
                left = True
            if left:
                _wipe(base, keep)
            if ipc is not None:
                ipc.clean()
            answer = b"%d %d %d" % (status, timed_out, duration // 1000)
        except Exception as e:  # noqa: BLE001 - the server itself must keep answering
            answer = _job_failed(e, fds, pid_ns_init, base, keep, ipc, send)
        send(answer)


def _job_failed(error, fds, pid_ns_init, base, keep, ipc, send):
    """A job that failed in the server itself: clean up what it may have left and return
    the answer ("E ..."). If /dev/shm or SysV IPC cannot be emptied, answer "X ..." here
    and end the server: the next run would see what this one left, so the host starts a
    fresh server in fresh namespaces (nothing checks them before a run)."""
    _close_all(fds)
    _kill_all(pid_ns_init)
    try:
        _wipe(base, keep)
    except OSError:
        pass
    unclean = None
    if ipc is not None:
        try:
            ipc.clean()
        except Exception as left_behind:  # noqa: BLE001
            unclean = left_behind
    answer = ("X" if unclean else "E") + f" sandbox server: {type(error).__name__}: {error}"
    answer = answer.encode("utf-8", "replace")[:4000]
    if unclean is not None:
        send(answer)
        raise SystemExit(f"sandbox server: {unclean}")
    return answer


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _ints(data):
    return memoryview(data[: len(data) - len(data) % 4]).cast("i").tolist()


def _serve_runs():
    """What every run starts with that the server can set once, for all of them to
    inherit (set in each child, it would cost copy-on-write faults there). None of it
    can be changed in the server by a run."""
    sys.argv = ["main.py"]
    sys.path[:] = [p for p in sys.path if p and p != "."]  # each child adds its run dir
    # Python ignores SIGXFSZ; restoring the default turns "output or file too large"
    # into a clear kill instead of an OSError the program might swallow. The server
    # itself writes no files (RLIMIT_FSIZE does not apply to its pipes).
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def _next_source():
    return sys.stdin.buffer.read(int(sys.stdin.buffer.readline())).decode("utf-8")


def _module(name, filename, source):
    """A module made from source the host sent (nothing of ours is on a path in here)."""
    import types

    module = types.ModuleType(name)
    exec(compile(source, filename, "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def main():
    cfg = json.loads(sys.argv[1])
    # warmup.py's and child.py's sources follow this file's on stdin
    # (launch.server_preamble), read through the same buffered reader that read this one.
    warmup = _module("__sandbox_warmup__", "<sandbox-warmup>", _next_source())
    runner_source = _next_source()
    # Protocol channels move to high fds; 0-2 become /dev/null so that no run inherits them.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    global _devnull
    devnull = _devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    if cfg.get("setup_mounts"):
        _private_readonly_root(cfg)
    if cfg.get("drop_to_uid") is not None:
        _drop_privileges(cfg["drop_to_uid"])
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    if not cfg["pid_ns_init"]:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if cfg.get("die_with_parent"):
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if cfg["pid_ns_init"] and os.getpid() != 1:
        raise SystemExit("expected to be PID 1 of a fresh PID namespace")
    base = cfg["workdir"]
    os.makedirs(base, exist_ok=True)
    rundir = os.path.join(base, "run")
    # Every run gets the same fresh directory at the same path, so the environment can be
    # set once here and inherited as is (changing it in each child costs copy-on-write).
    os.environ.clear()
    os.environ.update(
        {
            "HOME": rundir,
            "TMPDIR": rundir,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            **warmup.RUN_ENV,
        }
    )
    _module("__sandbox_runner__", "<sandbox-runner>", runner_source)
    warmup.preload(cfg.get("heavy", []), cfg.get("preload", []))
    warmup.warm_heavy(cfg.get("heavy", []))
    warmup.warm_up()
    # Objects that exist now are shared copy-on-write with every child; keeping them
    # out of the collector's reach stops each child's first GC pass from touching
    # (and so copying) the whole heap.
    _serve_runs()
    import gc

    gc.collect()
    gc.freeze()
    # Without private namespaces (rlimits mode) /dev/shm and SysV IPC are the host's:
    # not ours to empty (docs/sandbox.md).
    ipc = _PrivateIpc() if cfg.get("private_ipc") else None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, cfg["jobs_fd"])
    hello = {"hello": _identity(), "workdir": base}
    proto_out.write(json.dumps(hello).encode() + b"\n")
    proto_out.flush()
    proto_out.close()
    proto_in.close()
    # Startup errors went to the host on stderr; from now on nothing may block on it.
    os.dup2(devnull, 2)
    # After the hello: what the rehearsal prints goes to /dev/null, not to the host.
    warmup.rehearse(base)
    _wipe(base, frozenset(cfg.get("keep_in_workdir", ())))
    gc.collect()
    gc.freeze()
    _serve(sock, cfg, base, ipc)


if __name__ == "__main__":
    main()
