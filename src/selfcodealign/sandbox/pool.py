"""Host side: sandbox servers (one per worker) and the pool that keeps them all busy."""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
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

if TYPE_CHECKING:
    from selfcodealign.sandbox import Program

log = logging.getLogger(__name__)

STATUSES = {"passed", "failed", "timeout", "oom", "crashed", "error"}
START_TIMEOUT = 60.0  # a cold start on a loaded 2-core machine can take seconds
ANSWER_GRACE = 15.0  # beyond a program's own timeout: kill, reap, wipe
MAX_LINE = 1 << 20
CLOSE_GRACE = 2.0  # for a server to finish on its own (then its CPU time is ours)
PIPELINE = 2  # runs queued per server: the next one starts while we read the last


_SLOTS = itertools.count()


class SandboxStartError(RuntimeError):
    pass


class Worker:
    """One sandbox server process and the pipe protocol to it."""

    def __init__(self, info: SandboxInfo, index: int) -> None:
        self.info = info
        self.index = index
        # Unique among this process's live servers (pools may run side by side): it
        # picks the server's uid and cgroup.
        self.slot = next(_SLOTS) % 256
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._workdir: str | None = None
        self._cgroup = None
        self._memory_limit = 0
        self._compiled: dict[int, str | None] = {}

    def precheck(self, program: Program) -> Verdict | None:
        """A verdict given without the sandbox (bad parameters, syntax error), or None
        when the program is ready to send."""
        bad = _invalid(program)
        if bad:
            return Verdict(id=program.id, status="error", detail=bad)
        try:
            self._compiled[id(program)] = compile_program(program.code, program.tests)
        except CompileFailed as e:
            return Verdict(
                id=program.id, status="failed", exit_code=1, stderr=e.stderr, detail=e.detail
            )
        return None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        nproc_base = 0
        if self.info.mode == "rlimits" and not self.info.root:
            nproc_base = user_process_count()
        launch = build_launch(self.info.mode, self.slot, nproc_base)
        self._workdir = launch.workdir_host
        self._buf = b""
        argv = launch.argv
        if self.info.cgroups:
            from selfcodealign.sandbox import cgroups

            self._cgroup = cgroups.create(
                f"selfcodealign-{os.getpid()}-{self.slot}",
                pids_max=PROCESSES + 16,
                memory_bytes=(1024 << 20) + cgroups.SERVER_ALLOWANCE,
            )
            if self._cgroup is None:
                raise SandboxStartError("cannot create the memory/pids cgroups")
            self._memory_limit = 0
            argv = _with_oom_file(argv, self._cgroup.oom_file)
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
            )
        except OSError as e:
            raise SandboxStartError(f"cannot start {launch.argv[0]}: {e.strerror}") from None
        try:
            self.proc.stdin.write(server_preamble())
            self.proc.stdin.flush()
        except OSError:
            pass  # it died at once: its stderr says why, below
        line = self._read_line(START_TIMEOUT)
        if line is None:
            err = self._stderr_after_exit()
            self.close()
            raise SandboxStartError(err or "sandbox server did not start")
        hello = json.loads(line)["hello"]
        problem = self._privilege_problem(hello)
        if problem:
            self.close()
            raise SandboxStartError(problem)
        self.identity = hello

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
        so that it is reaped by its parent and its CPU time adds up to ours."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
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
            for f in (proc.stdout, proc.stderr):
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
            data = os.read(fd, 1 << 16)
            if not data:
                return None
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ensure_started(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.start()

    def send(self, program: Program, memory_mb: int | None = None) -> bool:
        """Queue a program on the server (it runs them one by one, in order). False if
        the server is gone; the caller restarts it and sends again. The program must
        have passed `precheck`."""
        job = {
            "code": program.code,
            "tests": program.tests,
            "timeout": float(program.timeout),
            "memory_mb": int(program.memory_mb),
            "compiled": self._compiled.pop(id(program), None),
        }
        if self._cgroup is not None:
            # The limit must hold for every queued run: the largest of them.
            limit = (int(memory_mb or program.memory_mb) << 20) + SERVER_ALLOWANCE
            if limit != self._memory_limit:
                self._cgroup.set_memory(limit)
                self._memory_limit = limit
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, AttributeError):
            return False

    def receive(self, program: Program) -> Verdict | None:
        """The verdict of the oldest queued program; None (and the server stopped) if the
        server died or did not answer in time."""
        started = time.monotonic()
        ooms = self._cgroup.oom_kills() if self._cgroup is not None else 0
        line = self._read_line(float(program.timeout) + ANSWER_GRACE)
        if line is not None:
            return _verdict(program.id, line)
        alive = self.proc is not None and self.proc.poll() is None
        oom = self._cgroup is not None and self._cgroup.oom_kills() > ooms
        self.close()
        if oom:
            detail = "memory cgroup limit (the sandbox server was killed too)"
            return Verdict(
                id=program.id, status="oom", duration=time.monotonic() - started, detail=detail
            )
        return Verdict(
            id=program.id,
            status="error",
            duration=time.monotonic() - started,
            detail="sandbox server stopped answering" if alive else "sandbox server died",
        )

    def run(self, program: Program) -> Verdict:
        early = self.precheck(program)
        if early is not None:
            return early
        self.ensure_started()
        if not self.send(program):
            self.close()
            self.ensure_started()
            if not self.send(program):
                return Verdict(id=program.id, status="error", detail="sandbox server died")
        return self.receive(program)

    @property
    def oom_file(self) -> str | None:
        return self._cgroup.oom_file if self._cgroup is not None else None


