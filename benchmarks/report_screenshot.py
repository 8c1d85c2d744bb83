"""Screenshot of a run's HTML report, and a check that it opens with no network.

    python benchmarks/report_screenshot.py RUN_DIR docs/report.png [--height 1500]

Writes RUN_DIR's report to a temporary file, opens it in headless Chromium (Debian's
/usr/bin/chromium driven by Playwright; `make test` installs both), waits until the
example browser has decoded its data, and saves a PNG of the top of the page (reduced to
a 256-colour palette when Pillow is installed, to stay small). Prints the report's size,
the time until it was ready, the requests it made other than the file itself (should be
0) and console errors (should be none).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--max-kb", type=int, default=200, help="fail if the PNG is larger")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from selfcodealign.report import write_run_report

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        html, stats = write_run_report(args.run_dir, Path(tmp) / "report.html")
        written = time.perf_counter() - t0
        url = html.resolve().as_uri()
        requests, errors = [], []
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=args.chromium, headless=True, args=FLAGS,
                viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
            page = ctx.new_page()
            page.on("request", lambda r: r.url != url and requests.append(r.url))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            t1 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            ready = time.perf_counter() - t1
            png = page.screenshot(full_page=False)
            ctx.close()
    try:
        from PIL import Image

        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        png = buf.getvalue()
    except ImportError:
        pass
    args.png.parent.mkdir(parents=True, exist_ok=True)
    args.png.write_bytes(png)
    print(f"report of {args.run_dir}: {stats['bytes'] / 1e6:.2f} MB ({stats['instructions']:,} instructions, "
          f"{stats['responses']:,} responses; {stats['json_bytes'] / 1e6:.1f} MB of JSON embedded as "
          f"{stats['embedded_bytes'] / 1e6:.1f} MB), written in {written:.1f} s")
    print(f"chromium: ready in {ready:.1f} s; requests other than the file: {len(requests)}; "
          f"console errors: {len(errors)}")
    for x in requests[:5] + errors[:5]:
        print("  ", x)
    kb = len(png) / 1024
    print(f"screenshot: {args.png} ({kb:.0f} KB)")
    if kb > args.max_kb:
        print(f"larger than {args.max_kb} KB: try a smaller --height", file=sys.stderr)
        return 1
    return 1 if requests or errors else 0


if __name__ == "__main__":
    sys.exit(main())
