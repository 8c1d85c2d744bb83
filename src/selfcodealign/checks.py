"""Static checks on a response and its tests, and the program the sandbox runs.

Pure functions over source text: nothing here executes model code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator


def own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a function's own scope (not of nested functions, lambdas or classes)."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def parse_tree(src: str) -> ast.Module | None:
    """The AST of ``src``, or None for text Python cannot parse (never raises)."""
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of the modules imported anywhere in ``tree`` (absolute imports)."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out.update(a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
            out.add(n.module.split(".")[0])
    return out


def mentioned_names(tree: ast.AST) -> set[str]:
    """Every identifier ``tree`` mentions: names, attributes, definitions, parameters,
    keyword arguments and imported names."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.keyword) and n.arg:
            out.add(n.arg)
        elif isinstance(n, ast.alias):
            out.update(n.name.split("."))
            if n.asname:
                out.add(n.asname)
    return out


def parse_ok(code: str) -> bool:
    """Non-empty code that Python can parse."""
    return bool(code.strip()) and parse_tree(code) is not None


def defined_names(code: str) -> set[str]:
    """Top-level functions, classes and assigned names of the solution."""
    tree = parse_tree(code)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def meaningful_asserts(code: str, tests: str) -> int:
    """How many asserts in ``tests`` depend on something the solution defines.

    A name is "tainted" if the solution defines it, or if the tests bind it from an
    expression that uses a tainted name (``s = Stack(); assert s.pop() == 2``). An assert
    counts when its condition uses a tainted name. ``assert True`` and tests that never
    touch the solution count zero.
    """
    tree = parse_tree(tests)
    if tree is None:
        return 0
    # Names the tests define themselves shadow the solution's: an assert on a function
    # that the tests rewrote checks the tests, not the response.
    tainted = defined_names(code) - defined_names(tests)
    if not tainted:
        return 0
    # Bindings in source order, repeated once so later taints reach earlier loops.
    for _ in range(2):
        for node in ast.walk(tree):
            value: ast.AST | None = None
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                value, targets = node.value, list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                value, targets = node.value, [node.target]
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                value, targets = node.iter, [node.target]
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None and _names_in(item.context_expr) & tainted:
                        tainted |= _names_in(item.optional_vars)
            elif isinstance(node, ast.NamedExpr):
                value, targets = node.value, [node.target]
            if value is not None and _names_in(value) & tainted:
                for t in targets:
                    tainted |= _names_in(t)
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and _names_in(node.test) & tainted:
            count += 1
        # unittest-style assertions: self.assertEqual(f(x), y)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("assert")
            and any(_names_in(a) & tainted for a in node.args)
        ):
            count += 1
    return count


def is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
    )


def strip_main_guard(src: str) -> str:
    """Drop top-level ``if __name__ == "__main__":`` blocks: a program's entry point reads
    argv/stdin, and a test module's (``unittest.main()``) exits before the end."""
    tree = parse_tree(src)
    if tree is None:
        return src
    lines = src.splitlines(keepends=True)
    cut = [(n.lineno, n.end_lineno) for n in tree.body if is_main_guard(n)]
    for start, end in reversed(cut):
        del lines[start - 1 : end]
    return "".join(lines)


def harness_calls(tests: str) -> str:
    """Calls that make pytest- and unittest-style tests actually run.

    Models often write ``def test_x(): ...`` without calling it, or a ``TestCase``
    class; without this, such tests would "pass" without running an assertion.
    """
    tree = parse_tree(tests)
    if tree is None:
        return ""
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    calls: list[str] = []
    cases: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            a = node.args
            required = len(a.posonlyargs) + len(a.args) - len(a.defaults)
            if node.name not in called and required == 0:
                calls.append(f"{node.name}()")
        elif isinstance(node, ast.ClassDef) and any(
            (isinstance(b, ast.Attribute) and b.attr == "TestCase")
            or (isinstance(b, ast.Name) and b.id == "TestCase")
            for b in node.bases
        ):
            cases.append(node.name)
    out = calls[:]
    if cases:
        out.append("import unittest as _sca_unittest")
        for name in cases:
            out.append(
                "_sca_result = _sca_unittest.TextTestRunner(verbosity=0).run("
                f"_sca_unittest.defaultTestLoader.loadTestsFromTestCase({name}))"
            )
            out.append("assert _sca_result.wasSuccessful(), 'unittest failures'")
    return "\n".join(out) + ("\n" if out else "")


# Counts the checks the tests run; a program whose tests ran none does not pass.
ASSERTS_RAN = "_sca_asserts_ran"


RAISES_CONTEXTS = frozenset({"raises", "assertRaises", "assertRaisesRegex"})


def expected_raise(item: ast.withitem, contexts=RAISES_CONTEXTS) -> ast.expr | None:
    """The exception a ``with pytest.raises(E)`` (or ``self.assertRaises(E)``) item
    expects, or None when the item is no such context."""
    call = item.context_expr
    if isinstance(call, ast.Call) and isinstance(call.func, (ast.Attribute, ast.Name)) and call.args:
        name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
        if name in contexts:
            return call.args[0]
    return None


def exception_names(node: ast.AST | None) -> set[str]:
    """The class names an ``except`` clause or a raise names (``E``, ``mod.E``, tuples)."""
    if isinstance(node, ast.Tuple):
        return set().union(*(exception_names(e) for e in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def raised_names(node: ast.AST) -> set[str]:
    """The exceptions ``raise`` statements inside ``node`` name."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Raise) and n.exc is not None:
            out |= exception_names(n.exc.func if isinstance(n.exc, ast.Call) else n.exc)
    return out


def count_checks(tests: str) -> str:
    """``tests`` with every check counted as it runs: an ``assert`` statement, a statement
    that calls a unittest-style ``assert*`` method, the body of a ``with
    pytest.raises(...)``. The counter goes in front of the statement on its own line, so
    line numbers stay those of the model's tests."""
    tree = parse_tree(tests)
    if tree is None:
        return tests
    spots: list[tuple[int, int]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Assert) or (
                isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                and isinstance(n.value.func, ast.Attribute) and n.value.func.attr.startswith("assert")):
            spots.append((n.lineno, n.col_offset))
        elif isinstance(n, (ast.With, ast.AsyncWith)) and any(
                expected_raise(i, RAISES_CONTEXTS | {"assertWarns"}) is not None for i in n.items) and n.body:
            spots.append((n.body[0].lineno, n.body[0].col_offset))
    lines = tests.splitlines(keepends=True)
    for lineno, col in sorted(set(spots), reverse=True):
        raw = lines[lineno - 1].encode("utf-8")  # col_offset counts UTF-8 bytes
        lines[lineno - 1] = (raw[:col] + f"{ASSERTS_RAN}.append(1); ".encode() + raw[col:]).decode("utf-8")
    return "".join(lines)


def build_program(code: str, tests: str) -> tuple[str, str]:
    """(code, tests) as the sandbox should run them: the tests' checks counted, and the
    program failing at its end when none ran (tests of print lines, of functions never
    called, of branches never taken)."""
    test_src = strip_main_guard(tests)
    code_src = strip_main_guard(code)
    if not parse_ok(test_src):
        return code_src, test_src.rstrip() + "\n"
    return (code_src.rstrip("\n") + f"\n{ASSERTS_RAN} = []\n",
            count_checks(test_src).rstrip() + "\n\n" + harness_calls(test_src)
            + f"assert {ASSERTS_RAN}, 'the tests ran no check'\n")