def _with_oom_file(argv: list[str], oom_file: str | None) -> list[str]:
    """The server reads the cgroup's OOM-kill count around each run (the cgroup
    filesystem is visible read-only inside the sandbox)."""
    cfg = json.loads(argv[-1])
    cfg["oom_file"] = oom_file
    return argv[:-1] + [json.dumps(cfg)]


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


def _verdict(pid: str, line: bytes) -> Verdict:
    """Build a Verdict from the server's answer, trusting none of its fields blindly."""
    try:
        r = json.loads(line)
        status = r.get("status")
        if status not in STATUSES:
            raise ValueError(status)
        exit_code = r.get("exit_code")
        return Verdict(
            id=pid,
            status=status,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            duration=float(r.get("duration") or 0.0),
            stdout=str(r.get("stdout", ""))[: 4 * 16_384],
            stderr=str(r.get("stderr", ""))[: 4 * 16_384],
            detail=str(r.get("detail", ""))[:4096],
        )
    except (ValueError, TypeError, AttributeError):
        return Verdict(id=pid, status="error", detail="sandbox server sent a malformed answer")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


_DONE = object()


def iter_batch(
    programs: Iterable[Program], info: SandboxInfo, workers: int | None = None
) -> Iterator[tuple[int, Verdict]]:
    """Yield (input index, verdict) as runs finish; every worker keeps one server busy."""
    n = workers or default_workers()
    jobs: queue.Queue = queue.Queue(maxsize=4 * n)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def feed() -> None:
        try:
            for item in enumerate(programs):
                while not stop.is_set():
                    try:
                        jobs.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            results.put(("exc", e))
        finally:
            for _ in range(n):
                while not stop.is_set():
                    try:
                        jobs.put(_DONE, timeout=0.2)
                        break
                    except queue.Full:
                        pass

    def work(index: int) -> None:
        w = Worker(info, index)
        inflight: deque = deque()  # (input index, program), sent and not answered yet
        exhausted = False
        try:
            while not stop.is_set():
                # Keep PIPELINE runs queued on the server, so that it never waits for us.
                while not exhausted and len(inflight) < PIPELINE:
                    try:
                        item = jobs.get() if not inflight else jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is _DONE:
                        exhausted = True
                        break
                    i, program = item
                    try:
                        early = w.precheck(program)
                    except Exception as e:  # noqa: BLE001 - e.g. a Program with odd fields
                        early = Verdict(
                            id=str(program.id), status="error", detail=f"sandbox: {e!r}"
                        )
                    if early is not None:
                        results.put(("ok", (i, early)))
                        continue
                    inflight.append(item)
                    if not _send(w, inflight):
                        break
                if not inflight:
                    if exhausted:
                        return
                    continue
                i, program = inflight.popleft()
                try:
                    v = w.receive(program)
                except Exception as e:  # noqa: BLE001 - one bad run must not stop the pool
                    log.exception("sandbox worker %d failed", index)
                    w.close()
                    v = Verdict(id=program.id, status="error", detail=f"sandbox: {e!r}")
                results.put(("ok", (i, v)))
                if w.proc is None and inflight:
                    _resend(w, inflight)
        finally:
            w.close(graceful=not stop.is_set() and not inflight)
            for i, program in inflight:
                if not stop.is_set():
                    results.put(
                        (
                            "ok",
                            (i, Verdict(id=program.id, status="error", detail="sandbox stopped")),
                        )
                    )
            results.put(("end", index))

    def _send(w: Worker, inflight: deque) -> bool:
        """Send the newest in-flight program, starting the server if needed."""
        memory = max(int(p.memory_mb) for _, p in inflight)
        try:
            if w.proc is None:
                return _resend(w, inflight)
            if w.send(inflight[-1][1], memory):
                return True
            w.close()
            return _resend(w, inflight)
        except SandboxStartError as e:
            _fail_all(inflight, f"sandbox: {e}")
            return False

    def _resend(w: Worker, inflight: deque) -> bool:
        """A new server has an empty queue: send it everything still in flight."""
        try:
            w.ensure_started()
            memory = max(int(p.memory_mb) for _, p in inflight)
            if all(w.send(p, memory) for _, p in inflight):
                return True
            w.close()
            _fail_all(inflight, "sandbox server died")
        except SandboxStartError as e:
            _fail_all(inflight, f"sandbox: {e}")
        return False

    def _fail_all(inflight: deque, detail: str) -> None:
        while inflight:
            i, p = inflight.popleft()
            results.put(("ok", (i, Verdict(id=p.id, status="error", detail=detail))))

    threads = [threading.Thread(target=feed, daemon=True, name="sandbox-feed")]
    threads += [
        threading.Thread(target=work, args=(k,), daemon=True, name=f"sandbox-{k}") for k in range(n)
    ]
    for t in threads:
        t.start()
    ended = 0
    try:
        while ended < n:
            kind, value = results.get()
            if kind == "ok":
                yield value
            elif kind == "end":
                ended += 1
            else:
                raise value
    finally:
        stop.set()
        # Unblock workers waiting for jobs so that they close their servers.
        for _ in range(n):
            try:
                jobs.put_nowait(_DONE)
            except queue.Full:
                break
