"""The training report: what `selfcodealign train` was asked to do (the recipe in
train_config.json) and how it went, step by step (GRPO's grpo_steps.jsonl, or the
history train_config.json keeps), as one self-contained HTML page."""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfcodealign.report.html import (
    bar, esc, json_script, key_attr, line_chart, num, page, pct, short, stacked_bar, table, write_page,
)
from selfcodealign.report.load import Reader
from selfcodealign.train.grpo import STEP_LOG

CONFIG = "train_config.json"

# The recipe's headline settings, in reading order; the rest go under "every setting".
RECIPE = [
    ("objective", "objective"), ("method", "method"), ("peak_lr", "peak learning rate"), ("lr", "lr setting"),
    ("schedule", "schedule"), ("warmup_ratio", "warmup ratio"), ("grpo_group_size", "group size"),
    ("grpo_prompts_per_step", "prompts per step"), ("grpo_kl_coef", "KL coef"),
    ("grpo_temperature", "temperature"), ("grpo_max_new_tokens", "max new tokens"), ("grpo_clip", "clip"),
    ("grpo_reward_timeout", "reward timeout (s)"),
    ("grpo_scale_std", "advantages scaled by the group's std"), ("grpo_shuffle_rewards", "shuffled rewards"),
    ("grpo_pass_rate_min", "pass-rate band, min"), ("grpo_pass_rate_max", "pass-rate band, max"),
    ("grpo_overlap", "overlap"), ("rollouts", "rollouts source"), ("dpo_beta", "DPO beta"),
    ("examples_per_step", "examples per step"), ("max_len", "max length"), ("token_budget_used", "token budget"),
    ("epochs", "epochs"), ("max_steps", "max steps"), ("steps", "steps"), ("steps_done", "steps done"),
    ("steps_skipped", "steps skipped (gradients not finite)"),
    ("epochs_done", "epochs done"), ("data", "data"), ("data_sha256", "data sha256"), ("data_lines", "data lines"),
    ("examples", "examples (tasks) used"), ("dropped", "dropped"), ("base_model", "base model"),
    ("base_model_sha256", "base model sha256"), ("precision", "precision"), ("seed", "seed"),
]
# Per-step series: (key, label, css class); a chart is a title and its series.
GRPO_CHARTS = [
    ("reward", [("reward_mean", "reward mean", "s-pass")]),
    ("KL to the start model", [("kl", "KL", "s-alt")]),
    ("loss", [("loss", "loss", "s-acc")]),
    ("fraction", [("signal_fraction", "signal fraction", "s-pass"), ("clip_fraction", "clip fraction", "s-fail")]),
    ("seconds", [("rollout_s", "rollout", "s-acc"), ("reward_s", "reward wait", "s-warn"),
                 ("update_s", "update", "s-pass"), ("step_s", "step", "s-mut")]),
    ("rollout tokens/s", [("rollout_tokens_per_s", "rollout tokens/s", "s-acc")]),
    ("learning rate", [("lr", "lr", "s-soft")]),
    ("gradient norm", [("grad_norm", "grad norm", "s-warn")]),
    ("largest |log ratio| policy/sampler", [("max_log_ratio", "max |log ratio|", "s-fail")]),
]
SUPERVISED_CHARTS = [
    ("loss", [("loss", "loss", "s-acc")]),
    ("DPO reward accuracy", [("reward_accuracy", "reward accuracy", "s-pass")]),
    ("DPO margin", [("margin", "margin", "s-alt")]),
    ("learning rate", [("lr", "lr", "s-soft")]),
    ("tokens/s", [("tokens_per_s", "tokens/s", "s-acc")]),
    ("gradient norm", [("grad_norm", "grad norm", "s-warn")]),
]


@dataclass
class TrainData:
    config: dict  # train_config.json ({} when absent or unreadable)
    steps: list[dict]  # one record a step, by step
    source: str  # where the steps came from
    notes: list[str] = field(default_factory=list)

    @property
    def objective(self) -> str:
        return str(self.config.get("objective") or ("grpo" if self.source == STEP_LOG else "?"))


def is_train_dir(path: Path) -> bool:
    return (path / CONFIG).is_file() or (path / STEP_LOG).is_file()


