"""Tests that cannot fail for the right reason, and solutions that answer only the
example. Pure functions over source text.

- ``self_raised``: a test raises the very exception it expects (``with
  pytest.raises(ValueError): raise ValueError``), so it passes whatever the solution does;
- ``swallowed``: a failing assert is caught (``try: assert ... except AssertionError:``
  or a bare ``except``), so it cannot fail;
- ``no_fail_expectation``: ``try: f(-1) except ValueError: pass`` with nothing that
  fails when no exception comes: the test passes whether or not the solution raises;
- ``special_cases``: the solution compares an input with a literal value of the
  instruction's own example (``return n == 383 or ...``).
"""

from __future__ import annotations

import ast
import re

from selfcodealign.checks import parse_tree

_BROAD = {"Exception", "BaseException", "AssertionError"}
_FAILS = {"fail"}  # pytest.fail, self.fail


def _exc_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return set().union(*(_exc_names(e) for e in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _raised(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Raise) and n.exc is not None:
            exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
            out |= _exc_names(exc)
    return out


def _expects(item: ast.withitem) -> set[str]:
    call = item.context_expr
    if isinstance(call, ast.Call) and isinstance(call.func, (ast.Attribute, ast.Name)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
        if name in ("raises", "assertRaises", "assertRaisesRegex") and call.args:
            return _exc_names(call.args[0])
    return set()


def _fails_if_reached(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, (ast.Assert, ast.Raise)):
                return True
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _FAILS:
                return True
    return False


def self_raised(tests: str) -> list[str]:
    tree = parse_tree(tests)
    if tree is None:
        return []
    out = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.With, ast.AsyncWith)):
            expected = set().union(*(_expects(i) for i in n.items))
            hit = expected & set().union(*(_raised(s) for s in n.body)) if expected else set()
            if hit:
                out.append(f"line {n.lineno} raises the {sorted(hit)[0]} it expects")
        elif isinstance(n, ast.Try):
            caught = set().union(*(_exc_names(h.type) for h in n.handlers))
            hit = caught & set().union(*(_raised(s) for s in n.body)) - {"AssertionError"}
            if hit:
                out.append(f"line {n.lineno} raises the {sorted(hit)[0]} it catches")
    return out


def swallowed(tests: str) -> list[str]:
    tree = parse_tree(tests)
    if tree is None:
        return []
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Try) or not any(isinstance(s, ast.Assert) for b in n.body for s in ast.walk(b)):
            continue
        for h in n.handlers:
            names = _exc_names(h.type)
            if (h.type is None or names & _BROAD) and not _fails_if_reached(h.body):
                out.append(f"line {n.lineno} catches a failing assert")
                break
    return out


def no_fail_expectation(tests: str) -> list[str]:
    tree = parse_tree(tests)
    if tree is None:
        return []
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Try) or not n.handlers:
            continue
        caught = set().union(*(_exc_names(h.type) for h in n.handlers))
        if not caught or caught & _BROAD:
            continue
        if not _fails_if_reached(n.body) and not _fails_if_reached(n.orelse):
            out.append(f"line {n.lineno} passes whether or not {sorted(caught)[0]} is raised")
    return out


_EXAMPLE_CODE = re.compile(r"```[\w]*\n(.*?)```|`([^`\n]+)`", re.S)


def _literals(src: str) -> set:
    tree = parse_tree(src)
    if tree is None:
        return set()
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
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
    example: set = set()
    for m in _EXAMPLE_CODE.finditer(instruction):
        example |= _literals(m.group(1) or m.group(2) or "")
    if not example:
        return []
    tree = parse_tree(code)
    if tree is None:
        return []
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare) and all(isinstance(op, (ast.Eq, ast.Is)) for op in n.ops):
            for side in [n.left, *n.comparators]:
                if isinstance(side, ast.Constant) and not isinstance(side.value, bool) and side.value in example:
                    out.append(f"compares with the example's {side.value!r}")
    return sorted(set(out))


def _asserts(src: str) -> list[str]:
    tree = parse_tree(src)
    if tree is None:
        return []
    return [ast.dump(n.test) for n in ast.walk(tree) if isinstance(n, ast.Assert)]


def only_the_example(instruction: str, tests: str) -> list[str]:
    """Tests whose every assert is one of the instruction's own example asserts: they
    check that the answer reproduces the example, nothing the example does not show."""
    example: set[str] = set()
    for m in _EXAMPLE_CODE.finditer(instruction):
        example.update(_asserts(m.group(1) or m.group(2) or ""))
    mine = _asserts(tests)
    if example and mine and all(a in example for a in mine):
        return [f"its {len(mine)} assert(s) restate the instruction's example"]
    return []
