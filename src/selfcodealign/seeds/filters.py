"""Cheap per-function filters. Each returns the reason it drops a seed, or None.

They run in the worker processes, in the order of ``cheap_filters``; the first reason
that applies is the one counted, so the funnel adds up.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence

from selfcodealign.checks import imported_modules
from selfcodealign.seeds.extract import Candidate, has_value_return

# Imports whose use makes running a seed (and the tests written from it) touch the host
# (files, processes, network, interpreter state) or depend on timing.
DEFAULT_UNSAFE_IMPORTS = (
    "os", "sys", "subprocess", "socket", "socketserver", "threading", "_thread",
    "multiprocessing", "concurrent", "asyncio", "signal", "shutil", "tempfile", "pathlib",
    "glob", "ctypes", "mmap", "fcntl", "pty", "tty", "termios",
    "resource", "select", "selectors", "ssl", "urllib", "http", "ftplib", "smtplib",
    "imaplib", "poplib", "telnetlib", "webbrowser", "importlib", "pkgutil", "runpy",
    "pickle", "marshal", "shelve", "dbm", "sqlite3", "builtins", "gc",
    "time", "sched", "atexit", "platform", "getpass", "pwd", "grp",
    "zipfile", "tarfile", "requests", "tkinter", "turtle", "curses",
)
# Builtins with the same problems as the imports above.
UNSAFE_CALLS = frozenset(
    {"open", "eval", "exec", "compile", "__import__", "input", "breakpoint", "exit", "quit",
     "globals", "locals", "vars", "setattr", "delattr"}
)
DEFAULT_UNWANTED_WORDS = ("TODO", "FIXME", "XXX", "HACK", "deprecated", "Deprecated")


def no_args(fn: ast.FunctionDef, dropped_first: bool = False) -> bool:
    a = fn.args
    positional = len(a.posonlyargs) + len(a.args) - int(dropped_first)
    return not (positional > 0 or a.kwonlyargs or a.vararg or a.kwarg)


def _function(c: Candidate) -> ast.FunctionDef:
    if c.node is not None:
        return c.node
    node = ast.parse(c.body).body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def _calls(fn: ast.AST) -> set[str]:
    return {
        n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def make_cheap_filter(
    *,
    min_lines: int,
    max_lines: int,
    unwanted_words: Sequence[str],
    unsafe_imports: Sequence[str],
) -> Callable[[Candidate], str | None]:
    words = re.compile(r"\b(?:" + "|".join(map(re.escape, unwanted_words)) + r")\b") if unwanted_words else None
    unsafe = frozenset(unsafe_imports)

    def check(c: Candidate) -> str | None:
        if c.drop:
            return c.drop
        fn = _function(c)
        if no_args(fn, c.dropped_first_param):
            return "no_args"
        if not has_value_return(fn):
            return "no_return"
        n_lines = c.body.count("\n")
        if n_lines < min_lines:
            return "too_short"
        if n_lines > max_lines:
            return "too_long"
        if words is not None and words.search(c.body):
            return "unwanted_words"
        if unsafe.intersection(c.imports) or unsafe.intersection(imported_modules(fn)):
            return "unsafe_import"
        if UNSAFE_CALLS.intersection(_calls(fn)):
            return "unsafe_call"
        return None

    return check


# The order the funnel lists them in (extraction reasons first).
EXTRACT_REASONS = (
    "async", "decorated", "uses_self", "not_self_standing", "module_dependency", "unresolved_name",
)
CHEAP_REASONS = (
    "no_args", "no_return", "too_short", "too_long", "unwanted_words", "unsafe_import", "unsafe_call",
)
