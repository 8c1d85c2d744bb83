"""Host side: sandbox servers (one per worker) and the pool that keeps them all busy.

A run's descriptors are made here, not in the server: its stdout and stderr files, its
report pipe and its payload (rlimits, the program compiled by compiling.py, a fresh
nonce). They go to the server over a socket with the job; the server forks the run,
waits, cleans up and answers with the wait status. Reading the outputs and the report
and classifying happen here, where no fork makes memory copy-on-write (fork_server.py says
why that matters).

Heavy libraries (numpy, scipy, ...) are preloaded only in servers started for them: a
fork costs more the more the server holds. The pool has one lane per worker; a lane runs
one program at a time, on one of its servers, one per flavor (FLAVORS), started when a
program first needs it. Each program goes to the cheapest flavor that holds every heavy
library its source names.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import logging
import marshal
import math
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from selfcodealign.records import Verdict
from selfcodealign.sandbox.cgroups import SERVER_ALLOWANCE
from selfcodealign.sandbox.compiling import CompileFailed, compile_program
from selfcodealign.sandbox.modes import (
    BIND_NOW,
    PROCESSES,
    SandboxInfo,
    build_launch,
    server_preamble,
    user_process_count,
)
from selfcodealign.sandbox.fork_server import HEAVY

if TYPE_CHECKING:
    from selfcodealign.sandbox import Program

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # a cold start on a loaded 2-core machine can take seconds
ANSWER_GRACE = 15.0  # beyond a program's own timeout: kill, reap, wipe
MAX_LINE = 1 << 20
CLOSE_GRACE = 2.0  # for a server to finish on its own (then its CPU time is ours)
PIPELINE = 2  # runs queued per server: the next one starts while we read the last
REPORT_CAP = 8192  # what the run's report pipe may say; the runner writes < 4 KiB


_SLOTS = itertools.count()

# The servers a lane can start, cheapest first (groups of fork_server.HEAVY). Of the real
# sample's programs 59% name none, 24% numpy alone, 4.5% sympy alone and 4.5% scipy
# (with or without numpy); pandas, sklearn and matplotlib each ~1.5%, mostly alone or
# with numpy. A run costs ~2 ms of CPU on the plain server, ~3 on numpy's, ~4 on
# sympy's, ~5-6 on scipy's, pandas' or matplotlib's, ~13 on sklearn's and ~17 on the one
# with all but torch (docs/sandbox.md): all far below what importing them costs a run.
# torch (0.1%) would make that last one dearer still: it has its own (~9 ms).
FLAVORS: tuple[tuple[str, ...], ...] = (
    (),
    ("numpy",),
    ("requests",),
    ("sympy",),
    ("numpy", "scipy"),
    ("numpy", "matplotlib"),
    ("numpy", "pandas"),
    ("numpy", "scipy", "sklearn"),
    ("numpy", "torch"),
    tuple(g for g in HEAVY if g != "torch"),
)
_NAMES = re.compile(r"\b(" + "|".join(HEAVY) + r")\b")


@functools.lru_cache(maxsize=None)
def installed_heavy() -> tuple[str, ...]:
    """The groups of fork_server.HEAVY importable here (the servers run this interpreter)."""
    return tuple(g for g in HEAVY if importlib.util.find_spec(g) is not None)


def flavors() -> list[tuple[str, ...]]:
    """FLAVORS less what is not installed, without repeats."""
    have, out = set(installed_heavy()), []
    for f in FLAVORS:
        f = tuple(g for g in f if g in have)
        if f not in out:
            out.append(f)
    return out


def heavy_names(program: Program) -> set[str]:
    """The heavy libraries a program's source names. Any mention counts (a comment, a
    string, __import__): a server holding one too many costs a few ms, one too few the
    whole import."""
    return set(_NAMES.findall(program.code)) | set(_NAMES.findall(program.tests))


class SandboxStartError(RuntimeError):
    pass


@dataclass
class _Run:
    """A program sent to a server: what the host keeps until the answer comes."""

    index: int
    program: Program
    prepared: object  # the compiled program (None: too large, compiled in the run)
    nonce: str = ""
    out: int = -1  # the run's stdout and stderr files, and its report pipe's read end
    err: int = -1
    report: int = -1
    started: float = 0.0  # when it became the server's oldest run (its answer's clock)

    def close(self) -> None:
        for fd in (self.out, self.err, self.report):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.out = self.err = self.report = -1


class Worker:
    """One sandbox server process and the protocol to it."""

    def __init__(
        self, info: SandboxInfo, index: int, heavy: tuple[str, ...] = (), flavor: int = 0
    ) -> None:
        self.info = info
        self.index = index
        self.heavy = heavy  # the groups of fork_server.HEAVY it preloads
        self.flavor = flavor  # its index in the pool's flavors
        # Unique among this process's live servers (pools may run side by side): it
        # picks the server's uid and cgroup.
        self.slot = next(_SLOTS) % 256
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._buf = b""
        self._workdir: str | None = None
        self._cgroup = None
        self._memory_limit = 0
        self._footprint = 0  # the server's resident memory, from its hello
        self._cfg: dict = {}
        self.inflight: deque[_Run] = deque()  # sent (or waiting for the hello), oldest first
        self.ready = False  # its hello has been read
        self.hello_deadline = 0.0  # its answers' deadlines follow from inflight
        self.oom_seen = 0  # the cgroup's OOM-kill count, all of it accounted for

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self.launch()
        self.greet(self._read_line(START_TIMEOUT))

    def launch(self) -> None:
        """Start the server process; its hello line comes later (`greet`). Jobs may be
        sent at once: they wait in the socket."""
        nproc_base = 0
        if self.info.mode == "rlimits" and not self.info.root:
            nproc_base = user_process_count()
        launch = build_launch(self.info.mode, self.slot, nproc_base, self.heavy)
        self._workdir = launch.workdir_host
        self._buf = b""
        self.ready = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = json.loads(launch.argv[-1])
        cfg["jobs_fd"] = theirs.fileno()
        self._cfg = cfg
        argv = launch.argv[:-1] + [json.dumps(cfg)]
        if self.info.cgroups:
            from selfcodealign.sandbox import cgroups

            self._cgroup = cgroups.create(
                f"selfcodealign-{os.getpid()}-{self.slot}",
                pids_max=PROCESSES + 16,
                memory_bytes=(1024 << 20) + cgroups.SERVER_ALLOWANCE,
            )
            if self._cgroup is None:
                ours.close()
                theirs.close()
                raise SandboxStartError("cannot create the memory/pids cgroups")
            self._memory_limit = 0
            # The shell joins the cgroups before it becomes the sandbox (exec keeps the
            # pid), so every process of the sandbox is born inside them.
            joins = " && ".join(f"echo $$ > {f}" for f in self._cgroup.procs_files)
            argv = ["/bin/sh", "-c", joins + ' && exec "$@"', "sh", *argv]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **dict([BIND_NOW])},
                start_new_session=True,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
            )
        except OSError as e:
            ours.close()
            raise SandboxStartError(f"cannot start {launch.argv[0]}: {e.strerror}") from None
        finally:
            theirs.close()
        self.sock = ours
        try:
            self.proc.stdin.write(server_preamble())
            self.proc.stdin.close()
        except OSError:
            pass  # it died at once: its stderr says why, in greet()
        self.oom_seen = self._cgroup.oom_kills() if self._cgroup is not None else 0

    def greet(self, line: bytes | None) -> None:
        """Check the server's hello line (None: it never came)."""
        if line is None:
            err = self._stderr_after_exit()
            self.close()
            raise SandboxStartError(err or "sandbox server did not start")
        try:
            hello = json.loads(line)["hello"]
        except (ValueError, TypeError, KeyError):
            self.close()
            raise SandboxStartError("sandbox server sent a malformed hello") from None
        problem = self._privilege_problem(hello)
        if problem:
            self.close()
            raise SandboxStartError(problem)
        self.identity = hello
        try:
            self._footprint = int(hello.get("VmRSS", "0 kB").split()[0]) << 10
        except ValueError:
            self._footprint = 0
        self.ready = True

    def _privilege_problem(self, hello: dict) -> str | None:
        if (self.info.root or os.geteuid() == 0) and self.info.mode != "rlimits":
            if hello.get("uid") == 0 or hello.get("euid") == 0:
                return "server still runs as uid 0"
            for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
                if int(hello.get(key, "1"), 16):
                    return f"server kept capabilities ({key}={hello.get(key)})"
        if hello.get("NoNewPrivs") != "1":
            return "no_new_privs is not set"
        return None

    def _stderr_after_exit(self) -> str:
        assert self.proc is not None
        try:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return ""
        text = (err or b"").decode("utf-8", "replace").strip()
        return text.splitlines()[-1] if text else ""

    def close(self, graceful: bool = False) -> None:
        """Stop the server. `graceful`: let it finish (it exits at the end of its input),
        so that it is reaped by its parent and its CPU time adds up to ours. Runs still
        in flight stay in `inflight` (their descriptors closed) for the caller."""
        proc, self.proc = self.proc, None
        sock, self.sock = self.sock, None
        self.ready = False
        for run in self.inflight:
            run.close()
        if sock is not None:
            sock.close()
        if proc is not None:
            if graceful:
                try:
                    proc.wait(timeout=CLOSE_GRACE)
                except subprocess.TimeoutExpired:
                    pass
            try:
                # The server leads its own session; killing the group takes bwrap or
                # unshare with it, and the PID namespace dies with its PID 1.
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("sandbox server %d did not exit after SIGKILL", proc.pid)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

    def probe(self) -> None:
        """Start, run one tiny program, stop: proves this mode works here."""
        from selfcodealign.sandbox import Program

        try:
            self.start()
            v = self.run(Program(id="probe", code="import sys\nprint(sys.version_info[0])"))
        finally:
            self.close(graceful=True)
        if v.status != "passed" or v.stdout.strip() != "3":
            raise SandboxStartError(f"probe program gave {v.status}: {v.detail or v.stderr[-300:]}")

    # -- protocol -------------------------------------------------------------------
    def _read_line(self, timeout: float) -> bytes | None:
        """The hello line from the server's stdout."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buf) > MAX_LINE:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                return None
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ensure_started(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.start()

    def submit(self, index: int, program: Program, prepared: object) -> None:
        """Send a program that passed `precheck`, or keep it until the server's hello
        (its memory limit depends on the server's size). OSError: the server is gone;
        the run stays in `inflight` for a resend."""
        run = _Run(index, program, prepared)
        self.inflight.append(run)
        if not self.ready:
            return
        if len(self.inflight) == 1:
            run.started = time.monotonic()
        self._send(run)

    def resend(self) -> None:
        """A fresh server: send it every run still in flight, with fresh descriptors."""
        if self.inflight:
            self.inflight[0].started = time.monotonic()
        for run in self.inflight:
            run.close()
            self._send(run)

    def _send(self, run: _Run) -> None:
        if self.sock is None:
            raise OSError("sandbox server is not running")
        p = run.program
        if self._cgroup is not None:
            # The limit must hold for every queued run: the largest of them.
            memory = max(int(r.program.memory_mb) for r in self.inflight)
            limit = (memory << 20) + self._footprint + SERVER_ALLOWANCE
            if limit != self._memory_limit:
                self._cgroup.set_memory(limit)
                self._memory_limit = limit
        run.nonce = os.urandom(16).hex()
        payload = marshal.dumps(
            (self._limits(p), int(p.memory_mb) << 20, run.prepared, p.code, p.tests, run.nonce)
        )
        run.out = os.memfd_create("stdout")
        run.err = os.memfd_create("stderr")
        run.report, report_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(run.report, False)
        payload_fd = os.memfd_create("payload")
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(payload_fd, view) :]
            fds = b"".join(
                fd.to_bytes(4, sys.byteorder, signed=True)
                for fd in (run.out, run.err, report_w, payload_fd)
            )
            self.sock.sendmsg(
                [repr(float(p.timeout)).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
            )
        finally:
            os.close(report_w)
            os.close(payload_fd)

    def _limits(self, p: Program) -> tuple:
        """The run's rlimits, computed here: in the child every object made costs a
        copy-on-write fault, so it only makes the calls. Address space and data are the
        server's: memory_mb on top of its own size."""
        cpu = max(1, math.ceil(float(p.timeout)))
        cfg = self._cfg
        return (
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"])),
            (resource.RLIMIT_NOFILE, (cfg["nofile"], cfg["nofile"])),
            (resource.RLIMIT_CORE, (0, 0)),
            (resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"])),
            (resource.RLIMIT_MEMLOCK, (0, 0)),
            (resource.RLIMIT_MSGQUEUE, (0, 0)),
        )

    def answer(self, msg: bytes) -> tuple[int, Verdict]:
        """The oldest run's verdict from the server's answer to it."""
        run = self.inflight.popleft()
        if self.inflight:
            self.inflight[0].started = time.monotonic()
        try:
            return run.index, self._verdict(run, msg)
        finally:
            run.close()

    def _verdict(self, run: _Run, msg: bytes) -> Verdict:
        pid = run.program.id
        if msg[:2] in (b"E ", b"X "):
            detail = msg[2:].decode("utf-8", "replace")
            return Verdict(id=pid, status="error", detail=detail)
        try:
            status_s, timed_out_s, duration_s = msg.split()
            status, timed_out = int(status_s), timed_out_s == b"1"
            duration = int(duration_s) / 1e6  # microseconds
        except ValueError:
            return Verdict(id=pid, status="error", detail="sandbox server sent a malformed answer")
        report = _drain(run.report)
        verdict, exit_code, detail = classify(
            run.program, status, timed_out, report, run.nonce, self._cfg["fsize"]
        )
        if self._cgroup is not None:
            kills = self._cgroup.oom_kills()
            if kills > self.oom_seen:
                # Even if the program then passed or ran out its time: a process of it
                # was killed for memory, which is the more useful thing to know.
                verdict = "oom"
                detail = "memory cgroup limit reached; a process of the run was killed"
                self.oom_seen = kills
        cap = self._cfg["output_cap"]
        return Verdict(
            id=pid,
            status=verdict,
            exit_code=exit_code,
            duration=round(duration, 6),
            stdout=_read_capped(run.out, cap),
            stderr=_read_capped(run.err, cap),
            detail=detail,
        )

    def fail_oldest(self, why: str) -> tuple[int, Verdict]:
        """The server died or stopped answering: the oldest run gets the blame (as out
        of memory if the cgroup killed something). Call before close()."""
        run = self.inflight.popleft()
        run.close()
        duration = max(0.0, time.monotonic() - run.started) if run.started else 0.0
        if self._cgroup is not None and self._cgroup.oom_kills() > self.oom_seen:
            detail = "memory cgroup limit (the sandbox server was killed too)"
            return run.index, Verdict(id=run.program.id, status="oom", duration=duration, detail=detail)
        return run.index, Verdict(id=run.program.id, status="error", duration=duration, detail=why)

    def fail_all(self, detail: str) -> Iterator[tuple[int, Verdict]]:
        while self.inflight:
            run = self.inflight.popleft()
            run.close()
            yield run.index, Verdict(id=run.program.id, status="error", detail=detail)

    def receive(self, timeout: float) -> bytes | None:
        """The next answer, waiting at most `timeout` seconds (None: no answer, or the
        server is gone)."""
        assert self.sock is not None
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        try:
            return self.sock.recv(4096) or None
        except OSError:
            return None

    def run(self, program: Program) -> Verdict:
        early, prepared = precheck(program)
        if early is not None:
            return early
        self.ensure_started()
        try:
            self.submit(0, program, prepared)
        except OSError:
            self.close()
            self.ensure_started()
            try:
                self.resend()
            except OSError:
                self.close()
                return next(self.fail_all("sandbox server died"))[1]
        msg = self.receive(float(program.timeout) + ANSWER_GRACE)
        if msg is None:
            alive = self.proc is not None and self.proc.poll() is None
            _, v = self.fail_oldest("sandbox server stopped answering" if alive else "sandbox server died")
            self.close()
            return v
        _, v = self.answer(msg)
        if msg[:2] == b"X ":
            self.close()
        return v


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


def _drain(fd: int) -> str:
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


def _read_capped(fd: int, cap: int) -> str:
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


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class _Feed:
    """Reads the programs in a thread of its own (the input may be a generator that
    waits, e.g. on a queue) into a short buffer that the event loop takes from without
    blocking. The thread refills the buffer in bursts, from half full to full, so that
    the two threads hand the interpreter lock back and forth a few times per burst
    rather than per program."""

    def __init__(self, programs: Iterable[Program], capacity: int) -> None:
        self.items: deque = deque()
        self.capacity = capacity
        self.low = capacity // 2
        self.done = False  # the input is exhausted (or failed: see error)
        self.error: BaseException | None = None
        self.starving = False  # the loop waits on `wake` for the next program
        self._cond = threading.Condition()
        self._stopped = False
        self.wake, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(
            target=self._run, args=(programs,), daemon=True, name="sandbox-feed"
        )
        self._thread.start()

    def _run(self, programs: Iterable[Program]) -> None:
        try:
            for item in enumerate(programs):
                with self._cond:
                    while len(self.items) >= self.capacity and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                self.items.append(item)
                if self.starving:
                    self._poke()
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            self.error = e
        finally:
            self.done = True
            self._poke()

    def _poke(self) -> None:
        self.starving = False
        with self._cond:  # not after stop(): the descriptor number may be reused by then
            if self._stopped:
                return
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass  # full: the loop will look anyway

    def take(self) -> tuple[int, Program] | None:
        try:
            item = self.items.popleft()
        except IndexError:
            return None
        if len(self.items) == self.low:
            with self._cond:
                self._cond.notify()
        return item

    def drained(self) -> None:
        try:
            while os.read(self.wake, 4096):
                pass
        except OSError:
            pass

    @property
    def exhausted(self) -> bool:
        return self.done and not self.items

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
            for fd in (self.wake, self._wake_w):
                os.close(fd)


def pick_flavor(
    program: Program, flavors: list[tuple[str, ...]], broken: Iterable[int] = ()
) -> int:
    """The index of the cheapest flavor that holds all the heavy libraries the program
    names, else of the one that holds most of them (the run imports the rest itself)."""
    needs = heavy_names(program)
    if not needs:
        return 0
    usable = [k for k in range(len(flavors)) if k not in broken]
    return max(usable, key=lambda k: (len(needs.intersection(flavors[k])), -k))


class _Lanes:
    """One lane per worker. A lane runs one program at a time (up to PIPELINE queued on
    one server), on whichever of its servers, one per flavor, the program needs."""

    def __init__(self, info: SandboxInfo, n: int) -> None:
        self.info = info
        self.flavors = flavors()
        self.lanes: list[dict[int, Worker]] = [{} for _ in range(n)]
        self.servers: list[Worker] = []  # every lane's, in the order they were made
        self.held: deque[tuple[int, Program, object, int]] = deque()  # waiting for a lane
        self.broken: set[int] = set()  # flavors whose server could not start here

    def flavor_of(self, program: Program) -> int:
        return pick_flavor(program, self.flavors, self.broken)

    def place(self, flavor: int) -> Worker | None:
        """The server to send a program of this flavor to now; None: every lane is busy.
        An idle lane first (a core would wait), one whose server of this flavor is
        already up if any; else a busy server of this flavor with room in its queue."""
        idle = queued = None
        for lane in self.lanes:
            busy = next((w for w in lane.values() if w.inflight), None)
            if busy is None:
                if idle is None or (flavor in lane and flavor not in idle):
                    idle = lane
            elif busy.flavor == flavor and len(busy.inflight) < PIPELINE and queued is None:
                queued = busy
        if idle is None:
            return queued
        w = idle.get(flavor)
        if w is None:
            w = idle[flavor] = Worker(self.info, len(self.servers), self.flavors[flavor], flavor)
            self.servers.append(w)
        return w

    def has_room(self) -> bool:
        """Could a program be placed now (on some flavor)?"""
        for lane in self.lanes:
            busy = [w for w in lane.values() if w.inflight]
            if not busy or len(busy[0].inflight) < PIPELINE:
                return True
        return False

    def start_failed(self, w: Worker, why: str) -> Iterator[tuple[int, Verdict]]:
        """A server that could not start: a flavor's programs go to the plain server
        (importing what they need themselves); the plain server's fail."""
        if w.flavor == 0:
            yield from w.fail_all(f"sandbox: {why}")
            return
        if w.flavor not in self.broken:
            log.warning("sandbox: no server with %s here (%s); programs import them themselves",
                        ", ".join(w.heavy), why)
            self.broken.add(w.flavor)
        while w.inflight:
            run = w.inflight.popleft()
            run.close()
            self.held.append((run.index, run.program, run.prepared, 0))


def iter_batch(
    programs: Iterable[Program], info: SandboxInfo, workers: int | None = None
) -> Iterator[tuple[int, Verdict]]:
    """Yield (input index, verdict) as runs finish; every lane is kept busy.

    One thread (the caller's) drives every server through select(): it compiles each
    program, sends jobs, reads answers and watches deadlines. Only the input has a
    thread of its own, since it may wait (e.g. on a queue).
    """
    n = workers or default_workers()
    feed = _Feed(programs, capacity=4 * n)
    lanes = _Lanes(info, n)
    finished = False
    try:
        yield from _drive(lanes, feed)
        finished = True
    finally:
        feed.stop()
        if finished:
            # Every server ends at the end of its input, all together: reaped by their
            # parents, their CPU time adds up to ours.
            for w in lanes.servers:
                if w.sock is not None:
                    try:
                        w.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        for w in lanes.servers:
            w.close(graceful=finished)


def _drive(lanes: _Lanes, feed: _Feed) -> Iterator[tuple[int, Verdict]]:
    pool = lanes.servers
    while True:
        yield from _hand_out(lanes, feed)
        if feed.error is not None:
            raise feed.error
        if feed.exhausted and not lanes.held and not any(w.inflight for w in pool):
            return
        readers = {}
        for w in pool:
            if w.proc is not None:
                fd = w.sock.fileno() if w.ready else w.proc.stdout.fileno()
                readers[fd] = w
        starving = False
        if not feed.done and not feed.items and not lanes.held and lanes.has_room():
            feed.starving = True  # the feed thread writes to feed.wake when it has more
            if feed.items or feed.done:  # it came while we said so
                continue
            starving = True
        now = time.monotonic()
        deadlines = [_deadline(w) for w in pool if w.inflight]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        watch = list(readers) + ([feed.wake] if starving else [])
        ready, _, _ = select.select(watch, [], [], timeout)
        for fd in ready:
            if fd == feed.wake:
                feed.drained()
                continue
            w = readers[fd]
            if w.proc is None:  # replaced while we handled another descriptor
                continue
            yield from (_read_answers(w) if w.ready else _read_hello(lanes, w))
        now = time.monotonic()
        for w in pool:
            if w.inflight and _deadline(w) <= now:
                if w.ready:
                    yield from _server_failed(w, "sandbox server stopped answering")
                else:
                    yield from _on_hello(lanes, w, None)


def _deadline(w: Worker) -> float:
    if not w.ready:
        return w.hello_deadline
    return w.inflight[0].started + float(w.inflight[0].program.timeout) + ANSWER_GRACE


def _hand_out(lanes: _Lanes, feed: _Feed) -> Iterator[tuple[int, Verdict]]:
    """Give every lane programs (up to PIPELINE queued on one server: the next starts
    while we read the last answer); programs answered without a run (syntax errors)
    come out here."""
    while True:
        if lanes.held:
            i, program, prepared, flavor = lanes.held.popleft()
        else:
            item = feed.take()
            if item is None:
                return
            i, program = item
            try:
                early, prepared = precheck(program)
                flavor = lanes.flavor_of(program) if early is None else 0
            except Exception as e:  # noqa: BLE001 - e.g. a Program with odd fields
                early = Verdict(id=str(program.id), status="error", detail=f"sandbox: {e!r}")
            if early is not None:
                yield i, early
                continue
        if flavor in lanes.broken:
            flavor = lanes.flavor_of(program)
        w = lanes.place(flavor)
        if w is None:
            lanes.held.appendleft((i, program, prepared, flavor))
            return
        if w.proc is None:
            try:
                _launch(w)
            except SandboxStartError as e:
                yield i, Verdict(id=program.id, status="error", detail=f"sandbox: {e}")
                continue
        try:
            w.submit(i, program, prepared)
        except OSError:
            yield from _server_failed(w, "sandbox server died")


def _launch(w: Worker) -> None:
    try:
        w.launch()
    except SandboxStartError:
        w.close()
        raise
    w.hello_deadline = time.monotonic() + START_TIMEOUT
    os.set_blocking(w.proc.stdout.fileno(), False)


def _read_hello(lanes: _Lanes, w: Worker) -> Iterator[tuple[int, Verdict]]:
    try:
        data = os.read(w.proc.stdout.fileno(), 1 << 16)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        yield from _on_hello(lanes, w, None)
        return
    w._buf += data
    if b"\n" in w._buf:
        line, _, w._buf = w._buf.partition(b"\n")
        yield from _on_hello(lanes, w, line)
    elif len(w._buf) > MAX_LINE:
        yield from _on_hello(lanes, w, None)


def _on_hello(lanes: _Lanes, w: Worker, line: bytes | None) -> Iterator[tuple[int, Verdict]]:
    """A server's hello line (None: none came): a good one sends the runs that waited for
    it; a bad one fails them."""
    try:
        w.greet(line)
    except SandboxStartError as e:
        yield from lanes.start_failed(w, str(e))
        return
    try:
        w.resend()
    except OSError:
        yield from _server_failed(w, "sandbox server died")


def _read_answers(w: Worker) -> Iterator[tuple[int, Verdict]]:
    while w.sock is not None:
        try:
            msg = w.sock.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            msg = b""
        if not msg:
            yield from _server_failed(w, "sandbox server died")
            return
        if not w.inflight:  # an answer nobody asked for: not a server to trust
            w.close()
            return
        yield w.answer(msg)
        if msg[:2] == b"X ":  # the server ends after this answer: a fresh one for the rest
            yield from _restart(w)
            return


def _server_failed(w: Worker, why: str) -> Iterator[tuple[int, Verdict]]:
    """The oldest run gets the blame; the server is replaced and the rest resent."""
    if w.inflight:
        yield w.fail_oldest(why)
    yield from _restart(w)


def _restart(w: Worker) -> Iterator[tuple[int, Verdict]]:
    """A fresh server for the runs still in flight; they go to it after its hello."""
    w.close()
    if not w.inflight:
        return
    try:
        _launch(w)
    except SandboxStartError as e:
        yield from w.fail_all(f"sandbox: {e}")
