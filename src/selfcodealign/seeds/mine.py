"""Seed mining: documents -> candidates -> filters -> seeds, with a funnel of every drop.

Order of work (the funnel lists drops in this order):
  worker processes: read + parse (files skipped by reason), extraction reasons, cheap
  filters, benchmark decontamination, dedup signatures;
  this process: near-duplicates (first occurrence in processing order wins), Pyright in
  batches (one batch checks while workers extract the next), the optional judge.

Decisions never depend on timing: the near-duplicate index only ever holds seeds already
kept, and each batch is finalised in processing order, so the same config always gives
the same seeds and the same funnel. With ``max_seeds`` mining stops as soon as that many
seeds are kept, and the funnel counts exactly the documents and candidates seen up to then.

Resumption: after every finalised batch the seeds are appended (fsync) and the state file
(``seeds.state.json`` beside ``seeds.jsonl``, the stage's own, under ``mining``) records
the settings, how many documents are done, the output size and the funnel. A rerun whose settings ``settings_diff.changed_keys`` finds unchanged cuts the
output back to that size, rebuilds the dedup index from it and goes on; a finished run
returns its saved funnel without work. Changed settings mine again from the start.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selfcodealign import jsonl
from selfcodealign.cleaning import dedup
from selfcodealign.errors import UserError
from selfcodealign.ids import make_id
from selfcodealign.ledger import StageFiles
from selfcodealign.records import Seed
from selfcodealign.seeds import typecheck
from selfcodealign.seeds.config import SeedsConfig
from selfcodealign.seeds.filters import CHEAP_REASONS, EXTRACT_REASONS
from selfcodealign.seeds.sources import Doc, open_source
from selfcodealign.seeds.chunks import DocResult, Passed, Settings, process_chunk
from selfcodealign.settings_diff import changed_keys

log = logging.getLogger("selfcodealign.seeds")

# Bump when a filter changes meaning, so old state files are not resumed.
MINING_VERSION = 2
Progress = Callable[[int, "int | None"], None]


def _state_config(cfg: SeedsConfig) -> dict[str, Any]:
    """The settings a state file saves: those that can change which seeds come out."""
    data = cfg.model_dump(mode="json", exclude={"workers", "typecheck_batch"})
    return {**data, "mining_version": MINING_VERSION}


def _empty_funnel(source: str) -> dict[str, Any]:
    return {
        "source": source,
        "files": 0,
        "files_skipped": {},
        "candidates": 0,
        "dropped": {},
        "kept": 0,
        "seconds": {},
        "notes": [],
    }


# Every filter, in the order it applies, so a funnel lists each one (zeros included).
DROP_ORDER = (
    *EXTRACT_REASONS, *CHEAP_REASONS, "benchmark_contamination", "near_duplicate",
    "typecheck", "judge", "judge_no_answer",
)


def _ordered(counts: dict[str, int], cfg: SeedsConfig) -> dict[str, int]:
    order = [k for k in DROP_ORDER if cfg.judge or not k.startswith("judge")]
    out = {k: counts.get(k, 0) for k in order}
    out.update({k: v for k, v in counts.items() if k not in out})
    return out


def _count(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def _settings(cfg: SeedsConfig, signatures: str | None) -> Settings:
    return Settings(
        min_lines=cfg.min_lines,
        max_lines=cfg.max_lines,
        unwanted_words=tuple(cfg.unwanted_words),
        unsafe_imports=tuple(cfg.unsafe_imports),
        decontaminate=cfg.decontaminate,
        benchmark_data=tuple(cfg.benchmark_data) if cfg.benchmark_data else None,
        signatures=signatures,
        license_allowlist=frozenset(cfg.license_allowlist) if cfg.license_allowlist is not None else None,
        max_file_bytes=cfg.max_file_bytes,
    )


def _chunks(docs: Iterator[Doc], size: int) -> Iterator[list[Doc]]:
    while True:
        chunk = list(itertools.islice(docs, size))
        if not chunk:
            return
        yield chunk


def _results(
    docs: Iterator[Doc], settings: Settings, workers: int, chunk: int
) -> Iterator[tuple[list[DocResult], dict[str, float]]]:
    """Worker results in document order, with a bounded number of chunks in flight."""
    if workers <= 1:
        for c in _chunks(docs, chunk):
            yield process_chunk(c, settings)
        return
    ctx = multiprocessing.get_context(_start_method())
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        inflight: collections.deque[cf.Future] = collections.deque()
        it = _chunks(docs, chunk)
        try:
            for c in it:
                inflight.append(pool.submit(process_chunk, c, settings))
                if len(inflight) >= 2 * workers:
                    yield inflight.popleft().result()
            while inflight:
                yield inflight.popleft().result()
        finally:
            for f in inflight:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use (Linux)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _start_method() -> str:
    """fork when this process has no other threads (fast, and a caller's script without a
    ``__main__`` guard still works); spawn otherwise, since forking a threaded process
    can deadlock the child."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


