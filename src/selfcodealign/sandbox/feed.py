"""The input side of a batch: programs read in a thread of their own."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable

from selfcodealign.sandbox.program import Program


class Feed:
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
