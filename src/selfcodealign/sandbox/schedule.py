"""Scheduling: the pool that keeps every sandbox server busy. It has one lane per worker;
a lane runs one program at a time, on one of its servers, one per flavor (server_flavors.py),
started when a program first needs it. One thread (the caller's) drives them all through
select(); only the input (feed.py) has a thread of its own.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections import deque
from collections.abc import Iterable, Iterator

from selfcodealign.records import Verdict
from selfcodealign.sandbox.feed import Feed
from selfcodealign.sandbox.server_flavors import flavors, pick_flavor
from selfcodealign.sandbox.modes import SandboxInfo
from selfcodealign.sandbox.process import (
    ANSWER_GRACE,
    START_TIMEOUT,
    SandboxProcess,
    SandboxStartError,
)
from selfcodealign.sandbox.program import Program
from selfcodealign.sandbox.verdicts import precheck

log = logging.getLogger(__name__)

PIPELINE = 2  # runs queued per server: the next one starts while we read the last


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class Lanes:
    """One lane per worker. A lane runs one program at a time (up to PIPELINE queued on
    one server), on whichever of its servers, one per flavor, the program needs."""

    def __init__(self, info: SandboxInfo, n: int) -> None:
        self.info = info
        self.flavors = flavors()
        self.lanes: list[dict[int, SandboxProcess]] = [{} for _ in range(n)]
        self.servers: list[SandboxProcess] = []  # every lane's, in the order they were made
        self.held: deque[tuple[int, Program, object, int]] = deque()  # waiting for a lane
        self.broken: set[int] = set()  # flavors whose server could not start here

    def flavor_of(self, program: Program) -> int:
        return pick_flavor(program, self.flavors, self.broken)

    def place(self, flavor: int) -> SandboxProcess | None:
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
            w = idle[flavor] = SandboxProcess(self.info, len(self.servers), self.flavors[flavor], flavor)
            self.servers.append(w)
        return w

    def has_room(self) -> bool:
        """Could a program be placed now (on some flavor)?"""
        for lane in self.lanes:
            busy = [w for w in lane.values() if w.inflight]
            if not busy or len(busy[0].inflight) < PIPELINE:
                return True
        return False

    def start_failed(self, w: SandboxProcess, why: str) -> Iterator[tuple[int, Verdict]]:
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
    feed = Feed(programs, capacity=4 * n)
    lanes = Lanes(info, n)
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


def _drive(lanes: Lanes, feed: Feed) -> Iterator[tuple[int, Verdict]]:
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


def _deadline(w: SandboxProcess) -> float:
    if not w.ready:
        return w.hello_deadline
    return w.inflight[0].started + float(w.inflight[0].program.timeout) + ANSWER_GRACE


def _hand_out(lanes: Lanes, feed: Feed) -> Iterator[tuple[int, Verdict]]:
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


def _launch(w: SandboxProcess) -> None:
    try:
        w.launch()
    except SandboxStartError:
        w.close()
        raise
    w.hello_deadline = time.monotonic() + START_TIMEOUT
    os.set_blocking(w.proc.stdout.fileno(), False)


def _read_hello(lanes: Lanes, w: SandboxProcess) -> Iterator[tuple[int, Verdict]]:
    done, line = w.read_hello()
    if done:
        yield from _on_hello(lanes, w, line)


def _on_hello(lanes: Lanes, w: SandboxProcess, line: bytes | None) -> Iterator[tuple[int, Verdict]]:
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


def _read_answers(w: SandboxProcess) -> Iterator[tuple[int, Verdict]]:
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


def _server_failed(w: SandboxProcess, why: str) -> Iterator[tuple[int, Verdict]]:
    """The oldest run gets the blame; the server is replaced and the rest resent."""
    if w.inflight:
        yield w.fail_oldest(why)
    yield from _restart(w)


def _restart(w: SandboxProcess) -> Iterator[tuple[int, Verdict]]:
    """A fresh server for the runs still in flight; they go to it after its hello."""
    w.close()
    if not w.inflight:
        return
    try:
        _launch(w)
    except SandboxStartError as e:
        yield from w.fail_all(f"sandbox: {e}")