def load_train(root: Path) -> TrainData:
    notes: list[str] = []
    rd = Reader(root, notes)
    config = rd.json(CONFIG, "the run has not finished (or stopped at a checkpoint): no recipe or final figures")
    if config is not None and not isinstance(config, dict):
        notes.append(f"{CONFIG} is not a JSON object: ignored")
    config = config if isinstance(config, dict) else {}
    if rd.path(STEP_LOG):
        raw, source = list(rd.jsonl(STEP_LOG)), STEP_LOG
    else:
        raw, source = config.get("history") if isinstance(config.get("history"), list) else [], f"{CONFIG}'s history"
    by_step, stepless = {}, 0
    for rec in raw:
        step = rec.get("step") if isinstance(rec, dict) else None
        if isinstance(step, int) and not isinstance(step, bool):
            by_step[step] = rec  # a step done again after a resume: its last record
        else:
            stepless += 1
    if stepless:
        notes.append(f"{source}: {stepless:,} record(s) without a step number skipped")
    steps = [by_step[k] for k in sorted(by_step)]
    for rec in steps:
        if _value(rec, "tokens") is not None and _value(rec, "seconds"):
            rec.setdefault("tokens_per_s", rec["tokens"] / rec["seconds"])
    return TrainData(config, steps, source, notes)


def _value(rec: dict, key: str) -> float | None:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _point(rec: dict, key: str) -> float | None:
    if key == "rollout_tokens_per_s" and not _value(rec, "rollout_s"):
        return None  # the last step samples no next batch: no rate, rather than 0
    return _value(rec, key)


def setting(v: Any) -> str:
    """A setting as written: learning rates in their own notation, not rounded to 0.00."""
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v).lower()
    if isinstance(v, float):
        return esc(f"{v:.6g}")
    if isinstance(v, dict):
        return ", ".join(f"{esc(k)} {setting(x)}" for k, x in v.items()) or "-"
    return num(v)


# ---- sections ----------------------------------------------------------------------


