"""The run report's example browser (inline JavaScript, no libraries).

It decodes the embedded index (gzip+base64 JSON, see html.embed_data and
run_report.browser_data), filters and searches the instructions, renders one page of 50
rows at a time (then marks body[data-first-page]), decodes the long texts, and shows one
instruction's lineage on click (marking body[data-ready] once it can): seed -> concepts -> instruction -> every response with
its verdict -> outcome. Model text is only ever set as textContent.
"""

BROWSER_JS = r"""
"use strict";
(function () {
  const PAGE = 50;
  const $ = (s) => document.querySelector(s);
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  async function decode(el) {
    let bytes;
    if (typeof Uint8Array.fromBase64 === "function") bytes = Uint8Array.fromBase64(el.textContent.replace(/\s+/g, ""));
    else {
      const bin = atob(el.textContent.replace(/\s+/g, ""));
      bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    }
    if (el.dataset.encoding !== "gzip+base64") return JSON.parse(new TextDecoder().decode(bytes));
    if (typeof DecompressionStream === "undefined")
      throw new Error("this browser lacks DecompressionStream (Chrome 80+, Firefox 113+, Safari 16.4+)");
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  const fmt = (x) => Number(x).toLocaleString("en-US");

  let textsIn = false, textsLoaded = null;
  let D = null, hay = null, matches = [], page = 0, current = -1;
  const F = { q: "", outcome: "", cat: "", diff: "", pkg: "", group: "" };

  function insGroups(i) {
    const e = D.ins[i], out = new Set();
    for (let j = e[10]; j < e[10] + e[11]; j++) out.add(D.rs[j][3]);
    return out;
  }
  function haystack(i) {
    const e = D.ins[i], s = e[4] >= 0 ? D.seeds[e[4]] : null;
    return [e[0], e[1], e[5].join(" "), e[14], D.pk[e[6]], s ? s[1] + " " + s[2] + " " + s[0] : "",
            e[8]].join("\n").toLowerCase();
  }
  function filter() {
    const q = F.q.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const g = F.group === "" ? -1 : Number(F.group);
    matches = [];
    for (let i = 0; i < D.ins.length; i++) {
      const e = D.ins[i];
      if (F.outcome && e[7] !== F.outcome) continue;
      if (F.cat && e[2] !== F.cat) continue;
      if (F.diff && e[3] !== F.diff) continue;
      if (F.pkg !== "" && e[6] !== Number(F.pkg)) continue;
      if (g >= 0 && !insGroups(i).has(g)) continue;
      if (q.length) {
        if (!hay) hay = D.ins.map((_, k) => haystack(k));
        if (!q.every((w) => hay[i].includes(w))) continue;
      }
      matches.push(i);
    }
    page = 0;
    renderRows();
  }
  function badge(outcome) {
    return h("span", { class: "badge b-" + outcome, title: D.outcomes[outcome] || outcome, text: D.short[outcome] || outcome });
  }
  function renderRows() {
    const tbody = $("#rows");
    tbody.textContent = "";
    const pages = Math.max(1, Math.ceil(matches.length / PAGE));
    page = Math.min(page, pages - 1);
    for (const i of matches.slice(page * PAGE, (page + 1) * PAGE)) {
      const e = D.ins[i];
      const text = e[1].length > 110 ? e[1].slice(0, 110) + "\u2026" : e[1];
      tbody.append(h("tr", { "data-i": i, class: i === current ? "sel" : null, onclick: () => show(i) },
        h("td", {}, badge(e[7])), h("td", { class: "ins", text: text }),
        h("td", { class: "kv" }, e[2], h("br"), e[3]), h("td", { class: "kv", text: D.pk[e[6]] }),
        h("td", { class: "n", text: e[12] + "/" + e[11] })));
    }
    $("#count").textContent = fmt(matches.length) + " of " + fmt(D.ins.length) + " instructions";
    $("#page").textContent = "page " + (page + 1) + " of " + pages;
    $("#prev").disabled = page === 0;
    $("#next").disabled = page >= pages - 1;
  }
  function pre(text, cls) { return h("pre", { class: cls || null, text: text }); }
  function checksLine(c) {
    if (!c) return null;
    const bits = [];
    if (c.m) {
      bits.push("mutation score " + (c.m[0] ? (c.m[1] / c.m[0]).toFixed(2) : "-") + " (" + c.m[1] + " of " + c.m[0] +
        " mutants killed" + (c.m[2] ? ", " + c.m[2] + " by timeout" : "") + (c.m[3] ? ", " + c.m[3] + " by a crash" : "") + ")");
      if (c.m[4].length) bits.push("unexercised: " + c.m[4].join(", "));
    }
    if (c.f && c.f.length) bits.push("unfaithful: " + c.f.join("; "));
    if (c.a) bits.push("agreement: " + c.a[1] + " of " + c.a[0] + " siblings pass its tests; its code passes " +
      c.a[3] + " of " + c.a[2] + " passing siblings' tests" + (c.a[4] ? " (suspect tests)" : ""));
    return h("div", { class: "kv checks" }, bits.join(" \u00b7 "));
  }
  function responseCard(j, open) {
    const r = D.rs[j], chosen = (r[11] & 1) !== 0, removed = (r[11] & 2) !== 0;
    const status = r[5] ? "passed" : r[1];
    const sum = h("summary", {},
      h("b", { text: "#" + r[0] + " " }), h("span", { class: "badge b-" + r[1], text: r[1] }), " ",
      D.groups[r[3]] !== r[1] ? h("span", { text: D.groups[r[3]] + " " }) : null,
      h("span", { class: "kv", text: r[6] + " s" + (r[4] ? "" : " \u00b7 tests not meaningful") }),
      chosen ? h("span", { class: "star", text: " \u2605 chosen for the dataset" }) : null,
      removed ? h("span", { class: "star", text: " chosen, then removed by sanitize" }) : null);
    return h("details", { class: "resp " + (chosen ? "chosen " : "") + (r[5] ? "pass" : "fail"), open: open,
                          "data-sample": r[0], "data-chosen": chosen ? "1" : null, "data-status": status }, sum,
      checksLine(r[10]),
      r[9] ? [h("h4", { text: "stderr (tail)" }), pre(r[9], "err")] : null,
      h("h4", { text: "solution" }), pre(r[7] || "(no code)"),
      h("h4", { text: "tests" }), pre(r[8] || "(no tests)"));
  }
  function show(i, sample) {
    current = i;
    if (!textsIn) {  // the texts are still being decoded: show it once they are in
      textsLoaded.then(() => { if (current === i) show(i, sample); });
      return;
    }
    for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("sel", Number(tr.dataset.i) === i);
    const e = D.ins[i], s = e[4] >= 0 ? D.seeds[e[4]] : null;
    const box = $("#detail");
    box.textContent = "";
    const cards = [];
    let anyOpen = false;
    for (let j = e[10]; j < e[10] + e[11]; j++) {
      const r = D.rs[j];
      const open = sample !== undefined ? r[0] === sample : (r[11] & 1) !== 0;
      anyOpen = anyOpen || open;
      cards.push(responseCard(j, open));
    }
    if (!anyOpen && cards.length) cards[0].open = true;
    const drops = Object.entries(e[13]).map(([k, v]) => v + " " + k).join(", ");
    box.append(h("div", { "data-testid": "lineage", "data-id": e[0] },
      h("h3", {}, badge(e[7]), " instruction ", h("code", { text: e[0] })),
      h("ol", { class: "lineage" },
        h("li", { "data-step": "seed" }, h("h4", { text: "seed" }),
          s ? [h("div", {}, h("b", { class: "seed-name", text: s[1] }), " ",
                h("span", { class: "kv seed-where", text: s[2] + ":" + s[4] + "-" + s[5] + " \u00b7 " + s[3] })),
               pre(s[6])]
            : h("div", { class: "kv", text: "seed " + (e[14] || "?") + " (" + (e[15] || "?") + "): its code is not in this run directory" })),
        h("li", { "data-step": "concepts" }, h("h4", { text: "concepts" }),
          e[5].length ? e[5].map((c) => h("span", { class: "chip", text: c })) : h("span", { class: "kv", text: "(none)" })),
        h("li", { "data-step": "instruction" }, h("h4", { text: "instruction \u00b7 " + e[2] + " \u00b7 " + e[3] }),
          h("div", { class: "text", text: e[1] })),
        h("li", { "data-step": "responses" },
          h("h4", { text: "responses: " + e[12] + " of " + e[11] + " pass" + (drops ? " (dropped before execution: " + drops + ")" : "") }),
          cards.length ? cards : h("div", { class: "kv", text: "no response reached execution" })),
        h("li", { "data-step": "outcome" }, h("h4", { text: "outcome" }),
          h("div", { text: D.outcomes[e[7]] + (e[8] ? " (" + e[8] + (e[9] ? ": " + e[9] : "") + ")" : "") })))));
    box.scrollTop = 0;
  }
  function openHash() {
    const m = /^#ex=([^:]+)(?::(\d+))?$/.exec(decodeURIComponent(location.hash));
    if (!m || !D) return;
    const i = D.ins.findIndex((e) => e[0] === m[1]);
    if (i < 0) return;
    show(i, m[2] !== undefined ? Number(m[2]) : undefined);
    $("#browser").scrollIntoView();
  }
  function options(sel, values, label) {
    const el = $(sel);
    for (const [v, t] of values) el.append(h("option", { value: v, text: label ? label(v, t) : t }));
  }
  async function loadTexts() {
    await new Promise((ok) => document.readyState === "loading"
      ? document.addEventListener("DOMContentLoaded", ok, { once: true }) : ok());
    const T = await decode(document.getElementById("report-texts"));
    for (let j = 0; j < D.rs.length; j++) { const t = T.rs[j]; D.rs[j][7] = t[0]; D.rs[j][8] = t[1]; D.rs[j][9] = t[2]; }
    for (let k = 0; k < D.seeds.length; k++) D.seeds[k][6] = T.seeds[k];
    textsIn = true;
  }
  async function main() {
    const el = document.getElementById("report-data");
    const status = $("#browser-status");
    try {
      D = await decode(el);
    } catch (err) {
      status.textContent = "The embedded examples could not be read: " + err.message;
      return;
    }
    const count = (f) => { const c = new Map(); for (const e of D.ins) c.set(f(e), (c.get(f(e)) || 0) + 1); return c; };
    const oc = count((e) => e[7]);
    options("#f-outcome", [...oc.entries()].sort((a, b) => b[1] - a[1]), (v, n) => v.replace(/_/g, " ") + " (" + fmt(n) + ")");
    options("#f-cat", [...count((e) => e[2]).entries()].sort(), (v, n) => v + " (" + fmt(n) + ")");
    options("#f-diff", [...count((e) => e[3]).entries()].sort(), (v, n) => v + " (" + fmt(n) + ")");
    const pc = count((e) => e[6]);
    options("#f-pkg", [...pc.entries()].sort((a, b) => b[1] - a[1]), (v, n) => D.pk[v] + " (" + fmt(n) + ")");
    const gc = new Map();
    for (const r of D.rs) gc.set(r[3], (gc.get(r[3]) || 0) + 1);
    options("#f-group", [...gc.entries()].sort((a, b) => b[1] - a[1]), (v, n) => D.groups[v] + " (" + fmt(n) + " responses)");
    const bind = (sel, key, ev) => $(sel).addEventListener(ev || "change", (e) => { F[key] = e.target.value; filter(); });
    bind("#q", "q", "input");
    bind("#f-outcome", "outcome"); bind("#f-cat", "cat"); bind("#f-diff", "diff"); bind("#f-pkg", "pkg"); bind("#f-group", "group");
    $("#prev").addEventListener("click", () => { page--; renderRows(); });
    $("#next").addEventListener("click", () => { page++; renderRows(); });
    for (const b of document.querySelectorAll("button[data-show-group]")) {
      b.addEventListener("click", () => {
        const g = D.groups.indexOf(b.dataset.showGroup);
        $("#f-group").value = String(g); F.group = String(g); filter();
        $("#browser").scrollIntoView();
      });
    }
    window.addEventListener("hashchange", openHash);
    filter();
    document.body.dataset.firstPage = "1";
    status.textContent = "Loading the responses\u2026";
    textsLoaded = loadTexts();
    try {
      await textsLoaded;
    } catch (err) {
      status.textContent = "The embedded responses could not be read: " + err.message;
      return;
    }
    status.textContent = "Click an instruction to see its lineage.";
    if (location.hash.startsWith("#ex=")) openHash();
    else if (matches.length) {
      const kept = matches.find((i) => D.ins[i][7] === "kept");
      show(kept !== undefined ? kept : matches[0]);
    }
    document.body.dataset.ready = "1";
  }
  main();
})();
"""
