"""One sandbox server process, seen from the host: its launch, the hello handshake and
the checks of the privileges it kept, the job protocol, and each run's rlimits.

A run's descriptors are made here, not in the server: its stdout and stderr files, its
report pipe and its payload (rlimits, the program compiled by compiling.py, a fresh
nonce). They go to the server over a socket with the job; the server forks the run,
waits, cleans up and answers with the wait status. Reading the outputs and the report
and classifying (verdicts.py) happen here, where no fork makes memory copy-on-write
(fork_server.py says why that matters).
"""

from __future__ import annotations

import itertools
import json
import logging
import marshal
import math
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from selfcodealign.records import Verdict
from selfcodealign.sandbox import cgroups
from selfcodealign.sandbox.launch import BIND_NOW, build_launch, server_preamble, user_process_count
from selfcodealign.sandbox.modes import PROCESSES, SandboxInfo
from selfcodealign.sandbox.program import Program
from selfcodealign.sandbox.verdicts import classify, drain_report, precheck, read_capped

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # a cold start on a loaded 2-core machine can take seconds
ANSWER_GRACE = 15.0  # beyond a program's own timeout: kill, reap, wipe
MAX_LINE = 1 << 20
CLOSE_GRACE = 2.0  # for a server to finish on its own (then its CPU time is ours)

_SLOTS = itertools.count()


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


class SandboxProcess:
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

    def read_hello(self) -> tuple[bool, bytes | None]:
        """What the server has written of its hello, read without blocking: (False, None)
        while the line is incomplete; (True, the line), or (True, None) once none can
        come."""
        try:
            data = os.read(self.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return False, None
        except OSError:
            data = b""
        if not data:
            return True, None
        self._buf += data
        if b"\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\n")
            return True, line
        return len(self._buf) > MAX_LINE, None

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
            limit = (memory << 20) + self._footprint + cgroups.SERVER_ALLOWANCE
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
        report = drain_report(run.report)
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
            stdout=read_capped(run.out, cap),
            stderr=read_capped(run.err, cap),
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
