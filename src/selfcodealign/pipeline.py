"""Runs stages over files with resume, config-change checks, progress and a summary.

Run directory layout (``OUT``): config.yaml (the resolved config, no secrets), each
stage's output as its registry entry names it (``selfcodealign.stages.STAGES``: seeds.jsonl
... executed.jsonl, verified.jsonl, dataset.jsonl), each with .drops.jsonl, .done.jsonl
(the ledger) and .state.json (settings, completion, time) beside it, and summary.json
(per stage records in/out, drops by reason, tokens, time).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sized
from pathlib import Path
from typing import Any

from selfcodealign.config import RunConfig, config_to_yaml
from selfcodealign.settings_diff import changed_keys, flatten
from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_records
from selfcodealign.ledger import (
    LedgerWriter,
    StageFiles,
    stage_summary,
    summarize_ledger,
)
from selfcodealign.progress import StageProgress
from selfcodealign.records import Drop
from selfcodealign.stages import BY_NAME, STAGES, StageSpec
from selfcodealign.stages.base import GenerationStage, Stage, StageEnv, WholeStage

log = logging.getLogger("selfcodealign")


def check_config(files: StageFiles, name: str, key: dict, force: bool, defaults: dict | None = None) -> bool:
    """True if the stage must start over. Refuses a changed config unless ``force``
    (``defaults``: see ``changed_keys``)."""
    state = files.state()
    if state is None or "config" not in state:
        return False  # not started (a seeds file's state may hold only its mining progress)
    changed = changed_keys(state.get("config") or {}, key, defaults)
    if not changed:
        return False
    if not force:
        was, now = flatten(state.get("config") or {}), flatten(key)
        keys = "; ".join(f"{k}: {json.dumps(was.get(k))}, now {json.dumps(now.get(k))}" for k in changed)
        raise UserError(
            f"stage {name} in {files.out.parent} was run with other settings ({keys or 'unknown'}); "
            f"set them as they were to resume it, or rerun with --force to redo it and the stages after it"
        )
    return True


class BusyClock:
    """Seconds with work in flight: inputs handed to the executor and not yet committed.
    A stage fed while it runs (execution following generation) is busy only part of its
    wall time. Inputs are taken on one thread and committed on another: hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight = 0
        self._since = 0.0
        self._total = 0.0

    def take(self) -> None:
        with self._lock:
            if self._inflight == 0:
                self._since = time.monotonic()
            self._inflight += 1

    def done(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._total += time.monotonic() - self._since

    def seconds(self) -> float:
        with self._lock:
            return self._total + (time.monotonic() - self._since if self._inflight else 0.0)


class _StateSaver:
    """The stage's state file, saved with the wall and busy seconds since the last save."""

    def __init__(self, files: StageFiles, state: dict[str, Any], clock: BusyClock) -> None:
        self.files, self.state, self.clock = files, state, clock
        self._last = time.monotonic()
        self._busy_saved = 0.0

    def due(self) -> bool:
        return time.monotonic() - self._last > 10

    def save(self) -> None:
        now = time.monotonic()
        self.state["wall_s"] += now - self._last
        self._last = now
        busy = self.clock.seconds()
        self.state["busy_s"] += busy - self._busy_saved
        self._busy_saved = busy
        self.files.save_state(self.state)


def _open_state(stage: Stage, files: StageFiles, force: bool, defaults: dict | None) -> dict[str, Any]:
    """The stage's state under its current settings (starting over when they changed)."""
    key = stage.config_key()
    if check_config(files, stage.name, key, force, defaults):
        files.remove()
    state = files.state() or {"config": key, "complete": False, "wall_s": 0.0}
    state["config"] = key
    state.setdefault("busy_s", 0.0)
    files.save_state(state)
    return state


def _not_done(inputs: Iterable, done: dict[str, dict], clock: BusyClock):
    """The inputs without a ledger line, each once, each starting the busy clock."""
    seen: set[str] = set()
    for r in inputs:
        if r.id not in done and r.id not in seen:
            seen.add(r.id)
            clock.take()
            yield r


def _counts(payload, outs: list, is_gen: bool, passes) -> dict[str, int]:
    """What the ledger counts for one input beside its outputs: tokens, or passes."""
    if is_gen:
        return {
            "completion_tokens": sum(c.completion_tokens for c in payload),
            "prompt_tokens": sum(c.prompt_tokens for c in payload),
            "cached_tokens": sum(c.cached_tokens for c in payload),
        }
    if passes is not None:
        return {"passed": sum(1 for o in outs if not isinstance(o, Drop) and passes(o))}
    return {}


def _commit_all(stage: Stage, results, writer: LedgerWriter, clock: BusyClock, bar: StageProgress,
                saver: _StateSaver, on_commit: Callable[[list], None] | None) -> None:
    """Parses and commits each input's results as the executor hands them back."""
    is_gen = isinstance(stage, GenerationStage)
    passes = getattr(stage, "counts_as_pass", None)
    for rec, payload in results:
        outs = stage.parse(rec, payload)
        counts = _counts(payload, outs, is_gen, passes)
        writer.commit(rec.id, outs, **counts)
        clock.done()
        for o in outs:
            if isinstance(o, Drop):
                log.info("%s: dropped %s (%s) %s", stage.name, o.input_id, o.reason, o.detail[:120])
        if on_commit is not None:
            on_commit([o for o in outs if not isinstance(o, Drop)])
        bar.advance(tokens=counts.get("completion_tokens", 0), passed=counts.get("passed", 0))
        if saver.due():
            saver.save()


def run_generation_or_execution(
    stage: Stage,
    inputs: Iterable,
    files: StageFiles,
    executor,
    *,
    force: bool = False,
    quiet: bool = False,
    total: int | None = None,
    on_commit: Callable[[list], None] | None = None,
    complete: bool = True,
    defaults: dict | None = None,
) -> dict[str, Any]:
    """Process every input not yet in the ledger; return the stage summary.

    ``inputs`` may be a generator that blocks for more (execution following generation);
    ``on_commit`` gets each input's committed outputs; ``complete=False`` leaves the stage
    open, for a later call that runs over all of its inputs; ``defaults``: see
    ``settings_diff.changed_keys``."""
    state = _open_state(stage, files, force, defaults)
    done = files.recover(lambda o: o["parent_id"])
    clock = BusyClock()
    if total is None and isinstance(inputs, Sized):
        total = len({r.id for r in inputs} - done.keys()) + len(done)
    prior = summarize_ledger(done)
    saver = _StateSaver(files, state, clock)
    writer = LedgerWriter(files)
    bar = StageProgress(stage.name, total=total, done=len(done), quiet=quiet,
                        passed=prior.get("passed", 0))
    try:
        # Generation takes all its prompts at once (the engine batches them); execution
        # reads its programs lazily, so its input may still be growing.
        todo = _not_done(inputs, done, clock)
        results = (executor.generate(stage, list(todo)) if isinstance(stage, GenerationStage)
                   else executor.execute(stage, todo))
        _commit_all(stage, results, writer, clock, bar, saver, on_commit)
    finally:
        writer.close()
        bar.close()
        saver.save()
    if complete:
        state["complete"] = True
        files.save_state(state)
    return stage_summary(files)


class Follower:
    """The execute stage on a thread of its own, fed each response as the responses stage
    commits it, so the sandbox works while the model generates. It commits through the
    execute stage's own ledger but leaves the stage open: the pipeline's ordinary execute
    pass afterwards runs whatever it did not reach and closes the stage."""

    _END = object()

    def __init__(self, stage: Stage, files: StageFiles, executor, committed: list,
                 defaults: dict | None = None) -> None:
        self._defaults = defaults
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self.error: BaseException | None = None
        for r in committed:
            self._queue.put(r)
        self._thread = threading.Thread(target=self._run, args=(stage, files, executor),
                                        name="execute-follower", daemon=True)
        self._thread.start()

    def put(self, records: list) -> None:
        for r in records:
            self._queue.put(r)

    def _inputs(self):
        while not self._stopping:
            item = self._queue.get()
            if item is self._END:
                return
            yield item

    def _run(self, stage: Stage, files: StageFiles, executor) -> None:
        try:
            run_generation_or_execution(stage, self._inputs(), files, executor, quiet=True,
                                        complete=False, defaults=self._defaults)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e
            log.error("execution following generation stopped: %s", e)

    def finish(self) -> None:
        """Waits until every queued response is executed."""
        self._queue.put(self._END)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Generation failed or was interrupted: wait only for the programs already in
        the sandbox (their verdicts are committed; the rest is redone on resume)."""
        self._stopping = True
        self._queue.put(self._END)
        self._thread.join()


class Pipeline:
    """Every stage of the registry, in order, in one run directory."""

    def __init__(self, cfg: RunConfig, out: Path, executor_factory, *, force: bool = False,
                 quiet: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.executor_factory = executor_factory
        self.force = force
        self.quiet = quiet

    def files(self, stage: str) -> StageFiles:
        return StageFiles(self.out / BY_NAME[stage].file)

    def _prepare_dir(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"output directory {self.out} is not writable: {e.strerror}") from None
        (self.out / "config.yaml").write_text(config_to_yaml(self.cfg))

    def run(self) -> dict[str, Any]:
        self._prepare_dir()
        summary: dict[str, Any] = {"run_dir": str(self.out), "shard": self.cfg.shard, "stages": {}}
        t0 = time.monotonic()
        env = StageEnv(self.cfg, self.executor_factory)
        upstream: dict[str, Any] = {}
        try:
            for i, spec in enumerate(STAGES):
                if not spec.cls.enabled(self.cfg):
                    upstream[spec.name] = None
                    continue
                files = self.files(spec.name)
                self._check(spec)
                nxt = STAGES[i + 1] if i + 1 < len(STAGES) else None
                follow = None
                if (nxt and nxt.cls.follows == spec.name and not is_complete(spec, files)
                        and self._overlap(env)):
                    follow = self._follower(nxt, env, files)
                run_stage(spec, self.cfg, env, upstream, files, force=self.force, quiet=self.quiet,
                          follow=follow)
                upstream[spec.name] = spec.cls.outputs(files, self.cfg)
                summary["stages"][spec.name] = spec.cls.summarize(files, upstream[spec.name])
        finally:
            env.close()
        if env.model_load_s is not None:
            summary["model_load_s"] = env.model_load_s
        summary["wall_s"] = round(time.monotonic() - t0, 2)
        st = summary["stages"]
        summary["busy"] = {
            "generation_s": round(sum(st[s.name]["busy_s"] for s in STAGES
                                      if issubclass(s.cls, GenerationStage) and s.name in st), 2),
            "execution_s": st["execute"]["busy_s"],
        }
        summary["funnel"] = funnel_line(summary)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _check(self, spec: StageSpec) -> None:
        """--force on a changed stage redoes it and every stage after it."""
        if settings_changed(spec, self.cfg, self.files(spec.name), self.force):
            for later in STAGES[STAGES.index(spec):]:
                self.files(later.name).remove()

    def _overlap(self, env: StageEnv) -> bool:
        """Execution follows generation unless both would share the same CPU cores (the
        embedded engine's threads spin, and sandbox work beside them slows it 2-4x)."""
        wanted = self.cfg.execute.overlap
        able = getattr(env.executor, "can_overlap", False)
        if wanted == "auto":
            return able and self.cfg.backend.kind != "llamacpp"
        if wanted and not able:
            log.warning("execute.overlap: the %s executor runs execution after generation",
                        getattr(env.executor, "name", "this"))
        return bool(wanted) and able

    def _follower(self, spec: StageSpec, env: StageEnv, fed_by: StageFiles) -> Follower:
        files = self.files(spec.name)
        self._check(spec)
        stage = spec.cls.from_config(self.cfg, env)
        # Inputs committed by an earlier, interrupted run come first.
        fed_by.recover(lambda o: o["parent_id"])
        committed = list(read_records(fed_by.out, stage.input_type)) if fed_by.out.exists() else []
        return Follower(stage, files, env.executor, committed, spec.defaults)


def run_stage(spec: StageSpec, cfg: RunConfig, env: StageEnv, upstream: dict[str, Any],
              files: StageFiles, *, force: bool = False, quiet: bool = False,
              follow: Follower | None = None) -> None:
    """Runs one stage over what it reads of ``upstream`` (stage name -> outputs) unless its
    output is complete: input by input through its ledger, or whole. ``follow``: the next
    stage, fed each commit of this one on a thread of its own."""
    if spec.cls.keeps_output and files.state() is not None and not files.out.exists():
        # Its output was deleted (to make it again): the ledger would skip what is gone.
        files.remove()
    if is_complete(spec, files):
        return
    stage = spec.cls.from_config(cfg, env)
    inputs = stage.inputs(upstream)
    if isinstance(stage, WholeStage):
        stage.write(inputs, files, quiet)
        return
    try:
        run_generation_or_execution(stage, inputs, files, env.executor, force=force, quiet=quiet,
                                    on_commit=follow.put if follow else None,
                                    defaults=spec.defaults)
    except BaseException:
        if follow is not None:
            follow.stop()
        raise
    if follow is not None:
        follow.finish()


def is_complete(spec: StageSpec, files: StageFiles) -> bool:
    return spec.cls.keeps_output and bool((files.state() or {}).get("complete"))


def settings_changed(spec: StageSpec, cfg: RunConfig, files: StageFiles, force: bool) -> bool:
    """True if the stage's kept output was made with other settings and must be redone
    (``--force``); without ``force`` a change is refused by name (``check_config``)."""
    return spec.cls.keeps_output and check_config(files, spec.name, spec.cls.settings(cfg), force, spec.defaults)


def funnel_line(summary: dict[str, Any]) -> dict[str, int]:
    st = summary["stages"]
    return {
        "seeds": st["seeds"]["out"],
        "concepts": st["concepts"]["out"],
        "instructions": st["instructions"]["out"],
        "responses": st["responses"]["out"],
        "passing": st["select"]["responses_passed"],
        "dataset": st["select"]["out"],
    }
