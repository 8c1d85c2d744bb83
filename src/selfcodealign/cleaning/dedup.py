"""Near-duplicate removal: MinHash-LSH over word shingles at Jaccard 0.5, as in the paper,
and again after renaming identifiers, so that a consistently renamed copy is caught too.

An item is a near-duplicate of a kept one if their word 3-gram sets reach the threshold
as written (the paper's test) *or* after ``normalize``. Both are needed: numbering names
by first appearance makes a renamed copy identical, but one extra name early in an edited
copy shifts every later number, so the normalised test alone would miss copies that the
plain test catches.

``normalize`` renames, in code, every name to ``v0``, ``v1``, ... in order of first
appearance, except keywords, builtins, dunder names, ``self``/``cls``/``_``, the words of
import statements and the names they bind, and attribute names after a dot (unless the
text defines that name with ``def``/``class``, as a method). Those are the API a function
uses: renaming them would make ``np.mean(x)`` and ``np.median(x)`` the same function. A
function's or class's own name stays where it is defined: like its docstring, it says
what the function is (``test_false`` and ``test_boolean``, three lines each, are two
functions); its uses (calls, recursion, tests) are renamed, so those still match. String
literals (docstrings, messages) and numbers stay as written: they tell functions apart,
and a rename leaves them alone. Dataset text is markdown: code in fenced Python blocks
and inline backtick spans is renamed with one mapping for the whole text, so
``merge(a, b)`` in the instruction and ``def merge(a, b)`` in the answer agree; prose is
left alone. ``tokenize`` reads the code; what it rejects (broken or truncated code) is
read by a regex instead, so it still normalises.

Signatures are computed where the text is (worker processes); the index that decides
lives in one place and only ever holds what was kept, so the first occurrence in the
(deterministic) processing order wins. LSH's candidates are confirmed by MinHash's
estimate of the Jaccard. Without ``datasketch`` the index falls back to exact Jaccard
against every kept item: same decisions in spirit, fine for a few thousand seeds,
quadratic beyond that (a one-time warning says how to install datasketch).
"""

from __future__ import annotations

import io
import keyword
import logging
import re
import tokenize
from typing import Any

log = logging.getLogger("selfcodealign.seeds")

NUM_PERM = 128
SCHEME = "affine32"  # datasketch >= 2.0
SHINGLE = 3
_WORD = re.compile(r"\w+")
_warned = False

# Python's builtins, frozen here rather than read from ``builtins`` so that decisions do
# not depend on the interpreter's version, plus names that are conventions, not choices.
_KEEP = frozenset(
    """
    ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup
    BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError
    ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError
    DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception
    ExceptionGroup False FileExistsError FileNotFoundError FloatingPointError FutureWarning
    GeneratorExit IOError ImportError ImportWarning IndentationError IndexError
    InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError MemoryError
    ModuleNotFoundError NameError None NotADirectoryError NotImplemented
    NotImplementedError OSError OverflowError PendingDeprecationWarning PermissionError
    ProcessLookupError PythonFinalizationError RecursionError ReferenceError
    ResourceWarning RuntimeError RuntimeWarning StopAsyncIteration StopIteration
    SyntaxError SyntaxWarning SystemError SystemExit TabError TimeoutError True TypeError
    UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError
    UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning ZeroDivisionError
    abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr
    classmethod compile complex delattr dict dir divmod enumerate eval exec filter float
    format frozenset getattr globals hasattr hash hex id input int isinstance issubclass
    iter len list locals map max memoryview min next object oct open ord pow print
    property range repr reversed round set setattr slice sorted staticmethod str sum super
    tuple type vars zip
    self cls _
    """.split()
) | frozenset(keyword.kwlist)
_DUNDER = re.compile(r"__\w+__\Z")
_DEF = re.compile(r"\b(?:def|class)[ \t]+([^\W\d]\w*)")
# Import statements, wherever they are in the text, parenthesised ones over several lines
# included: the names they bind are kept (``_bound``).
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]+(\([^)]*\)?|[^\n#;]*)", re.M
)
_IDENT = re.compile(r"[^\W\d]\w*\Z")
# Fallback lexer for what ``tokenize`` rejects (unterminated strings, broken indentation,
# truncated answers, fragments): strings, comments, numbers, names, any other character.
_Q3 = '"""'
_STRING = (
    r"(?:[rRbBuUfF]{1,2})?(?:"
    + _Q3 + r"[\s\S]*?(?:" + _Q3 + r"|\Z)"
    + r"|'''[\s\S]*?(?:'''|\Z)"
    + r'|"(?:\\.|[^"\\\n])*(?:"|(?=\n)|\Z)'
    + r"|'(?:\\.|[^'\\\n])*(?:'|(?=\n)|\Z))"
)
_LEX = re.compile(
    rf"(?P<s>{_STRING})|(?P<c>#[^\n]*)|(?P<d>\d[\w.]*)|(?P<n>[^\W\d]\w*)|(?P<o>\S|\n)"
)
# Markdown: fenced blocks (an unclosed one runs to the end, as in a truncated answer) and
# inline code spans. Only Python or unlabelled fences are code; ```text, ```bash, ```json
# and the like are left as they are.
_FENCE = re.compile(
    r"^[ \t]*(```+|~~~+)[ \t]*([^\n]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S
)
_PY_FENCE = frozenset({"", "python", "py", "python3", "py3", "pycon", "ipython", "ipython3"})
_SPAN = re.compile(r"`([^`\n]+)`")


