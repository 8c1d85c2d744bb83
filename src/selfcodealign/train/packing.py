"""Sequence packing: many examples in one flat row, none attending to another.

An optimizer step takes ``examples_per_step`` examples (the paper's effective batch).
They are packed, first-fit decreasing, into micro-batches of at most ``token_budget``
tokens; the micro-batches are dealt to ranks so that every rank runs the same number of
forward passes (FSDP needs that; DDP syncs on the last one). A micro-batch is one row:
its position ids restart at 0 for each example and ``cu_seq_lens`` marks the
boundaries, which is what varlen (flash) attention reads on GPU; on CPU, transformers
turns the restarting position ids into a block-diagonal causal mask. The plan is a pure
function of lengths, seed and epoch, so every rank computes the same one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from selfcodealign.train.format import IGNORE, Encoded


@dataclass(frozen=True)
class Step:
    """One optimizer step as seen by one rank."""

    micro: list[list[int]]  # example indices per micro-batch on this rank ([] = dummy)
    label_tokens: int  # supervised tokens in the whole step, all ranks together


def pack_bins(lengths: Sequence[int], indices: Sequence[int], budget: int) -> list[list[int]]:
    """First-fit decreasing: few, full bins."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(indices, key=lambda j: (-lengths[j], j)):
        n = lengths[i]
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(budget - n)
    return bins


def _even_out(bins: list[list[int]], lengths: Sequence[int], world: int) -> list[list[int]]:
    """Make the bin count a multiple of ``world``: split the fullest splittable bin, and
    when nothing splits, add empty bins (each rank then runs a zero-weight pass)."""
    bins = [list(b) for b in bins]
    while len(bins) % world:
        splittable = [b for b in bins if len(b) > 1]
        if not splittable:
            bins.append([])
            continue
        b = max(splittable, key=lambda x: sum(lengths[i] for i in x))
        bins.remove(b)
        half = len(b) // 2
        bins += [b[:half], b[half:]]
    return bins


def plan_epoch(
    lengths: Sequence[int],
    label_tokens: Sequence[int],
    *,
    examples_per_step: int,
    token_budget: int,
    world_size: int = 1,
    rank: int = 0,
    seed: int = 0,
    epoch: int = 0,
) -> list[Step]:
    if max(lengths, default=0) > token_budget:
        raise ValueError("an example is longer than the token budget of a micro-batch")
    order = list(range(len(lengths)))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    steps = []
    for start in range(0, len(order), examples_per_step):
        chosen = order[start : start + examples_per_step]
        bins = _even_out(pack_bins(lengths, chosen, token_budget), lengths, world_size)
        # Deal bins round-robin after sorting by size, so ranks get similar work.
        bins.sort(key=lambda b: (-sum(lengths[i] for i in b), b))
        mine = bins[rank::world_size]
        steps.append(Step(micro=mine, label_tokens=sum(label_tokens[i] for i in chosen)))
    return steps


@dataclass(frozen=True)
class Packed:
    """One flat micro-batch, as plain lists (tensors are made by the caller)."""

    input_ids: list[int]
    position_ids: list[int]
    targets: list[int]  # next-token target per position, IGNORE where no loss
    cu_seq_lens: list[int]
    max_len: int
    n_tokens: int  # real tokens (no padding)


def pack(examples: Sequence[Encoded], pad_id: int = 0, pad_to_multiple: int = 1) -> Packed:
    """Flatten examples into one row. ``targets[p]`` is the token to predict at ``p``:
    the next token of the same example when that token is supervised. An example's last
    position never predicts the next example's first token."""
    ids: list[int] = []
    pos: list[int] = []
    tgt: list[int] = []
    cu = [0]
    for ex in examples:
        n = len(ex.input_ids)
        ids += ex.input_ids
        pos += range(n)
        tgt += [ex.labels[p + 1] if ex.labels[p + 1] != IGNORE else IGNORE for p in range(n - 1)]
        tgt.append(IGNORE)
        cu.append(cu[-1] + n)
    real = len(ids)
    if real == 0:
        # A zero-weight pass keeps ranks in step; one token is enough.
        ids, pos, tgt, cu = [pad_id], [0], [IGNORE], [0, 1]
    pad = (-len(ids)) % pad_to_multiple
    if pad:
        # Padding is its own sequence (positions restart) and carries no loss.
        ids += [pad_id] * pad
        pos += range(pad)
        tgt += [IGNORE] * pad
        cu.append(cu[-1] + pad)
    lens = [b - a for a, b in zip(cu, cu[1:])]
    return Packed(ids, pos, tgt, cu, max(lens), real)
