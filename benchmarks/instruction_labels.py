"""Instructions read by a reviewer: how many can be answered as written, and what tells.

Reads data/labels/instructions-labelled.jsonl (docs/labelling.md): instructions a model
(the embedded one unless the arm names another) wrote on a CPU, each set (`source`) from
one set of seeds under the built-in settings and under one or more changed settings
(`arm`), each labelled `ok` (one
answer can meet every requirement as written) or not, and `trivial`, by reviewers who did
not know the arm. Reports the ok share by arm, each changed arm against the built-in
settings of the same sets (with Wilson intervals and Newcombe's interval of the
difference), by length in words, by category and by reviewer; with ``--judge``, how well
the model's own probability of "yes" to "is this task clear and answerable as written?"
ranks them (AUC, overall and within length bands, since length alone ranks them too).

    python benchmarks/instruction_labels.py [--judge [--model GGUF]] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))  # its neighbour, also when loaded by path
from prompt_yield import newcombe, wilson  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "data" / "labels" / "instructions-labelled.jsonl"
BUILT_IN = "built-in"
BANDS = ((0, 30), (31, 40), (41, 50), (51, 70), (71, 10**6))

JUDGE_SYSTEM = ("You review programming tasks before anyone solves them. A task is clear when one Python answer "
                "can meet every requirement as written: nothing contradicts, nothing is missing, and every "
                "function, library or technique it names exists and fits. Answer with one word: yes or no.")
JUDGE_USER = "Task:\n{instruction}\n\nIs this task clear and answerable as written? Answer yes or no."


def words(r: dict) -> int:
    return len(r["instruction"].split())


def band(n: int) -> str:
    for lo, hi in BANDS:
        if lo <= n <= hi:
            return f"{lo}-{hi}" if hi < 10**6 else f">{lo - 1}"
    raise ValueError(n)


def share(rows: list[dict], key: str = "ok") -> str:
    k, n = sum(r[key] for r in rows), len(rows)
    lo, hi = wilson(k, n)
    return f"{k:>3} of {n:>3} ({100 * k / n:.0f}%, [{100 * lo:.0f}, {100 * hi:.0f}])" if n else "none"


def auc(rows: list[dict], score) -> float | None:
    """The chance that an ok instruction scores above one that is not (ties count half)."""
    pos = [score(r) for r in rows if r["ok"]]
    neg = [score(r) for r in rows if not r["ok"]]
    if not pos or not neg:
        return None
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))


def agreement(rows: list[dict]) -> dict | None:
    """How often two reviewers who labelled the same instruction (the same text under the
    same arm, in two sets) agree on `ok`, and Cohen's kappa."""
    first: dict[tuple[str, str], dict] = {}
    pairs = []
    for r in rows:
        k = (r["arm"], r["instruction"])
        if k in first and first[k]["reviewer"] != r["reviewer"]:
            pairs.append((first[k]["ok"], r["ok"]))
        first.setdefault(k, r)
    if not pairs:
        return None
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    p1, p2 = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    chance = p1 * p2 + (1 - p1) * (1 - p2)
    kappa = (agree / n - chance) / (1 - chance) if chance < 1 else 1.0
    return {"n": n, "agree": agree, "kappa": kappa}


