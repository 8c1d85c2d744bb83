"""``eval``: generate with any backend under EvalPlus's protocol, then score.

Files per benchmark, under ``OUT/<benchmark>/`` (EvalPlus's formats, so other tools can
read them):

- ``samples.raw.jsonl``: what generation writes: the raw model text, the unsanitised
  solution, finish reason;
- ``samples.jsonl``: ``task_id`` + sanitised ``solution`` (what is scored), made from the
  raw file with evalplus's sanitiser;
- ``eval_results.json``: every sample's base / plus status.

``OUT/results.json`` holds the scores of every benchmark. Generation resumes: a task
that already has its samples in ``samples.raw.jsonl`` is not asked again. Sanitising and
scores are always recomputed from the raw samples. Generation needs neither evalplus nor
its dependencies, so it can run alone (``generate_only``) on a machine that lacks them,
and the directory it wrote be scored elsewhere (``samples_file`` = that directory).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfcodealign.settings_diff import changed_keys
from selfcodealign.errors import UserError
from selfcodealign.evaluate import protocol
from selfcodealign.evaluate.data import Benchmark, load_problems
from selfcodealign.evaluate.score import (
    DEFAULT_MEMORY_GB,
    SampleResult,
    check_samples,
    pass_at_k,
)
from selfcodealign.ids import sampling_seed
from selfcodealign.jsonl import Appender, read_lines
from selfcodealign.sandbox import MODE_CHOICES

log = logging.getLogger(__name__)

RESULTS = "results.json"
RAW = "samples.raw.jsonl"
SANITIZED = "samples.jsonl"


class EvalSettings(BaseModel):
    """How a model is sampled and scored (``eval``'s flags or a YAML file's ``eval:``
    section, through ``config.load_settings``); saved in results.json."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1, description="samples per task (pass@k for k <= n)")
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(768, ge=1)
    protocol: Literal["auto", "chat", "base"] = Field("auto", description="auto: chat if the model has a chat template")
    seed: int = 0
    tasks: list[str] | None = Field(None, description="task ids to evaluate (a subset)")
    limit: int | None = Field(None, ge=1, description="first N tasks of each benchmark")
    data_dir: Path | None = Field(None, description="folder with HumanEvalPlus-*.jsonl.gz / MbppPlus-*.jsonl.gz "
                                  "(default: the packaged copies)")
    workers: int | None = Field(None, ge=1, description="parallel test processes (default: cores)")
    memory_gb: float = Field(DEFAULT_MEMORY_GB, gt=0, description="address-space cap per test process")
    isolation: Literal[MODE_CHOICES] = Field(
        "auto", description="how model code is isolated while tested (auto: bwrap, else unshare; "
        "rlimits, or its old name none: no namespaces)")

    @model_validator(mode="after")
    def _sampled(self) -> EvalSettings:
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 needs temperature > 0 (greedy samples are all the same)")
        return self


def _select(problems: dict, s: EvalSettings) -> dict:
    if s.limit:
        problems = dict(list(problems.items())[: s.limit])
    return problems


def _tasks_for(bench: Benchmark, s: EvalSettings) -> list[str] | None:
    if not s.tasks:
        return None
    prefix = "HumanEval/" if bench.dataset == "humaneval" else "Mbpp/"
    mine = [t for t in s.tasks if t.startswith(prefix)]
    return mine or None


def _existing(path: Path) -> Counter:
    have: Counter = Counter()
    if path.exists():
        for _, obj in read_lines(path):
            if obj:
                have[obj["task_id"]] += 1
    return have


