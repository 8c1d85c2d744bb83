"""Answers that teach nothing: every function of the solution is one ``return`` of a small
expression (``return a + b``, ``return text.split(' ')``, or ``x = a + b`` then ``return x``),
after any ``if C: raise E`` validation and inside any ``try`` whose handlers only return or
raise. Correct or not, such an example
shows the model what it already does. The size bound was chosen on the labelled
responses' development half (docs/verification.md)."""

from __future__ import annotations

import ast
import re

from selfcodealign.checks import parse_tree

MAX_NODES = 15  # AST nodes of the returned expressions, all functions together


def _is_guard(stmt: ast.stmt) -> bool:
    """``if C: raise E``: input validation, which makes no function less trivial."""
    return isinstance(stmt, ast.If) and not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body)


def _returned(body: list[ast.stmt]) -> ast.expr | None:
    """The expression a body only returns, after any validation guards: ``return e``,
    ``x = e`` then ``return x``, or either inside a ``try`` whose handlers only return or
    raise (``try: return float(s) except ValueError: return 0``)."""
    body = [s for s in body if not _is_guard(s)]
    if (len(body) == 1 and isinstance(body[0], ast.Try) and not body[0].orelse and not body[0].finalbody
            and all(len(h.body) == 1 and isinstance(h.body[0], (ast.Return, ast.Raise)) for h in body[0].handlers)):
        body = [s for s in body[0].body if not _is_guard(s)]
    if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
        return body[0].value
    if (len(body) == 2 and isinstance(body[0], ast.Assign) and len(body[0].targets) == 1
            and isinstance(body[0].targets[0], ast.Name) and isinstance(body[1], ast.Return)
            and isinstance(body[1].value, ast.Name) and body[1].value.id == body[0].targets[0].id):
        return body[0].value
    return None


def _returns(code: str) -> tuple[int, list[ast.expr]] | None:
    """(functions, the expression each returns) when every function of the solution only
    returns one; None otherwise, or for a class."""
    tree = parse_tree(code)
    if tree is None or any(isinstance(n, ast.ClassDef) for n in tree.body):
        return None
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        return None
    out = []
    for fn in functions:
        returned = _returned([s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))])
        if returned is None:
            return None
        out.append(returned)
    return len(functions), out


def one_liner(code: str, max_nodes: int = MAX_NODES) -> list[str]:
    """``["one return of N nodes"]`` when the solution is only small one-line functions."""
    found = _returns(code)
    if found is None:
        return []
    n, returned = found
    nodes = sum(1 + sum(1 for _ in ast.walk(e)) for e in returned)
    return [f"{n} function(s), each one return, {nodes} AST nodes"] if nodes <= max_nodes else []


_CONSTRUCTS = {ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
               ast.DictComp: "comprehension", ast.GeneratorExp: "generator"}


def spelled_out(instruction: str, code: str) -> list[str]:
    """``["one return the instruction spells out: filter, lambda, list"]`` when every
    function only returns one expression, of any size, and the instruction names every
    function it calls and every lambda, comprehension or generator in it ("use `filter`
    with a lambda"): the answer copies the task. On the labelled development half, of the
    answers this flags beyond ``one_liner``, none was good."""
    found = _returns(code)
    if found is None:
        return []
    used: set[str] = set()
    for e in found[1]:
        for n in ast.walk(e):
            if isinstance(n, ast.Call):
                name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
                if name:
                    used.add(name)
            elif type(n) in _CONSTRUCTS:
                used.add(_CONSTRUCTS[type(n)])
    text = instruction.lower()
    if not used or not all(re.search(rf"\b{re.escape(u.lower())}", text) for u in used):
        return []
    return [f"one return the instruction spells out: {', '.join(sorted(used))}"]
