"""The local executor: generation through one backend, execution through the sandbox
pool on this machine. Stages hand it records; it hands back results as they finish."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from selfcodealign.backends.base import Backend, Completion
from selfcodealign.records import Record
from selfcodealign.stages.base import ExecutionStage, GenerationStage


class LocalExecutor:
    name = "local"
    # Generation and execution may run at once (execution following generation).
    can_overlap = True

    def __init__(self, backend_factory: Callable[[], Backend], sandbox_workers: int | None = None):
        self._factory = backend_factory
        self._backend: Backend | None = None
        self.sandbox_workers = sandbox_workers

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    def generate(
        self, stage: GenerationStage, records: Sequence[Record]
    ) -> Iterator[tuple[Record, list[Completion]]]:
        requests = [stage.request(r) for r in records]
        prompts = [p for p, _ in requests]
        params = [sp for _, sp in requests]
        for i, comps in self.backend.iter_generate(prompts, params):
            yield records[i], comps

    def execute(
        self, stage: ExecutionStage, records: Iterable[Record]
    ) -> Iterator[tuple[Record, Any]]:
        """Records are read lazily (the input may still be growing); a record comes back
        with its verdicts, in its programs' order, once they are all in."""
        import queue

        from selfcodealign.sandbox import iter_batch

        owner: dict[int, tuple[int, int]] = {}  # program number -> (record number, position)
        pending: dict[int, list] = {}  # record number -> [record, verdicts, verdicts left]
        empty: queue.SimpleQueue = queue.SimpleQueue()  # records with no program at all

        def programs():
            n = 0
            for i, r in enumerate(records):
                progs = stage.programs(r)
                if not progs:
                    empty.put(r)
                    continue
                pending[i] = [r, [None] * len(progs), len(progs)]
                for k, p in enumerate(progs):
                    owner[n] = (i, k)
                    n += 1
                    yield p

        def empties():
            while not empty.empty():
                yield empty.get(), []

        for n, verdict in iter_batch(programs(), workers=self.sandbox_workers):
            yield from empties()
            i, k = owner.pop(n)
            entry = pending[i]
            entry[1][k] = verdict
            entry[2] -= 1
            if entry[2] == 0:
                del pending[i]
                yield entry[0], entry[1]
        yield from empties()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
