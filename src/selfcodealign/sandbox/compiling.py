"""Compile programs on the host before they go to a sandbox server.

Compiling cannot run any of the program's code (CPython bounds constant folding, and
sources above MAX_CHARS are left to the sandboxed child), and it is where most of a
short run's memory traffic is: done in a forked child, the compiler's allocations land
on copy-on-write pages and cost several times what they cost here. The result goes
marshalled in the run's payload; the server unmarshals it before it forks the run. A
syntax error is answered here without a sandbox run.
"""

from __future__ import annotations

import threading
import traceback
import warnings

from selfcodealign.sandbox import child

MAX_CHARS = 256 * 1024

# warnings.catch_warnings swaps process-wide state: one thread at a time (pools may run
# side by side).
_lock = threading.Lock()


class CompileFailed(Exception):
    def __init__(self, detail: str, stderr: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.stderr = stderr


def compile_program(code: str, tests: str) -> tuple | None:
    """The compiled program (code objects, marshalled into the run's payload); None if
    the program is too large to compile outside the sandbox."""
    if len(code) + len(tests) > MAX_CHARS:
        return None
    try:
        with _lock, warnings.catch_warnings():
            # The program's SyntaxWarnings belong to its own stderr, not ours.
            warnings.simplefilter("ignore")
            return child.prepare(code, tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
        text = "".join(traceback.format_exception_only(type(e), e))
        raise CompileFailed(type(e).__name__, text) from None
