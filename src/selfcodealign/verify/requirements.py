"""Requirements an instruction states, checked on the solution's AST. Pure functions.

An instruction that says "using recursion", "with memoization", "reads from standard
input", "use `numpy.isfinite`", "raise `ValueError`", "a `namedtuple`" states something
the code must do, not only what it must return; tests rarely check it. Each requirement
here is read from the instruction conservatively (a phrase that asks, not one that
negates: "without recursion" asks for nothing) and checked on the code:

- recursion: some function or method calls itself, or two call each other;
- memoisation: a cache decorator, or a mapping that the code both fills and looks up and
  that outlives a call (not one a recursive function makes afresh and never passes on);
- standard input / output (programs): ``input()``, ``sys.stdin``; ``print`` or ``sys.stdout``;
- names to use: a module the instruction names is imported; a function or method it
  names as one to call (``use `sorted()```, ```numpy.isfinite```, ``use the `enumerate`
  function``) is referred to;
- protocols: a class that must "support `len()`" (``in``, ``iter()``, ``reversed()``, ...)
  defines the special method that makes it work;
- errors to raise: ``raise ValueError`` (or a subclass the code defines) for each error
  the instruction says to raise;
- structures: ``namedtuple``, ``dataclass``, generator (``yield``), context manager,
  ``lambda``, list comprehension; "vectorized" code has no Python loop or comprehension;
- type hints: every function the code defines annotates each parameter (``self`` and
  ``cls`` aside) and its return (``__init__`` aside);
- complexity claims (``O(1)``, "constant time") are flagged: nothing static can check them,
  and at this model size they mostly come with instructions no answer can meet.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from selfcodealign.checks import (exception_names, imported_modules, mentioned_names, own_nodes, parse_tree,
                                  raised_names)

_NEGATION = re.compile(r"\b(not|no|without|never|avoid\w*|instead of|rather than|non-?)\W*(\w+\W+){0,2}$", re.I)


def _unnegated(matches: Iterator[re.Match], text: str, window: int = 40) -> Iterator[re.Match]:
    """The matches with no negation in the ``window`` characters before them."""
    return (m for m in matches if not _NEGATION.search(text[max(0, m.start() - window): m.start()]))


def _asks(text: str, pattern: str) -> bool:
    """The instruction mentions ``pattern`` at least once without a negation just before."""
    return any(_unnegated(re.finditer(pattern, text, re.I), text))


# ---- what the code does ------------------------------------------------------------

def _functions(tree: ast.Module) -> Iterator[tuple[str | None, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(enclosing class name or None, function) for every function in the module."""
    def walk(node: ast.AST, cls: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield cls, child
                yield from walk(child, cls)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, child.name)
            else:
                yield from walk(child, cls)
    yield from walk(tree, None)


def _callee(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None


def is_recursive(tree: ast.Module) -> bool:
    """Some function calls itself (by name, or ``self.name`` in a method), or functions
    call each other in a cycle."""
    graph: dict[str, set[str]] = {}
    for _cls, fn in _functions(tree):
        calls = {_callee(n) for n in ast.walk(fn) if isinstance(n, ast.Call)} - {None}
        graph.setdefault(fn.name, set()).update(calls)  # type: ignore[arg-type]
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            name = stack.pop()
            if name == start:
                return True
            if name in seen or name not in graph:
                continue
            seen.add(name)
            stack.extend(graph[name])
    return False


_CACHE_DECORATORS = {"lru_cache", "cache", "cached", "memoize", "memoized", "cached_property"}


def _expr_key(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _expr_key(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def is_memoised(tree: ast.Module) -> bool:
    """A cache decorator, or a mapping the code stores into by key and also looks up
    (``if n in memo``, ``memo.get(n)``, ``memo[n]`` read)."""
    for _cls, fn in _functions(tree):
        for d in fn.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if name in _CACHE_DECORATORS:
                return True
    stored: set[str] = set()
    looked_up: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript):
            key = _expr_key(n.value)
            if key is None:
                continue
            (stored if isinstance(n.ctx, ast.Store) else looked_up).add(key)
        elif isinstance(n, ast.Compare):
            for op, right in zip(n.ops, n.comparators):
                if isinstance(op, (ast.In, ast.NotIn)) and _expr_key(right):
                    looked_up.add(_expr_key(right))  # type: ignore[arg-type]
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("get", "setdefault"):
            key = _expr_key(n.func.value)
            if key:
                looked_up.add(key)
                if n.func.attr == "setdefault":
                    stored.add(key)
    return any(_kept_between_calls(tree, key) for key in stored & looked_up)


def _kept_between_calls(tree: ast.Module, key: str) -> bool:
    """False when ``key`` is a mapping that a recursive function creates afresh in its own
    body and never hands to its recursive calls: each call then starts from an empty
    cache, and nothing is memoised (``memo = {}`` inside ``fib`` that calls ``fib(n - 1)``)."""
    for _cls, fn in _functions(tree):
        own = list(own_nodes(fn))
        if not any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == key for t in n.targets)
                   for n in own):
            continue
        self_calls = [n for n in own if isinstance(n, ast.Call) and _callee(n) == fn.name]
        if self_calls and not any(isinstance(a, ast.Name) and a.id == key
                                  for c in self_calls for a in [*c.args, *(k.value for k in c.keywords)]):
            return False
    return True


