"""Seed mining throughput over a large local corpus.

Runs the whole chain twice over the same corpus, each run in a child process that this
script watches (resident memory of the main process and of the biggest worker, sampled
every 0.5 s, against how much of the corpus is done):

1. extraction + cheap filters + decontamination + dedup (Pyright off): candidate
   functions per second (a candidate = a function or method with a docstring);
2. the full chain (Pyright on): seeds kept, seconds per phase, Pyright's share.

Default corpus: the biggest top-level packages of this interpreter's site-packages until
``--min-mb`` of Python is reached. Goals (issue 4): >= 1,000 candidates/s on 2 cores
in run 1; peak RSS that follows the seeds kept, not the corpus size; Pyright no more
than half of the total time of run 2.

    python benchmarks/seeds_throughput.py [--corpus DIR[,DIR...]] [--min-mb 110]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

# this folder is on sys.path when the script runs
from proc_info import children_by_parent, rss_kib


def py_bytes(root: Path) -> int:
    if root.is_file():
        return root.stat().st_size if root.suffix == ".py" else 0
    total = 0
    for dirpath, _, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files if f.endswith(".py"))
    return total


def default_corpus(min_mb: float) -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    sizes = sorted(((py_bytes(p), p) for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")), reverse=True)
    chosen, total = [], 0
    for size, p in sizes:
        if total >= min_mb * 1e6:
            break
        chosen.append(p)
        total += size
    return chosen


def child_main(corpus: str, out: str, typecheck: bool, progress_file: str) -> None:
    import logging

    from selfcodealign.seeds import SeedsConfig, mine

    logging.basicConfig(level=logging.WARNING)
    cfg = SeedsConfig(source=corpus, typecheck=typecheck)
    with open(progress_file, "w") as pf:

        def progress(done, total):
            kept = sum(1 for _ in open(out, "rb"))
            pf.write(f"{done} {total} {kept}\n")
            pf.flush()

        funnel = mine(cfg, Path(out), progress=progress)
    print(json.dumps(funnel))


def watch(corpus: str, typecheck: bool, tmp: Path) -> tuple[dict, float, list[tuple]]:
    out = tmp / f"seeds-{int(typecheck)}.jsonl"
    prog = tmp / f"progress-{int(typecheck)}.txt"
    for p in (out, prog, out.with_suffix(".state.json")):
        p.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", corpus, str(out), str(int(typecheck)), str(prog)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    samples = []  # (seconds, docs done, docs total, kept, main rss MB, biggest worker rss MB)
    while proc.poll() is None:
        main = rss_kib(proc.pid)
        kids = [rss_kib(c) for c in children_by_parent().get(proc.pid, [])]
        last = "0 None 0"
        try:
            lines = prog.read_text().splitlines()
            last = lines[-1] if lines else last
        except OSError:
            pass
        done, total, kept = last.split()
        samples.append((time.perf_counter() - t0, int(done), total, int(kept), main / 1024, max(kids, default=0) / 1024))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    stdout = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        sys.exit(f"mining failed (exit {proc.returncode})")
    return json.loads(stdout.strip().splitlines()[-1]), wall, samples


def rss_table(samples: list[tuple]) -> str:
    if not samples:
        return "  (no samples)"
    total = next((int(s[2]) for s in reversed(samples) if s[2] not in ("None", "0")), None)
    rows = ["  corpus done   seeds kept   main RSS MB   biggest worker RSS MB (peak so far)"]
    peak_main = peak_worker = 0.0
    marks = [0.25, 0.5, 0.75, 1.0]
    for s in samples:
        peak_main = max(peak_main, s[4])
        peak_worker = max(peak_worker, s[5])
        frac = s[1] / total if total else 0
        while marks and frac >= marks[0]:
            rows.append(f"  {marks[0]:>10.0%}   {s[3]:>10}   {peak_main:>11.0f}   {peak_worker:>11.0f}")
            marks.pop(0)
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="directories, comma-separated (default: biggest site-packages)")
    ap.add_argument("--min-mb", type=float, default=110.0)
    ap.add_argument("--skip-cheap", action="store_true", help="only run the full chain")
    ap.add_argument("--only-cheap", action="store_true", help="only run the chain without Pyright")
    args = ap.parse_args()
    roots = [Path(p) for p in args.corpus.split(",")] if args.corpus else default_corpus(args.min_mb)
    size = sum(py_bytes(r) for r in roots)
    corpus = ",".join(str(r) for r in roots)
    print(f"corpus: {size / 1e6:.1f} MB of Python in {', '.join(r.name for r in roots)}")
    print(f"cores: {len(os.sched_getaffinity(0))}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="sca-bench-") as tmp:
        wall1 = None
        if not args.skip_cheap:
            f, wall, samples = watch(corpus, False, Path(tmp))
            wall1 = wall
            print("\n[1] extraction + cheap filters + decontamination + dedup (no Pyright)")
            print(f"  files {f['files']}, skipped {f['files_skipped']}")
            print(f"  candidates {f['candidates']}, kept {f['kept']}, wall {wall:.1f} s")
            print(f"  => {f['candidates'] / wall:,.0f} candidate functions/s (goal >= 1,000)")
            print(f"  seconds: {f['seconds']}")
            print(rss_table(samples))
        if args.only_cheap:
            return
        f, wall, samples = watch(corpus, True, Path(tmp))
        s = f["seconds"]
        print("\n[2] full chain (with Pyright)")
        print(f"  files {f['files']}, candidates {f['candidates']}, kept {f['kept']}, wall {wall:.1f} s")
        print(f"  => {f['candidates'] / wall:,.0f} candidate functions/s")
        print(f"  dropped: {f['dropped']}")
        print(f"  seconds: {s}")
        # Pyright runs beside extraction, so three views of "its share of the time":
        share = s.get("typecheck", 0.0) / s["total"] if s.get("total") else 0.0
        cpu_all = sum(v for k, v in s.items() if k.endswith("_cpu")) + s.get("dedup", 0.0)
        cpu_share = s.get("typecheck_cpu", 0.0) / cpu_all if cpu_all else 0.0
        print(f"  Pyright wall (overlapping extraction): {s.get('typecheck', 0):.1f} s of {s['total']:.1f} s = {share:.0%}")
        print(f"  Pyright CPU: {s.get('typecheck_cpu', 0):.1f} s of {cpu_all:.1f} CPU-s = {cpu_share:.0%}")
        if wall1:
            added = (wall - wall1) / wall
            print(f"  wall added by Pyright vs run [1]: {wall - wall1:.1f} s of {wall:.1f} s = {added:.0%} (goal <= 50%)")
        print(rss_table(samples))


if __name__ == "__main__":
    main()
