"""Scoring samples with evalplus's checker, without ``evalplus.evaluate``'s pitfalls.

We call the same pieces ``evalplus.evaluate.evaluate`` calls (ground truth from
``get_groundtruth``, per-sample ``check_correctness``, ``estimate_pass_at_k``) but not
``evaluate`` itself, which in 0.3.1 (a) sleeps in a watchdog thread for >= 20 s per call,
(b) asserts that samples cover every task, (c) silently reloads an old
``*_eval_results.json`` instead of scoring the new samples, and (d) runs model code
in plain subprocesses. Here: no watchdog, any subset of tasks (reported as such),
results always recomputed, model code run inside the sandbox's namespaces
(``sandbox.wrap_command``), and a memory
cap high enough for the reference solutions of Mbpp/255 and Mbpp/392 (the default
4 GiB address-space cap fails them). HumanEval/32's oracle bug is fixed in
``checker.py``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass

from selfcodealign.errors import UserError
from selfcodealign.evaluate.data import Benchmark, problems_hash
from selfcodealign.sandbox import wrap_command

log = logging.getLogger(__name__)

DEFAULT_MEMORY_GB = 16


@dataclass(frozen=True)
class SampleResult:
    task_id: str
    base: str  # evalplus status: pass | fail | timeout
    plus: str


def ground_truth(bench: Benchmark, problems: dict) -> dict:
    """Expected outputs of the reference solutions (trusted code), cached by evalplus."""
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import get_groundtruth

    only_not_none = MBPP_OUTPUT_NOT_NONE_TASKS if bench.dataset == "mbpp" else []
    return get_groundtruth(problems, problems_hash(bench, problems), only_not_none)


def check_samples(
    bench: Benchmark,
    problems: dict,
    samples: list[tuple[str, str]],
    *,
    workers: int | None = None,
    memory_gb: float = DEFAULT_MEMORY_GB,
    isolation: str = "auto",
) -> list[SampleResult]:
    """evalplus verdicts for ``(task_id, solution)`` pairs, in input order."""
    if not samples:
        return []
    unknown = sorted({t for t, _ in samples if t not in problems})
    if unknown:
        raise UserError(f"samples name task(s) not in {bench.label}+: {', '.join(unknown[:5])}")
    expected = ground_truth(bench, problems)
    used = sorted({t for t, _ in samples})
    job = {
        "dataset": bench.dataset,
        "problems": {t: problems[t] for t in used},
        "expected": {t: expected[t] for t in used},
        "samples": samples,
        "workers": workers or max(1, os.cpu_count() or 1),
        "memory_bytes": int(memory_gb * (1 << 30)),
    }
    with tempfile.TemporaryDirectory(prefix="sca-eval-") as tmp:
        path = os.path.join(tmp, "job.pkl")
        with open(path, "wb") as f:
            pickle.dump(job, f)
        cmd = wrap_command([sys.executable, "-m", "selfcodealign.evaluate.checker", path], isolation, readable=[tmp])
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise UserError(f"scoring {bench.label}+ failed (exit {proc.returncode}): {' | '.join(tail)}")
    raw = json.loads(proc.stdout)
    return [SampleResult(t, r["base"], r["plus"]) for (t, _), r in zip(samples, raw)]


def pass_at_k(results: list[SampleResult], ks=(1, 10, 100)) -> dict:
    """Base and plus pass@k over the tasks present, as evalplus computes them (plus
    counts a sample only when it passes the base tests too)."""
    import numpy as np
    from evalplus.eval import estimate_pass_at_k

    per_task: dict[str, list[SampleResult]] = defaultdict(list)
    for r in results:
        per_task[r.task_id].append(r)
    if not per_task:
        return {"tasks": 0, "samples": 0, "base": {}, "plus": {}}
    total = np.array([len(v) for v in per_task.values()])
    base = np.array([sum(r.base == "pass" for r in v) for v in per_task.values()])
    plus = np.array([sum(r.base == "pass" and r.plus == "pass" for r in v) for v in per_task.values()])
    out = {"tasks": len(per_task), "samples": int(total.sum()), "base": {}, "plus": {}}
    for k in ks:
        if total.min() >= k:
            out["base"][f"pass@{k}"] = float(estimate_pass_at_k(total, base, k).mean())
            out["plus"][f"pass@{k}"] = float(estimate_pass_at_k(total, plus, k).mean())
    return out


def paired_bootstrap(a: dict[str, float], b: dict[str, float], *, resamples: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float, int] | None:
    """The mean per-task difference ``b - a`` over the tasks both score, and its paired
    bootstrap interval: tasks resampled with replacement ``resamples`` times (fixed
    seed), percentile interval. Returns (difference, low, high, tasks), or None when no
    task is shared. Scores per task are e.g. the share of its samples that pass (pass@1)."""
    import numpy as np

    tasks = sorted(set(a) & set(b))
    if not tasks:
        return None
    d = np.array([b[t] - a[t] for t in tasks], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(lo), float(hi), len(tasks)


def sample_passes(s: dict, part: str) -> bool:
    """Whether an ``eval_results.json`` sample passes ``part`` ("base", or "plus": base
    and plus tests)."""
    base = s.get("base_status") == "pass"
    return base if part == "base" else base and s.get("plus_status") == "pass"


def task_rates(samples: dict[str, list[dict]], part: str, k: int = 1) -> dict[str, float]:
    """Per task, its unbiased pass@k estimate on ``part`` (for k = 1, the share of its
    samples that pass); tasks with fewer than k samples are left out."""
    out = {}
    for t, ss in samples.items():
        n, c = len(ss), sum(sample_passes(x, part) for x in ss)
        if n >= k:
            out[t] = c / n if k == 1 else _pass_at_k(n, c, k)
    return out


def _pass_at_k(n: int, c: int, k: int) -> float:
    # 1 - C(n-c, k) / C(n, k), as evalplus's estimate_pass_at_k computes it
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod
