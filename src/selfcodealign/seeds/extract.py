"""Find functions with docstrings in a Python file and make each one self-standing.

A candidate is a function or method with a docstring, defined at module level or directly
in a module-level class. Self-standing means: the module imports it uses are prepended
(the paper inferred them with autoimport; we have the real module, so we copy its own
import lines), and a method that never touches ``self``/``cls`` becomes a plain function.
Anything that still depends on its module (a helper, a constant, instance state) is
reported with a reason instead of being guessed at.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from dataclasses import dataclass, field

from selfcodealign.checks import own_nodes

BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass
class Candidate:
    name: str
    code: str  # imports + function, ready to write to a file
    body: str  # the function alone (dedented), what the filters look at
    line_start: int
    line_end: int
    imports: list[str] = field(default_factory=list)  # top-level module names imported
    drop: str | None = None  # the reason, when it cannot be made self-standing
    node: ast.FunctionDef | None = field(default=None, repr=False)  # for the filters
    dropped_first_param: bool = False  # a method turned into a plain function


class FileSkip(Exception):
    """A whole file is unusable; ``args[0]`` is the counted reason."""


def decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileSkip("not_utf8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def parse(text: str) -> ast.Module:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        raise FileSkip("syntax_error") from None
    except (RecursionError, MemoryError):
        raise FileSkip("too_deeply_nested") from None


def _import_lines(tree: ast.Module) -> dict[str, list[str] | None]:
    """Names bound by module-level imports -> the import lines that bind them (None when
    they cannot be copied, e.g. a relative import). Names a star import would bind stay
    unknown, so functions using them are dropped as unresolved."""
    names: dict[str, list[str] | None] = {}
    for node in _toplevel_statements(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = [f"import {a.name} as {a.asname}"]
                else:
                    # `import a.b` binds `a`; keep every such line so `a.b.x` still works.
                    top = a.name.split(".")[0]
                    lines = names.get(top) or []
                    names[top] = lines + [f"import {a.name}"]
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "*":
                    continue
                bound = a.asname or a.name
                if node.level or not node.module or node.module == "__future__":
                    names.setdefault(bound, None)
                    continue
                alias = f" as {a.asname}" if a.asname else ""
                names[bound] = [f"from {node.module} import {a.name}{alias}"]
    return names


def _toplevel_statements(tree: ast.Module):
    """Module-level statements, looking inside top-level if/try blocks (optional imports)."""
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If):
            stack.extend(reversed(node.body + node.orelse))
        elif isinstance(node, ast.Try):
            stack.extend(reversed(node.body + node.orelse + node.finalbody))
            for h in node.handlers:
                stack.extend(reversed(h.body))


def _module_bindings(tree: ast.Module) -> set[str]:
    bound: set[str] = set()
    for node in _toplevel_statements(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
            targets = [node.target]
        elif isinstance(node, ast.With):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        else:
            continue
        for t in targets:
            if isinstance(t, ast.Name):
                bound.add(t.id)
            else:
                bound.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return bound | {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__path__"}


def _global_refs(table: symtable.SymbolTable) -> set[str]:
    refs: set[str] = set()
    for sym in table.get_symbols():
        if sym.is_referenced() and (sym.is_global() or sym.is_free()):
            refs.add(sym.get_name())
    for child in table.get_children():
        refs |= _global_refs(child)
    return refs


def has_value_return(fn: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) and n.value is not None for n in own_nodes(fn))


def _source_lines(lines: list[str], node: ast.AST) -> str:
    """The function's own lines, its indentation removed (decorators excluded)."""
    indent = node.col_offset
    out = []
    for line in lines[node.lineno - 1 : node.end_lineno]:
        head = line[:indent]
        out.append(line[indent:] if not head.strip() else line)
    # Anything after the end on the last line (e.g. `; x = 1`) is not ours.
    if out and node.end_col_offset is not None:
        last = lines[node.end_lineno - 1].encode("utf-8")  # ast offsets are in bytes
        if last[node.end_col_offset :].strip():
            out[-1] = last[indent : node.end_col_offset].decode("utf-8", "replace")
    return "\n".join(out) + "\n"


def _drop_first_param(src: str) -> str | None:
    """Remove a method's unused ``self``/``cls`` parameter from its ``def`` line(s)."""
    fn = ast.parse(src).body[0]
    assert isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
    first = (fn.args.posonlyargs + fn.args.args)[0]
    lines = src.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    raw = src.encode("utf-8")
    start = offsets[first.lineno - 1] + first.col_offset
    end = offsets[first.end_lineno - 1] + (first.end_col_offset or 0)
    rest = raw[end:]
    stripped = rest.lstrip()
    if stripped.startswith(b","):
        after = stripped[1:]
        end += len(rest) - len(after)
        end += len(after) - len(after.lstrip(b" \t"))
        # "def f(self, /, x)": the marker would be left first; drop it with self.
        if raw[end:].startswith(b"/"):
            end += 1
            tail = raw[end:]
            tail2 = tail.lstrip()
            if tail2.startswith(b","):
                end += len(tail) - len(tail2) + 1
                end += len(raw[end:]) - len(raw[end:].lstrip(b" \t"))
    new = (raw[:start] + raw[end:]).decode("utf-8")
    try:
        ast.parse(new)
    except SyntaxError:
        return None
    return new


