"""``eval``: generate with any backend under EvalPlus's protocol, then score.

Files per benchmark, under ``OUT/<benchmark>/`` (EvalPlus's formats, so other tools can
read them):

- ``samples.jsonl``: ``task_id`` + sanitised ``solution`` (what is scored);
- ``samples.raw.jsonl``: the raw model text, unsanitised solution, finish reason;
- ``eval_results.json``: every sample's base / plus status.

``OUT/results.json`` holds the scores of every benchmark. Generation resumes: a task
that already has its samples in ``samples.jsonl`` is not asked again. Scores are
always recomputed from the samples.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

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

log = logging.getLogger(__name__)

RESULTS = "results.json"


@dataclass
class EvalSettings:
    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_tokens: int = 768
    protocol: str = "auto"  # auto | chat | base
    seed: int = 0
    tasks: list[str] | None = None
    limit: int | None = None
    data_dir: Path | None = None
    workers: int | None = None
    memory_gb: float = DEFAULT_MEMORY_GB
    isolation: str = "auto"
    extra: dict = field(default_factory=dict)


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
    samples_path, raw_path = out / "samples.jsonl", out / "samples.raw.jsonl"
    _check_meta(out / "samples.meta.json", {
        "model": backend.model_id, "sha256": backend.model_sha256, "protocol": "chat" if chat else "base",
        "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
    })
    have = _existing(samples_path)
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
    with Appender(samples_path) as sani, Appender(raw_path) as raw:

        def done(i: int, comps) -> None:
            task, req, _, _ = reqs[i]
            entry = problems[task]["entry_point"]
            rows, raws = [], []
            for c in comps:
                solution = protocol.solution_of(req, c.text)
                rows.append({"task_id": task, "solution": protocol.sanitize(solution, entry)})
                raws.append({"task_id": task, "solution": solution, "raw": c.text,
                             "finish_reason": c.finish_reason, "completion_tokens": c.completion_tokens})
                stats["finish"][c.finish_reason] += 1
            # The raw line goes first: a crash between the two writes re-asks the task
            # rather than leaving a scored sample without its raw text.
            raw.write_many(raws)
            sani.write_many(rows)

        backend.generate([r[1].prompt for r in reqs], params, on_done=done)
    stats["seconds"] = time.perf_counter() - t0
    stats["finish"] = dict(stats["finish"])
    return stats


def _check_meta(path: Path, meta: dict) -> None:
    """Resuming must not mix samples of different models or settings in one file."""
    if path.exists():
        old = json.loads(path.read_text())
        diff = [k for k in meta if old.get(k) != meta[k]]
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
    results = check_samples(bench, problems, pairs, workers=s.workers, memory_gb=s.memory_gb, isolation=s.isolation)
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


def run(
    benchmarks: list[Benchmark],
    out_dir: Path,
    s: EvalSettings,
    *,
    backend=None,
    samples_file: Path | None = None,
    model_info: dict | None = None,
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": model_info or {}, "settings": _settings_dict(s), "benchmarks": {}}
    for bench in benchmarks:
        problems = _select(load_problems(bench, s.data_dir, _tasks_for(bench, s)), s)
        sub = out_dir / bench.dataset
        sub.mkdir(exist_ok=True)
        gen_stats = None
        if samples_file is not None:
            given = [x for x in read_samples(samples_file) if not _is_other(x[0], bench)]
            subset = bool(s.limit or _tasks_for(bench, s))
            unknown = [x[0] for x in given if x[0] not in problems]
            if unknown and not subset:
                raise UserError(f"{samples_file}: {unknown[0]} is not a {bench.label}+ task")
            samples = [x for x in given if x[0] in problems]
            if not samples:
                raise UserError(f"{samples_file} has no samples for {bench.label}+")
        else:
            gen_stats = generate(backend, bench, problems, sub, s)
            samples = [(t, sol, None) for t, sol, _ in read_samples(sub / "samples.jsonl") if t in problems]
        metrics = score(bench, problems, samples, sub, s)
        if gen_stats:
            metrics["generation"] = gen_stats
        report["benchmarks"][bench.dataset] = metrics
        log.debug("%s", format_line(bench, metrics))
    tmp = out_dir / (RESULTS + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out_dir / RESULTS)
    return report


def _is_other(task_id: str, bench: Benchmark) -> bool:
    other = "Mbpp/" if bench.dataset == "humaneval" else "HumanEval/"
    return task_id.startswith(other)


def _settings_dict(s: EvalSettings) -> dict:
    d = {k: v for k, v in s.__dict__.items() if k not in ("data_dir", "extra")}
    d["data_dir"] = str(s.data_dir) if s.data_dir else None
    return {**d, **s.extra}


def format_line(bench: Benchmark, m: dict) -> str:
    parts = [f"{bench.label}: {100 * m['base'].get('pass@1', 0):.1f}",
             f"{bench.label}+: {100 * m['plus'].get('pass@1', 0):.1f}"]
    tail = f" (pass@1 over {m['tasks']} of {m['of_tasks']} tasks, {m['samples']} samples)"
    return "  ".join(parts) + tail
