"""Mutants of a solution, made on its AST: small changes that good tests notice.

Operators (one mutant per site and variant):

- ``compare``: a comparison operator swapped (``<`` <-> ``<=``, ``>`` <-> ``>=``,
  ``==`` <-> ``!=``, ``is`` <-> ``is not``, ``in`` <-> ``not in``);
- ``arith``: an arithmetic operator swapped (``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``*``,
  ``%`` -> ``//``, ``**`` -> ``*``), in expressions and augmented assignments;
- ``boolop``: ``and`` <-> ``or``;
- ``const``: a number constant plus one;
- ``bool``: ``True`` <-> ``False``;
- ``return_none``: ``return X`` -> ``return None``;
- ``negate_if``: ``if C:`` -> ``if not (C):``;
- ``raise``: a function's whole body (its docstring kept) replaced by
  ``raise NotImplementedError`` (dunder methods other than ``__init__`` are left alone).

Only code that defines behaviour is mutated: function and class bodies and top-level
assignments; top-level calls (example usage) and ``if __name__ == "__main__"`` blocks are
not, since no test could tell their mutants apart. A mutant whose source equals the
original's is not made. Pure functions: nothing here runs the code.
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass

OPERATORS = ("compare", "arith", "boolop", "const", "bool", "return_none", "negate_if", "raise")

_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
          ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutant:
    operator: str
    line: int
    detail: str  # what changed, e.g. "< -> <=" or, for ``raise``, the function's name
    code: str


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _is_main_guard(node: ast.stmt) -> bool:
    t = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(t, ast.Compare) and isinstance(t.left, ast.Name)
            and t.left.id == "__name__")


def _roots(tree: ast.Module) -> list[ast.AST]:
    """The parts of a module whose mutants tests can tell apart (see module docstring)."""
    keep: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            keep.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            keep.append(node.value)
    return keep


def _functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method, nested ones included."""

    def walk(node: ast.AST, prefix: str) -> Iterator:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, child
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def _sites(tree: ast.Module) -> list[tuple[int, str, object, str]]:
    """(node index in ast.walk order, operator, variant, detail) of every mutation site."""
    index = {id(n): i for i, n in enumerate(ast.walk(tree))}
    inside: set[int] = set()
    for root in _roots(tree):
        inside.update(id(n) for n in ast.walk(root))
    sites: list[tuple[int, str, object, str]] = []
    for node in ast.walk(tree):
        if id(node) not in inside:
            continue
        i = index[id(node)]
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _COMPARE:
                    sites.append((i, "compare", k, f"{_sym(op)} -> {_sym(_COMPARE[type(op)]())}"))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH:
            sites.append((i, "arith", None, f"{_sym(node.op)} -> {_sym(_ARITH[type(node.op)]())}"))
        elif isinstance(node, ast.BoolOp):
            sites.append((i, "boolop", None, f"{_sym(node.op)} -> {_sym(_BOOL[type(node.op)]())}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            sites.append((i, "bool", None, f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)):
            sites.append((i, "const", None, f"{node.value!r} -> {node.value + 1!r}"))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            sites.append((i, "return_none", None, "return None"))
        elif isinstance(node, ast.If) and not _is_main_guard(node):
            sites.append((i, "negate_if", None, "if not (...)"))
    for name, fn in _functions(tree):
        if id(fn) in inside and not (_is_dunder(fn.name) and fn.name != "__init__"):
            sites.append((index[id(fn)], "raise", None, name))
    return sites


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


_SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+",
            ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
            ast.And: "and", ast.Or: "or"}


def _sym(op: ast.AST) -> str:
    return _SYMBOLS.get(type(op), type(op).__name__)


def _apply(node: ast.AST, operator: str, variant: object) -> None:
    if operator == "compare":
        node.ops[variant] = _COMPARE[type(node.ops[variant])]()
    elif operator == "arith":
        node.op = _ARITH[type(node.op)]()
    elif operator == "boolop":
        node.op = _BOOL[type(node.op)]()
    elif operator == "bool":
        node.value = not node.value
    elif operator == "const":
        node.value = node.value + 1
    elif operator == "return_none":
        node.value = ast.Constant(None)
    elif operator == "negate_if":
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif operator == "raise":
        doc = node.body[:1] if (node.body and isinstance(node.body[0], ast.Expr)
                                and isinstance(getattr(node.body[0], "value", None), ast.Constant)
                                and isinstance(node.body[0].value.value, str)) else []
        node.body = doc + [ast.Raise(exc=ast.Name("NotImplementedError", ast.Load()), cause=None)]


def mutants(code: str, cap: int | None = 40, seed: int = 0) -> list[Mutant]:
    """Mutants of ``code``. Every ``raise`` mutant is made (they tell which functions the
    tests exercise); the other sites are sampled, reproducibly, when there are more than
    ``cap`` mutants in all. Unparsable code has none."""
    tree = _parse(code)
    if tree is None:
        return []
    try:
        original = ast.unparse(tree)
    except (ValueError, RecursionError):
        return []
    sites = _sites(tree)
    whole = [s for s in sites if s[1] == "raise"]
    rest = [s for s in sites if s[1] != "raise"]
    if cap is not None and len(whole) + len(rest) > cap:
        rng = random.Random(f"{seed}:{original}")
        rest = sorted(rng.sample(rest, max(0, cap - len(whole))))
    out: list[Mutant] = []
    for i, operator, variant, detail in whole + rest:
        copied = copy.deepcopy(tree)
        node = next(n for k, n in enumerate(ast.walk(copied)) if k == i)
        line = getattr(node, "lineno", 0)
        _apply(node, operator, variant)
        ast.fix_missing_locations(copied)
        try:
            src = ast.unparse(copied)
        except (ValueError, RecursionError):
            continue
        if src != original:
            out.append(Mutant(operator, line, detail, src))
    return out


def function_names(code: str) -> list[str]:
    """Qualified names of the functions ``raise`` mutants are made for."""
    tree = _parse(code)
    if tree is None:
        return []
    inside: set[int] = set()
    for root in _roots(tree):
        inside.update(id(n) for n in ast.walk(root))
    return [n for n, fn in _functions(tree)
            if id(fn) in inside and not (_is_dunder(fn.name) and fn.name != "__init__")]
