"""The run report at the scale of a big run: its size and how fast Chromium shows it.

    python benchmarks/report_scale.py [--responses 100000] [--in FILE] [--repeat 3]

Builds a run directory of ``--responses`` executed responses resampled from the repo's
real sample (data/responses-real-sample.jsonl.gz: real code, tests, stderr and lengths).
Whole instructions are drawn with replacement, each copy with its own ids, so every
instruction keeps its real 1-10 responses and verdicts. Then it writes the report
(`selfcodealign report`) and opens it in headless Chromium (Debian's /usr/bin/chromium
through Playwright), timing from navigation until the page marks that the funnel and
the first page of examples are in the DOM (``body[data-first-page]``, set after the rows
are rendered), the median of ``--repeat`` fresh page loads.

Goals (issue "A run report that people would rather look at"): <= 20 MB and <= 2 s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from report_screenshot import FLAGS

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "responses-real-sample.jsonl.gz"


def make_run(sample: Path, root: Path, n_responses: int, seed: int = 0) -> dict:
    by_ins: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(sample, "rt") as f:
        for line in f:
            e = json.loads(line)
            by_ins[e["response"]["parent_id"]].append(e)
    groups = list(by_ins.values())
    rng = random.Random(seed)
    counts = {"instructions": 0, "responses": 0, "passing": 0, "dataset": 0}
    root.mkdir(parents=True)
    with open(root / "instructions.jsonl", "w") as fi, open(root / "executed.jsonl", "w") as fe, \
            open(root / "dataset.jsonl", "w") as fd:
        copy = 0
        while counts["responses"] < n_responses:
            group = rng.choice(groups)[: n_responses - counts["responses"]]
            copy += 1
            ins = dict(group[0]["response"]["instruction"])
            ins["id"] = f"{ins['id']}-{copy}"
            fi.write(json.dumps(ins) + "\n")
            counts["instructions"] += 1
            chosen = None
            for e in group:
                resp = {**e["response"], "id": f"{e['response']['id']}-{copy}", "parent_id": ins["id"],
                        "instruction": ins}
                rec = {**e, "id": f"{e['id']}-{copy}", "parent_id": resp["id"], "response": resp}
                fe.write(json.dumps(rec) + "\n")
                counts["responses"] += 1
                if e["verdict"]["status"] == "passed" and e["meaningful_tests"]:
                    counts["passing"] += 1
                    chosen = chosen or rec
            if chosen:
                fd.write(json.dumps({"id": f"x-{chosen['id']}", "parent_id": chosen["id"],
                                     "instruction": ins["instruction"], "response": chosen["response"]["code"],
                                     "tests": chosen["response"]["tests"]}) + "\n")
                counts["dataset"] += 1
    summary = {"funnel": counts, "stages": {
        "instructions": {"out": counts["instructions"]},
        "responses": {"in": counts["instructions"], "out": counts["responses"]},
        "execute": {"in": counts["responses"], "out": counts["responses"]},
        "select": {"in": counts["responses"], "out": counts["dataset"]}}}
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responses", type=int, default=100_000)
    ap.add_argument("--in", dest="sample", type=Path, default=SAMPLE)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--keep", type=Path, help="write the run directory here and keep it")
    args = ap.parse_args()
    if not args.sample.is_file():
        sys.exit(f"report_scale: no sample at {args.sample}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("report_scale: playwright is missing: pip install -e '.[test]'")
    from selfcodealign.report import write_run_report

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "run"
        t0 = time.perf_counter()
        counts = make_run(args.sample, root, args.responses)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        out, stats = write_run_report(root, Path(tmp) / "report.html")
        written = time.perf_counter() - t0
        url = out.resolve().as_uri()
        times, requests, errors, shown, all_ready = [], [], [], "", []
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=args.chromium, headless=True, args=FLAGS,
                viewport={"width": 1280, "height": 900})
            for _ in range(args.repeat):
                page = ctx.new_page()
                page.on("request", lambda r: r.url != url and requests.append(r.url))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("pageerror", lambda e: errors.append(str(e)))
                t1 = time.perf_counter()
                page.goto(url, wait_until="commit")
                page.wait_for_selector("body[data-first-page='1']", timeout=120_000)
                times.append(time.perf_counter() - t1)
                page.wait_for_selector("body[data-ready='1']", timeout=120_000)
                all_ready.append(time.perf_counter() - t1)
                shown = (f"{page.locator('[data-testid=funnel] tr').count() - 1} funnel rows, "
                         f"{page.locator('#rows tr').count()} example rows, {page.inner_text('#count')}")
                page.close()
            ctx.close()
    mb = stats["bytes"] / 1e6
    t = statistics.median(times)
    print(f"run directory: {counts['instructions']:,} instructions, {counts['responses']:,} responses "
          f"({counts['passing']:,} passing, {counts['dataset']:,} kept), made in {made:.1f} s")
    print(f"report: {mb:.2f} MB ({stats['json_bytes'] / 1e6:.1f} MB of JSON embedded as "
          f"{stats['embedded_bytes'] / 1e6:.1f} MB, of which the index {stats['index_bytes'] / 1e6:.1f} MB), written in {written:.1f} s")
    print(f"chromium: funnel and first page of examples in {t:.2f} s (median of "
          f"{', '.join(f'{x:.2f}' for x in times)}); every response's text decoded at "
          f"{statistics.median(all_ready):.2f} s; shown: {shown}")
    print(f"requests other than the file: {len(requests)}; console errors: {len(errors)}")
    for x in (requests + errors)[:5]:
        print("  ", x)
    print(f"goals: size <= 20 MB [{'x' if mb <= 20 else ' '}] ({mb:.1f}), "
          f"first page <= 2 s [{'x' if t <= 2 else ' '}] ({t:.2f})")
    return 0 if not requests and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