def generate(backend, bench: Benchmark, problems: dict, out: Path, s: EvalSettings) -> dict:
    """Samples for every task that lacks them; returns generation stats."""
    from selfcodealign.backends.base import SamplingParams

    if s.protocol == "auto":
        chat = backend.has_chat_template
    else:
        chat = s.protocol == "chat"
    raw_path = out / RAW
    _check_meta(out / "samples.meta.json", {
        "model": backend.model_id, "sha256": backend.model_sha256, "protocol": "chat" if chat else "base",
        "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
    })
    have = _existing(raw_path)
    todo = [t for t in problems if have[t] < s.n]
    reqs, params = [], []
    for t in todo:
        req = protocol.make_request(problems[t], bench.dataset, chat)
        reqs.append((t, req, s.n - have[t], have[t]))
        params.append(
            SamplingParams(
                n=s.n - have[t], temperature=s.temperature,
                top_p=s.top_p if s.temperature > 0 else 1.0, max_tokens=s.max_tokens,
                stop=req.stop, seed=sampling_seed(t, "eval", have[t], s.seed), prefill=req.prefill,
            )
        )
    stats = {"protocol": "chat" if chat else "base", "requested": sum(r[2] for r in reqs), "finish": Counter()}
    if not reqs:
        return stats
    t0 = time.perf_counter()
    with Appender(raw_path) as raw:

        def done(i: int, comps) -> None:
            task, req, _, _ = reqs[i]
            raws = []
            for c in comps:
                raws.append({"task_id": task, "solution": protocol.solution_of(req, c.text), "raw": c.text,
                             "finish_reason": c.finish_reason, "completion_tokens": c.completion_tokens})
                stats["finish"][c.finish_reason] += 1
            raw.write_many(raws)

        backend.generate([r[1].prompt for r in reqs], params, on_done=done)
    stats["seconds"] = time.perf_counter() - t0
    stats["finish"] = dict(stats["finish"])
    return stats


def _check_meta(path: Path, meta: dict) -> None:
    """Resuming must not mix samples of different models or settings in one file."""
    if path.exists():
        old = json.loads(path.read_text())
        diff = changed_keys(old, meta)
        if diff:
            raise UserError(
                f"{path.parent} holds samples made with other settings ({', '.join(diff)}: "
                f"{old.get(diff[0])!r} vs {meta[diff[0]]!r}); use another --out"
            )
        return
    path.write_text(json.dumps(meta, indent=2) + "\n")


def read_samples(path: Path) -> list[tuple[str, str]]:
    """EvalPlus samples: ``task_id`` plus ``solution`` or ``completion``."""
    out = []
    for lineno, obj in read_lines(path):
        if not obj:
            continue
        if "task_id" not in obj or not ({"solution", "completion"} & obj.keys()):
            raise UserError(f"{path}:{lineno}: a sample needs task_id and solution or completion")
        out.append((obj["task_id"], obj.get("solution"), obj.get("completion")))
    return out


def score(bench: Benchmark, problems: dict, samples, out: Path | None, s: EvalSettings) -> dict:
    pairs = []
    for task, solution, completion in samples:
        if task not in problems:
            raise UserError(f"sample for {task} is not a {bench.label}+ task (or not among the chosen ones)")
        pairs.append((task, solution if solution is not None else problems[task]["prompt"] + completion))
    t0 = time.perf_counter()
    if bench.dataset == "selfval":
        from selfcodealign.evaluate import selfval

        results = selfval.check(problems, pairs, workers=s.workers, memory_gb=s.memory_gb)
    else:
        results = check_samples(bench, problems, pairs, workers=s.workers, memory_gb=s.memory_gb,
                                isolation=s.isolation)
    metrics = pass_at_k(results)
    metrics["of_tasks"] = len(problems)
    metrics["score_seconds"] = time.perf_counter() - t0
    if out is not None:
        _write_results(out / "eval_results.json", bench, pairs, results)
    return metrics


def _write_results(path: Path, bench: Benchmark, pairs, results: list[SampleResult]) -> None:
    by_task: dict[str, list] = {}
    for (task, solution), r in zip(pairs, results):
        by_task.setdefault(task, []).append(
            {"task_id": task, "solution": solution, "base_status": r.base, "plus_status": r.plus}
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"dataset": bench.dataset, "eval": by_task}))
    os.replace(tmp, path)


def sanitized_samples(raw_path: Path, problems: dict, out: Path) -> list[tuple[str, str, None]]:
    """The raw samples of the chosen tasks, sanitised with evalplus's own sanitiser (the
    code of the answer for a held-out task), also written to ``out/samples.jsonl``."""
    from selfcodealign.evaluate.selfval import code_of

    rows = []
    for _, obj in read_lines(raw_path):
        if obj and obj.get("task_id") in problems:
            p = problems[obj["task_id"]]
            code = code_of(obj["solution"]) if "tests" in p else protocol.sanitize(obj["solution"], p["entry_point"])
            rows.append({"task_id": obj["task_id"], "solution": code})
    tmp = out / (SANITIZED + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, out / SANITIZED)
    return [(r["task_id"], r["solution"], None) for r in rows]


