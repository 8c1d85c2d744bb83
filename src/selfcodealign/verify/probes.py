"""Probes: new inputs on which sibling answers must agree.

An answer's own tests check only the cases its author thought of, and so do its
siblings' (an answer to "the last position of an element" that returns the first one
passes every test without a repeated element). Probes look where the tests do not: the
literal arguments of every call the instruction's responses make to the task's function
in their tests, mutated by type as EvalPlus makes its plus inputs (a number negated, a
list with a repeated element, a string in capitals, an empty one, ...). Each passing
answer runs on every probe in the sandbox, and two answers *disagree* when both return a
value on a probe and the values differ. A probe that one answer raises on is outside its
domain, not a disagreement: the task's inputs may exclude it.

Pure functions: the inputs, the harness's source and the reading of its output. Nothing
here runs model code; the verify stage sends the harness to the sandbox.
"""

from __future__ import annotations

import ast
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from selfcodealign.checks import parse_tree

MARK = "@@selfcodealign-probes@@"
CALL_LIMIT_S = 0.25  # one probe call; a slow or looping call is an exception, not a hang
MAX_ARG_LEN = 200  # longest collection or string a probe builds
UNORDERED = "\x1f"  # in a result: what follows is its order-free form


@dataclass(frozen=True)
class Probe:
    """One call: positional and keyword arguments, all literals."""

    args: tuple
    kwargs: tuple[tuple[str, object], ...] = ()

    def show(self, name: str) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        text = f"{name}({', '.join(parts)})"
        return text if len(text) <= 120 else text[:117] + "..."


def _top_functions(tree: ast.Module) -> set[str]:
    # An async function returns a coroutine, whose text says nothing of its answer.
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def literal_calls(tests: str, names: set[str]) -> Iterator[tuple[str, Probe]]:
    """The calls in ``tests`` to one of ``names`` whose arguments are all literals."""
    tree = parse_tree(tests)
    if tree is None:
        return
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names):
            continue
        if any(isinstance(a, ast.Starred) for a in n.args) or any(k.arg is None for k in n.keywords):
            continue
        try:
            args = tuple(ast.literal_eval(a) for a in n.args)
            kwargs = tuple((k.arg, ast.literal_eval(k.value)) for k in n.keywords)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        yield n.func.id, Probe(args, kwargs)  # type: ignore[arg-type]


def entry_point(codes: Iterable[str], tests: Iterable[str]) -> str | None:
    """The task's function: the top-level function that the tests call most with
    literal arguments, among those that at least two answers define."""
    defined: Counter[str] = Counter()
    for code in codes:
        tree = parse_tree(code)
        if tree is not None:
            defined.update(_top_functions(tree))
    shared = {n for n, c in defined.items() if c >= 2}
    if not shared:
        return None
    called: Counter[str] = Counter()
    for t in tests:
        called.update(name for name, _ in literal_calls(t, shared))
    if not called:
        return None
    return min(called, key=lambda name: (-called[name], name))


def _scalar(v) -> bool:
    return isinstance(v, (bool, int, float, str))