class _Batch:
    def __init__(self) -> None:
        self.docs: list[DocResult] = []
        self.pending: list[Passed] = []
        self.future: cf.Future | None = None


SEED_FILE_PREFIX = "seeds:"


def take_seeds(cfg: SeedsConfig, path: Path, out_path: Path) -> dict[str, Any]:
    """The first ``max_seeds`` seeds of a file written by ``selfcodealign seeds``: mining
    once and running its seeds elsewhere (on a GPU machine, in shards) gives every run
    the same seeds."""
    if not path.is_file():
        raise UserError(f"seeds file not found: {path}")
    seeds = list(itertools.islice(jsonl.read_records(path, Seed), cfg.max_seeds))
    jsonl.write_atomic(out_path, seeds)
    funnel = _empty_funnel(f"{SEED_FILE_PREFIX}{path}")
    funnel["kept"] = len(seeds)
    funnel["notes"].append(f"seeds read from {path}; mined before, no filter applied again")
    return funnel


def mine(cfg: SeedsConfig, out_path: Path, *, backend: Any = None, progress: Progress | None = None) -> dict[str, Any]:
    """Mine seeds into ``out_path`` (JSONL of ``Seed``) and return the funnel.

    ``progress(done, total)`` is called after each batch: seeds kept of ``max_seeds`` when
    that is set, else documents done of the total (None when the source cannot tell).
    A ``seeds:FILE`` source is a seeds file mined before: its seeds are taken as they are.
    """
    if cfg.source.startswith(SEED_FILE_PREFIX):
        return take_seeds(cfg, Path(cfg.source[len(SEED_FILE_PREFIX):]), Path(out_path))
    return SeedMiner(cfg, Path(out_path), backend=backend, progress=progress).run()