def _given_samples(samples_file: Path, bench: Benchmark, problems: dict, s: EvalSettings) -> list:
    """An EvalPlus samples file (task_id + solution or completion), scored as it is."""
    given = [x for x in read_samples(samples_file) if not _is_other(x[0], bench)]
    subset = bool(s.limit or _tasks_for(bench, s))
    unknown = [x[0] for x in given if x[0] not in problems]
    if unknown and not subset:
        raise UserError(f"{samples_file}: {unknown[0]} is not a {bench.label}+ task")
    samples = [x for x in given if x[0] in problems]
    if not samples:
        raise UserError(f"{samples_file} has no samples for {bench.label}+")
    return samples


def run(
    benchmarks: list[Benchmark],
    out_dir: Path,
    s: EvalSettings,
    *,
    backend=None,
    samples_file: Path | None = None,
    model_info: dict | None = None,
    generate_only: bool = False,
) -> dict:
    """Generate (unless ``samples_file``), then sanitise and score (unless ``generate_only``).
    ``samples_file`` is an EvalPlus samples file, or an output directory of this function
    whose raw samples are sanitised and scored."""
    from selfcodealign.evaluate.data import read_problems

    out_dir.mkdir(parents=True, exist_ok=True)
    given_dir = samples_file if samples_file is not None and samples_file.is_dir() else None
    if given_dir is not None and not model_info:
        model_info = _earlier_report(given_dir).get("model")
    report: dict = {"model": model_info or {}, "settings": s.model_dump(mode="json"), "benchmarks": {}}
    for bench in benchmarks:
        tasks = _tasks_for(bench, s)
        sub = out_dir / bench.dataset
        sub.mkdir(exist_ok=True)
        metrics: dict = {}
        if samples_file is None:
            chosen = _select(read_problems(bench, s.data_dir, tasks), s)
            metrics["generation"] = generate(backend, bench, chosen, sub, s)
            if generate_only:
                metrics["samples"] = sum(_existing(sub / RAW)[t] for t in chosen)
                report["benchmarks"][bench.dataset] = metrics
                continue
            raw = sub / RAW
        elif given_dir is not None:
            raw = given_dir / bench.dataset / RAW
            if not raw.is_file():
                raise UserError(f"{given_dir} has no {bench.dataset}/{RAW}: not an `eval` output directory")
        problems = _select(load_problems(bench, s.data_dir, tasks), s)
        if samples_file is None or given_dir is not None:
            samples = sanitized_samples(raw, problems, sub)
            if not samples:
                raise UserError(f"no {bench.label}+ samples in {raw}")
        else:
            samples = _given_samples(samples_file, bench, problems, s)
        metrics.update(score(bench, problems, samples, sub, s))
        report["benchmarks"][bench.dataset] = metrics
        log.debug("%s", format_line(bench, metrics))
    tmp = out_dir / (RESULTS + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out_dir / RESULTS)
    return report


def _earlier_report(path: Path) -> dict:
    try:
        return json.loads((path / RESULTS).read_text())
    except (OSError, ValueError):
        return {}


def _is_other(task_id: str, bench: Benchmark) -> bool:
    other = "Mbpp/" if bench.dataset == "humaneval" else "HumanEval/"
    return task_id.startswith(other)


def format_line(bench: Benchmark, m: dict) -> str:
    if "base" not in m:  # generated, not scored
        g = m.get("generation") or {}
        return (f"{bench.label}: {m.get('samples', 0)} samples ({g.get('requested', 0)} generated now); "
                "score them with `selfcodealign eval --samples DIR`")
    parts = [f"{bench.label}: {100 * m['base'].get('pass@1', 0):.1f}"]
    if bench.dataset != "selfval":  # held-out tasks have one set of tests
        parts.append(f"{bench.label}+: {100 * m['plus'].get('pass@1', 0):.1f}")
    tail = f" (pass@1 over {m['tasks']} of {m['of_tasks']} tasks, {m['samples']} samples)"
    return "  ".join(parts) + tail