def _variants(v) -> list:
    """Type-aware mutations of one argument value (never the value itself)."""
    out: list = []
    if isinstance(v, bool):
        out = [not v]
    elif isinstance(v, int):
        out = [0, 1, -v, v + 1, v - 1, 2 * v] if abs(v) < 10**9 else [0, -v]
    elif isinstance(v, float):
        out = [0.0, -v, v + 0.5, v / 2]
    elif isinstance(v, str):
        out = ["", v.upper(), v.lower(), v.title(), v[::-1], f" {v} ", v + v[-1:], v.replace(" ", "  "),
               v[:1]]
    elif isinstance(v, (list, tuple)):
        seq = list(v)
        cands = [[], seq[:1], seq + seq[:1], seq[::-1], seq[:1] + seq, seq[len(seq) // 2:]]
        try:
            cands.append(sorted(seq))
        except TypeError:
            pass
        # An end element is changed only when it is a scalar: recursing into nested
        # collections would grow with every level of a deeply nested literal.
        if seq and _scalar(seq[0]):
            cands += [[x] + seq[1:] for x in _variants(seq[0])[:3]]
        if seq and _scalar(seq[-1]):
            cands += [seq[:-1] + [x] for x in _variants(seq[-1])[:3]]
        out = [type(v)(c) if isinstance(v, tuple) else c for c in cands]
    elif isinstance(v, dict):
        items = list(v.items())
        out = [{}, dict(items[:1]), dict(items[::-1])]
    elif isinstance(v, set):
        out = [set(), set(list(v)[:1])]
    return [x for x in out if x != v or type(x) is not type(v)]


def _size(v) -> int:
    if isinstance(v, (str, bytes)):
        return len(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        return len(v) + sum(_size(x) for x in v)
    if isinstance(v, dict):
        return len(v) + sum(_size(k) + _size(x) for k, x in v.items())
    return 1


def _writable(v) -> bool:
    """Whether ``repr(v)`` reads back as a literal (``inf`` and ``nan`` do not)."""
    try:
        return repr(ast.literal_eval(repr(v))) == repr(v)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _one_changed(p: Probe) -> Iterator[tuple[Probe, object]]:
    """``p`` with one argument (positional or keyword) replaced by each of its variants,
    and the new value."""
    for pos, v in enumerate(p.args):
        for x in _variants(v):
            yield Probe(p.args[:pos] + (x,) + p.args[pos + 1:], p.kwargs), x
    for pos, (k, v) in enumerate(p.kwargs):
        for x in _variants(v):
            yield Probe(p.args, p.kwargs[:pos] + ((k, x),) + p.kwargs[pos + 1:]), x


def make_probes(seeds: Iterable[Probe], limit: int, seed: int = 0) -> list[Probe]:
    """Up to ``limit`` new inputs: each seed call with one argument mutated. Inputs the
    tests already use are not probes; the choice among the rest is seeded."""
    by_key = {repr(p): p for p in seeds}
    made: dict[str, Probe] = {}
    for p in by_key.values():
        for q, x in _one_changed(p):
            key = repr(q)
            if key not in by_key and _size(x) <= MAX_ARG_LEN and _writable((q.args, q.kwargs)):
                made.setdefault(key, q)
    keys = sorted(made)
    if len(keys) > limit:
        keys = sorted(random.Random(seed).sample(keys, limit))
    return [made[k] for k in keys]


# The harness runs after the solution, in the sandbox, in the solution's globals. Its
# names start with __probe_ so that they do not shadow the solution's, and it reaches
# builtins through the builtins module: a solution may rebind `map`, `dict` or `print`.
# Each call gets a deep copy of its arguments (an answer that sorts its input in place
# must not change the next probe) and an alarm that raises a BaseException, which an
# `except Exception` in the answer cannot turn into a value. Values are written as `==`
# compares them: 6.0 as 6, True as 1, floats to 6 places; long ones shortened and hashed
# so that the results line fits the sandbox's stdout cap.
_HARNESS = '''
import builtins as __probe_b, copy as __probe_copy, hashlib as __probe_hashlib
import json as __probe_json, math as __probe_math, re as __probe_re, signal as __probe_signal
import types as __probe_types

class __probe_Timeout(__probe_b.BaseException):
    pass

def __probe_alarm(*_):
    raise __probe_Timeout()

def __probe_norm(v, depth=0):
    b = __probe_b
    if depth > 20:
        return "..."
    if v is None:
        return "None"
    if b.isinstance(v, b.bool):
        return b.repr(b.int(v))
    if b.isinstance(v, b.int):
        return b.repr(v)
    if b.isinstance(v, b.float):
        if v != v:
            return "nan"
        if __probe_math.isinf(v):
            return b.repr(v)
        r = b.round(v, 6)
        return b.repr(b.int(r)) if r == b.int(r) else b.repr(r)
    if b.isinstance(v, b.complex):
        return __probe_norm(v.real, depth + 1) + "+" + __probe_norm(v.imag, depth + 1) + "j"
    if b.isinstance(v, (b.list, b.tuple)):
        return b.type(v).__name__ + "[" + ",".join([__probe_norm(x, depth + 1) for x in v]) + "]"
    if b.isinstance(v, (b.set, b.frozenset)):
        return "set{" + ",".join(b.sorted([__probe_norm(x, depth + 1) for x in v])) + "}"
    if b.isinstance(v, b.dict):
        return "dict{" + ",".join(b.sorted([__probe_norm(k, depth + 1) + ":" + __probe_norm(x, depth + 1)
                                            for k, x in v.items()])) + "}"
    if b.isinstance(v, (__probe_types.GeneratorType, b.map, b.filter, b.zip, b.range, b.reversed)):
        return "iter[" + ",".join([__probe_norm(x, depth + 1) for x, _ in b.zip(v, b.range(1000))]) + "]"
    return __probe_re.sub(r" at 0x[0-9a-fA-F]+", "", b.repr(v))

def __probe_short(v):
    if __probe_b.len(v) <= 40:
        return v
    return v[:40] + "#" + __probe_hashlib.sha256(v.encode("utf-8", "replace")).hexdigest()[:12]

def __probe_value(r):
    # String hashing differs between sandbox servers (each starts its own interpreter), so
    # a list made from a set of strings comes in an order that says nothing of the answer:
    # such a result also carries its order-free form, after a unit separator.
    v = __probe_short(__probe_norm(r))
    if __probe_b.isinstance(r, (__probe_b.list, __probe_b.tuple)):
        items = [__probe_norm(x, 1) for x in r]
        if __probe_b.any("'" in x or '"' in x for x in items):
            v += "\\x1f" + __probe_short("[" + ",".join(__probe_b.sorted(items)) + "]")
    return v

__probe_out = []
__probe_signal.signal(__probe_signal.SIGALRM, __probe_alarm)
for __probe_a, __probe_k in __probe_inputs:
    try:
        __probe_signal.setitimer(__probe_signal.ITIMER_REAL, __probe_limit)
        try:
            __probe_r = __probe_fn(*__probe_copy.deepcopy(__probe_a), **__probe_copy.deepcopy(__probe_b.dict(__probe_k)))
            __probe_v = __probe_value(__probe_r)
        finally:
            __probe_signal.setitimer(__probe_signal.ITIMER_REAL, 0)
        __probe_out.append(__probe_v)
    except __probe_Timeout:
        __probe_out.append("!Timeout")
    except __probe_b.BaseException as __probe_e:
        __probe_out.append("!" + __probe_b.type(__probe_e).__name__)
__probe_b.print("\\n" + __probe_mark + __probe_json.dumps(__probe_out, ensure_ascii=False))
'''


def harness(name: str, probes: list[Probe]) -> str:
    """The source that calls ``name`` on every probe and prints the results as one line."""
    if not name.isidentifier():
        raise ValueError(f"not a function name: {name!r}")
    head = (f"__probe_inputs = {[(p.args, p.kwargs) for p in probes]!r}\n__probe_fn = {name}\n"
            f"__probe_limit = {CALL_LIMIT_S!r}\n__probe_mark = {MARK!r}\n")
    return head + _HARNESS


def read_outputs(stdout: str, n: int) -> list[str] | None:
    """The harness's results from a run's stdout (None when it printed none, or not
    ``n`` of them: the run died, or its output was cut)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                out = json.loads(line[len(MARK):])
            except ValueError:
                return None
            if isinstance(out, list) and len(out) == n and all(isinstance(x, str) for x in out):
                return out
            return None
    return None


def shown(out: str) -> str:
    """A result as a reader should see it (without its order-free form)."""
    return out.partition(UNORDERED)[0]


def is_value(out: str) -> bool:
    return not out.startswith("!")


def _differ(a: str, b: str) -> bool:
    if a == b:
        return False
    (a, _, a_free), (b, _, b_free) = a.partition(UNORDERED), b.partition(UNORDERED)
    return not (a_free and a_free == b_free)  # the same strings in another order agree


def disagreements(mine: list[str], theirs: list[str]) -> list[int]:
    """The probes on which both returned a value and the values differ (a list of
    strings in another order does not differ: see the harness)."""
    return [i for i, (a, b) in enumerate(zip(mine, theirs)) if is_value(a) and is_value(b) and _differ(a, b)]
