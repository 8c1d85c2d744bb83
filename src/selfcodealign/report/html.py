"""Small HTML and SVG builders for the reports: escaped text, numbers, bar cells, a
histogram, a line chart, and the page shell (CSS inline, a Content-Security-Policy that forbids every
network request, data embedded as gzip+base64 JSON).

Charts are plain SVG and HTML made here rather than plotly: the report is written by
every `run`, so its code is in the default install, and plotly would add a package and
about 3.5 MB of inline JavaScript to every report for bar charts and histograms.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from selfcodealign import __version__


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def num(x: Any, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if digits == 0 and x.is_integer():
            return f"{int(x):,}"
        return f"{x:,.{digits or 2}f}"
    return esc(x)


def pct(a: float, b: float, digits: int = 1) -> str:
    return f"{100 * a / b:.{digits}f}%" if b else "-"


def key_attr(path: Sequence[str]) -> str:
    """A ``data-k`` attribute naming where a number comes from in summary.json (a JSON
    list of keys, since keys may hold dots)."""
    return f' data-k="{esc(json.dumps(list(path)))}"'


def cell(value: Any, path: Sequence[str] | None = None, digits: int = 0, cls: str = "n") -> str:
    k = key_attr(path) if path is not None else ""
    return f'<td class="{cls}"{k}>{num(value, digits)}</td>'


def bar(frac: float, cls: str = "", title: str = "") -> str:
    w = 0.0 if not frac or frac != frac else max(0.0, min(1.0, frac))
    t = f' title="{esc(title)}"' if title else ""
    return f'<span class="bar {cls}"{t}><span style="width:{100 * w:.2f}%"></span></span>'


def table(headers: Iterable[str], rows: Iterable[str], cls: str = "", attrs: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    return (f'<div class="tw"><table class="{cls}"{attrs}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _open(width: int, height: int, xlabel: str, ylabel: str, testid: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{esc(ylabel)} by {esc(xlabel)}"'
            + (f' data-testid="{esc(testid)}"' if testid else "") + ">")


def _close(out: list[str], series: Sequence[tuple], xlabel: str, ylabel: str, plot: tuple, height: int) -> str:
    """The axis labels, the end of the SVG and, for several series, their legend."""
    left, tpad, pw, ph = plot
    out.append(f'<text class="axis" x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(f'<text class="axis" transform="translate(11 {tpad + ph / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{esc(ylabel)}</text></svg>')
    legend = ""
    if len(series) > 1:
        legend = '<div class="legend">' + "".join(
            f'<span><i class="{esc(cls)}"></i>{esc(name)}</span>' for name, cls, _ in series) + "</div>"
    return "".join(out) + legend


def histogram(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], *,
              xlabel: str, ylabel: str, width: int = 560, height: int = 220, testid: str = "") -> str:
    """Vertical stacked bars, one per label; ``series`` is (name, css class, counts)."""
    n = len(labels)
    totals = [sum(s[2][i] for s in series) for i in range(n)]
    top = max(totals) if totals and max(totals) > 0 else 1
    step = 10 ** math.floor(math.log10(top)) if top >= 1 else 1
    nice = math.ceil(top / step) * step
    left, right, tpad, bottom = 46, 8, 10, 44
    pw, ph = width - left - right, height - tpad - bottom
    bw = pw / max(n, 1)
    out = [_open(width, height, xlabel, ylabel, testid)]
    for frac in (0, 0.5, 1):
        y = tpad + ph * (1 - frac)
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{num(round(nice * frac))}</text>')
    for i, label in enumerate(labels):
        y0 = tpad + ph
        x = left + i * bw + bw * 0.12
        parts = []
        for name, cls, counts in series:
            c = counts[i]
            if not c:
                continue
            h = ph * c / nice
            y0 -= h
            parts.append(f'<rect class="{esc(cls)}" x="{x:.1f}" y="{y0:.1f}" width="{bw * 0.76:.1f}" '
                         f'height="{h:.1f}"><title>{esc(label)}: {esc(name)} {c:,}</title></rect>')
        out.extend(parts)
        if totals[i]:
            out.append(f'<text class="val" x="{x + bw * 0.38:.1f}" y="{y0 - 3:.1f}" text-anchor="middle">{totals[i]:,}</text>')
        if n <= 14 or i % max(1, n // 10) == 0:
            out.append(f'<text class="tick" x="{left + (i + 0.5) * bw:.1f}" y="{tpad + ph + 14}" '
                       f'text-anchor="middle">{esc(label)}</text>')
    return _close(out, series, xlabel, ylabel, (left, tpad, pw, ph), height)


def short(x: float) -> str:
    """A chart's number in four significant digits (0.0123, 1.5e-05, 2,048)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def line_chart(x: Sequence[float], series: Sequence[tuple[str, str, Sequence[float | None]]], *,
               xlabel: str, ylabel: str, width: int = 560, height: int = 200, testid: str = "") -> str:
    """Lines over ``x`` (steps), one per series (name, css class, values; None leaves a
    gap), the y axis ticked at the values' min and max, the x axis at its ends. Each point
    carries its value in a tooltip up to 200 points a series."""
    ys = [v for _, _, vs in series for v in vs if v is not None and math.isfinite(v)]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (hi - lo) * 0.06 or abs(hi) * 0.1 or 1.0
    y0, y1 = lo - pad, hi + pad
    x0, x1 = (min(x), max(x)) if x else (0, 1)
    left, right, tpad, bottom = 66, 10, 10, 40
    pw, ph = width - left - right, height - tpad - bottom

    def px(v: float) -> float:
        return left + (pw * (v - x0) / (x1 - x0) if x1 > x0 else pw / 2)

    def py(v: float) -> float:
        return tpad + ph * (1 - (v - y0) / (y1 - y0))

    out = [_open(width, height, xlabel, ylabel, testid)]
    for v in ([lo, hi] if ys and hi > lo else [lo] if ys else []):
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{py(v):.1f}" y2="{py(v):.1f}"/>'
                   f'<text class="tick" x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{esc(short(v))}</text>')
    for v in sorted({x0, x1}) if x else []:
        out.append(f'<text class="tick" x="{px(v):.1f}" y="{tpad + ph + 14}" text-anchor="middle">{esc(short(v))}</text>')
    for name, cls, vs in series:
        d, pen = [], "M"
        for xv, yv in zip(x, vs):
            if yv is None or not math.isfinite(yv):
                pen = "M"
                continue
            d.append(f"{pen}{px(xv):.1f} {py(yv):.1f}")
            pen = "L"
        out.append(f'<path class="line {esc(cls)}" d="{" ".join(d)}"/>')
        if len(x) <= 200:
            out.extend(f'<circle class="{esc(cls)}" cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="2.5">'
                       f"<title>{esc(xlabel)} {esc(short(xv))}: {esc(name)} {esc(short(yv))}</title></circle>"
                       for xv, yv in zip(x, vs) if yv is not None and math.isfinite(yv))
    return _close(out, series, xlabel, ylabel, (left, tpad, pw, ph), height)