# A block opener followed by a string: a docstring may be there. Files without one
# cannot hold a candidate, so they are not parsed at all (parsing is most of the cost).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MAYBE_DOCSTRING = re.compile(r':[ \t]*(?:#[^\n]*)?\r?\n[ \t]+[rRuU]?["\']')


def extract(text: str) -> list[Candidate]:
    """All candidates of one file, in source order. Raises FileSkip for unusable files."""
    if not _MAYBE_DOCSTRING.search(text):
        raise FileSkip("no_docstrings")
    tree = parse(text)
    # Split the way the tokenizer counts lines: str.splitlines() also breaks at form
    # feeds and other separators, which would shift every later line number.
    lines = _LINE_BREAK.split(text)
    imports = _import_lines(tree)
    module_names = _module_bindings(tree)
    out: list[Candidate] = []
    for fn, in_class in _documented_functions(tree):
        out.append(_candidate(fn, in_class, lines, imports, module_names))
    return out


def _documented_functions(tree: ast.Module):
    """The module's functions and its classes' methods that have a docstring, in source
    order, each with whether it is a method."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            items, in_class = [node], False
        elif isinstance(node, ast.ClassDef):
            items, in_class = node.body, True
        else:
            continue
        for fn in items:
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(fn, clean=False):
                yield fn, in_class


def _is_static(fn: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)


def _shape_drop(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> str | None:
    """Why the function's kind keeps it from being a seed: async, or decorated."""
    if isinstance(fn, ast.AsyncFunctionDef):
        return "async"
    decorators = [d.id if isinstance(d, ast.Name) else None for d in fn.decorator_list]
    static = "staticmethod" in decorators
    if any(d not in ("staticmethod",) for d in decorators) or (static and not in_class):
        # A decorator changes what the function is (property, contextmanager, cache, ...).
        return "decorated"
    return None


def _function_table(body: str, name: str) -> tuple[symtable.SymbolTable, symtable.SymbolTable]:
    """The snippet's module table and its function's table."""
    table = symtable.symtable(body, "<seed>", "exec")
    return table, next(t for t in table.get_children() if t.get_name() == name)


def _self_use_drop(fn: ast.FunctionDef, fn_table: symtable.SymbolTable) -> str | None:
    """``uses_self`` when a method needs its instance or class (its first parameter,
    ``super`` or ``__class__``), so it cannot become a plain function."""
    params = fn.args.posonlyargs + fn.args.args
    if not params:
        return "uses_self"
    first = params[0].arg
    # Referenced here or, as a free variable, in a nested scope (conservative: a
    # nested function's own parameter of the same name also counts).
    used = any(
        s.get_name() == first and (s.is_referenced() or s.is_free())
        for t in _tables(fn_table)
        for s in t.get_symbols()
    )
    refs = _global_refs(fn_table)
    if used or "super" in refs or "__class__" in refs:
        return "uses_self"
    return None


def _needed_imports(names: list[str], fn_name: str, imports: dict[str, list[str] | None],
                    module_names: set[str]) -> tuple[list[str], str | None]:
    """The module's import lines that the names need, or why a name cannot be resolved
    without the rest of the module."""
    needed: list[str] = []
    for name in names:
        if name in imports:
            found = imports[name]
            if found is None:
                return needed, "unresolved_name"
            needed.extend(line for line in found if line not in needed)
        elif name == fn_name:
            continue  # recursion
        elif name in module_names:
            return needed, "module_dependency"
        elif name in BUILTIN_NAMES:
            continue
        else:
            return needed, "unresolved_name"
    return needed, None


def _imported_module(line: str) -> str:
    return line.split()[1].split(".")[0]


def _candidate(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool, lines: list[str],
               imports: dict[str, list[str] | None], module_names: set[str]) -> Candidate:
    """One documented function as a self-standing seed (with the imports it needs), or
    with the reason (``drop``) it cannot be one."""
    body = _source_lines(lines, fn)
    cand = Candidate(fn.name, "", body, fn.lineno, fn.end_lineno or fn.lineno, node=fn)
    cand.drop = _shape_drop(fn, in_class)
    if cand.drop:
        return cand
    try:
        table, fn_table = _function_table(body, fn.name)
    except SyntaxError:  # e.g. a `nonlocal` that only made sense inside its parent
        cand.drop = "not_self_standing"
        return cand
    if in_class and not _is_static(fn):
        cand.drop = _self_use_drop(fn, fn_table)
        if cand.drop:
            return cand
        new = _drop_first_param(body)
        if new is None:
            cand.drop = "not_self_standing"
            return cand
        body = cand.body = new
        cand.dropped_first_param = True
        table, fn_table = _function_table(body, fn.name)
    # Annotations and default values are evaluated in the enclosing scope, so their
    # names show up in the snippet's module table, not in the function's.
    outer = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    needed, cand.drop = _needed_imports(sorted(_global_refs(fn_table) | outer), fn.name, imports, module_names)
    if cand.drop:
        return cand
    cand.imports = sorted({_imported_module(line) for line in needed})
    header = "\n".join(sorted(needed))
    cand.code = (header + "\n\n\n" if header else "") + body
    return cand


def _tables(t: symtable.SymbolTable):
    yield t
    for c in t.get_children():
        yield from _tables(c)
