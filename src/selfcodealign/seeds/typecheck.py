"""Static type check of seeds with Pyright (the ``basedpyright`` build), in batches.

One Pyright process checks a whole batch of seeds, each written to its own file, so
Node.js starts once per batch, not once per seed. A seed with any error (undefined
name, wrong call, missing import, bad attribute, ...) is dropped; warnings do not count.
``basedpyright`` bundles Pyright and Node.js, so nothing is fetched at run time.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from selfcodealign.errors import UserError

log = logging.getLogger("selfcodealign.seeds")
_warned = False

# "standard" is Pyright's own default; basedpyright's default ("recommended") flags
# style issues that say nothing about whether a seed is correct.
CONFIG = {
    "typeCheckingMode": "standard",
    "reportMissingModuleSource": "none",
    "reportPossiblyUnbound": "warning",
    "enableTypeIgnoreComments": False,
}


def available() -> bool:
    try:
        import basedpyright  # noqa: F401
    except ImportError:
        return False
    return True


def warn_missing_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "basedpyright is not installed: seeds are NOT type-checked (undefined names "
            "are still caught); install it with: pip install 'selfcodealign[seeds]'"
        )


def _bare_python(root: Path) -> str:
    """An interpreter wrapper that hides site-packages: Pyright asks it for its search
    paths, sees only the standard library, and treats other imports as unknown."""
    path = root / "python-bare"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    path.chmod(0o755)
    return str(path)


def check(
    codes: list[str], *, third_party: bool = False, threads: int = 1, timeout: float = 600.0
) -> list[list[str]]:
    """Pyright errors for each code string (an empty list means it passed).

    ``third_party``: resolve imports from this interpreter's site-packages, checking how
    seeds use those libraries too; much slower (Pyright analyses numpy, torch, ...).
    Otherwise such imports are unknown (not an error) and only the standard library is
    checked, which still catches undefined names and misuse of builtins and the stdlib.
    """
    if not codes:
        return []
    with tempfile.TemporaryDirectory(prefix="sca-pyright-") as tmp:
        root = Path(tmp)
        cfg = dict(CONFIG, pythonVersion=f"{sys.version_info[0]}.{sys.version_info[1]}")
        if not third_party:
            cfg["reportMissingImports"] = "none"
            cfg["reportAttributeAccessIssue"] = "error"
        (root / "pyrightconfig.json").write_text(json.dumps(cfg))
        python = sys.executable if third_party or os.name == "nt" else _bare_python(root)
        names = []
        for i, code in enumerate(codes):
            name = f"seed_{i:06d}.py"  # never a real module name, so seeds don't import each other
            (root / name).write_text(code, encoding="utf-8")
            names.append(name)
        cmd = [
            sys.executable, "-m", "basedpyright", "--outputjson",
            "--pythonpath", python, "-p", str(root),
        ]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        env = dict(os.environ, NODE_OPTIONS="--max-old-space-size=4096")
        try:
            proc = subprocess.run(
                cmd, cwd=root, capture_output=True, text=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise UserError(f"pyright took longer than {timeout:.0f}s on {len(codes)} seeds") from None
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise UserError(f"pyright failed (exit {proc.returncode}): {' | '.join(tail)}") from None
    errors: dict[str, list[str]] = {n: [] for n in names}
    for d in report.get("generalDiagnostics", []):
        if d.get("severity") != "error":
            continue
        name = Path(d.get("file", "")).name
        if name in errors:
            rule = d.get("rule") or "error"
            errors[name].append(f"{rule}: {d.get('message', '').splitlines()[0]}")
    return [errors[n] for n in names]
