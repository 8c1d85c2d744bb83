"""The repository's scripts (benchmarks/, tools/) as modules, for tests of their logic."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str):
    """``benchmarks/x.py`` (relative to the repository root), executed as module ``x``."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
