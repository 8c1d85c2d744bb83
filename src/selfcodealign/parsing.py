"""Pure functions that turn model text into fields, or say why they can't.

Each parser returns either the parsed value or a ``ParseError`` whose ``reason`` becomes
a counted drop. Nothing here raises on bad model output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ParseError:
    reason: str
    detail: str = ""


# A fence opens with ``` (optionally a language tag); some models put the tag on the next
# line ("```\npython\n..."), which we accept as well.
_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[ \t]*$", re.M)
_LANG_LINE_RE = re.compile(r"\A(python3?|py)[ \t]*\n", re.I)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    start: int  # offset of the opening fence in the text
    end: int  # offset just past the closing fence (or end of text if unclosed)
    closed: bool


def fenced_blocks(text: str) -> list[Block]:
    """Fenced blocks in order. A fence with a language tag always opens a block: when one
    appears inside an open block (a model that forgot a closing fence), the open block
    ends there."""
    blocks: list[Block] = []
    fences = list(_FENCE_RE.finditer(text))

    def emit(opening: re.Match, body_end: int, end: int, closed: bool) -> None:
        lang = opening.group(1).lower()
        body = text[opening.end() + 1 : body_end] if opening.end() < len(text) else ""
        if not lang:
            m = _LANG_LINE_RE.match(body)
            if m:
                lang, body = m.group(1).lower(), body[m.end() :]
        code = body.rstrip() + "\n" if body.strip() else ""
        blocks.append(Block(lang, code, opening.start(), end, closed))

    opening: re.Match | None = None
    for fence in fences:
        if opening is None:
            opening = fence
        elif fence.group(1):  # a tagged fence opens a new block
            emit(opening, fence.start(), fence.start(), False)
            opening = fence
        else:
            emit(opening, fence.start(), fence.end(), True)
            opening = None
    if opening is not None:
        emit(opening, len(text), len(text), False)
    return blocks


_CONCEPT_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:key\s+)?(?:programming\s+)?concepts?\s*[:\-]?\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def parse_concepts(text: str, max_concepts: int = 10) -> list[str] | ParseError:
    """Concepts as a comma-separated line or a bulleted list."""
    body = text.strip()
    if not body:
        return ParseError("empty_output")
    # Only the first section: stop where the model starts a new example or heading.
    body = re.split(r"\n\s*\n|\n#{2,}\s", body, maxsplit=1)[0]
    lines = [ln for ln in body.splitlines() if ln.strip()]
    items: list[str] = []
    if len(lines) > 1 and all(_BULLET.match(ln) for ln in lines[1:]):
        lines = lines[1:] if not _BULLET.match(lines[0]) else lines
        items = [_BULLET.sub("", ln) for ln in lines]
    elif any(_BULLET.match(ln) for ln in lines):
        items = [_BULLET.sub("", ln) for ln in lines if _BULLET.match(ln)]
    else:
        items = re.split(r",|;", _CONCEPT_LABEL.sub("", " ".join(lines)))
    out: list[str] = []
    for item in items:
        item = _CONCEPT_LABEL.sub("", item).strip().strip(".`*\"'").strip()
        if 2 <= len(item) <= 80 and item.lower() not in (c.lower() for c in out):
            out.append(item)
    if not out:
        return ParseError("no_concepts", body[:200])
    return out[:max_concepts]


_INSTRUCTION_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:task|instruction|problem)\s*[:\-]\s*", re.I)
# Where a model that was asked only for a task starts to answer it instead.
_INSTRUCTION_STOP = re.compile(
    r"^\s*(?:#+\s*)?(?:response|solution|answer|implementation|tests?|example solution|"
    r"here is|here's)\b.*$",
    re.I | re.M,
)


def parse_instruction(text: str, finish_reason: str = "stop") -> str | ParseError:
    body = _INSTRUCTION_LABEL.sub("", text.strip(), count=1)
    m = _INSTRUCTION_STOP.search(body)
    if m:
        body = body[: m.start()]
    # A solution code block that follows the task is not part of it.
    for block in fenced_blocks(body):
        if re.search(r"^\s*(def|class)\s", block.code, re.M) and block.start > 40:
            body = body[: block.start]
            break
    body = body.strip()
    if not body:
        return ParseError("empty_instruction", text[:200])
    if finish_reason == "length" and not m:
        return ParseError("truncated", text[-200:])
    if len(body) < 30:
        return ParseError("instruction_too_short", body)
    if len(body) > 4000:
        return ParseError("instruction_too_long", body[:200])
    return body


_TEST_HEADING = re.compile(r"^\s*(?:#+\s*|\*\*)?\s*(?:unit\s+)?tests?\b", re.I | re.M)
PY_LANGS = frozenset({"", "python", "python3", "py"})


def outside_blocks(text: str) -> str:
    """``text`` without its fenced blocks: the prose around the code."""
    out, pos = [], 0
    for b in fenced_blocks(text):
        out.append(text[pos:b.start])
        pos = b.end
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class ParsedResponse:
    response: str  # the answer as shown to the user (solution, explanation, tests)
    code: str
    tests: str
    blocks: tuple[str, ...] = ()  # the code blocks before the tests, in order
    answer: str = ""  # the response without its tests section (the training target)


def parse_response(text: str, finish_reason: str = "stop") -> ParsedResponse | ParseError:
    """Split a response into solution code and tests.

    Tests are the first Python block after a "Tests" heading; failing a heading, the last
    block that holds an ``assert`` when there are at least two blocks. The solution is
    every Python block before the tests.
    """
    body = text.strip()
    if not body:
        return ParseError("empty_output")
    blocks = [b for b in fenced_blocks(body) if b.lang in PY_LANGS and b.code.strip()]
    if not blocks:
        return ParseError("no_code_block", body[:200])
    tests_idx = None
    heading = _TEST_HEADING.search(body)
    if heading:
        for i, b in enumerate(blocks):
            if b.start >= heading.start() and i > 0:
                tests_idx = i
                break
    if tests_idx is None and len(blocks) >= 2:
        for i in range(len(blocks) - 1, 0, -1):
            if "assert" in blocks[i].code:
                tests_idx = i
                break
    if tests_idx is None:
        if finish_reason == "length":
            return ParseError("truncated", body[-200:])
        return ParseError("no_tests", body[:200])
    tests_block = blocks[tests_idx]
    if not tests_block.closed and finish_reason == "length":
        return ParseError("truncated", body[-200:])
    solution = [b.code for b in blocks[:tests_idx]]
    # The answer ends with the tests block: anything after it (a new example the model
    # started) is not part of the response.
    response = body[: tests_block.end].strip()
    # The tests section starts at its heading, when the heading comes after the solution.
    cut, close = tests_block.start, ""
    last = blocks[tests_idx - 1]
    headings = list(_TEST_HEADING.finditer(body, last.start, tests_block.start))
    after = [h for h in headings if h.start() >= last.end]
    if after:
        cut = after[0].start()
    elif not last.closed:
        # The model never closed the solution's fence: the answer closes it. A tests heading
        # written as the block's last line ends the solution there.
        close = "```"
        if headings and not body[headings[-1].end():tests_block.start].split("\n", 1)[-1].strip():
            start = body.rfind("\n", 0, headings[-1].start()) + 1
            cut = start
            solution[-1] = body[body.index("\n", last.start) + 1:start].rstrip() + "\n"
    answer = body[:cut].rstrip()
    if close:
        answer += "\n" + close
    return ParsedResponse(response=response, code="\n".join(solution), tests=tests_block.code,
                          blocks=tuple(solution), answer=answer)


def solution_code(text: str, finish_reason: str = "stop") -> str | None:
    """The solution code of an answer, with or without a tests section: what
    ``parse_response`` calls the code when it finds tests, else every Python block. None
    when the answer has no Python block (online training scores it as missing code)."""
    parsed = parse_response(text, finish_reason)
    if isinstance(parsed, ParsedResponse):
        return parsed.code
    blocks = [b.code for b in fenced_blocks(text.strip()) if b.lang in PY_LANGS and b.code.strip()]
    return "\n".join(blocks) if blocks else None