def stacked_bar(segments: Sequence[tuple[str, float, str]], unit: str, width: int = 760) -> str:
    """One horizontal bar split into labelled segments (label, value, css class)."""
    total = sum(v for _, v, _ in segments) or 1
    out = [f'<svg class="chart" viewBox="0 0 {width} 34" width="{width}" height="34" role="img" '
           f'aria-label="share by stage">']
    x = 0.0
    for label, v, cls in segments:
        w = width * v / total
        if w <= 0:
            continue
        out.append(f'<rect class="{esc(cls)}" x="{x:.1f}" y="2" width="{w:.1f}" height="30">'
                   f'<title>{esc(label)}: {num(v, 1)} {esc(unit)} ({pct(v, total)})</title></rect>')
        if w > 60:
            out.append(f'<text class="seg" x="{x + 5:.1f}" y="22">{esc(label)} {pct(v, total, 0)}</text>')
        x += w
    return "".join(out) + "</svg>"


def embed_data(obj: Any, element_id: str = "report-data") -> tuple[str, int, int]:
    """``obj`` as compact JSON, gzipped and base64-encoded inside a script element that
    the page's JS decodes (DecompressionStream). Returns (html, json bytes, embedded bytes)."""
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    packed = base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode()
    lines = "\n".join(packed[i:i + 4096] for i in range(0, len(packed), 4096))
    return (f'<script type="application/octet-stream" id="{element_id}" data-encoding="gzip+base64">'
            f"\n{lines}\n</script>", len(raw), len(packed))


def json_script(obj: Any, element_id: str) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def write_page(out: Path, text: str) -> None:
    """Write a report atomically (a reader never sees half a page); a failure is a one-line error."""
    from selfcodealign.errors import UserError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")

