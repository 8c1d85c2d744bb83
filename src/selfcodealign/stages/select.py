"""Selection: one passing response per instruction, then dataset sanitisation; the
held-out tasks and the preference pairs beside it.

A passing response is a candidate only if its training target is well formed. With
verification results (``checks``), also only if verify recorded no reason against it
(the instruction's names and requirements, its explanation, its tests), another sample
agrees with it, its tests kill enough of its solution's mutants, and no function of it
goes unexercised; among the candidates, the one that agrees most with its siblings is
chosen. Without them, a seeded random passing response is. By default only tasks that at
least 3 in 10 samples pass are kept (``pass_rate``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfcodealign.config import SelectConfig
from selfcodealign.ids import make_id
from selfcodealign.records import (
    Checks,
    Drop,
    Example,
    Executed,
    HeldOutTask,
    Judgement,
    Message,
    PreferencePair,
    Quality,
)
from selfcodealign.stages.base import WholeStage

if TYPE_CHECKING:
    from selfcodealign.config import RunConfig
    from selfcodealign.ledger import StageFiles


def training_answer(response: str) -> str:
    """The response without its tests section (the paper's training target)."""
    from selfcodealign.parsing import ParseError, parse_response

    parsed = parse_response(response)
    return response if isinstance(parsed, ParseError) or not parsed.answer else parsed.answer


def well_formed(ex: Executed) -> bool:
    """Its training target has closed fences, no tests section, and the executed code."""
    from selfcodealign.verify.target import problems

    return not problems(training_answer(ex.response.response), ex.response.code)


def to_example(ex: Executed, system_prompt: str | None, checks: Checks | None = None,
               tests_in_response: bool = False) -> Example:
    r = ex.response
    ins = r.instruction
    answer = r.response if tests_in_response else training_answer(r.response)
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages += [Message(role="user", content=ins.instruction),
                 Message(role="assistant", content=answer)]
    quality = None
    if checks is not None:
        m = checks.mutation
        quality = Quality(mutation_score=m.score if m else None, mutants=m.made if m else 0,
                          unexercised=m.unexercised if m else [], pass_rate=checks.pass_rate,
                          agreement=checks.agreement, probes=checks.probes)
    return Example(
        id=make_id(ex.id, "select"), parent_id=ex.id, instruction=ins.instruction,
        response=answer, messages=messages, seed_id=ins.seed_id, seed_source=ins.seed_source,
        seed_path=ins.seed_path, concepts=ins.concepts, category=ins.category,
        difficulty=ins.difficulty, tests=r.tests, verdict=ex.verdict, model=r.gen.model,
        model_sha256=r.gen.model_sha256, model_sha256_note=r.gen.model_sha256_note,
        sampling={"temperature": r.gen.temperature, "top_p": r.gen.top_p,
                  "max_tokens": r.gen.max_tokens, "seed": r.gen.seed,
                  "prompt_style": r.gen.prompt_style, "backend": r.gen.backend},
        quality=quality,
    )


def rejection(c: Checks | None, cfg: SelectConfig) -> str | None:
    """Why verification rules a passing response out (None: it is a candidate)."""
    if c is None:
        return None
    if cfg.reject_unfaithful:
        for reason in c.faithfulness:
            category = reason.split(":", 1)[0]
            if category not in cfg.keep_reasons:
                return category.replace(" ", "_")
    a = c.agreement
    if cfg.require_agreement and a is not None:
        if a.passing_siblings == 0:
            return "no_other_passing_response"
        if a.my_code_passes < a.passing_siblings:
            return "fails_sibling_tests"
        if a.pass_my_tests == 0:
            return "no_sibling_passes_its_tests"
    if cfg.reject_probe_disagreement and c.probes is not None and c.probes.unsettled:
        return "probe_disagreement"
    m = c.mutation
    if m is not None:
        if cfg.min_mutation_score > 0 and (m.score is None or m.score < cfg.min_mutation_score):
            return "weak_tests" if m.made else "no_mutants"
        if cfg.reject_unexercised and m.unexercised:
            return "unexercised_function"
    return None


def agreement_key(c: Checks | None) -> tuple:
    """Prefer responses whose tests other solutions pass and whose code passes others'
    tests; then stronger tests."""
    if c is None or c.agreement is None:
        return (0, 0.0)
    a = c.agreement
    score = c.mutation.score if c.mutation is not None and c.mutation.score is not None else 0.0
    return (a.pass_my_tests + a.my_code_passes, score)


@dataclass
class Selection:
    examples: list[Example]
    drops: list[Drop]
    stats: dict[str, Any]
    heldout: list[HeldOutTask] = field(default_factory=list)
    pairs: list[PreferencePair] = field(default_factory=list)


def holdout_order(seed_ids: Iterable[str], seed: int) -> list[str]:
    """Seed ids in the order they are held out: by a hash with ``seed``."""
    return sorted(set(seed_ids), key=lambda s: make_id(seed, "holdout", s))


def holdout_seed_ids(seed_ids: Iterable[str], n: int, seed: int) -> set[str]:
    """The first ``n`` seed ids of ``holdout_order``: the same split in any input order,
    and for every selection made from the same responses."""
    return set(holdout_order(seed_ids, seed)[:n])


def judgements_by_response(judged: Iterable[Judgement]) -> dict[str, list[Judgement]]:
    out: dict[str, list[Judgement]] = defaultdict(list)
    for j in judged:
        out[j.parent_id].append(j)
    return out


def _candidates(passing: list[Executed], checks: dict[str, Checks] | None, cfg: SelectConfig,
                judged: dict[str, list[Judgement]] | None = None) -> tuple[list[Executed], Counter[str]]:
    """The passing responses verification does not rule out, and why the others are."""
    candidates, reasons = [], Counter()
    for e in passing:
        why = "malformed_target" if not well_formed(e) else \
            rejection(checks.get(e.id), cfg) if checks is not None else None
        if why is None and judged is not None and any(not j.satisfied for j in judged.get(e.id, ())):
            why = "judged_unmet"
        if why is None:
            candidates.append(e)
        else:
            reasons[why] += 1
    return candidates, reasons


def _best(candidates: list[Executed], checks: dict[str, Checks] | None, cfg: SelectConfig,
          rng: random.Random) -> Executed:
    if checks is not None and cfg.by_agreement:
        top = max(agreement_key(checks.get(e.id)) for e in candidates)
        candidates = [e for e in candidates if agreement_key(checks.get(e.id)) == top]
    return rng.choice(candidates)


def _drop(ins_id: str, reason: str, detail: str = "") -> Drop:
    return Drop(input_id=ins_id, stage="select", reason=reason, detail=detail)


def _held_out_task(ins_id: str, seed_id: str, candidates: list[Executed], checks: dict[str, Checks] | None,
                   cfg: SelectConfig, rng: random.Random) -> HeldOutTask | None:
    """A held-out instruction's task, with its best candidate as the solution (None
    without a candidate)."""
    if not candidates:
        return None
    t = _best(candidates, checks, cfg, rng)
    ex = to_example(t, None, checks.get(t.id) if checks else None)
    return HeldOutTask(id=make_id(ins_id, "heldout"), parent_id=ins_id, seed_id=seed_id,
                       instruction=ex.instruction, tests=t.response.tests,
                       solution=t.response.code, quality=ex.quality)


def _pick(ins_id: str, group: list[Executed], passing: list[Executed], failing: list[Executed],
          candidates: list[Executed], reasons: Counter[str], checks: dict[str, Checks] | None,
          cfg: SelectConfig, rng: random.Random, rejected: Counter[str]) -> Executed | Drop:
    """The response an instruction's example takes (``cfg.pick``), or why there is none;
    ``rejected`` counts why passing responses were ruled out."""
    if cfg.pick == "any":
        pool = [e for e in group if well_formed(e)]
        return rng.choice(pool) if pool else _drop(ins_id, "malformed_target")
    if cfg.pick == "failing":
        pool = [e for e in failing if well_formed(e)]
        if not pool:
            return _drop(ins_id, "no_failing_response" if not failing else "malformed_target")
        return rng.choice(pool)
    if not passing:
        return _drop(ins_id, "no_passing_response")
    rejected.update(reasons)
    if not candidates:
        return _drop(ins_id, f"rejected_{reasons.most_common(1)[0][0]}",
                     ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    return _best(candidates, checks, cfg, rng)


def _preference_pair(ins_id: str, ex: Example, pick: Executed, failing: list[Executed],
                     cfg: SelectConfig) -> PreferencePair | None:
    """The example against one of its instruction's failing responses (passing picks only)."""
    if cfg.pick != "passing" or not failing:
        return None
    bad = random.Random(make_id(cfg.seed, "rejected", ins_id)).choice(failing)
    return PreferencePair(
        id=make_id(ins_id, "pair"), parent_id=ins_id, seed_id=ex.seed_id, prompt=ex.messages[:-1],
        chosen=ex.response,
        rejected=bad.response.response if cfg.tests_in_response else training_answer(bad.response.response),
        chosen_id=pick.id, rejected_id=bad.id, rejected_verdict=bad.verdict, quality=ex.quality)


def _without_near_heldout(chosen: list[Example], held_texts: list[str], cfg: SelectConfig,
                          drops: list[Drop]) -> tuple[list[Example], int]:
    """The examples whose instructions are no near-copy of a held-out one, and how many were."""
    if not (held_texts and chosen):
        return chosen, 0
    from selfcodealign.cleaning import NearDupIndex

    # All held-out instructions, not only the scored ones: every selection from the
    # same responses then keeps out the same near-copies.
    index = NearDupIndex(cfg.dedup_threshold)
    for text in held_texts:
        index.add(index.signature(text, markdown=True))
    keep = []
    for e in chosen:
        if index.is_dup(index.signature(e.instruction, markdown=True)):
            drops.append(_drop(e.parent_id, "near_heldout"))
        else:
            keep.append(e)
    return keep, len(chosen) - len(keep)


def _keep_only(chosen: list[Example], kept: set[str], reason: str, drops: list[Drop]) -> list[Example]:
    for e in chosen:
        if e.id not in kept:
            drops.append(_drop(e.parent_id, reason))
    return [e for e in chosen if e.id in kept]


def _sanitized(chosen: list[Example], sanitize, cfg: SelectConfig,
               drops: list[Drop]) -> tuple[list[Example], dict[str, int]]:
    """The examples decontamination and near-duplicate removal keep, and their counts."""
    if sanitize is None or not chosen:
        return chosen, {}
    kept, counts = sanitize([(e.id, e.instruction + "\n" + e.response) for e in chosen], cfg.dedup_threshold)
    return _keep_only(chosen, kept, "sanitized", drops), counts


def _capped(chosen: list[Example], cfg: SelectConfig, drops: list[Drop]) -> list[Example]:
    """At most ``cfg.max_examples``, taken by a hash with the seed."""
    if cfg.max_examples is None or len(chosen) <= cfg.max_examples:
        return chosen
    kept = set(sorted((e.id for e in chosen), key=lambda i: make_id(cfg.seed, "cap", i))[:cfg.max_examples])
    return _keep_only(chosen, kept, "over_max_examples", drops)


def select(
    executed: Iterable[Executed],
    cfg: SelectConfig,
    passes: Callable[[Executed], bool],
    sanitize: Callable[[list[tuple[str, str]], float], tuple[set[str], dict[str, int]]] | None = None,
    checks: dict[str, Checks] | None = None,
    judged: dict[str, list[Judgement]] | None = None,
) -> Selection:
    """Deterministic: the same records give the same dataset, in any input order.
    ``checks`` maps an executed id to its verification. Besides the dataset: the held-out
    tasks (``cfg.holdout_seeds``) and, when the dataset takes passing responses, a
    preference pair per instruction that also has a failing response."""
    by_instruction: dict[str, list[Executed]] = defaultdict(list)
    for ex in executed:
        by_instruction[ex.response.parent_id].append(ex)
    seed_of = {i: g[0].response.instruction.seed_id for i, g in by_instruction.items()}
    held = holdout_seed_ids(seed_of.values(), cfg.holdout_seeds, cfg.seed) if cfg.holdout_seeds else set()
    chosen: list[Example] = []
    pairs: dict[str, PreferencePair] = {}  # example id -> its pair
    heldout: list[HeldOutTask] = []
    held_texts: list[str] = []  # every held-out instruction, scored or not
    drops: list[Drop] = []
    rejected: Counter[str] = Counter()
    lo, hi = cfg.pass_rate
    for ins_id in sorted(by_instruction):
        group = sorted(by_instruction[ins_id], key=lambda e: e.response.sample_index)
        passing = [e for e in group if passes(e)]
        failing = [e for e in group if not passes(e)]
        rng = random.Random(make_id(cfg.seed, "select", ins_id))
        candidates, reasons = _candidates(passing, checks, cfg, judged)
        if seed_of[ins_id] in held:
            held_texts.append(group[0].response.instruction.instruction)
            if (task := _held_out_task(ins_id, seed_of[ins_id], candidates, checks, cfg, rng)) is not None:
                heldout.append(task)
            drops.append(_drop(ins_id, "held_out", "" if candidates else "no strongly tested passing response"))
            continue
        if passing and not lo <= len(passing) / len(group) <= hi:
            drops.append(_drop(ins_id, "pass_rate_outside_band", f"{len(passing)}/{len(group)}"))
            continue
        pick = _pick(ins_id, group, passing, failing, candidates, reasons, checks, cfg, rng, rejected)
        if isinstance(pick, Drop):
            drops.append(pick)
            continue
        ex = to_example(pick, cfg.system_prompt, checks.get(pick.id) if checks else None, cfg.tests_in_response)
        chosen.append(ex)
        if (pair := _preference_pair(ins_id, ex, pick, failing, cfg)) is not None:
            pairs[ex.id] = pair
    chosen, near_heldout = _without_near_heldout(chosen, held_texts, cfg, drops)
    chosen, sanitize_counts = _sanitized(chosen, sanitize, cfg, drops)
    chosen = _capped(chosen, cfg, drops)
    stats = {"instructions": len(by_instruction), "sanitize": sanitize_counts, "rejected": dict(rejected),
             "held_out_seeds": len(held), "heldout_tasks": len(heldout), "near_heldout": near_heldout}
    return Selection(chosen, drops, stats, heldout, [pairs[e.id] for e in chosen if e.id in pairs])


class SelectStage(WholeStage):
    """The dataset and its drops, the preference pairs and the held-out tasks, written whole
    from the executed responses (and their checks, when verification ran)."""

    name = "select"
    input_type = Executed
    output_type = Example
    reads = ("execute", "verify", "judge")
    takes_limit = False
    keeps_output = False  # it takes seconds: redone on every run rather than resumed

    def __init__(self, cfg: RunConfig) -> None:
        self.run_cfg = cfg
        self.key = self.settings(cfg)

    @classmethod
    def from_config(cls, cfg, env=None) -> SelectStage:
        return cls(cfg)

    @classmethod
    def settings(cls, cfg) -> dict[str, Any]:
        return cfg.select.model_dump(mode="json")

    def inputs(self, upstream: dict[str, Any]):
        checks = upstream.get("verify")
        judged = upstream.get("judge")
        return (list(upstream["execute"]), None if checks is None else {c.parent_id: c for c in checks},
                None if judged is None else judgements_by_response(judged))

    def write(self, inputs, files: StageFiles, quiet: bool) -> None:
        from selfcodealign.jsonl import write_atomic
        from selfcodealign.stages.execute import ExecuteStage

        executed, checks, judged = inputs
        cfg = self.run_cfg
        sanitize = None
        if cfg.select.sanitize:
            from selfcodealign.cleaning import sanitize as _sanitize

            def sanitize(items, threshold):
                return _sanitize(items, threshold=threshold)

        passes = ExecuteStage(cfg.execute).counts_as_pass
        sel = select(executed, cfg.select, passes, sanitize, checks, judged)
        write_atomic(files.out, sel.examples)
        write_atomic(files.drops, sel.drops)
        write_atomic(selection_file(files.out, "pairs"), sel.pairs)
        held = selection_file(files.out, "heldout")
        if cfg.select.holdout_seeds:
            write_atomic(held, sel.heldout)
        elif held.exists():
            held.unlink()  # from an earlier selection with a hold-out: not this one's
        summary = {"in": sel.stats["instructions"], "out": len(sel.examples),
                   "drops": dict(Counter(d.reason for d in sel.drops)),
                   "responses_passed": sum(1 for e in executed if passes(e)),
                   "responses_executed": len(executed), "rejected": sel.stats["rejected"],
                   "sanitize": sel.stats["sanitize"], "pairs": len(sel.pairs),
                   "held_out_seeds": sel.stats["held_out_seeds"], "heldout_tasks": len(sel.heldout)}
        files.save_state({"config": self.key, "complete": True, "summary": summary})

    @classmethod
    def outputs(cls, files, cfg) -> None:
        return None  # nothing reads the dataset after it

    @classmethod
    def summarize(cls, files, outputs) -> dict[str, Any]:
        return (files.state() or {}).get("summary", {})


def selection_file(dataset: Path, kind: str) -> Path:
    """Where selection writes its other outputs, beside the dataset (DATASET.pairs.jsonl:
    preference pairs; DATASET.heldout.jsonl: held-out tasks)."""
    return dataset.with_name(f"{dataset.name.removesuffix('.jsonl')}.{kind}.jsonl")