def have_datasketch() -> bool:
    try:
        import datasketch  # noqa: F401
    except ImportError:
        return False
    return True


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    toks = _WORD.findall(text)
    if len(toks) < n:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def _lex(code: str) -> list[tuple[bool, str]]:
    """``(is_name, text)`` tokens of ``code``, line ends as ``"\n"``: ``tokenize`` where
    it can, else a regex. An f-string stays one verbatim token on every Python version."""
    out: list[tuple[bool, str]] = []
    try:
        depth = 0  # Python >= 3.12 splits f-strings into parts
        parts: list[str] = []
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            kind = tokenize.tok_name[tok.type]
            if kind == "FSTRING_START" or depth:
                depth += (kind == "FSTRING_START") - (kind == "FSTRING_END")
                parts.append(tok.string)
                if not depth:
                    out.append((False, "".join(parts)))
                    parts = []
            elif kind == "ERRORTOKEN" and not tok.string.isspace():
                raise SyntaxError(tok.string)  # 3.11 goes on after a stray quote; we don't
            elif kind == "NAME":
                out.append((True, tok.string))
            elif kind in ("NEWLINE", "NL"):
                out.append((False, "\n"))
            elif tok.string and not tok.string.isspace():
                out.append((False, tok.string))
        return out
    except (tokenize.TokenError, SyntaxError):
        return [(m.lastgroup == "n", m.group()) for m in _LEX.finditer(code)]


def _bound(names: str) -> list[str]:
    """The names an import binds, from what follows ``import``: ``a.b`` binds ``a``,
    ``x as y`` binds ``y``."""
    out = []
    for item in re.sub(r"#[^\n]*", "", names).strip("() \t\n").split(","):
        words = item.split()
        if words:
            name = words[-1] if len(words) >= 3 and words[-2] == "as" else words[0].split(".")[0]
            if _IDENT.match(name):
                out.append(name)
    return out


class _Renamer:
    """One mapping from names to ``v0``, ``v1``, ..., shared by every piece of one text."""

    def __init__(self, text: str) -> None:
        self.names: dict[str, str] = {}
        self.keep = set(_KEEP)
        for m in _IMPORT.finditer(text):
            self.keep.update(_bound(m.group(1)))
        self.defined = set(_DEF.findall(text))  # methods: renamed after a dot too

    def code(self, code: str) -> str:
        out = []
        prev = ""
        depth = 0  # brackets: a line end inside them does not end the statement
        start = True  # at the start of a statement
        in_import = False  # an import statement's words stay as written
        for is_name, tok in _lex(code):
            if tok in ("\n", ";") and not depth:
                start, in_import = True, False
            elif tok != "\n":
                in_import = in_import or (start and tok in ("import", "from"))
                start = False
                depth = max(0, depth + (tok in ("(", "[", "{")) - (tok in (")", "]", "}")))
            if (
                is_name
                and not in_import
                and (prev != "." or tok in self.defined)
                and tok not in self.keep
                and not _DUNDER.match(tok)
            ):
                v = self.names.setdefault(tok, f"v{len(self.names)}")
                tok = tok if prev in ("def", "class") else v  # the name, where defined
            out.append(tok)
            prev = tok
        return re.sub(r" ?\n ?", "\n", " ".join(out)).strip()