def is_annotated(tree: ast.Module, only: set[str] | None = None) -> bool:
    """Every function of the module and method of its classes (not the helpers nested in
    them), or those named in ``only``, annotates its parameters and its return."""
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    funcs += [m for c in tree.body if isinstance(c, ast.ClassDef)
              for m in c.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if only:
        funcs = [f for f in funcs if f.name in only]
    for f in funcs:
        a = f.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]
        if any(x.annotation is None for x in params if x.arg not in ("self", "cls")):
            return False
        if f.returns is None and f.name != "__init__":
            return False
    return bool(funcs)


def reads_stdin(tree: ast.Module) -> bool:
    names = mentioned_names(tree)
    return "input" in names or "stdin" in names or "fileinput" in names or "readline" in names


def writes_stdout(tree: ast.Module) -> bool:
    names = mentioned_names(tree)
    return "print" in names or "stdout" in names or "pprint" in names


def raised_errors(tree: ast.Module) -> set[str]:
    """Names of the exceptions the code raises, with the bases of its own exception classes
    (``class EmptyError(ValueError)``: raising it raises a ValueError)."""
    bases: dict[str, set[str]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.ClassDef):
            bases[n.name] = set().union(*(exception_names(b) for b in n.bases))
    raised = raised_names(tree)
    todo = list(raised)
    while todo:
        for b in bases.get(todo.pop(), ()):
            if b not in raised:
                raised.add(b)
                todo.append(b)
    return raised


def _returns_literal(tree: ast.Module, text: str) -> bool:
    try:
        want = ast.literal_eval(text if text.lower() not in ("none", "true", "false") else text.capitalize())
    except (ValueError, SyntaxError):
        return True
    for n in ast.walk(tree):
        if isinstance(n, ast.Return):
            if n.value is None:
                if want is None:
                    return True
                continue
            if isinstance(want, bool) and not isinstance(n.value, ast.Constant):
                return True  # `return a == b`: a truth value computed, as idiomatic code does
            try:
                got = ast.literal_eval(n.value)
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                continue
            if type(got) is type(want) and got == want:
                return True
    return False


# ---- what the instruction asks ------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    kind: str  # recursion | memoisation | stdin | stdout | annotations | module | call | raises | protocol | structure | complexity
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}".strip()


# Modules an instruction names in prose ("use NumPy"); backticked names are read too.
_KNOWN_MODULES = {
    "numpy": "numpy", "pandas": "pandas", "scipy": "scipy", "sympy": "sympy", "networkx": "networkx",
    "matplotlib": "matplotlib", "statsmodels": "statsmodels", "sklearn": "sklearn",
    "scikit-learn": "sklearn", "torch": "torch", "pytorch": "torch",
}
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) - {"this", "antigravity", "test", "string", "array",
                                                          "code", "random", "time", "types", "copy"}
_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
_DOTTED_CALL = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)\s*(\(.*\))?$")
_USE_BEFORE = re.compile(r"\b(use|uses|using|call|calls|calling|via|leverag\w*|employ\w*|apply|applies)\b"
                         r"(\s+(the|a|an|python's|numpy's|its|built-?in))*\s*$", re.I)
_USE_IN_SENTENCE = re.compile(r"\b(use|uses|using)\b", re.I)
# "use the `enumerate` function": a bare name is a callable to use when a word says so.
_CALLABLE_AFTER = re.compile(r"^\s+(built-?in\s+)?(function|method)\b", re.I)
# Types are left out: "use a `dict`" is met by a `{}` literal, which never names `dict`.
_BUILTIN_CALLABLES = {n for n in dir(builtins) if callable(getattr(builtins, n)) and n.islower()
                      and not n.startswith("_")} - {"dict", "list", "set", "tuple", "str", "int", "float",
                                                    "bool", "frozenset", "bytes", "bytearray", "complex",
                                                    "object", "type"}
