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
import time
from pathlib import Path
from typing import Any

from selfcodealign.config import RunConfig, changed_keys, config_to_yaml
from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_records, write_atomic
from selfcodealign.ledger import LedgerWriter, StageFiles, summarize_ledger
from selfcodealign.progress import StageProgress
from selfcodealign.records import Drop, Executed, Seed
from selfcodealign.stages.base import ExecutionStage, GenerationStage, ModelInfo, Stage

log = logging.getLogger("selfcodealign")

STAGE_FILES = {
    "seeds": "seeds.jsonl",
    "concepts": "concepts.jsonl",
    "instructions": "instructions.jsonl",
    "responses": "responses.jsonl",
    "execute": "executed.jsonl",
    "select": "dataset.jsonl",
}
ORDER = list(STAGE_FILES)


def check_config(files: StageFiles, name: str, key: dict, force: bool) -> bool:
    """True if the stage must start over. Refuses a changed config unless ``force``."""
    state = files.state()
    if state is None:
        return False
    old = state.get("config")
    new = json.loads(json.dumps(key))
    if old == new:
        return False
    if not force:
        keys = ", ".join(changed_keys(old or {}, new)) or "(unknown)"
        raise UserError(
            f"stage {name} in {files.out.parent} was run with other settings ({keys}); "
            f"rerun with --force to redo it and the stages after it"
        )
    return True


