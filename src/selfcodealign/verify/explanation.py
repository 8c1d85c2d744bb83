"""Does the answer's prose describe the code it comes with, and do the code's names add
up? Pure functions.

A small model's explanation often claims what its code does not do ("uses
`numpy.isfinite`", "raises `ValueError`"), and imports it never uses suggest the same
claim in code. Three checks, over the answer without its tests section:

- ``unknown_names``: an identifier the prose puts in backticks that the code never
  mentions (as a name, attribute, parameter, definition or keyword argument);
- ``unused_imports``: a name the solution imports and never uses, and any wildcard import;
- ``undefined_names``: a name the solution reads that nothing binds (``sys.stdin`` with no
  ``import sys``): it crashes on a path its own tests never run, such as a program's
  ``__main__`` block.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re

from selfcodealign.checks import mentioned_names, parse_tree
from selfcodealign.parsing import outside_blocks

_BACKTICKED = re.compile(r"(?<!`)`([^`\n]{1,80})`(?!`)")
_IDENT = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\(.*\))?$")
_LITERALS = {"True", "False", "None", "self", "cls"}


def _mentioned(tree: ast.AST) -> set[str]:
    """What the code mentions, with its short string constants (names it looks up)."""
    return mentioned_names(tree) | {n.value for n in ast.walk(tree)
                                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 40}


def unknown_names(answer: str, code: str, instruction: str = "") -> list[str]:
    """Backticked identifiers of the prose that the code never mentions. A name the
    instruction itself puts in backticks counts only when the prose claims it for the
    code (``uses `x```); otherwise prose may quote the task."""
    tree = parse_tree(code)
    if tree is None:
        return []
    known = _mentioned(tree)
    out: list[str] = []
    text = outside_blocks(answer)
    for m in _BACKTICKED.finditer(text):
        ident = _IDENT.match(m.group(1).strip())
        if not ident:
            continue
        path = ident.group(1).split(".")
        last = path[-1]
        if last in _LITERALS or keyword.iskeyword(last) or len(last) < 2:
            continue
        if last in known or (len(path) == 1 and ident.group(2) is None and last in dir(builtins)
                             and not last[0].isupper()):
            continue
        if re.fullmatch(r"O|o|Θ", path[0]) and ident.group(2):
            continue  # O(n): a complexity, not a name
        claimed = re.search(r"\b(uses?|using|calls?|calling|raises?|raising|leverag\w*|employs?|via)\W+(\w+\W+){0,3}$",
                            text[max(0, m.start() - 40): m.start()], re.I)
        if re.search(rf"(?<![\w.]){re.escape(ident.group(1))}(?!\w)", instruction) and not claimed:
            continue
        name = ident.group(1)
        if name not in out:
            out.append(name)
    return out


def unused_imports(code: str) -> list[str]:
    """Imported names the code never uses, and every wildcard import (``* from typing``):
    which of its names the code needs cannot be told, and an example should not teach it."""
    tree = parse_tree(code)
    if tree is None:
        return []
    imported: dict[str, str] = {}
    wildcards: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            for a in n.names:
                imported[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(n, ast.ImportFrom) and n.module != "__future__":
            for a in n.names:
                if a.name == "*":
                    wildcards.append(f"* from {'.' * n.level}{n.module or ''}")
                else:
                    imported[a.asname or a.name] = a.name
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    # `__all__` entries and names used only in string annotations count as used.
    strings = " ".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return sorted(full for name, full in imported.items()
                  if name not in used and not re.search(rf"\b{re.escape(name)}\b", strings)) + wildcards


# Names a module or a method body has without binding them.
_IMPLICIT = {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
             "__annotations__", "__dict__", "__class__", "__path__", "__cached__"}


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name bound anywhere in ``tree``, whatever its scope."""
    bound: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update(a.asname or a.name.split(".")[0] for a in n.names)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            bound.update(n.names)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            bound.add(n.rest)
        elif isinstance(getattr(n, "name", None), str) and not isinstance(n, ast.alias):
            bound.add(n.name)  # `except E as e`, match captures, type parameters
    return bound


def undefined_names(code: str) -> list[str]:
    """Names the code reads that no import, definition, assignment, parameter or loop binds
    and that are not builtins. Scopes are not told apart: a name bound anywhere counts as
    bound, so a finding is a name that cannot exist when its line runs. A wildcard import
    could bind anything: nothing is reported then (``unused_imports`` reports it)."""
    tree = parse_tree(code)
    if tree is None:
        return []
    if any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree)):
        return []
    known = _bound_names(tree) | set(dir(builtins)) | _IMPLICIT
    return sorted({n.id for n in ast.walk(tree)
                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in known})