# "support for `len()`", "supports the `in` operator": the special methods that make each
# work (any one of them).
_PROTOCOLS = {
    "len": ("__len__",), "iter": ("__iter__", "__getitem__"), "reversed": ("__reversed__", "__getitem__"),
    "in": ("__contains__", "__iter__", "__getitem__"), "hash": ("__hash__",), "abs": ("__abs__",),
    "str": ("__str__", "__repr__"), "repr": ("__repr__",), "bool": ("__bool__", "__len__"),
    "==": ("__eq__",), "<": ("__lt__",), "+": ("__add__",), "[]": ("__getitem__",),
}
_SUPPORT = re.compile(r"\bsupport(?:s|ing)?\s+(?:for\s+)?(?:the\s+)?(?:built-?in\s+)?`(len|iter|reversed|in|hash|abs"
                      r"|str|repr|bool|==|<|\+|\[\])(?:\(\))?`", re.I)
_ERROR_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception))\b")
_RAISE_WORD = re.compile(r"\b(raise[sd]?|raising|throws?|throwing)\b", re.I)
_COMPLEXITY = re.compile(r"\bO\((?:[^()]|\([^()]*\)){1,30}\)|\b(constant|linear|logarithmic)[- ](time|space|memory)\b"
                         r"|\b(no |without (using )?(any )?)(extra|additional|auxiliary) (space|memory)\b", re.I)
# "return `None` if n <= 1": a stated result for a stated case; the code must return it.
_RETURNS_LITERAL = re.compile(r"\breturns?\s+`?(None|True|False|-?\d+(?:\.\d+)?|\[\]|\{\}|''|\"\")`?"
                              r"\s+(?:if|when|for)\b", re.I)
_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_STRUCTURES = {
    "namedtuple": (r"\bnamed ?tuples?\b", lambda t, names: bool({"namedtuple", "NamedTuple"} & names)),
    "dataclass": (r"\bdata ?class(es)?\b", lambda t, names: "dataclass" in names),
    "generator": (r"`yield`|\b(?<!number )(?<!random )(?<!id )generators?\b",
                  lambda t, names: any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.GeneratorExp))
                                       for n in ast.walk(t))),
    "context manager": (r"\bcontext manager\b|`with` statement",
                        lambda t, names: "__enter__" in names or "contextmanager" in names),
    "lambda": (r"\blambda\b", lambda t, names: any(isinstance(n, ast.Lambda) for n in ast.walk(t))),
    "list comprehension": (r"\blist comprehensions?\b",
                           lambda t, names: any(isinstance(n, ast.ListComp) for n in ast.walk(t))),
    # "vectorized" asks for array operations: a Python loop over the elements is not one.
    "vectorised": (r"\bvectori[sz](ed|ation|e|ing)\b",
                   lambda t, names: not any(isinstance(n, _LOOPS) for n in ast.walk(t))),
}


def _names_to_use(instruction: str) -> tuple[set[str], set[str]]:
    """(modules, callables) the instruction names as things to use."""
    modules: set[str] = set()
    calls: set[str] = set()
    for word, mod in _KNOWN_MODULES.items():
        if _asks(instruction, rf"(?<![\w.`]){re.escape(word)}(?![\w`])"):
            modules.add(mod)
    for m in _BACKTICKED.finditer(instruction):
        span = m.group(1).strip()
        dotted = _DOTTED_CALL.match(span)
        if not dotted:
            continue
        path = dotted.group(1).split(".")
        before = instruction[max(0, m.start() - 40): m.start()]
        head = path[0]
        if head in _KNOWN_MODULES or head in ("np", "pd", "sp") or (head in _STDLIB and len(path) > 1):
            modules.add(_KNOWN_MODULES.get(head, {"np": "numpy", "pd": "pandas", "sp": "scipy"}.get(head, head)))
            if len(path) > 1:
                calls.add(path[-1])
        elif head in _STDLIB and _USE_BEFORE.search(before) and not _NEGATION.search(before):
            modules.add(head)
        elif (dotted.group(2) is not None or len(path) > 1 or head in _BUILTIN_CALLABLES
              or _CALLABLE_AFTER.match(instruction[m.end(): m.end() + 30])) \
                and _USE_BEFORE.search(before) and not _NEGATION.search(before) and not path[-1].startswith("__"):
            calls.add(path[-1])
        elif dotted.group(2) is not None and not path[-1].startswith("__") and _used_in_sentence(instruction, m):
            calls.add(path[-1])
    return modules, calls


