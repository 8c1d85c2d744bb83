"""A stage's files and its resume ledger.

For stage output ``X.jsonl`` we keep ``X.drops.jsonl`` (dropped inputs with reason and
raw text) and ``X.done.jsonl`` (one line per finished input, written *after* its outputs
and drops, with its token counts). An input is done iff its ledger line exists; outputs
of an input killed half-way are removed on resume, so nothing is done twice or lost.
``X.state.json`` holds the stage's config key, completion flag and wall time.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from selfcodealign.jsonl import Appender, read_lines, repair_tail, write_atomic
from selfcodealign.records import Drop, Record


class StageFiles:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        stem = self.out.name.removesuffix(".jsonl")
        self.drops = self.out.with_name(stem + ".drops.jsonl")
        self.done = self.out.with_name(stem + ".done.jsonl")
        self.state_path = self.out.with_name(stem + ".state.json")

    # --- state ------------------------------------------------------------------------
    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # torn by a kill: treated as "not started"

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def update_state(self, **fields: Any) -> None:
        """Sets these fields of the state and keeps the others (the seeds stage keeps its
        mining progress, ``mining``, beside its own fields)."""
        self.save_state({**(self.state() or {}), **fields})

    def remove(self) -> None:
        for p in (self.out, self.drops, self.done, self.state_path):
            if p.exists():
                p.unlink()

    # --- ledger -----------------------------------------------------------------------
    def ledger(self) -> dict[str, dict]:
        if not self.done.exists():
            return {}
        return {obj["id"]: obj for _, obj in read_lines(self.done) if obj}

    def recover(self, parent_of) -> dict[str, dict]:
        """Drop outputs/drops of inputs that have no ledger line; return the ledger.

        ``parent_of(obj)`` gives the input id of an output line."""
        for p in (self.out, self.drops, self.done):
            repair_tail(p)
        done = self.ledger()
        for path, key in ((self.out, parent_of), (self.drops, lambda o: o["input_id"])):
            if not path.exists():
                continue
            objs = [o for _, o in read_lines(path) if o]
            seen: set[str] = set()
            keep = []
            for o in objs:
                oid = o.get("id") or json.dumps(o, sort_keys=True)
                if key(o) in done and oid not in seen:
                    seen.add(oid)
                    keep.append(o)
            if len(keep) != len(objs):
                write_atomic(path, keep)
        return done


class LedgerWriter:
    """Commits one input at a time: outputs, then drops, then the ledger line."""

    def __init__(self, files: StageFiles) -> None:
        self.files = files
        self._out = Appender(files.out)
        self._drops = Appender(files.drops)
        self._done = Appender(files.done)

    def commit(self, input_id: str, results: list[Record | Drop], **counts: int) -> dict:
        outs = [r for r in results if not isinstance(r, Drop)]
        drops = [r for r in results if isinstance(r, Drop)]
        self._out.write_many(outs)
        self._drops.write_many(drops)
        entry = {"id": input_id, "out": len(outs),
                 "drops": dict(Counter(d.reason for d in drops)), **counts}
        self._done.write(entry)
        return entry

    def close(self) -> None:
        for f in (self._out, self._drops, self._done):
            f.close()


def summarize_ledger(ledger: dict[str, dict]) -> dict[str, Any]:
    drops: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for entry in ledger.values():
        drops.update(entry.get("drops", {}))
        for k, v in entry.items():
            if k not in ("id", "drops") and isinstance(v, int):
                totals[k] += v
    return {"in": len(ledger), "out": totals.pop("out", 0), "drops": dict(drops), **totals}


def stage_summary(files: StageFiles) -> dict[str, Any]:
    """A stage's counts from its ledger, with its wall and busy time from its state."""
    s = summarize_ledger(files.ledger())
    st = files.state() or {}
    s["wall_s"] = round(st.get("wall_s", 0.0), 2)
    s["busy_s"] = round(st.get("busy_s", st.get("wall_s", 0.0)), 2)
    if s.get("completion_tokens") and st.get("wall_s"):
        s["tokens_per_s"] = round(s["completion_tokens"] / st["wall_s"], 2)
    return s
