"""The run report: what a run made, where it lost its records, and every instruction with
its lineage, as one self-contained HTML page."""

from __future__ import annotations

import datetime as _dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from selfcodealign.report.browser_js import BROWSER_JS
from selfcodealign.report.html import (
    bar, cell, embed_data, esc, histogram, json_script, key_attr, num, page, pct, table, write_page,
)
from selfcodealign.report.load import OUTCOMES, SHORT, STAGES, RunData, mutation_score, stage_file

GEN_STAGES = ["concepts", "instructions", "responses"]
STAGE_CLS = {"seeds": "s-mut", "concepts": "s-soft", "instructions": "s-alt", "responses": "s-acc",
             "execute": "s-warn", "verify": "s-pass", "judge": "s-soft", "select": "s-fail"}


def _stage(summary: dict | None, name: str) -> dict:
    st = (summary or {}).get("stages") or {}
    v = st.get(name)
    return v if isinstance(v, dict) else {}


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


# ---- sections ----------------------------------------------------------------------


def header(d: RunData, shown_dir: str) -> str:
    b = d.config.get("backend") if isinstance(d.config.get("backend"), dict) else {}
    model = b.get("model") or b.get("model_name") or ("the embedded model" if b.get("kind") in (None, "llamacpp") else "?")
    bits = [f"run directory <code>{esc(shown_dir)}</code>"]
    if b:
        bits.append(f"model {esc(model)} ({esc(b.get('kind', '?'))})")
    if d.summary and d.summary.get("shard"):
        bits.append(f"shard {esc(d.summary['shard'])}")
    r = d.config.get("responses") if isinstance(d.config.get("responses"), dict) else {}
    if r:
        bits.append(f"{esc(r.get('n'))} responses per instruction at temperature {esc(r.get('temperature'))}")
    bits.append("written " + _dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
    return " &middot; ".join(bits)


def headline(d: RunData) -> str:
    """The answer to "what did I get, and why so little?" in a few lines."""
    ins = d.instructions
    n = len(ins)
    kept = sum(i.kept for i in ins)
    outcomes = Counter(i.outcome for i in ins)
    rs = list(d.responses)
    executed = [r for r in rs if r.status != "not executed"]
    passing = sum(r.passes for r in rs)
    lines = []
    size = d.dataset_size if d.dataset_size else kept
    if d.examples_only:
        return (f'<div class="headline" data-testid="headline"><p><b>{size:,} examples</b>; this directory '
                "holds the dataset without the records behind it (a merged run), so only the kept "
                "examples are shown; the parts' own reports show what each lost.</p></div>")
    lead = (f"<p><b>{size:,} example{'s' if size != 1 else ''}</b> from {n:,} instructions "
            f"({pct(size, n)}) and {len(executed):,} executed responses, of which {passing:,} passed "
            f"({pct(passing, len(executed))}).</p>")
    for key in ("no_passing_response", "rejected", "sanitized", "pass_rate_outside_band", "no_responses", "pending"):
        if outcomes.get(key):
            lines.append(f"{outcomes[key]:,} instructions ({pct(outcomes[key], n)}): {esc(OUTCOMES[key])}")
    fails = Counter(r.group for r in executed if not r.passes)
    if fails:
        top = ", ".join(f"{esc(g)} {c:,}" for g, c in fails.most_common(3))
        lines.append(f"{sum(fails.values()):,} responses did not pass; most often: {top}")
    drops = []
    for st in ("concepts", "instructions", "responses"):
        for reason, c in sorted((_stage(d.summary, st).get("drops") or {}).items(), key=lambda x: -x[1]):
            if c:
                drops.append(f"{st} {esc(reason)} {c:,}")
    if drops:
        lines.append("lost before execution: " + ", ".join(drops))
    items = "".join(f"<li>{x}</li>" for x in lines)
    return f'<div class="headline" data-testid="headline">{lead}<ul>{items}</ul></div>'


def funnel(d: RunData) -> str:
    s = d.summary
    parts = ['<section id="funnel"><h2>Funnel</h2>']
    if s is None:
        ins = d.instructions
        rs = list(d.responses)
        parts.append('<p class="note">No summary.json: counted from the record files.</p>')
        rows = [("instructions", len(ins)), ("responses", len(rs)),
                ("passing", sum(r.passes for r in rs)), ("dataset", d.dataset_size)]
        top = max(v for _, v in rows) or 1
        parts.append(table(["", "records", ""], [
            f"<tr><td>{k}</td>{cell(v)}<td>{bar(v / top)}</td></tr>" for k, v in rows]))
        return "".join(parts) + "</section>"
    f = s.get("funnel") if isinstance(s.get("funnel"), dict) else {}
    if isinstance(s.get("parts"), list):
        # A merged run: its parts' funnels.
        rows = []
        for k, part in enumerate(s["parts"]):
            pf = part.get("funnel") if isinstance(part, dict) and isinstance(part.get("funnel"), dict) else {}
            rows.append(f"<tr><td>{esc(part.get('shard') or part.get('run_dir') or k)}</td>"
                        + "".join(cell(pf.get(x), ["parts", k, "funnel", x]) if x in pf else "<td></td>"
                                  for x in ("seeds", "concepts", "instructions", "responses", "passing", "dataset"))
                        + cell(part.get("kept"), ["parts", k, "kept"]) + "</tr>")
        parts.append(f'<p>A merge of {len(rows)} runs: {num(s.get("in"))} examples in, <b>{num(s.get("out"))}</b> '
                     "kept after deduplication and sanitizing again over the union.</p>"
                     + table(["part", "seeds", "concepts", "instructions", "responses", "passing", "dataset",
                              "kept in the merge"], rows, attrs=' data-testid="parts"'))
    if f:
        top = max([_num(v) for v in f.values()] or [1]) or 1
        rows = []
        prev = None
        for k, v in f.items():
            if not prev:
                keep = '<td class="n"></td>'
            elif _num(v) > prev:
                keep = f'<td class="n">&times;{_num(v) / prev:.2f}</td>'
            else:
                keep = f'<td class="n">{pct(_num(v), prev)}</td>'
            rows.append(f"<tr><td>{esc(k)}</td>{cell(v, ['funnel', k])}{keep}"
                        f"<td>{bar(_num(v) / top, 'wide')}</td></tr>")
            prev = _num(v)
        parts.append(table(["", "records", "of previous", ""], rows, "funnel", ' data-testid="funnel"'))
    busy = s.get("busy") if isinstance(s.get("busy"), dict) else {}
    cards = [("run wall time, s", s.get("wall_s"), ["wall_s"]), ("model load, s", s.get("model_load_s"), ["model_load_s"])]
    cards += [(f"{k.replace('_s', '')} busy, s", v, ["busy", k]) for k, v in busy.items()]
    parts.append('<div class="cards">' + "".join(
        f'<div class="card"><b{key_attr(p)}>{num(v, 1)}</b><span>{esc(t)}</span></div>'
        for t, v, p in cards if v is not None) + "</div>")
    # Per stage: in/out, drops, tokens, time.
    rows = []
    for st in STAGES:
        x = _stage(s, st)
        if not x:
            continue
        p = ["stages", st]
        drops = x.get("drops") if isinstance(x.get("drops"), dict) else {}
        dtext = ", ".join(f'{esc(r)} <span{key_attr(p + ["drops", r])}>{num(c)}</span>'
                          for r, c in sorted(drops.items(), key=lambda z: -_num(z[1])))
        rows.append(
            f"<tr><td>{st}</td>{cell(x.get('in'), p + ['in']) if 'in' in x else cell(x.get('mined'), p + ['mined'])}"
            f"{cell(x.get('out'), p + ['out'])}<td>{dtext}</td>"
            + "".join(cell(x.get(k), p + [k], 1 if k.endswith('_s') else 0) if k in x else '<td></td>'
                      for k in ("prompt_tokens", "cached_tokens", "completion_tokens", "wall_s", "busy_s", "tokens_per_s"))
            + "</tr>")
    if not rows:
        return "".join(parts) + "</section>"
    parts.append("<h3>Per stage</h3>")
    parts.append(table(["stage", "in", "out", "drops by reason", "prompt tokens", "of them cached",
                        "completion tokens", "wall s", "busy s", "tokens/s"], rows, "stages",
                       ' data-testid="stages"'))
    parts.append('<p class="note">seeds: "in" is the seeds mined or read before sharding. '
                 "execute runs while responses are generated when execution follows generation, so "
                 "stage wall times may overlap.</p>")
    return "".join(parts) + "</section>"


def drops(d: RunData) -> str:
    s = d.summary
    if s is None or not isinstance(s.get("stages"), dict):
        return ""
    blocks = []
    seeds = _stage(s, "seeds").get("funnel") or {}
    mined = {k: v for k, v in (seeds.get("dropped") or {}).items() if v}
    if mined:
        total = _num(seeds.get("candidates")) or sum(mined.values())
        rows = [f"<tr><td>{esc(k)}</td>{cell(v, ['stages', 'seeds', 'funnel', 'dropped', k])}"
                f"<td>{bar(_num(v) / total, 'fail')}</td></tr>" for k, v in sorted(mined.items(), key=lambda z: -z[1])]
        blocks.append(f"<div><h3>seeds: mining filters (of {num(seeds.get('candidates'))} candidate functions)</h3>"
                      + table(["reason", "dropped", ""], rows) + "</div>")
    for st in STAGES[1:]:
        x = _stage(s, st)
        dr = {k: v for k, v in (x.get("drops") or {}).items() if v}
        extra = []
        if st == "verify" and x.get("unfaithful"):
            extra = [(f"unfaithful: {k}", v, ["stages", st, "unfaithful", k]) for k, v in x["unfaithful"].items()]
        if st == "select":
            extra = [(f"rejected response: {k}", v, ["stages", st, "rejected", k]) for k, v in (x.get("rejected") or {}).items()]
            extra += [(f"sanitize: {k}", v, ["stages", st, "sanitize", k]) for k, v in (x.get("sanitize") or {}).items()]
        if not dr and not any(v for _, v, _ in extra):
            continue
        # Of what the stage tried to make: responses drops are per sample (n per instruction).
        total = max(_num(x.get("in")), _num(x.get("out")) + sum(_num(v) for v in dr.values())) or 1
        what = "in" if total == _num(x.get("in")) else "attempted"
        rows = [f"<tr><td>{esc(k)}</td>{cell(v, ['stages', st, 'drops', k])}<td class='n'>{pct(_num(v), total)}</td>"
                f"<td>{bar(_num(v) / total, 'fail')}</td></tr>" for k, v in sorted(dr.items(), key=lambda z: -z[1])]
        rows += [f"<tr class='note'><td>{esc(k)}</td>{cell(v, p)}<td></td><td></td></tr>" for k, v, p in extra if v]
        blocks.append(f"<div><h3>{st} (of {num(int(total))} {what})</h3>"
                      + table(["reason", "count", f"of {what}", ""], rows) + "</div>")
    if not blocks:
        return '<section id="drops"><h2>Drops by reason</h2><p class="note">Nothing was dropped.</p></section>'
    return '<section id="drops"><h2>Drops by reason</h2><div class="grid2">' + "".join(blocks) + "</div></section>"


def cost(d: RunData) -> str:
    s = d.summary
    if s is None:
        return ""
    st = {k: _stage(s, k) for k in STAGES}
    size = d.dataset_size or sum(i.kept for i in d.instructions)
    wall = [(k, _num(v.get("wall_s")), STAGE_CLS.get(k, "s-mut")) for k, v in st.items() if _num(v.get("wall_s")) > 0]
    seeds_s = _num(((st["seeds"].get("funnel") or {}).get("seconds") or {}).get("total"))
    if seeds_s:
        wall.insert(0, ("seeds", seeds_s, STAGE_CLS["seeds"]))
    if _num(s.get("model_load_s")):
        wall.insert(0, ("model load", _num(s.get("model_load_s")), "s-mut"))
    parts = ['<section id="cost"><h2>Where the time and the tokens went</h2>']
    if wall:
        parts.append("<h3>Wall time by stage</h3>")
        total_wall = _num(s.get("wall_s"))
        rows = [f"<tr><td>{esc(k)}</td><td class='n'>{num(v, 1)}</td><td class='n'>{pct(v, total_wall) if total_wall else '-'}</td>"
                f"<td>{bar(v / total_wall if total_wall else 0)}</td></tr>" for k, v, _ in wall]
        parts.append(table(["", "wall s", "of the run's wall time", ""], rows))
        busy = s.get("busy") if isinstance(s.get("busy"), dict) else {}
        if busy:
            parts.append('<p class="note">Stages overlap when execution follows generation; busy time is '
                         "the seconds each side had work: " + ", ".join(
                             f"{esc(k.replace('_s', ''))} {num(_num(v), 1)} s ({pct(_num(v), total_wall)})"
                             for k, v in busy.items()) + ".</p>")
    tok = [(k, _num(st[k].get("prompt_tokens")), _num(st[k].get("cached_tokens")), _num(st[k].get("completion_tokens")))
           for k in GEN_STAGES if st[k]]
    if any(p or c for _, p, _, c in tok):
        top = max(p + c for _, p, _, c in tok) or 1
        rows = []
        for k, p, cached, c in tok:
            rows.append(f"<tr><td>{k}</td><td class='n'>{num(int(p))}</td><td class='n'>{num(int(c))}</td>"
                        f"<td class='n'>{pct(cached, p) if p else '-'}</td><td>{bar((p + c) / top, 'wide')}</td></tr>")
        parts.append("<h3>Tokens by stage</h3>" + table(["stage", "prompt", "completion", "prompt cached", "prompt + completion"], rows))
        comp = sum(c for *_, c in tok)
        if size:
            parts.append(f'<p>Per example kept: {num(int(comp / size))} completion tokens and '
                         f'{num(_num(s.get("wall_s")) / size, 1)} s of wall time.</p>')
    if len(parts) == 1:
        return ""
    return "".join(parts) + "</section>"


ORDER = {k: n for n, k in enumerate(["function", "class", "program", "easy", "medium", "hard"])}


def _group_table(d: RunData, title: str, key, limit: int = 30) -> str:
    groups: dict[str, list] = defaultdict(list)
    for i in d.instructions:
        groups[key(i)].append(i)
    items = sorted(groups.items(), key=lambda kv: (ORDER.get(kv[0], 99), -len(kv[1]), kv[0]))
    other = items[limit:]
    items = items[:limit]
    if other:
        items.append((f"({len(other)} others)", [i for _, v in other for i in v]))
    rows = []
    for name, ins in items:
        rs = [r for i in ins for r in i.responses if r.status != "not executed"]
        p = sum(r.passes for r in rs)
        any_pass = sum(1 for i in ins if i.k)
        kept = sum(i.kept for i in ins)
        rows.append(f"<tr><td>{esc(name)}</td><td class='n'>{len(ins):,}</td><td class='n'>{len(rs):,}</td>"
                    f"<td class='n'>{pct(p, len(rs))}</td><td>{bar(p / len(rs) if rs else 0, 'pass')}</td>"
                    f"<td class='n'>{pct(any_pass, len(ins))}</td><td class='n'>{kept:,}</td>"
                    f"<td class='n'>{pct(kept, len(ins))}</td><td>{bar(kept / len(ins) if ins else 0, 'pass')}</td></tr>")
    return f"<div><h3>{esc(title)}</h3>" + table(
        ["", "instructions", "responses", "responses passing", "", "with a pass", "kept", "kept of instructions", ""],
        rows) + "</div>"


def pass_rates(d: RunData) -> str:
    if not d.instructions:
        return ""
    return ('<section id="rates"><h2>Pass rate by category, difficulty and seed source</h2>'
            '<p class="note">Responses passing: of the executed responses, those that ran to their end with '
            + ("meaningful tests" if d.require_meaningful else "their tests")
            + '. With a pass: instructions with at least one passing response. Kept: in the dataset.</p>'
            + _group_table(d, "category", lambda i: i.category)
            + _group_table(d, "difficulty", lambda i: i.difficulty)
            + _group_table(d, "seed source (top-level package of the seed's path)", lambda i: i.package)
            + "</section>")


def distributions(d: RunData) -> str:
    parts = ['<section id="dist"><h2>Per-instruction pass rates and test strength</h2><div class="grid2">']
    with_resp = [i for i in d.instructions if any(r.status != "not executed" for r in i.responses)]
    if with_resp:
        labels = [f"{10 * b}%" for b in range(11)]
        kept = [0] * 11
        other = [0] * 11
        for i in with_resp:
            n = sum(r.status != "not executed" for r in i.responses)
            b = round(10 * i.k / n)
            (kept if i.kept else other)[b] += 1
        ns = Counter(len(i.responses) for i in with_resp)
        parts.append("<div><h3>Instructions by the share of their responses that pass</h3>"
                     + histogram(labels, [("kept", "s-pass", kept), ("not kept", "s-mut", other)],
                                 xlabel="passing responses, k of n (rounded to 10%)", ylabel="instructions",
                                 testid="pass-rate-hist")
                     + f'<p class="note">n per instruction: {", ".join(f"{k} ({v:,})" for k, v in sorted(ns.items()))}. '
                       "Rates near 0 are tasks the model cannot do (or tests it writes wrong); near 100% "
                       "tasks too easy to teach much.</p></div>")
    checked = [r for r in d.responses if r.check]
    if not d.verified:
        executed, verified = stage_file("execute"), stage_file("verify")
        parts.append(f'<div><h3>Test strength</h3><p class="note">No {verified} in this run: '
                     f"run <code>selfcodealign verify --in {executed} --out {verified}</code> in the "
                     "run directory, then this report again, to see mutation scores.</p></div>")
    elif checked:
        kept = [0] * 11
        other = [0] * 11
        unmeasured = Counter()
        for r in checked:
            sc = mutation_score(r.check)
            if sc is None:
                unmeasured["unfaithful" if r.check.get("f") else "no mutants"] += 1
                continue
            (kept if r.chosen else other)[min(10, int(sc * 10))] += 1
        labels = [f"{b / 10:.1f}" for b in range(10)] + ["1.0"]
        made = sum(r.check["m"][0] for r in checked if "m" in r.check)
        killed = sum(r.check["m"][1] for r in checked if "m" in r.check)
        to = sum(r.check["m"][2] for r in checked if "m" in r.check)
        cr = sum(r.check["m"][3] for r in checked if "m" in r.check)
        unex = sum(1 for r in checked if "m" in r.check and r.check["m"][4])
        faith = Counter(k for r in checked for k in {x.split(":", 1)[0] for x in r.check.get("f", [])})
        suspect = sum(1 for r in checked if "a" in r.check and r.check["a"][4])
        agree = [r.check["a"] for r in checked if "a" in r.check and r.check["a"][0]]
        parts.append(
            "<div><h3>Mutation score of each passing response (killed / made)</h3>"
            + histogram(labels, [("chosen for the dataset", "s-pass", kept), ("not chosen", "s-warn", other)],
                        xlabel="mutation score (bins of 0.1)", ylabel="passing responses", testid="mutation-hist")
            + f'<p class="note">{len(checked):,} passing responses checked; {made:,} mutants made, '
              f"{killed:,} killed ({pct(killed, made)}; {to:,} by timeout, {cr:,} by a crash). "
              f"{unex:,} responses leave a function unexercised; {suspect:,} have suspect tests. "
              + (", ".join(f"{v:,} {esc(k)}" for k, v in unmeasured.items()) + " (no score). " if unmeasured else "")
              + "</p>")
        rows = [f"<tr><td>{esc(k)}</td><td class='n'>{v:,}</td><td>{bar(v / len(checked), 'fail')}</td></tr>"
                for k, v in faith.most_common()]
        if rows:
            parts.append("<h3>Unfaithful to the instruction</h3>" + table(["reason", "responses", ""], rows))
        if agree:
            share = [a[1] / a[0] for a in agree]
            parts.append(f'<p class="note">Agreement: on average {100 * sum(share) / len(share):.0f}% of a passing '
                         "response's siblings pass its tests.</p>")
        parts.append("</div>")
    return "".join(parts) + "</div></section>"


def _error_line(stderr: str, group: str, detail: str) -> str:
    """The line of a traceback that says what went wrong; for a bare exception name (an
    ``assert`` without a message), with the source line that raised it."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for k in range(len(lines) - 1, -1, -1):
        ln = lines[k]
        if group and ln.split(":", 1)[0].rsplit(".", 1)[-1] == group:
            if ln == group:
                src = next((x for x in reversed(lines[:k]) if not set(x) <= set("^~ ")
                            and not x.startswith(("File ", "Traceback"))), "")
                return f"{ln}: {src}" if src else ln
            return ln
    return lines[-1] if lines else detail


def failures(d: RunData, per_group: int = 3, detailed: int = 12) -> str:
    groups: dict[str, list] = defaultdict(list)
    for r in d.responses:
        if not r.passes and r.status != "not executed":
            groups[r.group].append(r)
    if not groups:
        return '<section id="failures"><h2>Failing responses by error type</h2><p class="note">None.</p></section>'
    total = sum(len(v) for v in groups.values())
    rows = []
    for n, (g, rs) in enumerate(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))):
        ins = {r.ins for r in rs}
        examples = []
        seen = set()
        for r in rs:
            if r.ins in seen:
                continue
            seen.add(r.ins)
            i = d.instructions[r.ins]
            last = _error_line(r.stderr, g, r.detail)
            examples.append(f'<div><a class="exlink" href="#ex={esc(i.id)}:{r.sample}">{esc(i.text[:90])}'
                            f'{"…" if len(i.text) > 90 else ""}</a><div class="kv">{esc(last[:160])}</div></div>')
            if len(examples) >= (per_group if n < detailed else 1):
                break
        statuses = Counter(r.status for r in rs)
        sub = ", ".join(f"{esc(k)} {v:,}" for k, v in statuses.items()) if len(statuses) > 1 else ""
        rows.append(f'<tr data-group="{esc(g)}"><td><b>{esc(g)}</b><div class="kv">{sub}</div></td>'
                    f"<td class='n'>{len(rs):,}</td><td class='n'>{pct(len(rs), total)}</td>"
                    f"<td>{bar(len(rs) / total, 'fail')}</td><td class='n'>{len(ins):,}</td>"
                    f"<td>{''.join(examples)}</td>"
                    f'<td><button class="show" data-show-group="{esc(g)}">show all</button></td></tr>')
    heads = ["error type", "responses", "of failing", "", "instructions", "examples", ""]
    more = ""
    if len(rows) > detailed:
        rest = sum(len(v) for v in groups.values()) - sum(
            len(v) for _, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:detailed])
        more = (f"<details><summary>{len(rows) - detailed} more error types ({rest:,} responses)</summary>"
                + table(heads, rows[detailed:], attrs=' data-testid="failures-more"') + "</details>")
    return ('<section id="failures"><h2>Failing responses by error type</h2>'
            f'<p class="note">{total:,} executed responses did not pass, grouped by the exception that ended '
            "them (the sandbox's verdict detail) or their status. Click an example to see it with its lineage; "
            "<i>show all</i> lists every instruction with such a response.</p>"
            + table(heads, rows[:detailed], attrs=' data-testid="failures"') + more + "</section>")


def browser(d: RunData) -> str:
    n = len(d.instructions)
    return (
        '<section id="browser"><h2>Examples</h2>'
        f'<p class="note">Every instruction of the run ({n:,}), with its seed, concepts and all its '
        "responses. Search matches the instruction text, the seed's name and path, the concepts and ids.</p>"
        '<div class="controls"><input type="search" id="q" placeholder="search instructions, seeds, concepts, ids">'
        '<select id="f-outcome"><option value="">any outcome</option></select>'
        '<select id="f-cat"><option value="">any category</option></select>'
        '<select id="f-diff"><option value="">any difficulty</option></select>'
        '<select id="f-pkg"><option value="">any seed source</option></select>'
        '<select id="f-group"><option value="">any verdict</option></select>'
        '<span id="count" class="note"></span></div>'
        '<div class="split"><div><table id="blist"><thead><tr><th class="c1">outcome</th><th>instruction</th>'
        '<th class="c3">kind</th><th class="c4">seed source</th><th class="c5">pass</th></tr></thead>'
        '<tbody id="rows"></tbody></table>'
        '<div class="controls"><button id="prev">&larr; previous</button><span id="page" class="note"></span>'
        '<button id="next">next &rarr;</button></div></div>'
        '<div id="detail"><p class="note" id="browser-status">Loading the examples&hellip; '
        "(this needs JavaScript)</p></div></div></section>"
    )


def notes(d: RunData, sizes: tuple[int, int]) -> str:
    caps = d.caps
    items = [esc(n) for n in d.notes]
    t = d.truncated
    items.append(
        f"Embedded texts are capped: response code at {caps['code']:,} characters, tests at {caps['tests']:,}, "
        f"stderr at its last {caps['stderr']:,} (the chosen responses: 4,000 / 2,000 / 800), instructions at "
        f"{caps['instruction']:,} and seed code at {caps['seed']:,}. "
        + ("Cut here: " + ", ".join(f"{v:,} {k}" for k, v in sorted(t.items())) + "." if t else "Nothing was cut.")
        + " The run directory's files hold the full texts.")
    items.append(f"Embedded data: {sizes[0] / 1e6:.1f} MB of JSON, {sizes[1] / 1e6:.1f} MB compressed.")
    return ('<section id="notes"><h2>Notes</h2><ul class="notes" data-testid="notes">'
            + "".join(f"<li>{x}</li>" for x in items) + "</ul></section>")


# ---- data for the browser ----------------------------------------------------------


def browser_data(d: RunData) -> tuple[dict, dict]:
    """The example browser's data in two parts: an index (every instruction and response
    without their long texts), enough for the search, filters and the first page, and the
    texts (code, tests, stderr, seed code), decoded after the first page is shown."""
    seed_idx: dict[str, int] = {}
    seeds, seed_code = [], []
    for sid, s in d.seeds.items():
        seed_idx[sid] = len(seeds)
        seeds.append([sid, s["name"], s["path"], s["source"], s["lines"][0], s["lines"][1], ""])
        seed_code.append(s["code"])
    pk = sorted({i.package for i in d.instructions})
    pk_idx = {p: k for k, p in enumerate(pk)}
    groups = [g for g, _ in Counter(r.group for r in d.responses).most_common()]
    g_idx = {g: k for k, g in enumerate(groups)}
    ins, rs, texts = [], [], []
    for i in d.instructions:
        r0 = len(rs)
        for r in i.responses:
            rs.append([r.sample, r.status, r.detail, g_idx[r.group], int(r.meaningful), int(r.passes),
                       round(r.duration, 3), "", "", "", r.check,
                       (1 if r.chosen else 0) | (2 if r.removed else 0)])
            texts.append([r.code, r.tests, r.stderr])
        ins.append([i.id, i.text, i.category, i.difficulty, seed_idx.get(i.seed_id, -1), i.concepts,
                    pk_idx[i.package], i.outcome, i.select_reason, i.select_detail, r0, len(i.responses),
                    i.k, dict(i.dropped_samples), i.seed_path, i.seed_source])
    index = {"v": 2, "seeds": seeds, "pk": pk, "groups": groups, "ins": ins, "rs": rs,
             "outcomes": OUTCOMES, "short": SHORT, "verified": d.verified}
    return index, {"rs": texts, "seeds": seed_code}


def render(d: RunData, shown_dir: str) -> tuple[str, dict]:
    index, texts = browser_data(d)
    index_html, raw_index, packed_index = embed_data(index, "report-data")
    texts_html, raw_texts, packed_texts = embed_data(texts, "report-texts")
    raw_size, packed = raw_index + raw_texts, packed_index + packed_texts
    sections = [("funnel", "Funnel", funnel(d)), ("drops", "Drops", drops(d)), ("cost", "Time & tokens", cost(d)),
                ("rates", "Pass rates", pass_rates(d)), ("dist", "Distributions", distributions(d)),
                ("failures", "Failures", failures(d)), ("browser", "Examples", browser(d)),
                ("notes", "Notes", notes(d, (raw_size, packed)))]
    body = headline(d) + "".join(html for _, _, html in sections)
    nav = [(a, t) for a, t, html in sections if html]
    # The texts come last, after the script: the first page of examples needs only the index.
    scripts = (index_html + json_script({"kind": "run"}, "report-meta")
               + f"<script>{BROWSER_JS}</script>" + texts_html)
    html = page("SelfCodeAlign run report", header(d, shown_dir), nav, body, scripts)
    return html, {"json_bytes": raw_size, "embedded_bytes": packed, "index_bytes": packed_index,
                  "instructions": len(d.instructions),
                  "responses": sum(len(i.responses) for i in d.instructions)}


def write_run_report(run_dir: Path, out: Path | None = None) -> tuple[Path, dict]:
    """Write the run report of ``run_dir`` to ``out`` (default RUN_DIR/report.html)."""
    from selfcodealign.errors import UserError
    from selfcodealign.report.load import load_run

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run directory at {run_dir}")
    run_files = ["summary.json"] + [stage_file(s) for s in ("instructions", "execute", "responses", "select")]
    if not any((run_dir / f).is_file() for f in run_files):
        if (run_dir / "results.json").is_file():
            raise UserError(f"{run_dir} is an eval output directory: use `selfcodealign compare A B "
                            "--report FILE.html`")
        raise UserError(f"{run_dir} holds no run files ({', '.join(run_files[:3])}, ...) and no training "
                        "output (train_config.json, grpo_steps.jsonl)")
    data = load_run(run_dir)
    html, stats = render(data, str(run_dir))
    out = Path(out) if out else run_dir / "report.html"
    write_page(out, html)
    stats["bytes"] = out.stat().st_size
    return out, stats
