"""Is a response an answer to the instruction it was given? Static checks, pure functions.

- ``missing_names``: what the instruction asks for by name (a function or method with its
  parameters, a class) that the solution does not define, or defines with another arity;
- ``solution_test_code``: test code in the solution itself (top-level asserts, ``test_*``
  functions, ``unittest.TestCase`` classes) rather than in its tests section;
- ``names_from_examples``: names the tests use that only the response's example-usage
  code defines (tests that pass because they call the example, not the solution).

The instruction is read conservatively: only names in backticks count, and only when
written as a call (``name(a, b)``) next to a word that asks for a definition (function,
method, class, implement, write, define, ...), or as a class (```Name``` next to "class").
A name the instruction merely mentions (a builtin, a library call) is not asked for.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from selfcodealign.checks import is_main_guard, parse_tree, raised_names

_BACKTICKED = re.compile(r"`([^`\n]{1,200})`")
_CALL = re.compile(r"^\s*(?:def\s+)?([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\s*\((.*)\)\s*(?:->.*)?:?\s*$", re.S)
_CLASS_NAME = re.compile(r"^\s*(?:class\s+)?([A-Z][A-Za-z0-9_]*)\s*$")
_ASKING = re.compile(r"\b(functions?|methods?|class(?:es)?|implement\w*|write|writes|define\w*|create\w*|"
                     r"named|called|signature|constructor|helper)\b", re.I)
_CLASS_WORD = re.compile(r"\bclass(?:es)?\b", re.I)
# "Use the `strip()` method": a name to call, not to define.
_USING = re.compile(r"\b(use|uses|using|call|calls|calling|via|like|such as|e\.g\.|from|of)\b[^`]{0,30}$", re.I)
_BUILTINS = frozenset(dir(builtins))


@dataclass
class Asked:
    functions: dict[str, int | None] = field(default_factory=dict)  # name -> arity (None: unknown)
    classes: set[str] = field(default_factory=set)
    methods: dict[tuple[str, str], int | None] = field(default_factory=dict)


def _arity(params: str) -> int | None:
    """How many positional arguments ``params`` lists (self/cls not counted); None when it
    cannot tell (``...``, ``*args``, or empty parentheses, which instructions also write
    to mean "the method" rather than "no arguments")."""
    text = params.strip()
    if not text or "..." in text or "*" in text:
        return None
    depth, parts, cur = 0, [], ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    names = [p.split(":")[0].split("=")[0].strip() for p in parts if p.strip()]
    if any(not re.fullmatch(r"[A-Za-z_]\w*", n) for n in names):
        return None  # not a parameter list (a call with values, an expression)
    return len([n for n in names if n not in ("self", "cls")])


def asked_names(instruction: str) -> Asked:
    asked = Asked()
    for m in _BACKTICKED.finditer(instruction):
        span = m.group(1)
        before = instruction[max(0, m.start() - 60): m.start()]
        after = instruction[m.end(): m.end() + 25]
        context = before.split(".")[-1] + " " + after.split(".")[0]
        if _USING.search(before):
            continue
        call = _CALL.match(span)
        if call and _ASKING.search(context):
            owner, name, params = (call.group(1), call.group(2), call.group(3)) if call.group(2) else \
                (None, call.group(1), call.group(3))
            if owner is not None and not owner[:1].isupper():
                continue  # module.function(...): a library call, not something to define
            if name in _BUILTINS or (owner is None and name[:1].isupper() and name in asked.classes):
                continue
            # A later mention without parameters keeps what an earlier one said.
            if owner is not None:
                asked.classes.add(owner)
                key, table = (owner, name), asked.methods
            else:
                key, table = name, asked.functions
            arity = _arity(params)
            if arity is not None or key not in table:
                table[key] = arity
            continue
        cls = _CLASS_NAME.match(span)
        if cls and _CLASS_WORD.search(context) and cls.group(1) not in _BUILTINS:
            asked.classes.add(cls.group(1))
    return asked


@dataclass(frozen=True)
class _Def:
    required: int
    total: int | None  # None: *args


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> _Def:
    a = fn.args
    pos = a.posonlyargs + a.args
    if method and pos and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list):
        pos = pos[1:]
    required = len(pos) - len(a.defaults)
    return _Def(max(0, required), None if a.vararg else len(pos))


def _fits(d: _Def, arity: int | None) -> bool:
    return arity is None or (d.required <= arity and (d.total is None or arity <= d.total))


def _definitions(tree: ast.Module):
    functions: dict[str, _Def] = {}
    classes: dict[str, dict[str, _Def]] = {}
    other: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = _signature(node, method=False)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name: _signature(n, method=True) for n in node.body
                                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            other.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                other.update((a.asname or a.name).split(".")[0] for a in node.names)
    return functions, classes, other


def missing_names(instruction: str, code: str) -> list[str]:
    """What the instruction asks for by name and the solution lacks, one line each."""
    asked = asked_names(instruction)
    if not (asked.functions or asked.classes or asked.methods):
        return []
    tree = parse_tree(code)
    if tree is None:
        return ["the solution does not parse"]
    functions, classes, other = _definitions(tree)
    out: list[str] = []
    for cls in sorted(asked.classes):
        if cls not in classes and cls not in other:
            out.append(f"class {cls}")
    for (cls, name), arity in sorted(asked.methods.items()):
        meths = classes.get(cls)
        if meths is not None and name not in meths:
            out.append(f"method {cls}.{name}")
        elif meths is not None and not _fits(meths[name], arity):
            out.append(f"method {cls}.{name} with {arity} argument(s)")
    named_classes = [c for c in asked.classes if c in classes]
    for name, arity in sorted(asked.functions.items()):
        if name in functions:
            if not _fits(functions[name], arity):
                out.append(f"function {name} with {arity} argument(s)")
        elif name in classes:  # a constructor written as a call
            init = classes[name].get("__init__")
            if init is not None and not _fits(init, arity):
                out.append(f"class {name} taking {arity} argument(s)")
        elif name in other:
            continue  # bound another way (an alias, a lambda): arity unknown
        else:
            owners = [c for c in named_classes if name in classes[c]]
            if not owners and not any(name in m for m in classes.values()):
                out.append(f"function {name}")
            elif owners and not any(_fits(classes[c][name], arity) for c in owners):
                out.append(f"method {owners[0]}.{name} with {arity} argument(s)")
    return out


def _is_test_class(node: ast.ClassDef) -> bool:
    return any((isinstance(b, ast.Attribute) and b.attr == "TestCase")
               or (isinstance(b, ast.Name) and b.id == "TestCase") for b in node.bases)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module runs: the top level and the blocks under it
    (a `__main__` block, a loop, a try), not function or class bodies."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _top_level(getattr(node, name, None) or [])
        for handler in getattr(node, "handlers", None) or []:
            yield from _top_level(handler.body)


def solution_test_code(code: str) -> list[str]:
    """Test code that runs with the solution: asserts and `raise AssertionError` at its
    top level or in a block under it (a `__main__` block); its own asserts inside functions
    are input checks, not tests."""
    tree = parse_tree(code)
    if tree is None:
        return []
    out = []
    for node in _top_level(tree.body):
        if isinstance(node, ast.Assert):
            out.append(f"assert on line {node.lineno}")
        elif isinstance(node, ast.Raise) and "AssertionError" in raised_names(node):
            out.append(f"raise AssertionError on line {node.lineno}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            out.append(f"test function {node.name}")
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            out.append(f"test class {node.name}")
    return out


def _defines(tree: ast.Module) -> set[str]:
    functions, classes, other = _definitions(tree)
    return set(functions) | set(classes) | other


def _uses(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _is_example(tree: ast.Module) -> bool:
    """A block that runs something at its top level (calls, prints): example usage."""
    return any(isinstance(n, ast.Expr) and isinstance(n.value, (ast.Call, ast.Await)) for n in tree.body)


def names_from_examples(blocks: list[str], tests: str) -> list[str]:
    """Names the tests use that only example-usage blocks define. ``blocks`` are the
    response's code blocks before its tests, in order; the first is always solution."""
    trees = [parse_tree(b) for b in blocks]
    ttree = parse_tree(tests)
    if ttree is None or len(trees) < 2 or any(t is None for t in trees):
        return []
    solution: set[str] = set()
    example: set[str] = set()
    for k, tree in enumerate(trees):
        (example if k > 0 and _is_example(tree) else solution).update(_defines(tree))
    return sorted((_uses(ttree) & example) - solution - _defines(ttree))


def solution_example_code(code: str, category: str) -> list[str]:
    """Example usage at the top level of a function's or class's solution (calls, prints,
    a ``__main__`` block): what the answer runs, not what it defines. A program's solution
    runs by design."""
    if category == "program":
        return []
    tree = parse_tree(code)
    if tree is None:
        return []
    out = []
    for node in tree.body:
        if is_main_guard(node):
            out.append(f"__main__ block on line {node.lineno}")
        elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
            out.append(f"call on line {node.lineno}")
        elif isinstance(node, (ast.For, ast.While, ast.With, ast.Try)):
            out.append(f"{type(node).__name__.lower()} statement on line {node.lineno}")
    return out