def p_yes(rows: list[dict], model: Path) -> list[float | None]:
    """The model's probability of "yes" (against "no") as the first token of its answer."""
    from concurrent.futures import ThreadPoolExecutor

    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(model)
    p.n_parallel, p.n_ctx, p.cache_prompt, p.verbosity = 4, 4 * 2048, True, -1
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 2
    server = xllamacpp.Server(p)

    def ask(r: dict) -> float | None:
        body = {"messages": [{"role": "system", "content": JUDGE_SYSTEM},
                             {"role": "user", "content": JUDGE_USER.format(instruction=r["instruction"])}],
                "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 10, "cache_prompt": True}
        top = server.handle_chat_completions(body)["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        mass = defaultdict(float)
        for t in top:
            mass[t["token"].strip().lower()] += math.exp(t["logprob"])
        total = mass["yes"] + mass["no"]
        return mass["yes"] / total if total else None

    with ThreadPoolExecutor(p.n_parallel) as ex:
        return list(ex.map(ask, rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--judge", action="store_true", help="also ask the model whether each instruction is clear")
    ap.add_argument("--model", type=Path, help="GGUF model for --judge (default: the embedded model)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    try:
        rows = [json.loads(line) for line in a.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {a.labels}: {e}", file=sys.stderr)
        return 2
    need = ("instruction", "ok", "trivial", "arm", "source", "category", "reviewer")
    bad = next((i for i, r in enumerate(rows, 1) if not all(k in r for k in need)), None)
    if bad is not None or not rows:
        print(f"error: {a.labels}: " + (f"line {bad} lacks one of {', '.join(need)}" if rows else "no labels"),
              file=sys.stderr)
        return 2
    out: dict = {"instructions": len(rows)}
    groups = {
        "arm": lambda r: r["arm"],
        "source": lambda r: r["source"],
        "words": lambda r: band(words(r)),
        "category": lambda r: r["category"],
        "reviewer": lambda r: r["reviewer"],
    }
    print(f"{len(rows)} labelled instructions; ok {share(rows)}; trivial {share(rows, 'trivial')}")
    for name, key in groups.items():
        by = defaultdict(list)
        for r in rows:
            by[key(r)].append(r)
        print(f"by {name}:")
        out[name] = {}
        order = [band(lo) for lo, _ in BANDS] if name == "words" else sorted(by)
        width = max(len(str(k)) for k in by)
        for k in (k for k in order if k in by):
            print(f"  {str(k):<{width}}  ok {share(by[k])}   trivial {share(by[k], 'trivial')}")
            out[name][str(k)] = {"n": len(by[k]), "ok": sum(r["ok"] for r in by[k]),
                                 "trivial": sum(r["trivial"] for r in by[k])}
    out["against_built_in"] = {}
    for arm in sorted({r["arm"] for r in rows} - {BUILT_IN}):
        sources = {r["source"] for r in rows if r["arm"] == arm}
        base = [r for r in rows if r["arm"] == BUILT_IN and r["source"] in sources]
        moved = [r for r in rows if r["arm"] == arm]
        if not base:
            continue
        k1, n1, k2, n2 = sum(r["ok"] for r in base), len(base), sum(r["ok"] for r in moved), len(moved)
        lo, hi = newcombe(k1, n1, k2, n2)
        d = k2 / n2 - k1 / n1
        print(f"{arm}: ok {share(moved)} against {share(base)} built-in ({', '.join(sorted(sources))}): "
              f"{100 * d:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        out["against_built_in"][arm] = {"points": 100 * d, "interval": [100 * lo, 100 * hi],
                                        "sources": sorted(sources)}
    twice = agreement(rows)
    if twice:
        print(f"labelled twice by different reviewers: {twice['n']}, the same verdict on {twice['agree']} "
              f"({100 * twice['agree'] / twice['n']:.0f}%), Cohen's kappa {twice['kappa']:.2f}")
        out["labelled_twice"] = twice
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    from selfcodealign.verify.requirements import packages, seed_package, unanswerable

    # The labels were given after the instructions stage of their day had dropped what it
    # drops; what the stage would drop now among them is what its newer rules add.
    now = [r for r in rows if unanswerable(r["instruction"])
           or packages(r["instruction"], r["category"], seed_package(r.get("seed_path", "")))]
    print(f"the instructions stage would drop {len(now)} of them now, "
          f"{sum(r['ok'] for r in now)} of which are ok")
    out["dropped_now"] = {"n": len(now), "ok": sum(r["ok"] for r in now)}
    length_auc = auc(rows, lambda r: -words(r))
    print(f"shorter is ok more often: AUC {length_auc:.2f}")
    out["auc_shorter"] = length_auc
    if a.judge:
        from selfcodealign.models.embedded import embedded_model_path

        try:
            model = a.model or embedded_model_path()
            for r, p in zip(rows, p_yes(rows, model)):
                r["p_yes"] = p
        except Exception as e:  # the engine reports a bad file as a generic error
            print(f"error: the judge could not run: {e}", file=sys.stderr)
            return 2
        judged = [r for r in rows if r["p_yes"] is not None]
        out["judge"] = {"judged": len(judged), "auc": auc(judged, lambda r: r["p_yes"]), "by_words": {}}
        print(f"the model's P(yes) ranks ok above not ok: AUC {out['judge']['auc']:.2f} ({len(judged)} judged)")
        for lo, hi in BANDS:
            part = [r for r in judged if lo <= words(r) <= hi]
            v = auc(part, lambda r: r["p_yes"])
            out["judge"]["by_words"][band(lo)] = v
            print(f"  {band(lo):<8} words: {len(part):>3} instructions, AUC {'n/a' if v is None else f'{v:.2f}'}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