def header(d: TrainData, shown_dir: str) -> str:
    c = d.config
    bits = [f"model directory <code>{esc(shown_dir)}</code>", f"objective {esc(d.objective)}"]
    if c.get("method"):
        bits.append(f"method {esc(c['method'])}")
    if c.get("base_model"):
        bits.append(f"from {esc(c['base_model'])}")
    bits.append("written " + _dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
    return " &middot; ".join(bits)


def finals(d: TrainData) -> str:
    c = d.config
    last = d.steps[-1] if d.steps else {}
    cards = [("steps done", c.get("steps_done", last.get("step")), ["steps_done"]), ("of steps", c.get("steps"), ["steps"]),
             ("final loss", c.get("final_loss", last.get("loss")), ["final_loss"])]
    if d.objective == "grpo":
        cards += [("final reward mean", c.get("final_reward_mean", last.get("reward_mean")), ["final_reward_mean"]),
                  ("first rollout, s", c.get("first_rollout_s"), ["first_rollout_s"])]
    cards += [("epochs done", c.get("epochs_done"), ["epochs_done"]), ("wall time, s", c.get("seconds"), ["seconds"])]
    shown = "".join(f'<div class="card"><b{key_attr(p)}>{esc(short(v)) if isinstance(v, float) else num(v)}</b>'
                    f"<span>{esc(t)}</span></div>" for t, v, p in cards if v is not None)
    return f'<section id="finals"><h2>Final figures</h2><div class="cards">{shown}</div></section>' if shown else ""


def recipe(d: TrainData) -> str:
    c = d.config
    if not c:
        return ""
    obj = d.objective
    named = [(k, label) for k, label in RECIPE if k in c
             and not (k.startswith("grpo_") and obj != "grpo") and not (k == "dpo_beta" and obj != "dpo")]
    rows = [f"<tr><td>{esc(label)}</td><td{key_attr([k])}><code>{setting(c[k])}</code></td></tr>" for k, label in named]
    shown = {k for k, _ in named} | {"history"}
    rest = [f"<tr><td>{esc(k)}</td><td{key_attr([k])}><code>{setting(v)}</code></td></tr>"
            for k, v in c.items() if k not in shown and not isinstance(v, list)]
    return ('<section id="recipe"><h2>Recipe</h2>' + table(["setting", "value"], rows, attrs=' data-testid="recipe"')
            + (f"<details><summary>every other setting ({len(rest)})</summary>{table(['setting', 'value'], rest)}"
               "</details>" if rest else "") + "</section>")


def outcomes(d: TrainData) -> str:
    if d.objective != "grpo":
        return ""
    total = Counter()
    for rec in d.steps:
        o = rec.get("outcomes")
        if isinstance(o, dict):
            total.update({str(k): int(v) for k, v in o.items() if isinstance(v, int)})
    if not total:
        return ""
    n = sum(total.values())
    rewards = d.config.get("rewards") if isinstance(d.config.get("rewards"), dict) else {}
    rows = [f'<tr><td>{esc(k)}</td><td class="n" data-outcome="{esc(k)}">{v:,}</td><td class="n">{pct(v, n)}</td>'
            f'<td class="n">{setting(rewards.get(k))}</td><td>{bar(v / n, "pass" if k == "passed" else "fail")}</td></tr>'
            for k, v in total.most_common()]
    return ('<section id="outcomes"><h2>Outcomes</h2>'
            f"<p>{n:,} rollouts over {len(d.steps):,} steps, each scored in the sandbox.</p>"
            + table(["outcome", "rollouts", "share", "reward", ""], rows, attrs=' data-testid="outcomes"')
            + "</section>")


def curves(d: TrainData) -> str:
    if not d.steps:
        return ('<section id="curves"><h2>Training curves</h2><p class="note" data-testid="no-history">'
                f"No per-step history: {esc(d.source)} holds no step records, so only the recipe and the "
                "final figures are shown.</p></section>")
    x = [float(r["step"]) for r in d.steps]
    blocks = []
    for title, series in GRPO_CHARTS if d.objective == "grpo" else SUPERVISED_CHARTS:
        vals = [(label, cls, [_point(r, k) for r in d.steps]) for k, label, cls in series]
        vals = [s for s in vals if any(v is not None for v in s[2])]
        if vals:
            blocks.append(f"<div><h3>{esc(title)}</h3>" + line_chart(
                x, vals, xlabel="step", ylabel=title, testid=f"chart-{series[0][0]}") + "</div>")
    parts = ['<section id="curves"><h2>Training curves</h2>',
             f'<p class="note">{len(d.steps):,} steps, from {esc(d.source)}.</p>']
    if d.objective == "grpo":
        parts.append(_time_split(d))
    parts.append('<div class="grid2">' + "".join(blocks) + "</div>")
    return "".join(parts) + "</section>"


def _time_split(d: TrainData) -> str:
    sums = {k: sum(_value(r, k) or 0.0 for r in d.steps) for k in ("rollout_s", "reward_s", "update_s")}
    if not any(sums.values()):
        return ""
    bar_svg = stacked_bar([("rollout", sums["rollout_s"], "s-acc"), ("reward wait", sums["reward_s"], "s-warn"),
                           ("update", sums["update_s"], "s-pass")], "s")
    return ("<h3>Where the steps' time went</h3>" + bar_svg
            + f'<p class="note">Summed over the steps: rollout {num(sums["rollout_s"], 1)} s (sampling the next '
            f'step\'s batch; the last step samples none, so its rollout tokens/s is left out), reward wait '
            f'{num(sums["reward_s"], 1)} s (the part of scoring not overlapped with sampling), update '
            f'{num(sums["update_s"], 1)} s.</p>')


def step_table(d: TrainData) -> str:
    if not d.steps:
        return ""
    keys = ["reward_mean", "kl", "loss", "signal_fraction", "clip_fraction", "rollout_s", "reward_s", "update_s",
            "rollout_tokens_per_s"] if d.objective == "grpo" else \
        ["loss", "reward_accuracy", "margin", "lr", "tokens", "seconds", "grad_norm"]
    keys = [k for k in keys if any(k in r for r in d.steps)]
    rows = ["<tr>" + f'<td class="n">{r["step"]}</td>' + "".join(
        f'<td class="n">{esc(short(v)) if (v := _value(r, k)) is not None else "-"}</td>' for k in keys) + "</tr>"
        for r in d.steps]
    return (f'<section id="steps"><h2>Every step</h2><details><summary>{len(rows):,} rows</summary>'
            + table(["step"] + [esc(k) for k in keys], rows, attrs=' data-testid="steps"') + "</details></section>")


def render(d: TrainData, shown_dir: str) -> str:
    sections = [("finals", "Final figures", finals(d)), ("recipe", "Recipe", recipe(d)),
                ("curves", "Curves", curves(d)), ("outcomes", "Outcomes", outcomes(d)),
                ("steps", "Every step", step_table(d))]
    notes = ('<section id="notes"><h2>Notes</h2><ul class="notes" data-testid="notes">'
             + "".join(f"<li>{esc(n)}</li>" for n in d.notes) + "</ul></section>") if d.notes else ""
    sections.append(("notes", "Notes", notes))
    body = "".join(html for _, _, html in sections)
    nav = [(a, t) for a, t, html in sections if html]
    data = json_script({"objective": d.objective, "source": d.source, "steps": d.steps}, "train-data")
    return page(f"SelfCodeAlign training report ({d.objective})", header(d, shown_dir), nav, body, data)


def write_train_report(model_dir: Path, out: Path | None = None) -> tuple[Path, dict]:
    """Write the training report of ``model_dir`` (a `train` output) to ``out`` (default
    MODEL_DIR/report.html)."""
    model_dir = Path(model_dir)
    d = load_train(model_dir)
    out = Path(out) if out else model_dir / "report.html"
    write_page(out, render(d, str(model_dir)))
    return out, {"bytes": out.stat().st_size, "steps": len(d.steps), "objective": d.objective}
