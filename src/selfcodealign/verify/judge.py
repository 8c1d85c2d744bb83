"""A model as judge of faithfulness: for each requirement sentence of an instruction, is
the answer's code doing it? Pure parts: which sentences to ask about, the prompt, and
reading the verdict. The stage that asks is ``selfcodealign.stages.judge``.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
# Words that make a sentence a requirement rather than background.
_ASKS = re.compile(r"\b(write|implement|return|returns|raise|raises|use|using|must|should|handle|handles|"
                   r"support|supports|read|reads|print|prints|take|takes|accept|accepts|ensure|only|"
                   r"without|sort|sorted|order|include|ignore|count|compute|calculate|convert|check)\b", re.I)

JUDGE_SYSTEM = ("You review Python code against one requirement of a programming task. Read the code, "
                "decide whether it meets that requirement, and answer with one word: yes or no.")
JUDGE_USER = ("Task:\n{instruction}\n\nCode:\n```python\n{code}```\n\n"
              "Requirement: {requirement}\nDoes the code meet this requirement? Answer yes or no.")


def requirement_sentences(instruction: str, limit: int = 6) -> list[str]:
    """The instruction's sentences that ask for something, in order, at most ``limit``
    (code blocks of the instruction are left out: they are examples, not requirements)."""
    text = re.sub(r"```.*?```", " ", instruction, flags=re.S)
    out = []
    for s in _SENTENCE_END.split(" ".join(text.split())):
        s = s.strip()
        # "...pass this example:" introduces an example, which is no requirement of its own.
        if len(s) >= 12 and _ASKS.search(s) and not s.endswith(":") and s not in out:
            out.append(s)
    return out[:limit]


def judge_prompt(instruction: str, code: str, requirement: str, style: str = "chat"):
    user = JUDGE_USER.format(instruction=instruction.strip(), code=code if code.endswith("\n") else code + "\n",
                             requirement=requirement)
    if style == "chat":
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
    return f"{JUDGE_SYSTEM}\n\n{user}\nAnswer:"


def parse_verdict(text: str) -> bool | None:
    """yes -> True, no -> False, anything else -> None."""
    m = re.match(r"\W*(yes|no)\b", text.strip(), re.I)
    return None if m is None else m.group(1).lower() == "yes"