def _used_in_sentence(instruction: str, m: re.Match) -> bool:
    """"Use type checking with `isinstance()`": a use word earlier in the sentence of the
    backticked name ``m``, with no "or" after it ("use `len()` or `ord()`" asks for
    either, not both) and no negation just before the name."""
    sentence = re.split(r"[.!?]\s", instruction[: m.start()])[-1]
    uses = list(_USE_IN_SENTENCE.finditer(sentence))
    return (bool(uses) and not re.search(r"\bor\b", sentence[uses[-1].end():])
            and not re.match(r"\s*,?\s*or\b", instruction[m.end():])
            and not _NEGATION.search(instruction[max(0, m.start() - 40): m.start()]))


def requirements(instruction: str, category: str = "function") -> list[Requirement]:
    """What the instruction asks of the code beyond its names (``faithful.missing_names``)."""
    text = instruction
    out: list[Requirement] = []
    if _asks(text, r"\brecurs(ion|ive|ively)\b"):
        out.append(Requirement("recursion", ""))
    if _asks(text, r"\bmemoi[sz](ation|e|ed|ing)\b|\bmemo\b|\bcach(e|es|ing|ed)\b"):
        out.append(Requirement("memoisation", ""))
    if _asks(text, r"\b(standard input|stdin|from the (user|keyboard|console))\b"
                   r"|\breads?\b[^.]{0,40}\b(from )?(the )?(standard )?input\b"):
        out.append(Requirement("stdin", ""))
    if category == "program" and _asks(text, r"\bprints?\b|\bstandard output\b|\bstdout\b|\bdisplays?\b"):
        out.append(Requirement("stdout", ""))
    modules, calls = _names_to_use(text)
    out += [Requirement("module", m) for m in sorted(modules)]
    out += [Requirement("call", c) for c in sorted(calls)]
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        for m in _RAISE_WORD.finditer(sentence):
            before = sentence[max(0, m.start() - 30): m.start()]
            if _NEGATION.search(before) or re.search(r"\b(not|never|no)\b", sentence[m.end(): m.end() + 12], re.I):
                continue
            for err in _ERROR_NAME.findall(sentence[m.end(): m.end() + 60]):
                r = Requirement("raises", err)
                if r not in out:
                    out.append(r)
    for kind, regex in (("returns", _RETURNS_LITERAL), ("protocol", _SUPPORT)):
        for m in _unnegated(regex.finditer(text), text, window=30):
            r = Requirement(kind, m.group(1))
            if r not in out:
                out.append(r)
    hints = r"\btype[- ](hints?|hinting|annotations?)\b|\bannotat(e|ed|ions?) (its |the |all )?(parameters|arguments|inputs|types)\b"
    if _asks(text, hints):
        # "Add type annotations to the function `f(x: int) -> int`": that function only
        sentence = next(s for s in re.split(r"(?<=[.!?])\s+", text) if re.search(hints, s, re.I))
        named = sorted(set(re.findall(r"`([A-Za-z_]\w*)\(", sentence)))
        out.append(Requirement("annotations", ",".join(named)))
    for name, (pattern, _) in _STRUCTURES.items():
        if _asks(text, pattern):
            out.append(Requirement("structure", name))
    m = _COMPLEXITY.search(text)
    if m:
        out.append(Requirement("complexity", m.group(0)))
    return out


def _met(req: Requirement, tree: ast.Module, names: set[str]) -> bool:
    if req.kind == "recursion":
        return is_recursive(tree)
    if req.kind == "memoisation":
        return is_memoised(tree)
    if req.kind == "stdin":
        return reads_stdin(tree)
    if req.kind == "annotations":
        return is_annotated(tree, set(req.detail.split(",")) if req.detail else None)
    if req.kind == "stdout":
        return writes_stdout(tree)
    if req.kind == "module":
        return req.detail in imported_modules(tree)
    if req.kind == "call":
        return req.detail in names
    if req.kind == "raises":
        return req.detail in raised_errors(tree)
    if req.kind == "returns":
        return _returns_literal(tree, req.detail)
    if req.kind == "structure":
        return _STRUCTURES[req.detail][1](tree, names)
    if req.kind == "protocol":
        return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in _PROTOCOLS[req.detail]
                   for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for n in c.body)
    return False  # complexity: never checkable, always flagged


def unmet(instruction: str, code: str, category: str = "function") -> list[str]:
    """The requirements of ``instruction`` that ``code`` does not meet, one line each
    (a complexity claim is always listed: it cannot be checked)."""
    reqs = requirements(instruction, category)
    if not reqs:
        return []
    tree = parse_tree(code)
    if tree is None:
        return ["the solution does not parse"]
    names = mentioned_names(tree)
    return [str(r) for r in reqs if not _met(r, tree, names)]


