"""Memory stays flat over a long sandbox run.

Runs N programs (HumanEval+ canonical solutions with their base tests, round after
round) through one pool and prints, every --every runs, the resident memory of this
process and of each sandbox server. The servers are long-lived and fork every run, so
any leak in them or in the host would show here as growth.

    python benchmarks/sandbox_rss.py [--runs 100000] [--every 10000] [--workers N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

# this folder is on sys.path when the script runs
from proc_info import children_by_parent, rss_kib

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "src/selfcodealign/data/HumanEvalPlus-v0.1.10.jsonl.gz"


def server_pids() -> list[int]:
    """The sandbox servers: the Python processes started by our bwrap/unshare (or, in
    rlimits mode, our direct Python children), not the short-lived runs they fork."""
    tree = children_by_parent()
    out = []
    for child in tree.get(os.getpid(), []):
        try:
            exe = os.path.basename(os.readlink(f"/proc/{child}/exe"))
        except OSError:
            continue
        if exe.startswith("python"):
            out.append(child)
        else:  # bwrap / unshare / sh: the server is its child
            out.extend(tree.get(child, []))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    from selfcodealign.sandbox import Program, check, iter_batch

    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        tasks = [json.loads(line) for line in f if line.strip()]
    print(f"sandbox mode: {check().mode}; {os.cpu_count()} cores, shared (figures under load)")

    def programs():
        for i in range(args.runs):
            t = tasks[i % len(tasks)]
            yield Program(
                id=str(i),
                code=t["prompt"] + t["canonical_solution"],
                tests=t["test"] + f"\ncheck({t['entry_point']})\n",
            )

    print(
        f"{'runs':>8} {'host RSS MiB':>13} {'server RSS MiB (each)':>24} "
        f"{'runs/s':>8} {'not passed':>10}"
    )
    start = last = time.perf_counter()
    failed = 0
    done = 0
    first: tuple[int, list[int]] | None = None
    latest = first
    for done, (_, v) in enumerate(iter_batch(programs(), args.workers), 1):
        failed += v.status != "passed"
        if done % args.every == 0 or done == args.runs:
            now = time.perf_counter()
            host = rss_kib()
            # a server that exits between listing and reading reads 0: not a sample
            servers = [r for r in (rss_kib(p) for p in server_pids()) if r]
            if servers:  # (gone already if this is the very last result)
                first = first or (host, servers)
                latest = (host, servers)
            rate = args.every / (now - last) if done % args.every == 0 else 0
            each = ", ".join(f"{s / 1024:.1f}" for s in servers)
            print(
                f"{done:>8} {host / 1024:>13.1f} {each:>24} {rate:>8.0f} {failed:>10}", flush=True
            )
            last = now
    total = time.perf_counter() - start
    print(f"{done} runs in {total:.0f}s ({done / total:.0f}/s); {failed} not passed")
    if first and latest:
        host, servers = latest
        grown = [(b - a) / 1024 for a, b in zip(first[1], servers, strict=False)]
        print(
            f"growth after the first {args.every} runs: host {(host - first[0]) / 1024:+.1f} MiB, "
            f"servers {', '.join(f'{g:+.1f}' for g in grown)} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
