"""Runs stages over files with resume, config-change checks, progress and a summary.

Run directory layout (``OUT``):
  config.yaml             the resolved config (no secrets)
  seeds.jsonl             Seed records            (+ seeds.state.json with the funnel)
  concepts.jsonl          Concepts records        (+ .drops.jsonl, .done.jsonl, .state.json)
  instructions.jsonl      Instruction records     (idem)
  responses.jsonl         Response records        (idem)
  executed.jsonl          Executed records        (idem)
  dataset.jsonl           Example records: the instruction-tuning dataset
  summary.json            the funnel: per stage records in/out, drops by reason, tokens, time
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

from selfcodealign.config import RunConfig, changed_keys, config_to_yaml, parse_shard
from selfcodealign.errors import UserError
from selfcodealign.ids import shard_of
from selfcodealign.jsonl import read_records, write_atomic
from selfcodealign.ledger import LedgerWriter, StageFiles, summarize_ledger
from selfcodealign.progress import StageProgress
from selfcodealign.records import Checks, Drop, Executed, Seed
from selfcodealign.stages.base import ExecutionStage, GenerationStage, ModelInfo, Stage

log = logging.getLogger("selfcodealign")

STAGE_FILES = {
    "seeds": "seeds.jsonl",
    "concepts": "concepts.jsonl",
    "instructions": "instructions.jsonl",
    "responses": "responses.jsonl",
    "execute": "executed.jsonl",
    "verify": "verified.jsonl",
    "select": "dataset.jsonl",
}
ORDER = list(STAGE_FILES)


def check_config(files: StageFiles, name: str, key: dict, force: bool, defaults: dict | None = None) -> bool:
    """True if the stage must start over. Refuses a changed config unless ``force``
    (``defaults``: see ``changed_keys``)."""
    state = files.state()
    if state is None:
        return False
    changed = changed_keys(state.get("config") or {}, key, defaults)
    if not changed:
        return False
    if not force:
        keys = ", ".join(changed) or "(unknown)"
        raise UserError(
            f"stage {name} in {files.out.parent} was run with other settings ({keys}); "
            f"rerun with --force to redo it and the stages after it"
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
) -> dict[str, Any]:
    """Process every input not yet in the ledger; return the stage summary.

    ``inputs`` may be a generator that blocks for more (execution following generation);
    ``on_commit`` gets each input's committed outputs; ``complete=False`` leaves the stage
    open, for a later call that runs over all of its inputs."""
    key = stage.config_key()
    if check_config(files, stage.name, key, force):
        files.remove()
    state = files.state() or {"config": key, "complete": False, "wall_s": 0.0}
    state["config"] = key
    state.setdefault("busy_s", 0.0)
    files.save_state(state)
    done = files.recover(lambda o: o["parent_id"])
    clock = BusyClock()

    def todo():
        seen: set[str] = set()
        for r in inputs:
            if r.id not in done and r.id not in seen:
                seen.add(r.id)
                clock.take()
                yield r

    if total is None and isinstance(inputs, Sized):
        total = len({r.id for r in inputs} - done.keys()) + len(done)
    is_gen = isinstance(stage, GenerationStage)
    passes = getattr(stage, "counts_as_pass", None)
    prior = summarize_ledger(done)
    start = time.monotonic()
    last_save = start
    busy_saved = 0.0
    writer = LedgerWriter(files)
    bar = StageProgress(stage.name, total=total, done=len(done), quiet=quiet,
                        passed=prior.get("passed", 0))

    def save() -> None:
        nonlocal last_save, busy_saved
        now = time.monotonic()
        state["wall_s"] += now - last_save
        last_save = now
        busy = clock.seconds()
        state["busy_s"] += busy - busy_saved
        busy_saved = busy
        files.save_state(state)

    try:
        # Generation takes all its prompts at once (the engine batches them); execution
        # reads its programs lazily, so its input may still be growing.
        results = executor.generate(stage, list(todo())) if is_gen else executor.execute(stage, todo())
        for rec, payload in results:
            outs = stage.parse(rec, payload)
            counts: dict[str, int] = {}
            if is_gen:
                counts = {
                    "completion_tokens": sum(c.completion_tokens for c in payload),
                    "prompt_tokens": sum(c.prompt_tokens for c in payload),
                    "cached_tokens": sum(c.cached_tokens for c in payload),
                }
            elif passes is not None:
                counts = {"passed": sum(1 for o in outs if not isinstance(o, Drop) and passes(o))}
            writer.commit(rec.id, outs, **counts)
            clock.done()
            for o in outs:
                if isinstance(o, Drop):
                    log.info("%s: dropped %s (%s) %s", stage.name, o.input_id, o.reason, o.detail[:120])
            if on_commit is not None:
                on_commit([o for o in outs if not isinstance(o, Drop)])
            bar.advance(tokens=counts.get("completion_tokens", 0), passed=counts.get("passed", 0))
            if time.monotonic() - last_save > 10:
                save()
    finally:
        writer.close()
        bar.close()
        save()
    if complete:
        state["complete"] = True
        files.save_state(state)
    return stage_summary(files)


def stage_summary(files: StageFiles) -> dict[str, Any]:
    """A stage's counts from its ledger, with its wall and busy time from its state."""
    s = summarize_ledger(files.ledger())
    st = files.state() or {}
    s["wall_s"] = round(st.get("wall_s", 0.0), 2)
    s["busy_s"] = round(st.get("busy_s", st.get("wall_s", 0.0)), 2)
    if s.get("completion_tokens") and st.get("wall_s"):
        s["tokens_per_s"] = round(s["completion_tokens"] / st["wall_s"], 2)
    return s


