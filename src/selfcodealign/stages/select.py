"""Selection: one passing response per instruction, then dataset sanitisation."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from selfcodealign.config import SelectConfig
from selfcodealign.ids import make_id
from selfcodealign.records import Drop, Example, Executed, Message


def to_example(ex: Executed, system_prompt: str | None) -> Example:
    r = ex.response
    ins = r.instruction
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages += [Message(role="user", content=ins.instruction),
                 Message(role="assistant", content=r.response)]
    return Example(
        id=make_id(ex.id, "select"), parent_id=ex.id, instruction=ins.instruction,
        response=r.response, messages=messages, seed_id=ins.seed_id, seed_source=ins.seed_source,
        seed_path=ins.seed_path, concepts=ins.concepts, category=ins.category,
        difficulty=ins.difficulty, tests=r.tests, verdict=ex.verdict, model=r.gen.model,
        model_sha256=r.gen.model_sha256, model_sha256_note=r.gen.model_sha256_note,
        sampling={"temperature": r.gen.temperature, "top_p": r.gen.top_p,
                  "max_tokens": r.gen.max_tokens, "seed": r.gen.seed,
                  "prompt_style": r.gen.prompt_style, "backend": r.gen.backend},
    )


def select(
    executed: Iterable[Executed],
    cfg: SelectConfig,
    passes: Callable[[Executed], bool],
    sanitize: Callable[[list[tuple[str, str]], float], tuple[set[str], dict[str, int]]] | None = None,
) -> tuple[list[Example], list[Drop], dict[str, Any]]:
    """Deterministic: the same executed records give the same dataset, in any input order."""
    by_instruction: dict[str, list[Executed]] = defaultdict(list)
    for ex in executed:
        by_instruction[ex.response.parent_id].append(ex)
    chosen: list[Example] = []
    drops: list[Drop] = []
    for ins_id in sorted(by_instruction):
        group = sorted(by_instruction[ins_id], key=lambda e: e.response.sample_index)
        candidates = [e for e in group if passes(e)]
        if not candidates:
            drops.append(Drop(input_id=ins_id, stage="select", reason="no_passing_response"))
            continue
        rng = random.Random(make_id(cfg.seed, "select", ins_id))
        chosen.append(to_example(rng.choice(candidates), cfg.system_prompt))
    sanitize_counts: dict[str, int] = {}
    if sanitize is not None and chosen:
        kept, sanitize_counts = sanitize(
            [(e.id, e.instruction + "\n" + e.response) for e in chosen], cfg.dedup_threshold
        )
        for e in chosen:
            if e.id not in kept:
                drops.append(Drop(input_id=e.parent_id, stage="select", reason="sanitized"))
        chosen = [e for e in chosen if e.id in kept]
    stats = {"instructions": len(by_instruction), "sanitize": sanitize_counts}
    return chosen, drops, stats
