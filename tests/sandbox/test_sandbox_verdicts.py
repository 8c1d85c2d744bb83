"""What counts as passed, and the other verdicts of the closed set."""

from __future__ import annotations

import pytest
from sandbox_helpers import run

from selfcodealign.sandbox import Program, iter_batch, run_batch


def test_tests_run_after_code_in_the_same_namespace():
    v = run("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\nprint('ok')")
    assert v.status == "passed", v
    assert v.exit_code == 0 and v.stdout == "ok\n" and v.duration > 0


def test_failed_assert_is_failed_with_traceback():
    v = run("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5")
    assert v.status == "failed"
    assert v.exit_code == 1 and v.detail == "AssertionError"
    assert "assert add(2, 3) == 5" in v.stderr  # the source line, from the program


def test_syntax_error_is_failed():
    v = run("def f(:\n    pass\n")
    assert v.status == "failed" and v.detail == "SyntaxError"
    assert "SyntaxError" in v.stderr


def test_main_guard_runs_as_in_a_script():
    v = run("if __name__ == '__main__':\n    print('main')\n")
    assert v.status == "passed" and v.stdout == "main\n"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.exit(0)\n",
        "import sys\nsys.exit()\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
    ],
)
def test_early_exit_zero_does_not_pass(code):
    v = run(code, "assert False, 'tests never reached'")
    assert v.status == "failed", v
    assert v.exit_code == 0
    assert "before the end" in v.detail


def test_exit_zero_inside_the_tests_before_their_end_does_not_pass():
    v = run("x = 1", "import sys\nif x == 1:\n    sys.exit(0)\nassert x == 2")
    assert v.status == "failed"


def test_atexit_hook_forcing_status_zero_does_not_pass():
    code = "import atexit, os\natexit.register(lambda: os._exit(0))\n"
    v = run(code, "assert 1 == 2")
    assert v.status == "failed", v


def test_excepthook_and_patched_exit_do_not_pass():
    code = (
        "import sys, os\n"
        "sys.excepthook = lambda *a: os._exit(0)\n"
        "os._exit = lambda code: None\n"
        "sys.exit = lambda *a: None\n"
    )
    v = run(code, "assert 1 == 2")
    assert v.status == "failed", v


def test_forging_the_report_without_the_nonce_does_not_pass():
    code = (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'DONE ')\n"
        "    except OSError:\n        pass\nos._exit(0)\n"
    )
    v = run(code, "assert False")
    assert v.status == "failed", v


def test_unittest_main_as_last_statement_passes_and_fails_correctly():
    suite = "import unittest\ndef inc(x):\n    return x + 1\n"
    good = (
        "class T(unittest.TestCase):\n    def test_inc(self):\n"
        "        self.assertEqual(inc(1), 2)\n\nunittest.main()\n"
    )
    bad = good.replace("inc(1), 2", "inc(1), 3")
    ok = run(suite, good)
    assert ok.status == "passed", ok
    assert "Ran 1 test" in ok.stderr
    ko = run(suite, bad)
    assert ko.status == "failed" and ko.exit_code == 1


def test_nonzero_exit_is_failed_with_its_status():
    v = run("import sys\nsys.exit(3)\n")
    assert v.status == "failed" and v.exit_code == 3


def test_wall_clock_timeout():
    v = run("import time\ntime.sleep(60)\n", timeout=0.5)
    assert v.status == "timeout"
    assert 0.4 < v.duration < 5


def test_cpu_bound_infinite_loop_times_out():
    v = run("while True:\n    pass\n", timeout=1.0)
    assert v.status == "timeout"


def test_memory_error_is_oom():
    v = run("x = []\nwhile True:\n    x.append(bytearray(50 << 20))\n", memory_mb=256)
    assert v.status == "oom", v


def test_fatal_signal_is_crashed():
    v = run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    assert v.status == "crashed" and v.exit_code == -11
    assert "SIGSEGV" in v.detail


def test_output_is_captured_and_capped():
    v = run("import sys\nprint('x' * 100_000)\nprint('tail', file=sys.stderr)\n")
    assert v.status == "passed"
    assert len(v.stdout) < 20_000 and "bytes cut" in v.stdout
    assert v.stdout.rstrip().endswith("x")
    assert v.stderr == "tail\n"


def test_bad_program_parameters_are_error_verdicts():
    v = run_batch([Program(id="p", code="pass", timeout=-1)])[0]
    assert v.status == "error" and "timeout" in v.detail


def test_batch_keeps_input_order_and_iter_yields_every_index():
    programs = [
        Program(id=str(i), code=f"import time\ntime.sleep({0.2 if i == 0 else 0})\nprint({i})")
        for i in range(12)
    ]
    verdicts = run_batch(programs, workers=2)
    assert [v.id for v in verdicts] == [str(i) for i in range(12)]
    assert [v.stdout for v in verdicts] == [f"{i}\n" for i in range(12)]
    seen = sorted(i for i, _ in iter_batch(iter(programs), workers=3))
    assert seen == list(range(12))


def test_input_errors_reach_the_caller():
    def programs():
        yield Program(id="a", code="pass")
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_batch(programs(), workers=1)


@pytest.mark.parametrize("last", ["sys.exit(0)", "sys.exit()", "exit()", "raise SystemExit"])
def test_exit_zero_as_the_last_statement_is_a_normal_end(last):
    v = run("import sys\nx = 1\n", f"assert x == 1\n{last}\n")
    assert v.status == "passed", v


@pytest.mark.parametrize(
    "solution",
    [
        "def f():\n    import sys\n    sys.exit(0)\n",
        "def f():\n    import unittest\n    unittest.main()\n",
        "def f():\n    exit()\n",
    ],
)
def test_exit_zero_from_the_solution_while_the_last_statement_runs_does_not_pass(solution):
    v = run(solution, "def check(g):\n    g()\n    assert False\ncheck(f)\n")
    assert v.status == "failed", v
