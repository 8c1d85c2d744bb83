"""The evaluation report: two `eval` output directories side by side (pass@k per
benchmark, and the tasks one model gained or lost, with both models' samples)."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from selfcodealign.evaluate.score import paired_bootstrap, task_rates
from selfcodealign.report.html import esc, key_attr, num, page, table, write_page

LABELS = {"humaneval": "HumanEval", "mbpp": "MBPP", "selfval": "SelfVal"}
SOLUTION_CAP = 6000
SHOW_SAMPLES = 3  # per model and task

EVAL_JS = r"""
"use strict";
(function () {
  const q = document.getElementById("task-q");
  if (!q) return;
  q.addEventListener("input", () => {
    const w = q.value.trim().toLowerCase();
    for (const d of document.querySelectorAll("details.task"))
      d.style.display = !w || d.dataset.task.toLowerCase().includes(w) ? "" : "none";
  });
  document.body.dataset.ready = "1";
})();
"""


def eval_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def load_samples(path: Path, bench: str, notes: list[str], name: str) -> dict[str, list[dict]] | None:
    f = eval_dir(path) / bench / "eval_results.json"
    try:
        data = json.loads(f.read_text())
        ev = data["eval"]
        if not isinstance(ev, dict):
            raise TypeError
        return {str(t): [s for s in v if isinstance(s, dict)] for t, v in ev.items() if isinstance(v, list)}
    except FileNotFoundError:
        notes.append(f"{name}: no {f}: the tasks gained and lost on {LABELS.get(bench, bench)} are not shown")
    except (OSError, ValueError, KeyError, TypeError):
        notes.append(f"{name}: {f} is not an eval_results.json (JSON with an 'eval' object): ignored")
    return None


def _rate(samples: list[dict], part: str) -> float | None:
    return task_rates({"": samples}, part).get("")


def delta_interval(sa: dict | None, sb: dict | None, part: str, k: int = 1) -> str:
    """The paired bootstrap 95% interval of B's pass@k minus A's over the tasks both
    scored, in points, from per-sample results (``load_samples``); "-" without them."""
    if sa is None or sb is None:
        return "-"
    got = paired_bootstrap(task_rates(sa, part, k), task_rates(sb, part, k))
    return "-" if got is None else f"[{100 * got[1]:+.1f}, {100 * got[2]:+.1f}]"


def _sample_block(samples: list[dict], label: str) -> str:
    if not samples:
        return f'<div><h4>{esc(label)}</h4><p class="note">no sample</p></div>'
    out = [f"<div><h4>{esc(label)}</h4>"]
    for k, s in enumerate(samples[:SHOW_SAMPLES]):
        sol = s.get("solution") or ""
        if len(sol) > SOLUTION_CAP:
            sol = sol[:SOLUTION_CAP] + f"\n[... {len(sol) - SOLUTION_CAP:,} more characters]"
        b, p = s.get("base_status", "?"), s.get("plus_status", "?")
        out.append(f'<div class="kv">sample {k}: base <span class="badge b-{"passed" if b == "pass" else "failed"}">'
                   f'{esc(b)}</span> plus <span class="badge b-{"passed" if p == "pass" else "failed"}">{esc(p)}</span></div>'
                   f"<pre>{esc(sol)}</pre>")
    if len(samples) > SHOW_SAMPLES:
        out.append(f'<p class="note">{len(samples) - SHOW_SAMPLES} more samples not shown</p>')
    return "".join(out) + "</div>"


def changes(sa: dict, sb: dict, part: str) -> tuple[list[str], list[str], int, int]:
    """Tasks B gained and lost against A (by the share of samples passing), and how many
    both pass and both fail."""
    gained, lost, both, neither = [], [], 0, 0
    for t in sorted(set(sa) & set(sb), key=_task_key):
        ra, rb = _rate(sa[t], part), _rate(sb[t], part)
        if ra is None or rb is None:
            continue
        if rb > ra:
            gained.append(t)
        elif rb < ra:
            lost.append(t)
        elif ra > 0:
            both += 1
        else:
            neither += 1
    return gained, lost, both, neither


def _task_key(t: str):
    head, _, tail = t.rpartition("/")
    return (head, int(tail)) if tail.isdigit() else (t, 0)


def bench_section(ds: str, a: dict, b: dict, na: str, nb: str, sa, sb) -> str:
    label = LABELS.get(ds, ds)
    ma, mb = a.get("benchmarks", {}).get(ds, {}) or {}, b.get("benchmarks", {}).get(ds, {}) or {}
    ks = sorted(set(ma.get("base", {})) | set(mb.get("base", {})), key=lambda k: int(k.split("@")[1]))
    rows = []
    for part, suffix in (("base", ""), ("plus", "+")):
        for k in ks:
            va, vb = ma.get(part, {}).get(k), mb.get(part, {}).get(k)
            d = f"{100 * (vb - va):+.1f}" if va is not None and vb is not None else "-"
            fa = f"{100 * va:.1f}" if va is not None else "-"
            fb = f"{100 * vb:.1f}" if vb is not None else "-"
            rows.append(f"<tr><td>{esc(label)}{suffix} {esc(k)}</td>"
                        f'<td class="n"{key_attr(["a", ds, part, k])}>{fa}</td>'
                        f'<td class="n"{key_attr(["b", ds, part, k])}>{fb}</td><td class="n">{d}</td>'
                        f'<td class="n ci">{esc(delta_interval(sa, sb, part, int(k.split("@")[1])))}</td></tr>')
    parts = [f'<section id="{esc(ds)}" data-benchmark="{esc(ds)}"><h2>{esc(label)}</h2>',
             table(["", esc(na), esc(nb), "delta (points)", "95% interval of the delta (paired bootstrap over tasks)"],
                   rows,
                   attrs=f' data-testid="scores-{esc(ds)}"')]
    if ma.get("tasks") != mb.get("tasks"):
        parts.append(f'<p class="note">{num(ma.get("tasks"))} vs {num(mb.get("tasks"))} tasks scored.</p>')
    if sa is None or sb is None:
        return "".join(parts) + "</section>"
    for part in ("plus", "base"):
        gained, lost, both, neither = changes(sa, sb, part)
        name = f"{label}{'+' if part == 'plus' else ''}"
        parts.append(f'<h3>{esc(name)}: {len(gained)} tasks gained, {len(lost)} lost '
                     f'<span class="note">({both} pass with both, {neither} fail with both; '
                     f"{'base and plus tests' if part == 'plus' else 'base tests only'})</span></h3>")
        for kind, tasks in (("gained", gained), ("lost", lost)):
            if not tasks:
                continue
            items = []
            for t in tasks:
                ra, rb = _rate(sa[t], part), _rate(sb[t], part)
                items.append(
                    f'<details class="task" data-task="{esc(t)}" data-change="{kind}" data-part="{part}">'
                    f"<summary><b>{esc(t)}</b> <span class='kv'>{esc(na)} {100 * ra:.0f}% &rarr; "
                    f"{esc(nb)} {100 * rb:.0f}% of samples pass</span></summary>"
                    f'<div class="grid2">{_sample_block(sa[t], na)}{_sample_block(sb[t], nb)}</div></details>')
            parts.append(f'<div data-testid="{esc(ds)}-{part}-{kind}"><h4>{kind} ({len(tasks)})</h4>{"".join(items)}</div>')
    only = set(sa) ^ set(sb)
    if only:
        parts.append(f'<p class="note">{len(only)} tasks were scored for one model only and are left out.</p>')
    return "".join(parts) + "</section>"


def render(a: dict, b: dict, pa: Path, pb: Path, na: str, nb: str) -> str:
    notes: list[str] = []
    benches = [d for d in LABELS if d in a.get("benchmarks", {}) or d in b.get("benchmarks", {})]
    benches += [d for d in {**a.get("benchmarks", {}), **b.get("benchmarks", {})} if d not in benches]
    if na == nb:
        na, nb = f"A: {na}", f"B: {nb}"
    sections = []
    for ds in benches:
        sa = load_samples(pa, ds, notes, na) if ds in a.get("benchmarks", {}) else None
        sb = load_samples(pb, ds, notes, nb) if ds in b.get("benchmarks", {}) else None
        sections.append(bench_section(ds, a, b, na, nb, sa, sb))
    if not benches:
        notes.append("neither results.json names a benchmark")

    def settings(r: dict) -> str:
        s = r.get("settings") or {}
        m = r.get("model") or {}
        return esc(", ".join(f"{k} {s[k]}" for k in ("n", "temperature", "max_tokens", "protocol") if k in s)
                   + (f"; sha256 {str(m.get('sha256'))[:12]}" if m.get("sha256") else ""))

    intro = (f"<p><b>A</b>: {esc(na)} (<code>{esc(pa)}</code>) {settings(a)}<br>"
             f"<b>B</b>: {esc(nb)} (<code>{esc(pb)}</code>) {settings(b)}</p>"
             '<p class="note">Pass@k in percent, as `eval` scored it (plus counts a sample only when it also '
             "passes the base tests). A task is gained when a larger share of B's samples pass than of A's. "
             "Confidence intervals: `compare` does not compute them yet; their column is kept for when it does.</p>"
             '<p><input type="search" id="task-q" placeholder="filter tasks by id" '
             'style="padding:4px 8px;border:1px solid #dde2e7;border-radius:4px"></p>')
    if notes:
        intro += '<ul class="notes" data-testid="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    subtitle = f"{esc(na)} vs {esc(nb)} &middot; written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    nav = [(ds, LABELS.get(ds, ds)) for ds in benches]
    return page("SelfCodeAlign evaluation report", subtitle, nav, intro + "".join(sections),
                f"<script>{EVAL_JS}</script>")


def write_eval_report(a: dict, b: dict, pa: Path, pb: Path, na: str, nb: str, out: Path) -> Path:
    html = render(a, b, Path(pa), Path(pb), na, nb)
    out = Path(out)
    write_page(out, html)
    return out
