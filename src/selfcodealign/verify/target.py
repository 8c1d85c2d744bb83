"""Is a training target well formed? A pure check of the assistant turn that selection
writes: what the model learns to produce, so a fault here is taught.

- its fences are balanced (every code block is closed);
- it holds no tests section: no tests heading, in prose or as a trailing ``### Tests``
  line of a code block;
- its code is the code that was executed: the Python blocks of the target, joined, are
  the response's solution code.
"""

from __future__ import annotations

import re

from selfcodealign.parsing import PY_LANGS, fenced_blocks, outside_blocks

_FENCE_LINE = re.compile(r"^[ \t]*```", re.M)
_HEADING = re.compile(r"^\s*(?:#+\s*|\*\*)\s*(?:unit\s+)?tests?\b", re.I | re.M)
_TRAILING_HEADING = re.compile(r"\n\s*#{2,}\s*(?:unit\s+)?tests?\b[^\n]*\s*\Z", re.I)


def problems(target: str, code: str) -> list[str]:
    """Why ``target`` is not a clean training target for a response whose executed
    solution is ``code`` (empty: none found)."""
    out: list[str] = []
    blocks = fenced_blocks(target)
    if len(_FENCE_LINE.findall(target)) % 2 or any(not b.closed for b in blocks):
        out.append("unclosed code fence")
    if _HEADING.search(outside_blocks(target)) or any(_TRAILING_HEADING.search(b.code.rstrip() and "\n" + b.code.rstrip())
                                                 for b in blocks):
        out.append("tests heading in the answer")
    shown = "\n".join(b.code for b in blocks if b.lang in PY_LANGS and b.code.strip())
    if _squash(shown) != _squash(code):
        out.append("its code is not the executed code")
    return out


def _squash(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
