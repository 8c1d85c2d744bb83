"""Product code and benchmarks reach the sandbox only through its front door."""

from __future__ import annotations

import ast
from pathlib import Path

import selfcodealign.sandbox as sandbox

ROOT = Path(__file__).resolve().parents[2]


def _sandbox_imports(path: Path) -> list[str]:
    """What a file takes from selfcodealign.sandbox: submodules, or names of the package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("selfcodealign.sandbox")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("selfcodealign.sandbox"):
            if node.module == "selfcodealign.sandbox":
                out += [f"selfcodealign.sandbox:{a.name}" for a in node.names]
            else:
                out.append(node.module)
    return out


def test_nothing_outside_the_sandbox_imports_its_modules():
    files = [p for p in (ROOT / "src/selfcodealign").rglob("*.py") if "sandbox" not in p.relative_to(ROOT).parts[2:3]]
    files += list((ROOT / "benchmarks").rglob("*.py"))
    assert len(files) > 50
    reached = {}
    for path in files:
        for name in _sandbox_imports(path):
            if not name.startswith("selfcodealign.sandbox:") or name.split(":")[1] not in sandbox.__all__:
                reached.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert reached == {}


def test_every_public_name_exists():
    assert all(hasattr(sandbox, name) for name in sandbox.__all__)
