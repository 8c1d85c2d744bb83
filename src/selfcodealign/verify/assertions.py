"""Tests that cannot fail for the right reason, and solutions that answer only the
example. Pure functions over source text.

- ``self_raised``: a test raises the very exception it expects (``with
  pytest.raises(ValueError): raise ValueError``), so it passes whatever the solution does;
- ``swallowed``: a failing assert is caught (``try: assert ... except AssertionError:``
  or a bare ``except``), so it cannot fail;
- ``no_fail_expectation``: ``try: f(-1) except ValueError: pass`` with nothing that
  fails when no exception comes: the test passes whether or not the solution raises;
- ``special_cases``: the solution compares an input with a literal value of the
  instruction's own example (``return n == 383 or ...``);
- ``untested_errors``: an error the instruction says to raise that the tests never name,
  so that nothing checks it is raised.
"""

from __future__ import annotations

import ast
import re

from selfcodealign.checks import exception_names, expected_raise, mentioned_names, parse_tree, raised_names
from selfcodealign.verify.requirements import requirements

_BROAD = {"Exception", "BaseException", "AssertionError"}
_FAILS = {"fail"}  # pytest.fail, self.fail


def _nodes(src: str) -> list[ast.AST]:
    """Every node of ``src``'s syntax tree; none where it does not parse."""
    tree = parse_tree(src)
    return [] if tree is None else list(ast.walk(tree))


def _fails_if_reached(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, (ast.Assert, ast.Raise)):
                return True
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _FAILS:
                return True
    return False


def self_raised(tests: str) -> list[str]:
    out = []
    for n in _nodes(tests):
        if isinstance(n, (ast.With, ast.AsyncWith)):
            expected = set().union(*(exception_names(expected_raise(i)) for i in n.items))
            hit = expected & set().union(*(raised_names(s) for s in n.body)) if expected else set()
            if hit:
                out.append(f"line {n.lineno} raises the {sorted(hit)[0]} it expects")
        elif isinstance(n, ast.Try):
            caught = set().union(*(exception_names(h.type) for h in n.handlers))
            hit = caught & set().union(*(raised_names(s) for s in n.body)) - {"AssertionError"}
            if hit:
                out.append(f"line {n.lineno} raises the {sorted(hit)[0]} it catches")
    return out


def swallowed(tests: str) -> list[str]:
    out = []
    for n in _nodes(tests):
        if not isinstance(n, ast.Try) or not any(isinstance(s, ast.Assert) for b in n.body for s in ast.walk(b)):
            continue
        for h in n.handlers:
            names = exception_names(h.type)
            if (h.type is None or names & _BROAD) and not _fails_if_reached(h.body):
                out.append(f"line {n.lineno} catches a failing assert")
                break
    return out


def no_fail_expectation(tests: str) -> list[str]:
    out = []
    for n in _nodes(tests):
        if not isinstance(n, ast.Try) or not n.handlers:
            continue
        caught = set().union(*(exception_names(h.type) for h in n.handlers))
        if not caught or caught & _BROAD:
            continue
        if not _fails_if_reached(n.body) and not _fails_if_reached(n.orelse):
            out.append(f"line {n.lineno} passes whether or not {sorted(caught)[0]} is raised")
    return out


_EXAMPLE_CODE = re.compile(r"```[\w]*\n(.*?)```|`([^`\n]+)`", re.S)


def _example_snippets(instruction: str) -> list[str]:
    """The instruction's code: its fenced blocks and backticked spans."""
    return [m.group(1) or m.group(2) or "" for m in _EXAMPLE_CODE.finditer(instruction)]


def _literals(src: str) -> set:
    return {n.value for n in _nodes(src) if isinstance(n, ast.Constant)
            and not isinstance(n.value, bool) and _distinctive(n.value)}


def _distinctive(v) -> bool:
    if isinstance(v, int):
        return abs(v) >= 10
    if isinstance(v, float):
        return v not in (0.0, 1.0, 0.5, -1.0)
    if isinstance(v, str):
        return len(v.strip()) >= 3
    return False


def special_cases(instruction: str, code: str) -> list[str]:
    """Literal values of the instruction's example code that the solution compares an
    input with: an answer built around the example rather than the task."""
    example: set = set().union(*map(_literals, _example_snippets(instruction)))
    if not example:
        return []
    out = []
    for n in _nodes(code):
        if isinstance(n, ast.Compare) and all(isinstance(op, (ast.Eq, ast.Is)) for op in n.ops):
            for side in [n.left, *n.comparators]:
                if isinstance(side, ast.Constant) and not isinstance(side.value, bool) and side.value in example:
                    out.append(f"compares with the example's {side.value!r}")
    return sorted(set(out))


def _asserts(src: str) -> list[str]:
    return [ast.dump(n.test) for n in _nodes(src) if isinstance(n, ast.Assert)]


def only_the_example(instruction: str, tests: str) -> list[str]:
    """Tests whose every assert is one of the instruction's own example asserts: they
    check that the answer reproduces the example, nothing the example does not show."""
    example = {a for snippet in _example_snippets(instruction) for a in _asserts(snippet)}
    mine = _asserts(tests)
    if example and mine and all(a in example for a in mine):
        return [f"its {len(mine)} assert(s) restate the instruction's example"]
    return []


def untested_errors(instruction: str, category: str, tests: str) -> list[str]:
    """Errors the instruction says to raise that the tests never name. On the labelled
    responses' development half none of the answers this flags was good: a required error
    nobody checks is one the answer may well not raise."""
    tree = parse_tree(tests)
    if tree is None:
        return []
    named = mentioned_names(tree)
    return [f"{r.detail} is required, no test expects it" for r in requirements(instruction, category)
            if r.kind == "raises" and r.detail not in named]