class Follower:
    """The execute stage on a thread of its own, fed each response as the responses stage
    commits it, so the sandbox works while the model generates. It commits through the
    execute stage's own ledger but leaves the stage open: the pipeline's ordinary execute
    pass afterwards runs whatever it did not reach and closes the stage."""

    _END = object()

    def __init__(self, stage: Stage, files: StageFiles, executor, committed: list) -> None:
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
                                        complete=False)
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
    """All stages, in order, in one run directory."""

    def __init__(self, cfg: RunConfig, out: Path, executor_factory, *, force: bool = False,
                 quiet: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.executor_factory = executor_factory
        self.force = force
        self.quiet = quiet

    def files(self, stage: str) -> StageFiles:
        return StageFiles(self.out / STAGE_FILES[stage])

    def _prepare_dir(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"output directory {self.out} is not writable: {e.strerror}") from None
        (self.out / "config.yaml").write_text(config_to_yaml(self.cfg))

    def _forced_from(self, stage: str) -> None:
        """--force on a changed stage redoes it and every stage after it."""
        for later in ORDER[ORDER.index(stage):]:
            self.files(later).remove()

    def run(self) -> dict[str, Any]:
        from selfcodealign.stages.concepts import ConceptsStage
        from selfcodealign.stages.execute import ExecuteStage
        from selfcodealign.stages.instructions import InstructionsStage
        from selfcodealign.stages.responses import ResponsesStage

        self._prepare_dir()
        summary: dict[str, Any] = {"run_dir": str(self.out), "shard": self.cfg.shard, "stages": {}}
        t0 = time.monotonic()

        executor = self.executor_factory()
        try:
            inputs: list = self._seeds(executor, summary)
            info_cache: dict[str, Any] = {}

            def info_and_prompts():
                if not info_cache:
                    t = time.monotonic()
                    info_cache["v"] = model_info_and_prompts(self.cfg, executor.backend)
                    summary["model_load_s"] = round(time.monotonic() - t, 2)
                return info_cache["v"]

            ex_stage = ExecuteStage(self.cfg.execute)
            ex_files = self.files("execute")
            chain = [("concepts", ConceptsStage), ("instructions", InstructionsStage),
                     ("responses", ResponsesStage)]
            for name, cls in chain:
                files = self.files(name)
                key = generation_key(self.cfg, name)
                if check_config(files, name, key, self.force, generation_key(RunConfig(), name)):
                    self._forced_from(name)
                if not (files.state() or {}).get("complete"):
                    info, prompts = info_and_prompts()
                    stage = cls(getattr(self.cfg, name), prompts, info, self.cfg.seed, key)
                    follower = None
                    if name == "responses" and self._overlap(executor):
                        follower = self._follow(files, ex_stage, ex_files, executor)
                    try:
                        run_generation_or_execution(
                            stage, inputs, files, executor, force=self.force, quiet=self.quiet,
                            on_commit=follower.put if follower else None)
                    except BaseException:
                        if follower is not None:
                            follower.stop()
                        raise
                    if follower is not None:
                        follower.finish()
                summary["stages"][name] = stage_summary(files)
                inputs = list(read_records(files.out, cls.output_type))

            if check_config(ex_files, "execute", ex_stage.config_key(), self.force):
                self._forced_from("execute")
            if not (ex_files.state() or {}).get("complete"):
                # After a follower too: it leaves the stage open, and this pass picks up
                # whatever it had not reached (it resumes from the ledger).
                run_generation_or_execution(ex_stage, inputs, ex_files, executor, quiet=self.quiet)
            summary["stages"]["execute"] = stage_summary(ex_files)
            executed = list(read_records(ex_files.out, Executed))
            checks = self._verify(executed, ex_stage, executor, summary)
        finally:
            executor.close()

        summary["stages"]["select"] = write_dataset(self.cfg, executed, self.files("select"), checks)
        summary["wall_s"] = round(time.monotonic() - t0, 2)
        st = summary["stages"]
        summary["busy"] = {
            "generation_s": round(sum(st[n]["busy_s"] for n, _ in chain), 2),
            "execution_s": st["execute"]["busy_s"],
        }
        summary["funnel"] = funnel_line(summary)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _seeds(self, executor, summary: dict[str, Any]) -> list[Seed]:
        """Mined (or read) once per run directory; a shard keeps its own part."""
        from selfcodealign.seeds import mine

        seed_files = self.files("seeds")
        seed_key = self.cfg.seeds.model_dump(mode="json")
        if check_config(seed_files, "seeds", seed_key, self.force):
            self._forced_from("seeds")
        state = seed_files.state()
        if not (state and state.get("complete")):
            seed_files.save_state({"config": seed_key, "complete": False})
            bar = StageProgress("seeds", total=self.cfg.seeds.max_seeds, quiet=self.quiet)
            try:
                funnel = mine(self.cfg.seeds, seed_files.out, progress=bar.update_total,
                              backend=executor.backend if self.cfg.seeds.judge else None)
            finally:
                bar.close()
            state = {"config": seed_key, "complete": True, "funnel": funnel}
            seed_files.save_state(state)
        seeds = list(read_records(seed_files.out, Seed))
        mined = len(seeds)
        if self.cfg.shard:
            k, n = parse_shard(self.cfg.shard)
            seeds = [s for s in seeds if shard_of(s.id, n) == k]
        if not seeds:
            what = f"shard {self.cfg.shard} has none of the {mined} seeds" if mined else "gave no seeds"
            raise UserError(f"seed source {self.cfg.seeds.source!r} {what} (funnel: "
                            f"{json.dumps(state.get('funnel', {}))})")
        summary["stages"]["seeds"] = {"out": len(seeds), "mined": mined, "funnel": state.get("funnel", {})}
        return seeds

    def _overlap(self, executor) -> bool:
        """Execution follows generation unless both would share the same CPU cores (the
        embedded engine's threads spin, and sandbox work beside them slows it 2-4x)."""
        wanted = self.cfg.execute.overlap
        able = getattr(executor, "can_overlap", False)
        if wanted == "auto":
            return able and self.cfg.backend.kind != "llamacpp"
        if wanted and not able:
            log.warning("execute.overlap: the %s executor runs execution after generation",
                        getattr(executor, "name", "this"))
        return bool(wanted) and able

    def _follow(self, resp_files: StageFiles, ex_stage, ex_files: StageFiles, executor) -> "Follower":
        if check_config(ex_files, "execute", ex_stage.config_key(), self.force):
            for later in ORDER[ORDER.index("execute"):]:
                self.files(later).remove()
        # Responses committed by an earlier, interrupted run come first.
        resp_files.recover(lambda o: o["parent_id"])
        committed = list(read_records(resp_files.out, ex_stage.input_type)) if resp_files.out.exists() else []
        return Follower(ex_stage, ex_files, executor, committed)

    def _verify(self, executed: list[Executed], ex_stage, executor, summary: dict) -> dict | None:
        """Verification of the passing responses (resumable, one instruction at a time);
        None when every check is off."""
        from selfcodealign.stages.verify import VerifyStage, group_by_instruction, summarize_checks

        v = self.cfg.verify
        if not (v.mutation or v.agreement or v.faithfulness):
            return None
        stage = VerifyStage(v, self.cfg.execute.timeout, self.cfg.execute.memory_mb, ex_stage.counts_as_pass)
        files = self.files("verify")
        if check_config(files, "verify", stage.config_key(), self.force):
            self._forced_from("verify")
        if not (files.state() or {}).get("complete"):
            run_generation_or_execution(stage, group_by_instruction(executed), files, executor,
                                        quiet=self.quiet)
        checks = list(read_records(files.out, Checks))
        summary["stages"]["verify"] = {**stage_summary(files), **summarize_checks(checks)}
        return {c.parent_id: c for c in checks}


def write_dataset(cfg: RunConfig, executed: list[Executed], files: StageFiles,
                  checks: dict | None = None) -> dict[str, Any]:
    """The select stage: the dataset and its drops written whole (it takes seconds, so it
    is redone on every run rather than resumed); returns its summary."""
    from selfcodealign.stages.execute import ExecuteStage
    from selfcodealign.stages.select import select

    sanitize = None
    if cfg.select.sanitize:
        from selfcodealign.seeds import sanitize as _sanitize

        def sanitize(items, threshold):
            return _sanitize(items, threshold=threshold)

    passes = ExecuteStage(cfg.execute).counts_as_pass
    sel = select(executed, cfg.select, passes, sanitize, checks)
    write_atomic(files.out, sel.examples)
    write_atomic(files.drops, sel.drops)
    write_atomic(selection_file(files, "pairs"), sel.pairs)
    held = selection_file(files, "heldout")
    if cfg.select.holdout_seeds:
        write_atomic(held, sel.heldout)
    elif held.exists():
        held.unlink()  # from an earlier selection with a hold-out: not this one's
    files.save_state({"config": cfg.select.model_dump(mode="json"), "complete": True})
    drop_counts: dict[str, int] = {}
    for d in sel.drops:
        drop_counts[d.reason] = drop_counts.get(d.reason, 0) + 1
    return {"in": sel.stats["instructions"], "out": len(sel.examples), "drops": drop_counts,
            "responses_passed": sum(1 for e in executed if passes(e)),
            "responses_executed": len(executed), "rejected": sel.stats["rejected"],
            "sanitize": sel.stats["sanitize"], "pairs": len(sel.pairs),
            "held_out_seeds": sel.stats["held_out_seeds"], "heldout_tasks": len(sel.heldout)}


def selection_file(files: StageFiles, kind: str) -> Path:
    """Where selection writes its other outputs, beside the dataset (DATASET.pairs.jsonl:
    preference pairs; DATASET.heldout.jsonl: held-out tasks)."""
    stem = files.out.name.removesuffix(".jsonl")
    return files.out.with_name(f"{stem}.{kind}.jsonl")


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


def generation_key(cfg: RunConfig, stage: str) -> dict[str, Any]:
    """The settings that change a generation stage's output; engine speed knobs
    (slots, threads, concurrency, timeouts) are left out."""
    b = cfg.backend
    return {
        "generation": getattr(cfg, stage).model_dump(mode="json"),
        "backend": {"kind": b.kind, "model": b.model, "base_url": b.base_url, "model_name": b.model_name},
        "prompts": cfg.prompts.model_dump(mode="json"),
        "seed": cfg.seed,
        "shard": cfg.shard,
    }


def model_info_and_prompts(cfg: RunConfig, backend):
    from selfcodealign.prompts import PromptBuilder, load_examples

    style = cfg.prompts.style
    if style == "auto":
        style = "chat" if backend.has_chat_template else "completion"
    info = ModelInfo(model=backend.model_id, model_sha256=backend.model_sha256,
                     model_sha256_note=backend.model_sha256_note,
                     backend=backend.name, prompt_style=style)
    prompts = PromptBuilder(
        style=style, examples=tuple(load_examples(cfg.prompts.examples)),
        shots_concepts=cfg.prompts.shots_concepts,
        shots_instructions=cfg.prompts.shots_instructions,
        shots_responses=cfg.prompts.shots_responses,
    )
    return info, prompts