CSS = """
:root{--fg:#1d232b;--mut:#5d6875;--bg:#fff;--pan:#f5f7f9;--line:#dde2e7;--acc:#2f6fb5;
--pass:#2f9e6b;--fail:#d0583d;--warn:#d79b22;--alt:#8a6fc4;--soft:#9fb8d6;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:18px 28px 10px;border-bottom:1px solid var(--line);background:var(--pan)}
header h1{margin:0 0 4px;font-size:21px}
header .meta{color:var(--mut);font-size:13px}
nav{position:sticky;top:0;z-index:5;background:var(--bg);border-bottom:1px solid var(--line);padding:6px 28px;font-size:13px}
nav a{margin-right:14px;color:var(--acc);text-decoration:none}
main{padding:6px 28px 40px;max-width:1500px}
section{margin:22px 0 8px}
h2{font-size:17px;margin:0 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
h4{font-size:13px;margin:0 0 4px;color:var(--mut);text-transform:uppercase;letter-spacing:.04em}
.note{color:var(--mut);font-size:13px}
.notes li{color:#7a4b00}
.headline{background:#fff8e6;border:1px solid #f0d9a0;border-radius:6px;padding:10px 14px;margin:14px 0}
.headline p{margin:2px 0}.headline ul{margin:4px 0 0;padding-left:20px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{background:var(--pan);border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:var(--mut);font-size:12px}
.tw{overflow-x:auto}
table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}
th,td{padding:3px 10px 3px 6px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--mut);white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.bar{display:inline-block;width:140px;height:10px;background:#edf0f3;border-radius:2px;vertical-align:middle}
.bar>span{display:block;height:100%;background:var(--acc);border-radius:2px}
.bar.pass>span{background:var(--pass)}.bar.fail>span{background:var(--fail)}.bar.warn>span{background:var(--warn)}
.bar.wide{width:260px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:8px 24px}
svg.chart{max-width:100%;height:auto;font:11px system-ui,sans-serif}
svg .grid{stroke:#e6e9ed}svg .tick{fill:var(--mut)}svg .axis{fill:var(--fg)}svg .val{fill:var(--mut);font-size:10px}
svg .seg{fill:#fff;font-size:12px;pointer-events:none}
svg .line{fill:none;stroke-width:1.6}svg .line.s-pass{stroke:var(--pass)}svg .line.s-fail{stroke:var(--fail)}
svg .line.s-acc{stroke:var(--acc)}svg .line.s-soft{stroke:var(--soft)}svg .line.s-warn{stroke:var(--warn)}
svg .line.s-alt{stroke:var(--alt)}svg .line.s-mut{stroke:#b7c0c9}
.s-pass{fill:var(--pass);background:var(--pass)}.s-fail{fill:var(--fail);background:var(--fail)}
.s-acc{fill:var(--acc);background:var(--acc)}.s-soft{fill:var(--soft);background:var(--soft)}
.s-warn{fill:var(--warn);background:var(--warn)}.s-alt{fill:var(--alt);background:var(--alt)}
.s-mut{fill:#b7c0c9;background:#b7c0c9}
.legend{font-size:12px;color:var(--mut);margin:-2px 0 6px 46px}.legend span{margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px;border-radius:2px}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;line-height:17px;white-space:nowrap;background:#e9edf1;color:#39424c}
.b-kept,.b-passed{background:#dcf3e7;color:#17603f}.b-rejected,.b-sanitized{background:#fbefd5;color:#7a5300}
.b-no_passing_response,.b-failed,.b-timeout,.b-oom,.b-crashed,.b-error{background:#fbe3dc;color:#8a2c16}
.chip{display:inline-block;margin:0 4px 4px 0;padding:1px 8px;border-radius:10px;background:#e8f0fa;color:#234f80;font-size:12px}
pre{background:var(--pan);border:1px solid var(--line);border-radius:4px;padding:6px 8px;font:12px/1.4 var(--mono);overflow:auto;max-height:420px;white-space:pre;margin:4px 0 8px}
pre.err{background:#fff5f2;border-color:#f1cfc5}
.text{white-space:pre-wrap;background:var(--pan);border-radius:4px;padding:6px 8px}
#browser .controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0}
#browser input[type=search]{width:340px;padding:5px 8px;border:1px solid var(--line);border-radius:4px;font:inherit}
#browser select,#browser button,button.show{padding:4px 8px;border:1px solid var(--line);border-radius:4px;background:var(--bg);font:inherit;font-size:13px;cursor:pointer}
#browser button:disabled{opacity:.45;cursor:default}
.split{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,6fr);gap:18px;align-items:start}
@media(max-width:1100px){.split{grid-template-columns:1fr}}
#rows tr{cursor:pointer}#rows tr:hover{background:#f3f7fc}#rows tr.sel{background:#e4eefa}
#blist{width:100%;table-layout:fixed}#blist td{font-size:13px;overflow-wrap:anywhere}#blist .c1{width:118px}#blist .c3{width:92px}#blist .c4{width:96px}#blist .c5{width:44px}
#detail{position:sticky;top:40px;max-height:calc(100vh - 50px);overflow:auto;border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-height:120px}
.lineage{list-style:none;margin:0;padding:0}.lineage>li{border-left:3px solid var(--soft);padding:2px 0 6px 12px;margin:0 0 8px}
details.resp{border:1px solid var(--line);border-radius:5px;margin:5px 0;padding:3px 8px}
details.resp.chosen{border:2px solid var(--pass)}
details.resp>summary{cursor:pointer;font-size:13px}
.star{color:var(--pass);font-weight:700}
.kv{color:var(--mut);font-size:12px}
a.exlink{color:var(--acc)}
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str, scripts: str = "") -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="generator" content="selfcodealign {esc(__version__)}">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><div class="meta">{subtitle}</div></header>'
        f"<nav>{links}</nav><main>{body}</main>{scripts}</body></html>\n"
    )
