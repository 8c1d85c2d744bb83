"""The fork server that runs inside the sandbox (one per worker).

The host starts ``python -I -c BOOTSTRAP <config json>`` inside bubblewrap, ``unshare``
or bare rlimits and sends this file's source on stdin (see modes.BOOTSTRAP), then that of
child.py (what each forked child runs), so both must use the standard library only
and must not import ``selfcodealign`` (the package may not be readable by the sandbox
uid).

Life of the server:
1. optional setup as root: private read-only mounts (``unshare`` mode), then drop to an
   unprivileged uid with no capabilities, an empty bounding set and no_new_privs;
2. import common modules once, and the heavy libraries it was started for (HEAVY), so
   that every run starts warm; say hello on stdout;
3. for each job on the jobs socket (a timeout, and four descriptors the host made: the
   run's stdout and stderr files, its report pipe, and its payload, which holds the
   compiled program and its rlimits): fork a fresh child that runs it; wait with a
   wall-clock deadline; kill every process the run left behind; wipe the writable
   directory; answer with the wait status, whether the deadline passed, and the duration.

The server does as little as it can between two forks: every page it writes then was
made copy-on-write by the last fork and costs a page fault (1.5-2.5 us each on the
development VM, ~200 of them per run when the server also read outputs, classified and
wrote JSON). Reading outputs and the report and classifying are the host's (pool.py).

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

# Modules typical generated programs and their tests import; importing them once here
# makes every forked run start with them in memory. Each one also makes every fork a
# little dearer (more pages and mappings to copy and tear down), so rarely used ones are
# left out: of the reproduction's 2,353 passing examples, 0.3% import hashlib, 0.4% csv,
# 0.2% unittest and 0.1% dataclasses (unittest and dataclasses together cost every run
# ~60-100 us on the development VM; importing them in a run costs 17 and 12 ms).
PRELOAD = (
    "abc bisect collections collections.abc contextlib copy datetime enum functools heapq "
    "itertools json math operator random re string sys time traceback types typing"
).split()

# Heavy libraries, each with the submodules that programs import most. Of the 3,533
# generated programs in data/responses-real-sample.jsonl.gz, 30% import numpy, 4.8%
# scipy, 4.6% sympy, 2.0% pandas, 1.6% sklearn, 1.3% matplotlib, 0.3% requests, 0.2%
# statsmodels and 0.1% torch; a run that imports them itself pays 0.1 s (numpy) to
# 1.5 s (statsmodels, torch) of CPU. They are not in every server: a run on a server
# holding all but torch costs ~19 ms of CPU against ~2 on the plain one (fork copies the
# page tables of ~250 MiB of heap, exit tears them down), so the host sends each program
# to the cheapest server that holds what it names (pool.FLAVORS). One that is not
# installed is skipped.
HEAVY = {
    "numpy": ("numpy", "numpy.random"),
    "scipy": (
        "scipy", "scipy.stats", "scipy.special", "scipy.sparse", "scipy.integrate",
        "scipy.optimize", "scipy.ndimage", "scipy.linalg", "scipy.cluster",
    ),
    "sympy": ("sympy",),
    "pandas": ("pandas",),
    "sklearn": (
        "sklearn", "sklearn.linear_model", "sklearn.model_selection", "sklearn.metrics",
        "sklearn.preprocessing", "sklearn.datasets", "sklearn.ensemble", "sklearn.pipeline",
    ),
    "matplotlib": ("matplotlib", "matplotlib.pyplot"),
    "statsmodels": ("statsmodels.api",),
    "requests": ("requests",),
    "torch": ("torch",),
}

# Run once in a server after its imports: what a program's first calls would otherwise
# import lazily or set up in every run (sympy's solvers and printers: a typical sympy
# program drops from ~100 to ~10 ms; matplotlib's fonts; pandas' formatters). Nothing
# here leaves state a program could see: caches are cleared, figures closed, and the
# global random generators are not drawn from.
WARM = {
    "numpy": (
        "import numpy as np\n"
        "a = np.arange(6.0).reshape(2, 3)\n"
        "str(a); repr(a); a.tolist(); a.mean(axis=0); a.std(); a @ a.T; np.sort(a)\n"
        "np.linalg.norm(a); np.linalg.inv(np.eye(2)); np.allclose(a, a); np.array_equal(a, a)\n"
        "np.unique([3, 1, 1]); np.concatenate([a, a]); np.where(a > 1); np.random.default_rng(0)\n"
    ),
    "scipy": (
        "import numpy as np\n"
        "from scipy import integrate, linalg, optimize, special, stats\n"
        "stats.norm.cdf(0.5); stats.norm.pdf(0.5); stats.ttest_ind([1, 2, 3], [2, 3, 5])\n"
        "stats.pearsonr([1, 2, 3], [2, 3, 5]); special.gamma(3.5); special.comb(5, 2)\n"
        "optimize.minimize(lambda x: (x[0] - 1) ** 2, [0.0]); integrate.quad(lambda x: x, 0, 1)\n"
        "linalg.det(np.eye(2))\n"
    ),
    "sympy": (
        "import sympy\n"
        "x = sympy.Symbol('x')\n"
        "sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2); sympy.solve(x ** 2 - 1, x)\n"
        "sympy.integrate(x ** 2, x); sympy.diff(sympy.exp(x), x); sympy.factor(x ** 2 - 1)\n"
        "sympy.expand((x + 1) ** 2); str(sympy.Matrix([[1, 2], [3, 4]]).inv())\n"
        "sympy.latex(x ** 2); sympy.pretty(x); sympy.series(sympy.sin(x), x)\n"
        "sympy.limit(sympy.sin(x) / x, x, 0); sympy.isprime(7); sympy.Rational(1, 3) + 1\n"
        "sympy.core.cache.clear_cache()\n"
    ),
    "pandas": (
        "import pandas as pd\n"
        "df = pd.DataFrame({'a': [1, 2, 2], 'b': [0.5, 1.5, 2.5], 'c': ['x', 'y', 'z']})\n"
        "str(df); repr(df['a']); df.describe(); df.groupby('a').sum(); df.sort_values('b')\n"
        "df.merge(df, on='a'); df.to_dict(); df.to_csv(); pd.to_datetime(['2020-01-01'])\n"
        "df.isna().sum(); df.apply(lambda r: r['a'], axis=1)\n"
        "pd.testing.assert_frame_equal(df, df.copy())\n"
    ),
    "sklearn": (
        "import numpy as np\n"
        "from sklearn.linear_model import LinearRegression, LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, mean_squared_error\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2\n"
        "LinearRegression().fit(X, y).predict(X); LogisticRegression().fit(X, y).score(X, y)\n"
        "train_test_split(X, y, test_size=0.3, random_state=0); StandardScaler().fit_transform(X)\n"
        "accuracy_score(y, y); mean_squared_error(y, y)\n"
    ),
    "matplotlib": (
        "import io\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4], label='a'); ax.set_title('t')\n"
        "ax.legend(); fig.savefig(io.BytesIO(), format='png'); plt.close('all')\n"
    ),
    "statsmodels": (
        "import numpy as np\n"
        "import statsmodels.api as sm\n"
        "X = sm.add_constant(np.arange(10.0))\n"
        "sm.OLS(np.arange(10.0) * 2 + 1, X).fit().summary()\n"
    ),
    "torch": (
        "import torch\n"
        "t = torch.arange(6.0).reshape(2, 3)\n"
        "str(t); (t @ t.T).sum().item(); torch.nn.Linear(3, 1)(t); torch.tensor([1, 2]).tolist()\n"
    ),
}

# Every run's environment (set before anything is imported, so the same with or without
# the heavy modules preloaded). A server must stay single-threaded to fork safely, and a
# run gets one core: BLAS and OpenMP pools of one thread (OpenBLAS otherwise starts one
# thread per core at import), pyarrow's jemalloc (imported by pandas) without its
# background thread; matplotlib draws without a display.
RUN_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "MPLBACKEND": "Agg",
}

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


def _rehearse(workdir, keep=()):
    """Go through the runner's own path here, in the server, a few dozen times, for a
    passing and a failing program: CPython specialises the bytecode it runs often,
    fills its attribute lookup cache and compiles traceback formatting lazily, and
    every run forked after this finds all that done instead of writing (and so
    copying) it again."""
    import linecache

    runner = sys.modules["__sandbox_runner__"]

    class Ended(BaseException):
        pass

    def no_exit(status):
        raise Ended

    real = runner._write, runner._exit
    runner._write, runner._exit = (lambda fd, data: len(data)), no_exit
    # A failing run writes main.py into its directory (for the traceback's source
    # lines): here that is the private working directory, emptied below.
    os.chdir(workdir)
    runner.RUNDIR = os.getcwd()
    try:
        for tests in ("assert f(2) == 3", "assert f(2) == 4"):
            for _ in range(40):
                code = "def f(x):\n    return x + 1\n"
                main = runner.make_main(code, tests)
                try:
                    runner.run(runner.prepare(code, tests), main, "0")
                except Ended:
                    pass
    finally:
        runner._write, runner._exit = real
        linecache.clearcache()  # the rehearsal's "main.py" must not show in a run
        _wipe(workdir, keep)




def _serve(sock, cfg, base, ipc):
    """Run jobs until the host closes the socket. This loop is all the server does
    between two forks, and each page it writes then costs a fault, so the usual path is
    one function with what it calls bound to locals; anything unusual (processes left
    behind, files left, a bad job) goes to the general helpers."""
    rundir = os.path.join(base, "run")
    pid_ns_init = cfg["pid_ns_init"]
    recvmsg, send = sock.recvmsg, sock.send
    anc_size = _socket.CMSG_SPACE(8 * 4)
    sol_socket, scm_rights = _socket.SOL_SOCKET, _socket.SCM_RIGHTS
    unpack_4i = struct.Struct("4i").unpack
    ctrunc = _socket.MSG_CTRUNC
    # libc's fork, not os.fork: the server is single-threaded, and CPython's after-fork
    # hooks of the preloaded modules (threading, random, logging) touch enough of the
    # heap to double the cost of a run through copy-on-write faults.
    # Through PyDLL, which keeps the interpreter lock: the child does not take it back
    # (writing the lock's state) on its way out of the call.
    fork = _pylibc.fork
    loads, lseek = marshal.loads, os.lseek
    modules, path = sys.modules, sys.path
    make_main = sys.modules["__sandbox_runner__"].make_main
    start_child = _child_starter(rundir)
    sys.modules["__sandbox_runner__"].RUNDIR = os.path.join(os.path.realpath(base), "run")
    mkdir, rmdir, listdir, close, pread = os.mkdir, os.rmdir, os.listdir, os.close, os.pread
    pidfd_open, waitpid, kill = os.pidfd_open, os.waitpid, os.kill
    wait_for = select.select
    now = time.monotonic_ns
    rlimit_as, rlimit_data = resource.RLIMIT_AS, resource.RLIMIT_DATA
    own_as, own_data = _status_bytes("VmSize", "VmData")
    keep = frozenset(cfg.get("keep_in_workdir", ()))
    n_keep = len(keep)
    while True:
        fds = ()
        unclean = None
        try:
            msg, anc, flags, _ = recvmsg(64, anc_size)
            fds = []
            for level, kind, data in anc:
                if level == sol_socket and kind == scm_rights:
                    fds += unpack_4i(data) if len(data) == 16 else _ints(data)
            if not msg:
                for fd in fds:
                    close(fd)
                return
            if len(fds) != 4 or flags & ctrunc:
                raise ValueError("a job needs exactly four descriptors")
            timeout = float(msg)
            # Unmarshalled here, not in the child: the objects it makes land on pages
            # this process owns alone once the last run has ended (a cheap fault each),
            # where in the child each page costs a copy (~5 us on the development VM).
            payload = fds[3]
            limits, memory, prepared, code, tests, nonce = loads(
                pread(payload, lseek(payload, 0, 2), 0)
            )
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
            for fd in fds:
                try:
                    close(fd)
                except OSError:
                    pass
            _kill_all(pid_ns_init)
            try:
                _wipe(base, keep)
            except OSError:
                pass
            if ipc is not None:
                # Nothing checks /dev/shm or SysV IPC before a run: if they cannot be
                # emptied now, this server must not take another one.
                try:
                    ipc.clean()
                except Exception as left_behind:  # noqa: BLE001
                    unclean = left_behind
            # "E": this run failed in the server; "X": and the server ends after it.
            answer = ("X" if unclean else "E") + f" sandbox server: {type(e).__name__}: {e}"
            answer = answer.encode("utf-8", "replace")[:4000]
        send(answer)
        if unclean is not None:
            # The next run would see what this one left: end here, and the host starts
            # a fresh server in fresh namespaces.
            raise SystemExit(f"sandbox server: {unclean}")


def _ints(data):
    return memoryview(data[: len(data) - len(data) % 4]).cast("i").tolist()


def _warm_up():
    """Pay once, here, for what CPython initialises lazily on first use (the AST types,
    the compiler, traceback formatting): otherwise every forked run pays it again."""
    import ast
    import io
    import traceback

    src = (
        "import math\n"
        "def f(x: int) -> list:\n    return [i * i for i in range(x)]\n"
        "class A:\n    def __init__(self):\n        self.v = {k: v for k, v in [(1, 2)]}\n"
        "assert f(3) == [0, 1, 4], f'{A().v}'\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    pass\n"
    )
    tree = ast.parse(src, "<warm>")
    exec(compile(tree, "<warm>", "exec"), {"__name__": "__warm__"})
    try:
        raise ValueError("warm")
    except ValueError:
        traceback.print_exc(file=io.StringIO())


def _single_threaded(after):
    # libc's fork copies only the calling thread; another one could hold a lock that
    # every run would then wait on until its deadline.
    if len(os.listdir("/proc/self/task")) > 1:
        raise SystemExit(f"sandbox server: {after} started a thread")


def _warm_heavy(groups):
    """WARM for each heavy group this server holds (a group not installed fails here
    and is skipped)."""
    import warnings

    for group in groups:
        if group not in WARM:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(WARM[group], f"<warm {group}>", "exec"), {"__name__": "__warm__"})
            except Exception:
                pass
        _single_threaded(f"warming {group}")


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


def main():
    cfg = json.loads(sys.argv[1])
    # child.py's source follows this file's on stdin (modes.server_preamble), read
    # through the same buffered reader that read this one.
    runner_source = sys.stdin.buffer.read(int(sys.stdin.buffer.readline())).decode("utf-8")
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
            **RUN_ENV,
        }
    )
    import types

    runner = types.ModuleType("__sandbox_runner__")
    exec(compile(runner_source, "<sandbox-runner>", "exec"), runner.__dict__)
    sys.modules["__sandbox_runner__"] = runner
    heavy = [m for group in cfg.get("heavy", []) for m in HEAVY[group]]
    for name in PRELOAD + heavy + cfg.get("preload", []):
        try:
            __import__(name)
        except Exception:
            pass
        _single_threaded(f"importing {name}")
    _warm_heavy(cfg.get("heavy", []))
    _warm_up()
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
    _rehearse(base, frozenset(cfg.get("keep_in_workdir", ())))
    gc.collect()
    gc.freeze()
    _serve(sock, cfg, base, ipc)


if __name__ == "__main__":
    main()
