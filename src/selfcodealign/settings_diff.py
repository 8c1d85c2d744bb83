"""Whether settings changed: the one way every resumable output (stages, seeds, eval
samples) compares the settings it was made with to the settings of a rerun. Plain dicts
in, so that config and the stages below it can both use it; imports nothing of ours."""

from __future__ import annotations

import json
from typing import Any


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else k))
    return out


def changed_keys(old: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """The settings that differ between a saved config (``old``) and ``new``: the one way
    every resumable output (stages, seeds, eval samples) tells that its settings changed.

    A setting that did not exist when ``old`` was saved counts as unchanged while it keeps
    its default (``defaults``: the same key for a default config): new settings default to
    what the project did before them, so outputs of an older version still resume."""
    a, b = flatten(json.loads(json.dumps(old))), flatten(json.loads(json.dumps(new)))
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if defaults is not None:
        default = flatten(json.loads(json.dumps(defaults)))
        changed = [k for k in changed if k in a or k not in default or b.get(k) != default[k]]
    return changed
