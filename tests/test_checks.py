import ast

import pytest

from selfcodealign.checks import (
    ASSERTS_RAN,
    build_program,
    count_checks,
    harness_calls,
    meaningful_asserts,
    strip_main_guard,
)
from selfcodealign.sandbox import Program, run_program

CODE = "class Stack:\n    def pop(self):\n        return 1\n\ndef helper(x):\n    return x\n"


def test_meaningful_direct_and_indirect():
    assert meaningful_asserts(CODE, "assert helper(2) == 2") == 1
    assert meaningful_asserts(CODE, "s = Stack()\nx = s.pop()\nassert x == 1") == 1
    assert meaningful_asserts(CODE, "for v in [helper(1)]:\n    assert v == 1") == 1


def test_not_meaningful():
    assert meaningful_asserts(CODE, "assert True") == 0
    assert meaningful_asserts(CODE, "x = 3\nassert x == 3") == 0
    assert meaningful_asserts(CODE, "print(helper(1))") == 0
    assert meaningful_asserts(CODE, "assert (") == 0  # syntax error
    assert meaningful_asserts("", "assert helper(1)") == 0


def test_unittest_style_counts():
    tests = "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(helper(1), 1)\n"
    assert meaningful_asserts(CODE, tests) == 1


def test_harness_calls_uncalled_test_functions_and_testcases():
    tests = ("def test_a():\n    assert helper(1) == 1\n\ndef test_b(x):\n    pass\n\n"
             "import unittest\nclass T(unittest.TestCase):\n    def test_c(self):\n        pass\n")
    h = harness_calls(tests)
    assert "test_a()" in h and "test_b(" not in h
    assert "loadTestsFromTestCase(T)" in h and "wasSuccessful" in h
    assert harness_calls("def test_a():\n    pass\ntest_a()\n") == ""


def test_strip_main_guard():
    src = "def f():\n    return 1\n\nif __name__ == '__main__':\n    import sys\n    sys.exit(f())\nx = 2\n"
    out = strip_main_guard(src)
    assert "sys.exit" not in out and "x = 2" in out and "def f" in out


def test_build_program_runs_unittest_main_guard_removed():
    code, tests = build_program(CODE, "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(helper(1), 1)\nif __name__ == '__main__':\n    unittest.main()\n")
    assert "unittest.main()" not in tests
    assert "loadTestsFromTestCase(T)" in tests


def test_tests_that_redefine_the_solution_do_not_count():
    tests = "def helper(x):\n    return x\n\nassert helper(2) == 2\n"
    assert meaningful_asserts(CODE, tests) == 0
    assert meaningful_asserts(CODE, tests + "assert Stack().pop() == 1\n") == 1


@pytest.mark.parametrize("tests, status", [
    ("assert double(2) == 4\n", "passed"),
    ("print(double(2))  # 4\n", "failed"),  # prints check nothing
    ("def check(x):\n    assert double(x) == 2 * x\n", "failed"),  # never called
    ("if double(1) == 5:\n    assert double(2) == 4\n", "failed"),  # the branch never runs
    ("def test_d():\n    assert double(2) == 4\n", "passed"),  # the harness calls it
    ("import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(double(3), 6)\n",
     "passed"),
    ("import pytest\nwith pytest.raises(TypeError):\n    double()\n", "passed"),
])
def test_a_program_passes_only_when_its_tests_ran_a_check(tests, status):
    code, t = build_program("def double(x):\n    return 2 * x\n", tests)
    assert run_program(Program(id="p", code=code, tests=t, timeout=10)).status == status


def test_counting_checks_keeps_the_tests_line_numbers():
    tests = "x = 1\nassert x == 1; assert x != 2\nif x: assert x\n"
    counted = count_checks(tests)
    assert counted.count(ASSERTS_RAN) == 3 and len(counted.splitlines()) == 3
    ast.parse(counted)