def run_generation_or_execution(
    stage: Stage,
    inputs: list,
    files: StageFiles,
    executor,
    *,
    force: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Process every input not yet in the ledger; return the stage summary."""
    key = stage.config_key()
    if check_config(files, stage.name, key, force):
        files.remove()
    state = files.state() or {"config": key, "complete": False, "wall_s": 0.0}
    state["config"] = key
    files.save_state(state)
    done = files.recover(lambda o: o["parent_id"])
    seen: set[str] = set()
    todo = []
    for r in inputs:
        if r.id not in done and r.id not in seen:
            seen.add(r.id)
            todo.append(r)
    is_gen = isinstance(stage, GenerationStage)
    passes = getattr(stage, "counts_as_pass", None)
    prior = summarize_ledger(done)
    start = time.monotonic()
    last_save = start
    writer = LedgerWriter(files)
    bar = StageProgress(stage.name, total=len(done) + len(todo), done=len(done), quiet=quiet,
                        passed=prior.get("passed", 0))
    try:
        results = executor.generate(stage, todo) if is_gen else executor.execute(stage, todo)
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
            for o in outs:
                if isinstance(o, Drop):
                    log.info("%s: dropped %s (%s) %s", stage.name, o.input_id, o.reason, o.detail[:120])
            bar.advance(tokens=counts.get("completion_tokens", 0), passed=counts.get("passed", 0))
            now = time.monotonic()
            if now - last_save > 10:
                state["wall_s"] += now - last_save
                last_save = now
                files.save_state(state)
    finally:
        writer.close()
        bar.close()
        state["wall_s"] += time.monotonic() - last_save
        files.save_state(state)
    state["complete"] = True
    files.save_state(state)
    summary = summarize_ledger(files.ledger())
    summary["wall_s"] = round(state["wall_s"], 2)
    if is_gen and state["wall_s"] > 0:
        summary["tokens_per_s"] = round(summary.get("completion_tokens", 0) / state["wall_s"], 2)
    return summary


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
        from selfcodealign.seeds import mine

        self._prepare_dir()
        summary: dict[str, Any] = {"run_dir": str(self.out), "stages": {}}
        t0 = time.monotonic()

        executor = self.executor_factory()
        try:
            # --- seeds ------------------------------------------------------------------------
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
            if not seeds:
                raise UserError(
                    f"seed source {self.cfg.seeds.source!r} gave no seeds (funnel: "
                    f"{json.dumps(state.get('funnel', {}))})"
                )
            summary["stages"]["seeds"] = {"out": len(seeds), "funnel": state.get("funnel", {})}

            from selfcodealign.stages.concepts import ConceptsStage
            from selfcodealign.stages.execute import ExecuteStage
            from selfcodealign.stages.instructions import InstructionsStage
            from selfcodealign.stages.responses import ResponsesStage

            info_cache: dict[str, Any] = {}

            def info_and_prompts():
                if not info_cache:
                    info_cache["v"] = model_info_and_prompts(self.cfg, executor.backend)
                return info_cache["v"]

            chain = [("concepts", ConceptsStage), ("instructions", InstructionsStage),
                     ("responses", ResponsesStage)]
            inputs: list = seeds
            for name, cls in chain:
                files = self.files(name)
                key = generation_key(self.cfg, name)
                if check_config(files, name, key, self.force):
                    self._forced_from(name)
                if not (files.state() or {}).get("complete"):
                    info, prompts = info_and_prompts()
                    stage = cls(getattr(self.cfg, name), prompts, info, self.cfg.seed, key)
                    summary["stages"][name] = run_generation_or_execution(
                        stage, inputs, files, executor, force=self.force, quiet=self.quiet)
                else:
                    summary["stages"][name] = self._finished_summary(files)
                inputs = list(read_records(files.out, cls.output_type))

            ex_stage = ExecuteStage(self.cfg.execute)
            files = self.files("execute")
            if check_config(files, "execute", ex_stage.config_key(), self.force):
                self._forced_from("execute")
            if not (files.state() or {}).get("complete"):
                summary["stages"]["execute"] = run_generation_or_execution(
                    ex_stage, inputs, files, executor, force=self.force, quiet=self.quiet)
            else:
                summary["stages"]["execute"] = self._finished_summary(files)
            executed = list(read_records(files.out, Executed))
        finally:
            executor.close()

        summary["stages"]["select"] = self.select(executed, ex_stage)
        summary["wall_s"] = round(time.monotonic() - t0, 2)
        summary["funnel"] = funnel_line(summary)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _finished_summary(self, files: StageFiles) -> dict[str, Any]:
        s = summarize_ledger(files.ledger())
        st = files.state() or {}
        s["wall_s"] = round(st.get("wall_s", 0.0), 2)
        if s.get("completion_tokens") and st.get("wall_s"):
            s["tokens_per_s"] = round(s["completion_tokens"] / st["wall_s"], 2)
        return s

    def select(self, executed: list[Executed], ex_stage) -> dict[str, Any]:
        from selfcodealign.stages.select import select

        sanitize = None
        if self.cfg.select.sanitize:
            from selfcodealign.seeds import sanitize as _sanitize

            sanitize = lambda items, thr: _sanitize(items, threshold=thr)  # noqa: E731
        examples, drops, stats = select(executed, self.cfg.select, ex_stage.counts_as_pass, sanitize)
        files = self.files("select")
        write_atomic(files.out, examples)
        write_atomic(files.drops, drops)
        files.save_state({"config": self.cfg.select.model_dump(mode="json"), "complete": True})
        drop_counts: dict[str, int] = {}
        for d in drops:
            drop_counts[d.reason] = drop_counts.get(d.reason, 0) + 1
        return {"in": stats["instructions"], "out": len(examples), "drops": drop_counts,
                "responses_passed": sum(1 for e in executed if ex_stage.counts_as_pass(e)),
                "responses_executed": len(executed), "sanitize": stats["sanitize"]}


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
    }


def model_info_and_prompts(cfg: RunConfig, backend):
    from selfcodealign.prompts import PromptBuilder, load_examples

    style = cfg.prompts.style
    if style == "auto":
        style = "chat" if backend.has_chat_template else "completion"
    info = ModelInfo(model=backend.model_id, model_sha256=backend.model_sha256,
                     backend=backend.name, prompt_style=style)
    prompts = PromptBuilder(
        style=style, examples=tuple(load_examples(cfg.prompts.examples)),
        shots_concepts=cfg.prompts.shots_concepts,
        shots_instructions=cfg.prompts.shots_instructions,
        shots_responses=cfg.prompts.shots_responses,
    )
    return info, prompts
