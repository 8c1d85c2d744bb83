"""Server flavors: which heavy libraries each sandbox server preloads, and which flavor
a program goes to. A fork costs more the more the server holds, so heavy libraries
(numpy, scipy, ...) are preloaded only in servers started for them; each program goes to
the cheapest flavor that holds every heavy library its source names."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterable

from selfcodealign.sandbox.program import Program
from selfcodealign.sandbox.warmup import HEAVY

# The servers a lane can start, cheapest first (groups of warmup.HEAVY). Of the real
# sample's programs 59% name none, 24% numpy alone, 4.5% sympy alone and 4.5% scipy
# (with or without numpy); pandas, sklearn and matplotlib each ~1.5%, mostly alone or
# with numpy. A run costs ~2 ms of CPU on the plain server, ~3 on numpy's, ~4 on
# sympy's, ~5-6 on scipy's, pandas' or matplotlib's, ~13 on sklearn's and ~17 on the one
# with all but torch (docs/sandbox.md): all far below what importing them costs a run.
# torch (0.1%) would make that last one dearer still: it has its own (~9 ms).
FLAVORS: tuple[tuple[str, ...], ...] = (
    (),
    ("numpy",),
    ("requests",),
    ("sympy",),
    ("numpy", "scipy"),
    ("numpy", "matplotlib"),
    ("numpy", "pandas"),
    ("numpy", "scipy", "sklearn"),
    ("numpy", "torch"),
    tuple(g for g in HEAVY if g != "torch"),
)
_NAMES = re.compile(r"\b(" + "|".join(HEAVY) + r")\b")


@functools.lru_cache(maxsize=None)
def installed_heavy() -> tuple[str, ...]:
    """The groups of warmup.HEAVY importable here (the servers run this interpreter)."""
    return tuple(g for g in HEAVY if importlib.util.find_spec(g) is not None)


def flavors() -> list[tuple[str, ...]]:
    """FLAVORS less what is not installed, without repeats."""
    have, out = set(installed_heavy()), []
    for f in FLAVORS:
        f = tuple(g for g in f if g in have)
        if f not in out:
            out.append(f)
    return out


def heavy_names(program: Program) -> set[str]:
    """The heavy libraries a program's source names. Any mention counts (a comment, a
    string, __import__): a server holding one too many costs a few ms, one too few the
    whole import."""
    return set(_NAMES.findall(program.code)) | set(_NAMES.findall(program.tests))


def pick_flavor(
    program: Program, flavors: list[tuple[str, ...]], broken: Iterable[int] = ()
) -> int:
    """The index of the cheapest flavor that holds all the heavy libraries the program
    names, else of the one that holds most of them (the run imports the rest itself)."""
    needs = heavy_names(program)
    if not needs:
        return 0
    usable = [k for k in range(len(flavors)) if k not in broken]
    return max(usable, key=lambda k: (len(needs.intersection(flavors[k])), -k))