# ---- instructions no answer can meet ---------------------------------------------------

# Libraries whose names an instruction may get wrong; imported (they are installed
# libraries, not model code) only when an instruction names one of their attributes.
_TRUSTED = {"numpy": "numpy", "np": "numpy", "scipy": "scipy", "sympy": "sympy", "pandas": "pandas",
            "pd": "pandas", "math": "math", "statistics": "statistics", "itertools": "itertools",
            "functools": "functools", "collections": "collections", "re": "re", "string": "string",
            "heapq": "heapq", "bisect": "bisect", "operator": "operator", "json": "json", "random": "random", "networkx": "networkx", "nx": "networkx"}
# "SymPy's `eye_matrix` function": a possessive names a function of the library itself.
_POSSESSIVE = re.compile(r"\b(numpy|NumPy|scipy|SciPy|sympy|SymPy|pandas|Pandas)'s\s+`([A-Za-z_]\w*)"
                         r"(?:\(.*?\)`|`\s+function)")


def _exists(module: str, path: list[str]) -> bool | None:
    """Whether ``module.path`` exists; None when the module cannot be imported here."""
    import importlib

    try:
        obj = importlib.import_module(module)
    except Exception:  # not installed, or broken: cannot tell
        return None
    for i, part in enumerate(path):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:  # a submodule not imported by its package (scipy.integrate)
            obj = importlib.import_module(".".join([module, *path[: i + 1]]))
        except Exception:
            return False
    return True


def missing_apis(instruction: str) -> list[str]:
    """Library functions the instruction names that do not exist (``numpy.ttest_ind``)."""
    named: list[tuple[str, list[str], str]] = []
    for m in _BACKTICKED.finditer(instruction):
        dotted = _DOTTED_CALL.match(m.group(1).strip())
        if dotted:
            parts = dotted.group(1).split(".")
            if len(parts) > 1 and parts[0] in _TRUSTED:
                named.append((_TRUSTED[parts[0]], parts[1:], dotted.group(1)))
    for m in _POSSESSIVE.finditer(instruction):
        named.append((m.group(1).lower(), [m.group(2)], f"{m.group(1)}'s {m.group(2)}"))
    out = []
    for module, path, shown in named:
        if _exists(module, path) is False and shown not in out:
            out.append(shown)
    return out


def unanswerable(instruction: str) -> list[str]:
    """Why no answer can be faithful to ``instruction`` (empty: no reason found): it names
    library functions that do not exist, or asks for recursion in constant time or space."""
    out = [f"names {name}, which does not exist" for name in missing_apis(instruction)]
    if _asks(instruction, r"\brecurs(ion|ive|ively)\b") and \
            re.search(r"\bO\(1\)|\bconstant[- ](time|space|memory)\b", instruction, re.I):
        out.append("asks for recursion in constant time or space")
    return out


def packages(instruction: str, category: str = "function", seed_library: str | None = None) -> list[str]:
    """The packages outside the standard library that ``instruction`` asks the code to use
    (``numpy``, ``torch``, ...), read as the module requirements are, and ``seed_library``
    (the library its seed was mined from: ``seed_package``) when the instruction names it
    anywhere: "a music21 score", "uses Dask", "`cvxpy`"."""
    named = {r.detail for r in requirements(instruction, category)
             if r.kind == "module" and r.detail.split(".")[0] not in sys.stdlib_module_names}
    if seed_library and _asks(instruction, rf"(?<![\w.-]){re.escape(seed_library)}(?![\w-])"):
        named.add(seed_library)
    return sorted(named)


# Folders that hold a project's code rather than name it (src/ layouts and the like).
_LAYOUT_FOLDERS = {"src", "lib"}
_INSTALL_FOLDERS = {"site-packages", "dist-packages"}


def seed_package(path: str) -> str | None:
    """The library a seed was mined from, as its file's path inside the source names it
    (``music21/interval.py`` -> ``music21``; ``src/mypkg/util.py`` -> ``mypkg``;
    ``lib/python3.11/site-packages/ray/x.py`` -> ``ray``): its first
    folder that is an importable name outside the standard library, or None (a file at the
    source's top, a dataset row, the standard library)."""
    folders = path.replace("\\", "/").split("/")[:-1]
    for i in range(len(folders) - 1, -1, -1):
        if folders[i] in _INSTALL_FOLDERS:
            folders = folders[i + 1:]
            break
    while folders and folders[0] in _LAYOUT_FOLDERS:
        folders = folders[1:]
    if not folders or not folders[0].isidentifier() or folders[0] in sys.stdlib_module_names:
        return None
    return folders[0]
