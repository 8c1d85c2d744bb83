"""Answers that teach nothing: every function of the solution is one ``return`` of a small
expression (``return a + b``, ``return text.split(' ')``). Correct or not, such an example
shows the model what it already does. The size bound was chosen on the labelled
responses' development half (docs/verification.md)."""

from __future__ import annotations

import ast

from selfcodealign.checks import parse_tree

MAX_NODES = 15  # AST nodes of the returned expressions, all functions together


def one_liner(code: str, max_nodes: int = MAX_NODES) -> list[str]:
    """``["one return of N nodes"]`` when the solution is only small one-line functions."""
    tree = parse_tree(code)
    if tree is None:
        return []
    if any(isinstance(n, ast.ClassDef) for n in tree.body):
        return []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        return []
    nodes = 0
    for fn in functions:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return):
            return []
        nodes += sum(1 for _ in ast.walk(body[0]))
    return [f"{len(functions)} function(s), each one return, {nodes} AST nodes"] if nodes <= max_nodes else []