def normalize(text: str, markdown: bool = False) -> str:
    """``text`` with identifiers renamed in order of first appearance (see the module
    docstring). ``markdown=False``: all of ``text`` is code (a seed). ``markdown=True``:
    only fenced Python blocks and inline backtick spans are code, and prose comes back
    as it was. Only the words of the result matter: shingles ignore punctuation and
    layout, so code comes back as its tokens separated by spaces."""
    ren = _Renamer(text)
    if not markdown:
        return ren.code(text)
    out: list[str] = []

    def prose(chunk: str) -> None:
        last = 0
        for m in _SPAN.finditer(chunk):
            out.append(chunk[last : m.start()] + "`" + ren.code(m.group(1)) + "`")
            last = m.end()
        out.append(chunk[last:])

    pos = 0
    for m in _FENCE.finditer(text):
        prose(text[pos : m.start()])
        info = m.group(2).split()
        if (info[0].lower() if info else "") in _PY_FENCE:
            out.append(f"{m.group(1)}{m.group(2)}\n{ren.code(m.group(3))}\n{m.group(1)}")
        else:
            out.append(m.group(0))
        pos = m.end()
    prose(text[pos:])
    return "".join(out)


def signature(text: str, use_minhash: bool, markdown: bool = False) -> tuple[Any, Any]:
    """Of ``text`` as written and of ``normalize(text, markdown)`` (code, a seed, by
    default; markdown for dataset text): for each, a MinHash's hash values (numpy array)
    or, in fallback mode, the shingle set."""
    normalised = shingles(normalize(text, markdown))
    return _one(shingles(text), use_minhash), _one(normalised, use_minhash)


def _one(sh: set[str], use_minhash: bool) -> Any:
    if not use_minhash:
        return frozenset(sh)
    m = _minhash()
    m.update_batch([s.encode("utf-8") for s in sh])
    return m.hashvalues


_template: Any = None


def _minhash(hashvalues: Any = None) -> Any:
    """A MinHash with our fixed permutations (made once per process: they cost more
    than the hashing of a short function)."""
    global _template
    from datasketch import MinHash

    if _template is None:
        _template = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    return MinHash(
        seed=1, hashvalues=hashvalues if hashvalues is not None else _template.hashvalues,
        permutations=_template.permutations, scheme=SCHEME,
    )


class NearDupIndex:
    def __init__(self, threshold: float = 0.5, use_minhash: bool | None = None) -> None:
        global _warned
        if use_minhash is None:
            use_minhash = have_datasketch()
            if not use_minhash and not _warned:
                _warned = True
                log.warning(
                    "datasketch is not installed: near-duplicates are found by exact "
                    "comparison, which slows down past a few thousand seeds; install it "
                    "with: pip install 'selfcodealign[seeds]'"
                )
        self.use_minhash = use_minhash
        self.threshold = threshold
        self._n = 0
        if use_minhash:
            from datasketch import MinHashLSH

            # One index for the text as written, one for it normalised; the kept hash
            # values, to confirm LSH's candidates (512 bytes a side and item).
            self._lsh = [MinHashLSH(threshold=threshold, num_perm=NUM_PERM) for _ in range(2)]
            self._kept: dict[Any, tuple[Any, Any]] = {}
        else:
            self._sets: list[tuple[frozenset[str], frozenset[str]]] = []

    def __len__(self) -> int:
        return self._n

    def signature(self, text: str, markdown: bool = False) -> Any:
        """Of a seed's code, or with ``markdown=True`` of dataset text."""
        return signature(text, self.use_minhash, markdown)

    def is_dup(self, sig: tuple[Any, Any]) -> bool:
        """Similar to a kept item as written, or with identifiers normalised."""
        if self.use_minhash:
            # LSH's candidates are confirmed by MinHash's estimate of the Jaccard, as
            # datasketch advises: banding alone also returns pairs far below the threshold
            # (short functions that share boilerplate), more so with names normalised.
            return any(
                (self._kept[k][side] == s).mean() >= self.threshold
                for side, (lsh, s) in enumerate(zip(self._lsh, sig))
                for k in lsh.query(_minhash(s))
            )
        for other in self._sets:
            for a, b in zip(sig, other):
                inter = len(a & b)
                if inter and inter >= self.threshold * (len(a) + len(b) - inter):
                    return True
        return False

    def add(self, sig: tuple[Any, Any]) -> None:
        if self.use_minhash:
            for lsh, s in zip(self._lsh, sig):
                lsh.insert(self._n, _minhash(s), check_duplication=False)
            self._kept[self._n] = sig
        else:
            self._sets.append(sig)
        self._n += 1

    def add_if_new(self, sig: Any) -> bool:
        if self.is_dup(sig):
            return False
        self.add(sig)
        return True
