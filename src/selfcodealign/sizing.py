"""Sizing a run to a time budget (``budget_minutes``): measure the engine on this machine
first, then mine only as many seeds as the budget affords.

A CPU decides how long a run takes: the same quickstart ran 9 minutes on one 2-core
machine and 27 on another. So before the first seed is mined, ``measure`` times the
engine twice with all slots busy, once reading uncached prompts and once writing tokens,
and ``seeds_for`` turns the two rates into seeds with the token costs below.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# Tokens one request costs the engine in each generating stage: prompt tokens it has to
# read (those its prefix cache does not serve) and tokens it writes. Measured on a
# quickstart run of the embedded model (docs/benchmarks.md#quickstart); the responses'
# figure is per sample, truncated ones included.
COST = {"concepts": (290, 18), "instructions": (205, 59), "responses": (185, 221)}
# Seconds outside generation: mining seeds (Pyright checks them in batches), starting the
# model twice, executing and verifying, the report. Measured on the same run.
SEED_MINING_S = 1.0  # per seed kept
FIXED_S = 30.0
MARGIN = 0.85  # the estimate's share of the budget: tokens per request vary
MIN_SEEDS, MAX_SEEDS = 4, 256

_FILLER = (
    "def merge_intervals(intervals):\n"
    "    \"\"\"Merge overlapping [start, end] intervals and return them sorted.\"\"\"\n"
    "    out = []\n"
    "    for start, end in sorted(intervals):\n"
    "        if out and start <= out[-1][1]:\n"
    "            out[-1][1] = max(out[-1][1], end)\n"
    "        else:\n"
    "            out.append([start, end])\n"
    "    return out\n"
)


@dataclass(frozen=True)
class Speed:
    prompt_tps: float  # prompt tokens read per second, all slots together
    decode_tps: float  # tokens written per second, all slots together
    probe_s: float  # what measuring took

    def request_s(self, prompt_tokens: float, completion_tokens: float) -> float:
        return prompt_tokens / self.prompt_tps + completion_tokens / self.decode_tps


NO_COUNTS = ("the engine reports no token counts, so its speed cannot be measured (budget_minutes); "
             "run without a budget: --set budget_minutes=null, and size it with seeds.max_seeds")


def measure(backend, slots: int, *, prompt_lines: int = 30, decode_tokens: int = 48) -> Speed:
    """Aggregate prompt and decode rates of ``backend`` with ``slots`` requests (one per slot).
    Each prompt starts with its own number, so no prefix cache serves it."""
    from selfcodealign.backends import SamplingParams
    from selfcodealign.errors import UserError

    t0 = time.monotonic()
    body = _FILLER * max(1, prompt_lines // 10)
    read = [[{"role": "user", "content": f"Snippet {i}.\n{body}\nName the function above."}] for i in range(slots)]
    dt, prompt_tokens, _ = _timed(backend, read, SamplingParams(max_tokens=1))
    if prompt_tokens <= 0:
        raise UserError(NO_COUNTS)
    prompt_tps = prompt_tokens / max(dt, 1e-6)
    write = [[{"role": "user", "content": f"List the integers from {100 * i} upwards, one per line, "
               "as a Python list literal."}] for i in range(slots)]
    dt, prompt_tokens, completion_tokens = _timed(backend, write, SamplingParams(max_tokens=decode_tokens))
    if completion_tokens <= 0:
        raise UserError(NO_COUNTS)
    decode_s = max(dt - prompt_tokens / prompt_tps, 1e-3)
    return Speed(prompt_tps, completion_tokens / decode_s, time.monotonic() - t0)


def _timed(backend, prompts: list, sp) -> tuple[float, int, int]:
    from selfcodealign.errors import UserError

    t = time.monotonic()
    got = [c for cs in backend.generate(prompts, sp) for c in cs]  # as many in flight as it has slots
    dt = time.monotonic() - t
    if any(c.finish_reason == "error" for c in got):
        raise UserError("the engine failed while measuring its speed (budget_minutes); "
                        "run without a budget: --set budget_minutes=null")
    return dt, sum(c.prompt_tokens - c.cached_tokens for c in got), sum(c.completion_tokens for c in got)


def seconds_per_seed(speed: Speed, responses_n: int) -> float:
    """Generation seconds one seed costs: its concepts, its instruction, its responses."""
    gen = sum(speed.request_s(*COST[s]) for s in ("concepts", "instructions"))
    return gen + responses_n * speed.request_s(*COST["responses"]) + SEED_MINING_S


def seeds_for(budget_s: float, speed: Speed, responses_n: int) -> int:
    """How many seeds fit ``budget_s`` (measuring included), between MIN_SEEDS and MAX_SEEDS."""
    left = budget_s * MARGIN - speed.probe_s - FIXED_S
    return max(MIN_SEEDS, min(MAX_SEEDS, math.floor(left / seconds_per_seed(speed, responses_n))))
