"""One dataset from several runs: the parts of a sharded run, or runs made apart.

Examples keep their ids (ids derive from content and lineage, so the same example made
twice has the same id and is kept once). Decontamination and near-duplicate removal run
again over the union, in the order the runs are given: an example that duplicates one of
an earlier run is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_records, write_atomic
from selfcodealign.ledger import StageFiles
from selfcodealign.records import Drop, Example
from selfcodealign.stages import BY_NAME

DATASET = BY_NAME["select"].file  # the run directory's dataset, as the registry names it


def run_summary(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def run_config(run: Path) -> dict[str, Any]:
    """A run directory's resolved config (config.yaml) as a dict; {} where it has none or
    it cannot be read."""
    import yaml

    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _threshold(runs: list[Path]) -> float:
    """The first run's select.dedup_threshold (the default when it has no config)."""
    from selfcodealign.config import SelectConfig

    try:
        return float(run_config(runs[0])["select"]["dedup_threshold"])
    except (KeyError, TypeError, ValueError):
        return SelectConfig().dedup_threshold


def merge_runs(runs: list[Path], out: Path, threshold: float | None = None) -> dict[str, Any]:
    from selfcodealign.cleaning import sanitize

    if not runs:
        raise UserError("give at least one run directory")
    resolved = [r.resolve() for r in runs]
    if len(set(resolved)) != len(resolved):
        raise UserError("a run directory is given twice")
    if out.resolve() in resolved:
        raise UserError("--out must not be one of the runs")
    threshold = _threshold(runs) if threshold is None else threshold
    examples: list[Example] = []
    owner: dict[str, int] = {}
    parts: list[dict[str, Any]] = []
    for k, run in enumerate(runs):
        data = run / DATASET
        if not data.is_file():
            raise UserError(f"{run} has no {DATASET}: not a finished run directory")
        summary = run_summary(run)
        part = {"run_dir": str(run), "shard": summary.get("shard"), "funnel": summary.get("funnel"),
                "examples": 0, "duplicate_id": 0}
        for e in read_records(data, Example):
            part["examples"] += 1
            if e.id in owner:
                part["duplicate_id"] += 1
                continue
            owner[e.id] = k
            examples.append(e)
        parts.append(part)
    kept, dropped = sanitize([(e.id, e.instruction + "\n" + e.response) for e in examples],
                             threshold=threshold)
    drops = [Drop(input_id=e.id, stage="merge", reason="sanitized", detail=str(runs[owner[e.id]]))
             for e in examples if e.id not in kept]
    for k, part in enumerate(parts):
        part["sanitized"] = sum(1 for e in examples if owner[e.id] == k and e.id not in kept)
        part["kept"] = sum(1 for e in examples if owner[e.id] == k and e.id in kept)
    merged = [e for e in examples if e.id in kept]
    out.mkdir(parents=True, exist_ok=True)
    files = StageFiles(out / DATASET)
    write_atomic(files.out, merged)
    write_atomic(files.drops, drops)
    summary = {"parts": parts, "in": len(examples) + sum(p["duplicate_id"] for p in parts),
               "out": len(merged), "duplicate_id": sum(p["duplicate_id"] for p in parts),
               "sanitize": dropped, "dedup_threshold": threshold}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
