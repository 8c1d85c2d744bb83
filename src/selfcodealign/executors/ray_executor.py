"""The Ray executor: the same stages, spread over a Ray cluster.

Generation chunks go to model replicas held by Ray actors (one embedded llama.cpp engine
per node, one actor per endpoint of an OpenAI-compatible pool, or one vLLM/transformers
engine per GPU); sandbox chunks go to a sandbox worker actor on every node with CPUs.
Only plain data travels: the driver builds prompts and programs from records with the
stage, and hands each finished (record, result) back to the pipeline, which commits it
through the run directory's ledger. Workers never touch the run directory.

A lost worker (node down, actor killed) loses only its in-flight chunks: they go back to
the queue for the surviving workers. If every worker of a kind is lost, the stage stops
with a UserError; everything committed so far stays, and rerunning resumes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import selfcodealign
from selfcodealign.errors import UserError, missing_extra
from selfcodealign.records import Record

log = logging.getLogger("selfcodealign")

START_TIMEOUT = 900.0  # a vLLM engine on a big model can take minutes to load
GEN_DEPTH = 2  # chunks in flight per model replica: the next one is queued on the engine
SANDBOX_DEPTH = 3  # chunks in flight per sandbox worker: its pool's queue never runs dry


def _ray():
    try:
        import ray
    except ImportError:
        raise missing_extra("ray", "ray") from None
    return ray


def ray_executor_factory(cfg, ray_address: str | None, verbose: bool = False) -> Callable[[], RayExecutor]:
    _ray()  # fail on a missing extra before any stage starts
    return lambda: RayExecutor(cfg, ray_address, verbose=verbose)


@dataclass(frozen=True)
class RemoteModel:
    """What the driver needs to know about the model without loading it."""

    name: str
    model_id: str
    model_sha256: str | None
    model_sha256_note: str | None
    has_chat_template: bool

    def close(self) -> None:
        pass


@dataclass
class RayStageWorker:
    """One started actor doing a stage's work (a GenerationReplica or a SandboxPoolActor)
    and what the driver keeps on it."""

    actor: Any
    where: str
    info: dict = field(default_factory=dict)
    inflight: int = 0
    alive: bool = True


@dataclass
class _Chunk:
    indices: list[int]
    args: tuple


class RayExecutor:
    name = "ray"

    def __init__(self, cfg, address: str | None = None, *, verbose: bool = False) -> None:
        ray = _ray()
        self.cfg = cfg
        self.verbose = verbose
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=verbose,
                         logging_level=logging.INFO if verbose else logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = address or "a new local cluster"
                raise UserError(f"cannot start or join Ray at {where}: {str(e).splitlines()[0]}") from None
            self._owns_ray = True
        self._gen: list[RayStageWorker] | None = None
        self._sandbox: list[RayStageWorker] | None = None

    # --- placement ----------------------------------------------------------------------
    @staticmethod
    def _cpu_nodes() -> list[dict]:
        ray = _ray()
        return [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]

    @staticmethod
    def _on_node(node: dict) -> dict:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)}

    def _start(self, cls, placements: list[tuple[str, dict, tuple]], what: str) -> list[RayStageWorker]:
        """Start one actor per placement (where, ray options, constructor args) and wait
        until each has described itself."""
        ray = _ray()
        remote = ray.remote(cls)
        workers = []
        for where, opts, args in placements:
            # num_cpus=0: each actor is placed explicitly and sizes its own pool to its
            # node, so Ray's CPU accounting must not keep a second actor off that node.
            actor = remote.options(num_cpus=opts.pop("num_cpus", 0), max_restarts=0,
                                   max_concurrency=8, **opts).remote(*args)
            workers.append(RayStageWorker(actor, where))
        refs = [w.actor.describe.remote() for w in workers]
        _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT)
        if not_ready:
            raise UserError(f"Ray: {len(not_ready)} {what} worker(s) did not start within "
                            f"{START_TIMEOUT:.0f} s (does the cluster have the resources?)")
        for w, ref in zip(workers, refs):
            w.info = self._get(ref)
            if w.info["version"] != selfcodealign.__version__:
                raise UserError(
                    f"Ray node {w.info['host']} has selfcodealign {w.info['version']}, the driver "
                    f"{selfcodealign.__version__}: install the same version on every node")
            log.info("ray: %s worker on %s (%s)", what, w.info["host"],
                     ", ".join(f"{k}={v}" for k, v in w.info.items() if k not in ("host", "version")))
        return workers

    def _gen_placements(self) -> list[tuple[str, dict, tuple]]:
        b = self.cfg.backend
        if b.kind == "openai":
            urls = [u.strip() for u in (b.base_url or "").split(",") if u.strip()]
            return [(u, {}, (b.model_copy(update={"base_url": u}).model_dump(), self.verbose))
                    for u in urls or [""]]
        gpus = int(sum(n.get("Resources", {}).get("GPU", 0) for n in _ray().nodes() if n.get("Alive")))
        if b.kind in ("vllm", "hf") and gpus:
            return [(f"gpu {i}", {"num_gpus": 1}, (b.model_dump(), self.verbose)) for i in range(gpus)]
        nodes = self._cpu_nodes()
        if not nodes:
            raise UserError("the Ray cluster has no node with CPUs for model replicas")
        out = []
        for n in nodes:
            # llama.cpp's threads spin: one engine per node, using that node's CPUs.
            threads = b.threads or int(n["Resources"]["CPU"])
            out.append((n["NodeManagerAddress"], self._on_node(n),
                        (b.model_copy(update={"threads": threads}).model_dump(), self.verbose)))
        return out

    def _sandbox_placements(self) -> list[tuple[str, dict, tuple]]:
        nodes = self._cpu_nodes()
        if not nodes:
            raise UserError("the Ray cluster has no node with CPUs for sandbox workers")
        return [(n["NodeManagerAddress"], self._on_node(n),
                 (self.cfg.execute.workers or int(n["Resources"]["CPU"]),)) for n in nodes]

    def _gen_workers(self) -> list[RayStageWorker]:
        from selfcodealign.executors.ray_actors import GenerationReplica

        if self._gen is None or not any(w.alive for w in self._gen):
            self._gen = self._start(GenerationReplica, self._gen_placements(), "model")
        return self._gen

    def _sandbox_workers(self) -> list[RayStageWorker]:
        from selfcodealign.executors.ray_actors import SandboxPoolActor

        if self._sandbox is None or not any(w.alive for w in self._sandbox):
            self._sandbox = self._start(SandboxPoolActor, self._sandbox_placements(), "sandbox")
            weak = {w.info["mode"] for w in self._sandbox if not w.info.get("strong")}
            if weak:
                log.warning("ray: sandbox in weak mode %s on some nodes; run "
                            "`selfcodealign sandbox --check` there", ", ".join(sorted(weak)))
        return self._sandbox

    # --- the executor interface ---------------------------------------------------------
    @property
    def backend(self) -> RemoteModel:
        info = next(w.info for w in self._gen_workers() if w.alive)
        return RemoteModel(info["name"], info["model_id"], info["model_sha256"],
                           info["model_sha256_note"], info["has_chat_template"])

    def generate(self, stage, records: Sequence[Record]) -> Iterator[tuple[Record, list]]:
        if not records:
            return
        workers = self._gen_workers()
        requests = [stage.request(r) for r in records]
        slots = min(w.info.get("slots", 1) for w in workers if w.alive)
        # One chunk fills a replica's slots: a prompt with n samples takes n of them.
        size = max(1, slots // max(1, requests[0][1].n))
        chunks = [_Chunk(list(range(s, min(s + size, len(records)))),
                         ([p for p, _ in requests[s:s + size]], [sp for _, sp in requests[s:s + size]]))
                  for s in range(0, len(records), size)]
        for i, comps in self._stream(workers, chunks, "generate", GEN_DEPTH, "model"):
            yield records[i], comps

    def execute(self, stage, records: Iterable[Record]) -> Iterator[tuple[Record, Any]]:
        # Chunks are cut from the whole input: it is read at once (no execution
        # following generation on Ray: `can_overlap` is not set).
        records = list(records)
        if not records:
            return
        workers = self._sandbox_workers()
        programs, owner, left, verdicts = [], [], [], []
        for i, r in enumerate(records):
            progs = stage.programs(r)
            programs += progs
            owner += [(i, k) for k in range(len(progs))]
            left.append(len(progs))
            verdicts.append([None] * len(progs))
            if not progs:
                yield r, []
        size = max(4, max(w.info.get("workers", 1) for w in workers if w.alive))
        chunks = [_Chunk(list(range(s, min(s + size, len(programs)))), (programs[s:s + size],))
                  for s in range(0, len(programs), size)]
        for n, verdict in self._stream(workers, chunks, "run", SANDBOX_DEPTH, "sandbox"):
            i, k = owner[n]
            verdicts[i][k] = verdict
            left[i] -= 1
            if left[i] == 0:
                yield records[i], verdicts[i]

    def close(self) -> None:
        ray = _ray()
        for w in (self._gen or []) + (self._sandbox or []):
            if w.alive:
                try:
                    ray.get(w.actor.close.remote(), timeout=30)
                except Exception as e:  # noqa: BLE001 - closing is best effort; kill follows
                    log.debug("ray: closing %s: %r", w.where, e)
            try:
                ray.kill(w.actor, no_restart=True)
            except Exception as e:  # noqa: BLE001 - already gone with its node
                log.debug("ray: killing %s: %r", w.where, e)
        self._gen = self._sandbox = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    # --- scheduling -----------------------------------------------------------------------
    def _get(self, ref):
        ray = _ray()
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            # A UserError raised on a worker (missing model, unreachable endpoint) is shown
            # as the same one-line error it would be locally.
            if isinstance(e.cause, UserError):
                raise e.cause from None
            raise

    def _stream(self, workers: list[RayStageWorker], chunks: list[_Chunk], method: str, depth: int,
                what: str) -> Iterator[tuple[int, Any]]:
        """Run chunks on the workers, ``depth`` in flight on each; yield (index, result)
        per input as each chunk returns. A chunk whose worker is lost is requeued."""
        ray = _ray()
        todo = deque(chunks)
        inflight: dict[Any, tuple[RayStageWorker, _Chunk]] = {}
        total = sum(len(c.indices) for c in chunks)
        yielded = 0
        lost: list[str] = []
        try:
            while todo or inflight:
                for w in workers:
                    while w.alive and w.inflight < depth and todo:
                        c = todo.popleft()
                        inflight[getattr(w.actor, method).remote(*c.args)] = (w, c)
                        w.inflight += 1
                if not inflight:
                    raise UserError(
                        f"Ray: every {what} worker was lost ({'; '.join(lost[-3:])}); "
                        f"{total - yielded} of {total} inputs of this stage are not finished. "
                        "Finished inputs are saved: rerun the same command to resume.")
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    w, c = inflight.pop(ref)
                    w.inflight -= 1
                    try:
                        results = self._get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError,
                            ray.exceptions.NodeDiedError) as e:
                        if w.alive:
                            w.alive = False
                            lost.append(f"{w.where}: {type(e).__name__}")
                            log.warning("ray: lost the %s worker on %s (%s); its unfinished "
                                        "inputs go to the other workers", what, w.where,
                                        type(e).__name__)
                        todo.appendleft(c)
                        continue
                    for i, r in zip(c.indices, results):
                        yielded += 1
                        yield i, r
        finally:
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception as e:  # noqa: BLE001 - the worker may already be gone
                    log.debug("ray: cancelling a chunk: %r", e)

