"""Optional quality judge: the configured model, few-shot prompted, says whether a seed's
docstring and code are good enough to teach from (the paper used its base model so).

The few-shot part is a fixed prefix, so engines with a prefix cache evaluate it once.
Answers are greedy and two tokens long; anything but a clear yes drops the seed.
"""

from __future__ import annotations

from selfcodealign.backends.base import Backend, SamplingParams

SYSTEM = (
    "You review Python functions for a teaching dataset. Answer YES if the docstring "
    "clearly says what the function does and the code is correct, readable and "
    "self-contained; answer NO otherwise. Answer with one word: YES or NO."
)

SHOTS = [
    (
        'def mean(values):\n    """Return the arithmetic mean of a non-empty list of numbers."""\n'
        "    return sum(values) / len(values)\n",
        "YES",
    ),
    (
        'def f(x, y):\n    """does stuff"""\n    z = x\n    return z\n',
        "NO",
    ),
    (
        "def merge_intervals(intervals):\n"
        '    """Merge overlapping [start, end] intervals and return them sorted by start."""\n'
        "    merged = []\n"
        "    for start, end in sorted(intervals):\n"
        "        if merged and start <= merged[-1][1]:\n"
        "            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n"
        "            merged.append([start, end])\n"
        "    return merged\n",
        "YES",
    ),
    (
        'def handler(evt, ctx):\n    """See the wiki."""\n    return ctx.state[evt.kind](evt)\n',
        "NO",
    ),
]


def prompt(code: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}]
    for shot, answer in SHOTS:
        messages.append({"role": "user", "content": f"```python\n{shot}```"})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": f"```python\n{code}```"})
    return messages


def parse(text: str) -> bool | None:
    word = text.strip().lstrip("*`\"'").upper()
    if word.startswith("YES"):
        return True
    if word.startswith("NO"):
        return False
    return None


def judge(backend: Backend, codes: list[str]) -> list[bool | None]:
    """True (keep), False (drop) or None (no usable answer) for each code, in order."""
    if not codes:
        return []
    params = SamplingParams(n=1, temperature=0.0, max_tokens=3, seed=0)
    outs = backend.generate([prompt(c) for c in codes], params)
    return [parse(o[0].text) if o and o[0].finish_reason != "error" else None for o in outs]