class SeedMiner:
    """One mining run (see the module docstring); ``run`` goes through the steps in order."""

    def __init__(self, cfg: SeedsConfig, out: Path, *, backend: Any = None, progress: Progress | None = None) -> None:
        self.cfg, self.out, self.backend, self.progress = cfg, out, backend, progress
        self.files = StageFiles(out)
        # Where versions before one state file per stage kept the mining progress.
        self.legacy_state_path = out.with_name(out.name + ".state.json")
        self.config = _state_config(cfg)
        self.t_mark = time.perf_counter()  # start of the time not yet added to seconds.total
        self.inflight: _Batch | None = None  # the batch Pyright is checking

    def run(self) -> dict[str, Any]:
        state = self.saved_state()
        if state and state.get("done"):
            return state["funnel"]
        if self.cfg.judge and self.backend is None:
            raise UserError("the seed quality judge needs a model backend (judge: true)")
        self.open(state)
        self.appender = jsonl.Appender(self.out)
        self.tc_pool = cf.ThreadPoolExecutor(max_workers=1) if self.do_typecheck else None
        try:
            self.extract()
            if self.inflight is not None:
                self.finalize(self.inflight)
            self.finish()
        finally:
            self.results.close()
            self.appender.close()
            if self.tc_pool is not None:
                self.tc_pool.shutdown(wait=True, cancel_futures=True)
        log.info("seeds: %d kept of %d candidates in %d files", self.kept, self.funnel["candidates"], self.funnel["files"])
        return self.funnel

    def saved_state(self) -> dict | None:
        """The state to resume from; None to mine from the start."""
        if not self.out.exists():
            return None
        state = (self.files.state() or {}).get("mining") or self.legacy_state()
        if not state:
            return None
        # A state file of an older version holds a hash of the settings instead of them.
        changed = (changed_keys(state["config"], self.config, _state_config(SeedsConfig()))
                   if "config" in state else ["state of an older version"])
        if changed:
            log.warning("seed settings changed since %s was written (%s): mining again", self.out, ", ".join(changed))
            return None
        if self.out.stat().st_size < state.get("out_bytes", 0):
            log.warning("%s is shorter than its state file says: mining again", self.out)
            return None
        return state

    def legacy_state(self) -> dict | None:
        """The progress an older version kept in ``<out>.state.json``, moved into the
        stage's state file (None when there is none)."""
        try:
            state = json.loads(self.legacy_state_path.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(state, dict) and state:
            self.files.update_state(mining=state)
        self.legacy_state_path.unlink()
        return state if isinstance(state, dict) else None

    def save_state(self) -> None:
        self.files.update_state(mining=self.state)

    def open(self, state: dict | None) -> None:
        """Opens the source and the output (cut back to the state's size on resume), and
        starts the workers' results after the documents already done."""
        cfg = self.cfg
        self.do_typecheck = cfg.typecheck and typecheck.available()
        if cfg.typecheck and not self.do_typecheck:
            typecheck.warn_missing_once()
        self.ddx = dedup.NearDupIndex(cfg.dedup_threshold) if cfg.dedup else None
        signatures = None if self.ddx is None else ("minhash" if self.ddx.use_minhash else "exact")
        self.source = source = open_source(cfg.source, sample_seed=cfg.sample_seed, content_column=cfg.content_column,
                                           hf_split=cfg.hf_split, shuffle_buffer=cfg.shuffle_buffer)
        if state is None:
            state = {"config": self.config, "docs_done": 0, "out_bytes": 0, "done": False,
                     "funnel": _empty_funnel(source.name)}
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_bytes(b"")
        else:
            with open(self.out, "rb+") as f:
                f.truncate(state["out_bytes"])
            if self.ddx is not None:
                for seed in jsonl.read_records(self.out, Seed):
                    self.ddx.add(self.ddx.signature(seed.code))
            log.info("resuming seed mining after %d documents", state["docs_done"])
        self.state, self.funnel = state, state["funnel"]
        notes = self.funnel.setdefault("notes", [])
        if cfg.typecheck and not self.do_typecheck and "typecheck skipped: basedpyright not installed" not in notes:
            notes.append("typecheck skipped: basedpyright not installed")
        self.secs: dict[str, float] = self.funnel["seconds"]
        self.kept: int = self.funnel["kept"]
        self.stopped = cfg.max_seeds is not None and self.kept >= cfg.max_seeds
        chunk = 8 if source.total is not None else 32
        if cfg.max_seeds is not None:
            chunk = 4  # small samples: don't read far beyond what is needed
        docs = itertools.islice(source.docs, state["docs_done"], None)
        self.results = _results(docs, _settings(cfg, signatures), cfg.workers or _cores(), chunk)

    def extract(self) -> None:
        """Gathers the workers' results into batches, handing each full one to ``flush``."""
        if self.stopped:
            return
        batch = _Batch()
        for results, timings in self.results:
            for name, v in timings.items():
                _count(self.secs, name, v)
            for doc in results:
                for k, o in enumerate(doc.outcomes):
                    if isinstance(o, Passed):
                        # Already a duplicate of a kept seed: no need to type-check it.
                        if self.ddx is not None and self.ddx.is_dup(o.sig):
                            doc.outcomes[k] = "near_duplicate"
                        else:
                            batch.pending.append(o)
                batch.docs.append(doc)
                # While Pyright is busy, keep extracting into a bigger batch rather than
                # wait: the two overlap, and no decision depends on batch size.
                inflight = self.inflight
                busy = inflight is not None and inflight.future is not None and not inflight.future.done()
                if len(batch.pending) >= self.target() and not busy:
                    self.flush(batch)
                    if self.stopped:
                        return
                    batch = _Batch()
        self.flush(batch)

    def target(self) -> int:
        """Candidates per batch: fewer near ``max_seeds``, so as not to check far beyond it."""
        if self.cfg.max_seeds is None:
            return self.cfg.typecheck_batch
        return min(self.cfg.typecheck_batch, max(8, 2 * (self.cfg.max_seeds - self.kept)))

    def flush(self, batch: _Batch) -> None:
        """Finalises the batch in flight, then starts Pyright on this one (or finalises it
        at once when there is nothing to check)."""
        if self.inflight is not None:
            self.finalize(self.inflight)
            self.inflight = None
        if self.stopped:
            return
        if self.tc_pool is not None and batch.pending:
            batch.future = self.tc_pool.submit(self.run_typecheck, [p.code for p in batch.pending])
            self.inflight = batch
        else:
            self.finalize(batch)

    def run_typecheck(self, codes: list[str]) -> tuple[list[list[str]], float, float]:
        t = time.perf_counter()
        # Pyright's CPU time: the pool's workers are children too, but they are only
        # accounted when reaped, at the very end.
        c0 = _children_cpu()
        errs = typecheck.check(codes, third_party=self.cfg.typecheck_third_party)
        return errs, time.perf_counter() - t, _children_cpu() - c0

    def judge_batch(self, batch: _Batch, errors: list[list[str]]) -> dict[int, bool | None]:
        """The judge's verdicts on the candidates without Pyright errors, by position."""
        from selfcodealign.seeds.judge import judge

        t = time.perf_counter()
        idx = [i for i, e in enumerate(errors) if not e]
        verdicts = dict(zip(idx, judge(self.backend, [batch.pending[i].code for i in idx])))
        _count(self.secs, "judge", time.perf_counter() - t)
        return verdicts

    def finalize(self, batch: _Batch) -> None:
        """Decides every candidate of the batch in document order, then writes the kept
        seeds and the state."""
        errors: list[list[str]] = [[] for _ in batch.pending]
        if batch.future is not None:
            errors, took, cpu = batch.future.result()
            _count(self.secs, "typecheck", took)
            _count(self.secs, "typecheck_cpu", cpu)
        verdicts = self.judge_batch(batch, errors) if self.cfg.judge else {}
        pos = {id(p): i for i, p in enumerate(batch.pending)}
        funnel, dropped = self.funnel, self.funnel["dropped"]
        seeds: list[Seed] = []
        t = time.perf_counter()
        ndocs = 0
        for doc in batch.docs:
            if self.stopped:
                break
            ndocs += 1
            funnel["files"] += 1
            if doc.skip:
                _count(funnel["files_skipped"], doc.skip)
                continue
            for o in doc.outcomes:
                funnel["candidates"] += 1
                if isinstance(o, str):
                    _count(dropped, o)
                    continue
                i = pos[id(o)]
                if self.ddx is not None and self.ddx.is_dup(o.sig):
                    _count(dropped, "near_duplicate")
                elif errors[i]:
                    _count(dropped, "typecheck")
                elif self.cfg.judge and verdicts.get(i) is not True:
                    _count(dropped, "judge" if verdicts.get(i) is False else "judge_no_answer")
                else:
                    if self.ddx is not None:
                        self.ddx.add(o.sig)
                    seeds.append(Seed(
                        id=make_id("seed", o.code), code=o.code, name=o.name, source=self.source.name,
                        path=doc.path, line_start=o.line_start, line_end=o.line_end, license=doc.license,
                    ))
                    self.kept += 1
                    if self.cfg.max_seeds is not None and self.kept >= self.cfg.max_seeds:
                        self.stopped = True
                        break
        _count(self.secs, "dedup", time.perf_counter() - t)
        self.checkpoint(seeds, ndocs)

    def checkpoint(self, seeds: list[Seed], ndocs: int) -> None:
        """Appends the seeds (fsync), then records the progress they make in the state."""
        self.appender.write_many(seeds)
        self.funnel["kept"] = self.kept
        self.state["docs_done"] += ndocs
        self.state["out_bytes"] = self.out.stat().st_size
        now = time.perf_counter()
        _count(self.secs, "total", now - self.t_mark)
        self.t_mark = now
        self.save_state()
        if self.progress is not None:
            if self.cfg.max_seeds is not None:
                self.progress(self.kept, self.cfg.max_seeds)
            else:
                self.progress(self.state["docs_done"], self.source.total)

    def finish(self) -> None:
        """Marks the run done, with the funnel's drops in filter order."""
        self.state["done"] = True
        self.funnel["dropped"] = _ordered(self.funnel["dropped"], self.cfg)
        _count(self.secs, "total", time.perf_counter() - self.t_mark)
        self.secs.update({k: round(v, 3) for k, v in self.secs.items()})
        self.save_state()
