"""What runs inside Ray actors: a model replica and a node's sandbox pool.

Plain classes, wrapped with ``ray.remote`` by the driver (``ray_executor``), so this module
imports without Ray and the classes can be used and tested directly. Each method takes and
returns plain data (prompts, SamplingParams, Programs, Completions, Verdicts): stages and
files stay on the driver.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Sequence
from typing import Any

import selfcodealign


def _where() -> dict[str, Any]:
    return {"host": socket.gethostname(), "version": selfcodealign.__version__}


class GenerationReplica:
    """One model engine (llama.cpp, an OpenAI-compatible endpoint, vLLM or transformers)."""

    def __init__(self, backend_cfg: dict, verbose: bool = False) -> None:
        from selfcodealign.backends import make_backend
        from selfcodealign.backends.base import ThreadedBackend
        from selfcodealign.config import BackendConfig

        cfg = BackendConfig.model_validate(backend_cfg)
        self.backend = make_backend(cfg, verbose=verbose)
        threaded = isinstance(self.backend, ThreadedBackend)
        # Engines that take requests from many threads (llama.cpp, HTTP) get overlapping
        # chunks so their slots never drain between chunks; engines that batch inside one
        # call (vLLM, transformers) are not thread-safe and take one chunk at a time.
        self._lock: Any = contextlib.nullcontext() if threaded else threading.Lock()
        self.slots = self.backend.concurrency if threaded else cfg.batch_size
        if threaded:
            # Creates the backend's request pool now: two first chunks arriving together
            # would otherwise each create one.
            self.backend.generate([], [])

    def describe(self) -> dict[str, Any]:
        b = self.backend
        return {**_where(), "name": b.name, "model_id": b.model_id, "model_sha256": b.model_sha256,
                "model_sha256_note": b.model_sha256_note,
                "has_chat_template": b.has_chat_template, "slots": self.slots}

    def generate(self, prompts: Sequence, params: Sequence) -> list:
        with self._lock:
            return self.backend.generate(list(prompts), list(params))

    def close(self) -> None:
        self.backend.close()


class _Chunk:
    def __init__(self, n: int) -> None:
        self.verdicts: list = [None] * n
        self.left = n
        self.done = threading.Event()
        self.error: BaseException | None = None


class SandboxPoolActor:
    """A sandbox pool on one node, kept running across chunks.

    Chunks from the driver feed one long-lived ``sandbox.iter_batch`` through a queue, so
    the node's sandbox servers start once and stay busy while the driver sends the next
    chunk; each ``run`` call returns when its own chunk's verdicts are all in."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._feed: queue.Queue = queue.Queue()
        self._slots: dict[int, tuple[_Chunk, int]] = {}
        self._pending: set[_Chunk] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def describe(self) -> dict[str, Any]:
        from selfcodealign.sandbox import check

        info = check()
        return {**_where(), "workers": self.workers, "mode": info.mode, "strong": info.strong}

    def _programs(self):
        n = 0
        while True:
            item = self._feed.get()
            if item is None:
                return
            chunk, pos, program = item
            # iter_batch numbers programs in the order this generator yields them.
            self._slots[n] = (chunk, pos)
            n += 1
            yield program

    def _drain(self) -> None:
        from selfcodealign.sandbox import iter_batch

        try:
            for i, verdict in iter_batch(self._programs(), workers=self.workers):
                chunk, pos = self._slots.pop(i)
                chunk.verdicts[pos] = verdict
                chunk.left -= 1
                if chunk.left == 0:
                    with self._lock:
                        self._pending.discard(chunk)
                    chunk.done.set()
        except BaseException as e:  # noqa: BLE001 - handed to every waiting chunk
            with self._lock:
                self._error = e
                for chunk in self._pending:
                    chunk.error = e
                    chunk.done.set()
                self._pending.clear()

    def run(self, programs: Sequence) -> list:
        chunk = _Chunk(len(programs))
        if not programs:
            return []
        with self._lock:
            if self._error is not None:
                raise RuntimeError(f"sandbox pool failed: {self._error!r}")
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, daemon=True, name="sandbox-drain")
                self._thread.start()
            self._pending.add(chunk)
            for pos, p in enumerate(programs):
                self._feed.put((chunk, pos, p))
        chunk.done.wait()
        if chunk.error is not None:
            raise RuntimeError(f"sandbox pool failed: {chunk.error!r}")
        return chunk.verdicts

    def close(self) -> None:
        self._feed.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)
