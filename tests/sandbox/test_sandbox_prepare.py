"""prepare() compiles straight from the source when it safely can, and then gives the very
code objects that the AST route gives; where the cheap split is unsure it takes the AST."""

from __future__ import annotations

import marshal

import pytest

from selfcodealign.sandbox import child as _runner

SIMPLE = [
    ("def f(x):\n    return x + 1\n", "assert f(1) == 2\nassert f(2) == 3\n"),
    ("def f(x):\n    return x\n", ""),
    ("", "import sys\nsys.exit(0)"),
    ("class A:\n    '''doc'''\n    x = 1\n", "# checks\n\nassert A.x == 1\n# the end\n"),
    ("import unittest\n", "class T(unittest.TestCase):\n    def test(self):\n        pass\n\nunittest.main()\n"),
    ("x = '''\nassert False\n'''\n", "print(x)\n"),
    ("s = 1\n", "def g():\n    return (\n        s\n    )\n"),
]
TRICKY = [
    ("x = 1\n", 'y = """\nassert False\n"""'),  # the last col-0 line is inside a string
    ("x = 1\n", "@staticmethod\ndef f():\n    pass\n"),  # decorator above the last line
    ("x = 1\n", "if x:\n    y = 1\nelse:\n    y = 2\n"),  # else: at column 0
    ("x = 1\n", "try:\n    pass\nexcept Exception:\n    pass\nfinally:\n    x = 2\n"),
    ("x = 1\n", "f = print(\n1,\n)\n"),  # a bracket spanning col-0 lines
    ("x = 1\n", "y = 1 + \\\n2\n"),  # backslash continuation
    ("x = 1\n", "a = 1; b = 2\n"),  # two statements on the last line
    ("x = 1\n", "a = 1\r\nb = 2\r\n"),  # CRLF
    ("x = 1\n", "a = 1\n\x0cb = 2\n"),  # form feed
    ("x = 1\n", "# only a comment\n"),
    ("def f(:\n", "assert f()\n"),  # a syntax error: the AST route raises it
]


def _ast_route(code: str, tests: str):
    saved = _runner._prepare_from_source
    _runner._prepare_from_source = lambda *a: None
    try:
        return _runner.prepare(code, tests)
    finally:
        _runner._prepare_from_source = saved


def _dump(prepared):
    compiled, final = prepared
    return [marshal.dumps(c) for c in compiled], final and marshal.dumps(final)


def _offset(code: str, tests: str) -> int:
    return _runner.joined_source(code, tests)[0].count("\n")


@pytest.mark.parametrize("code,tests", SIMPLE)
def test_plain_programs_take_the_source_route_with_identical_code(code, tests):
    fast = _runner._prepare_from_source(code, tests, _offset(code, tests))
    assert fast is not None
    assert _dump(fast) == _dump(_ast_route(code, tests))
    assert _dump(_runner.prepare(code, tests)) == _dump(fast)


@pytest.mark.parametrize("code,tests", TRICKY)
def test_unsure_splits_fall_back_to_the_ast(code, tests):
    assert _runner._prepare_from_source(code, tests, _offset(code, tests)) is None
    try:
        expected = _dump(_ast_route(code, tests))
    except SyntaxError:
        with pytest.raises(SyntaxError):
            _runner.prepare(code, tests)
        return
    assert _dump(_runner.prepare(code, tests)) == expected
