"""Sanitisation of the final dataset, as in the paper: drop examples that reproduce a
benchmark problem, then near-duplicates (first occurrence kept). Deterministic: the
result depends only on the items and their order.
"""

from __future__ import annotations

from selfcodealign.cleaning import decontam, dedup


def sanitize(
    items: list[tuple[str, str]],
    *,
    threshold: float = 0.5,
    benchmark_data: list[str] | None = None,
) -> tuple[set[str], dict[str, int]]:
    """``items`` are ``(id, instruction + response)``, markdown: near-duplicates are
    found after renaming identifiers in its code blocks and backtick spans
    (``dedup.normalize``). Returns the ids to keep and the number dropped for each reason
    (``benchmark_contamination``, ``near_duplicate``)."""
    index = decontam.load_index(benchmark_data)
    near = dedup.NearDupIndex(threshold)
    kept: set[str] = set()
    dropped = {"benchmark_contamination": 0, "near_duplicate": 0}
    for item_id, text in items:
        if index.contaminated(text):
            dropped["benchmark_contamination"] += 1
        elif not near.add_if_new(near.signature(text, markdown=True)):
            dropped["near_duplicate"] += 1
        else:
            kept.add(item_id)
    return kept, dropped
