"""Selection: one passing response per instruction, then dataset sanitisation.

With verification results (``checks``), a passing response is a candidate only if it
answers the instruction, its tests kill enough of its solution's mutants, and no function
of it goes unexercised; among the candidates, the one that agrees most with its siblings
is chosen. Without them, a seeded random passing response is.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from selfcodealign.config import SelectConfig
from selfcodealign.ids import make_id
from selfcodealign.records import Checks, Drop, Example, Executed, Message, Quality


def training_answer(response: str) -> str:
    """The response without its tests section (the paper's training target)."""
    from selfcodealign.parsing import ParseError, parse_response

    parsed = parse_response(response)
    return response if isinstance(parsed, ParseError) or not parsed.answer else parsed.answer


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
                          agreement=checks.agreement)
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
    if cfg.reject_unfaithful and c.faithfulness:
        return c.faithfulness[0].split(":", 1)[0].replace(" ", "_")
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


def select(
    executed: Iterable[Executed],
    cfg: SelectConfig,
    passes: Callable[[Executed], bool],
    sanitize: Callable[[list[tuple[str, str]], float], tuple[set[str], dict[str, int]]] | None = None,
    checks: dict[str, Checks] | None = None,
) -> tuple[list[Example], list[Drop], dict[str, Any]]:
    """Deterministic: the same records give the same dataset, in any input order.
    ``checks`` maps an executed id to its verification."""
    by_instruction: dict[str, list[Executed]] = defaultdict(list)
    for ex in executed:
        by_instruction[ex.response.parent_id].append(ex)
    chosen: list[Example] = []
    drops: list[Drop] = []
    rejected: Counter[str] = Counter()
    lo, hi = cfg.pass_rate
    for ins_id in sorted(by_instruction):
        group = sorted(by_instruction[ins_id], key=lambda e: e.response.sample_index)
        passing = [e for e in group if passes(e)]
        if not passing:
            drops.append(Drop(input_id=ins_id, stage="select", reason="no_passing_response"))
            continue
        if not lo <= len(passing) / len(group) <= hi:
            drops.append(Drop(input_id=ins_id, stage="select", reason="pass_rate_outside_band",
                              detail=f"{len(passing)}/{len(group)}"))
            continue
        candidates = []
        reasons: Counter[str] = Counter()
        for e in passing:
            why = rejection(checks.get(e.id), cfg) if checks is not None else None
            if why is None:
                candidates.append(e)
            else:
                reasons[why] += 1
        rejected.update(reasons)
        if not candidates:
            drops.append(Drop(input_id=ins_id, stage="select", reason=f"rejected_{reasons.most_common(1)[0][0]}",
                              detail=", ".join(f"{k} {v}" for k, v in reasons.most_common())))
            continue
        rng = random.Random(make_id(cfg.seed, "select", ins_id))
        if checks is not None and cfg.by_agreement:
            best = max(agreement_key(checks.get(e.id)) for e in candidates)
            candidates = [e for e in candidates if agreement_key(checks.get(e.id)) == best]
        pick = rng.choice(candidates)
        chosen.append(to_example(pick, cfg.system_prompt, checks.get(pick.id) if checks else None,
                                 cfg.tests_in_response))
    sanitize_counts: dict[str, int] = {}
    if sanitize is not None and chosen:
        kept, sanitize_counts = sanitize(
            [(e.id, e.instruction + "\n" + e.response) for e in chosen], cfg.dedup_threshold
        )
        for e in chosen:
            if e.id not in kept:
                drops.append(Drop(input_id=e.parent_id, stage="select", reason="sanitized"))
        chosen = [e for e in chosen if e.id in kept]
    stats = {"instructions": len(by_instruction), "sanitize": sanitize_counts,
             "rejected": dict(rejected)}
    return chosen, drops, stats
