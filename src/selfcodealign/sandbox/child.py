"""What each forked run executes inside a sandbox server: the program prepared (compiled
on the host, see compiling.py), its ``main`` run with the report protocol, exits and
exceptions turned into the verdict the host reads.

The fork server (fork_server.py) receives this file's source from the host and runs it
as the module ``__sandbox_runner__``; the host imports it to compile programs. So it uses
the standard library only and must not import ``selfcodealign``.
"""
import ast as _ast
import builtins as _builtins
import os as _os
import sys as _sys
import traceback as _traceback
import types as _types


def joined_source(code, tests):
    # The program as one script, code then tests: what tracebacks and line numbers show.
    head = code if not code or code.endswith("\n") else code + "\n"
    return head, head + tests


def prepare(code, tests):
    # Compile code then tests as one script "main.py" (tests numbered after code); the
    # last statement is compiled apart, because sys.exit(0) there (unittest.main()) is a
    # normal end and anywhere else is not.
    head, _ = joined_source(code, tests)
    offset = head.count("\n")
    fast = _prepare_from_source(code, tests, offset)
    if fast is not None:
        return fast
    trees = []
    if code.strip():
        trees.append(_ast.parse(code, "main.py"))
    if tests.strip():
        # Blank lines in front number the tests after the code (ast.increment_lineno
        # would do the same in Python, at several times the cost of the parse).
        trees.append(_ast.parse("\n" * offset + tests, "main.py"))
    last = None
    if trees and trees[-1].body:
        last = _ast.Module(body=[trees[-1].body[-1]], type_ignores=[])
        trees[-1] = _ast.Module(body=trees[-1].body[:-1], type_ignores=[])
    compiled = [compile(t, "main.py", "exec") for t in trees]
    final = compile(last, "main.py", "exec") if last else None
    return compiled, final


def _prepare_from_source(code, tests, offset):
    # What prepare() makes, compiled straight from the source: about half the cost of
    # building the AST first. The last top-level statement starts on the last line that
    # begins at column 0 with code; if that guess is wrong (a string, a bracket, an
    # "else:" or a decorator spanning it), one of the two halves does not compile, and
    # None sends prepare() to the AST.
    parts = [(code, 0)] if code.strip() else []
    if tests.strip():
        parts.append((tests, offset))
    if not parts:
        return [], None
    src, first = parts[-1]
    # A lone CR ends a line for the compiler and not for split("\n"); a form feed can
    # put a statement after blanks.
    if "\r" in src or "\f" in src:
        return None
    lines = [line + "\n" for line in src.split("\n")]
    lines[-1] = lines[-1][:-1]
    cut = next((i for i in range(len(lines) - 1, -1, -1)
                if lines[i].strip() and lines[i][0] not in " \t#"), None)
    if cut is None:
        return None
    body, last = "".join(lines[:cut]), "".join(lines[cut:])
    if ";" in last:  # maybe two statements on one line
        return None
    try:
        compiled = [compile(c, "main.py", "exec") for c, _ in parts[:-1]]
        compiled.append(compile("\n" * first + body, "main.py", "exec"))
        final = compile("\n" * (first + cut) + last, "main.py", "exec")
    except (SyntaxError, ValueError):
        return None
    return compiled, final


class _Source:
    # A module loader as far as linecache is concerned: tracebacks show the program's
    # lines, and a passing run never builds the joined source.
    def __init__(self, code, tests):
        self.code, self.tests = code, tests

    def get_source(self, name):
        return joined_source(self.code, self.tests)[1]


def _exits_from_last_statement(exc, final):
    # sys.exit(0), exit() or unittest.main() written as the program's last top-level
    # statement is a normal end. The same exit raised from a function the tests call
    # (a solution that quits before its checks run) is not.
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    if len(frames) < 2 or frames[1] is not final:
        return False
    allowed = ("/unittest/", "_sitebuiltins")
    return all(any(a in c.co_filename for a in allowed) for c in frames[2:])


def make_main(code, tests):
    # A real __main__ module, as when the program is run as a script: unittest.main(),
    # pickle and dataclasses look the program's classes up there. Made by the server
    # before the fork (every object the child makes costs it a copy-on-write fault).
    main = _types.ModuleType("__main__")
    ns = main.__dict__
    ns["__builtins__"] = _builtins
    ns["__file__"] = "main.py"
    ns["__loader__"] = _Source(code, tests)
    return main


RUNDIR = None  # the runs' working directory, set by the server

# Bound once in the server: looked up in each run, these cost its first lookups (and
# the copy-on-write faults of what they write) again and again. The server rehearses
# run() for the same reason (fork_server._rehearse); _write and _exit are swapped for it.
_write, _exit, exec_ = _os.write, _os._exit, _builtins.exec


def report(msg):
    try:
        _write(3, msg.encode("utf-8", "replace")[:4096])
    except OSError:
        pass


def flush():
    for s in (_sys.stdout, _sys.stderr, _sys.__stdout__, _sys.__stderr__):
        try:
            s.flush()
        except BaseException:
            pass


def _print_exc(e, ns):
    # The traceback, without run()'s own frame. CPython's C printer (the default
    # excepthook) makes a fraction of the objects that the traceback module does, and
    # every object made here costs the run copy-on-write faults (~80 of them for an
    # assert that fails). It reads source lines from files: main.py is written into
    # the working directory for it. Where it cannot be written, the traceback module
    # prints the same thing from the loader.
    e.__traceback__ = e.__traceback__.tb_next
    src = ns["__loader__"]
    try:
        if _os.getcwd() != RUNDIR:  # only ever into the run's own directory
            raise OSError
        fd = _os.open("main.py", _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC, 0o600)
        try:
            _os.write(fd, joined_source(src.code, src.tests)[1].encode("utf-8", "replace"))
        finally:
            _os.close(fd)
    except BaseException:
        _traceback.print_exception(type(e), e, e.__traceback__)
        return
    _sys.__excepthook__(type(e), e, e.__traceback__)


def run(prepared, main, nonce):
    # In the child: run the program and report how it ended on fd 3. Never returns.
    ns = main.__dict__
    try:
        # Compiled by the host (see compiling.py) unless too large: unmarshalling it
        # touched far fewer copy-on-write pages than compiling here would.
        if prepared is None:
            source = ns["__loader__"]
            prepared = prepare(source.code, source.tests)
    except BaseException as e:
        _traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        flush()
        report("EXC " + type(e).__name__)
        _exit(1)
    compiled, final = prepared

    at_end = False
    try:
        for c in compiled:
            exec_(c, ns)
        at_end = True
        if final is not None:
            exec_(final, ns)
    except SystemExit as e:
        code_ = e.code
        status = 0 if code_ is None or code_ is False else code_
        if not isinstance(status, int):
            print(status, file=_sys.stderr)
            status = 1
        flush()
        if at_end and status == 0 and _exits_from_last_statement(e, final):
            report("DONE " + nonce)
            _exit(0)
        report("EXIT " + ("early" if status == 0 else str(status)))
        _exit(status & 0xFF if status & 0xFF else (0 if status == 0 else 1))
    except MemoryError:
        flush()
        report("OOM")
        try:
            print("MemoryError", file=_sys.stderr)
        except BaseException:
            pass
        flush()
        _exit(1)
    except BaseException as e:
        try:
            # Without this function's own frame: the program's frames are what matter.
            _print_exc(e, ns)
        except BaseException:
            pass
        flush()
        report("EXC " + type(e).__name__)
        _exit(1)
    flush()
    report("DONE " + nonce)
    _exit(0)
