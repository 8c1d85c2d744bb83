"""Seeds: docstring functions mined from a corpus and filtered (``selfcodealign.seeds``),
once per run directory; a shard (``shard: K/N``) takes its own part of them."""

from __future__ import annotations

import json
from typing import Any

from selfcodealign.errors import UserError
from selfcodealign.records import Seed
from selfcodealign.stages.base import StageEnv, WholeStage


class SeedsStage(WholeStage):
    name = "seeds"
    input_type = type(None)
    output_type = Seed

    def __init__(self, cfg, env: StageEnv | None = None) -> None:
        self.run_cfg, self.env = cfg, env
        self.key = self.settings(cfg)

    @classmethod
    def from_config(cls, cfg, env=None) -> SeedsStage:
        return cls(cfg, env)

    @classmethod
    def settings(cls, cfg) -> dict[str, Any]:
        return cfg.seeds.model_dump(mode="json")

    def inputs(self, upstream: dict[str, Any]) -> None:
        return None

    def write(self, inputs, files, quiet: bool) -> None:
        cfg = self.run_cfg.seeds
        # One state file: the mining progress (``mining``) is kept beside these fields.
        files.update_state(config=self.key, complete=False)
        funnel = mine_with_progress(cfg, files.out, quiet,
                                    backend=self.env.executor.backend if cfg.judge and self.env else None)
        files.update_state(config=self.key, complete=True, funnel=funnel)

    @classmethod
    def outputs(cls, files, cfg) -> list[Seed]:
        from selfcodealign.config import parse_shard
        from selfcodealign.ids import shard_of
        from selfcodealign.jsonl import read_records

        seeds = list(read_records(files.out, Seed))
        mined = len(seeds)
        if cfg.shard:
            k, n = parse_shard(cfg.shard)
            seeds = [s for s in seeds if shard_of(s.id, n) == k]
        if not seeds:
            what = f"shard {cfg.shard} has none of the {mined} seeds" if mined else "gave no seeds"
            raise UserError(f"seed source {cfg.seeds.source!r} {what} (funnel: "
                            f"{json.dumps((files.state() or {}).get('funnel', {}))})")
        return seeds

    @classmethod
    def summarize(cls, files, outputs) -> dict[str, Any]:
        with open(files.out, "rb") as f:
            mined = sum(1 for line in f if line.strip())
        return {"out": len(outputs), "mined": mined, "funnel": (files.state() or {}).get("funnel", {})}


def mine_with_progress(cfg, out, quiet: bool, backend=None) -> dict[str, Any]:
    """``seeds.mine`` under the stages' progress bar (the seeds stage and command); a
    failure shows only its own one-line error, no progress line before it."""
    from selfcodealign.progress import StageProgress
    from selfcodealign.seeds import mine

    bar = StageProgress("seeds", total=cfg.max_seeds, quiet=quiet)
    try:
        funnel = mine(cfg, out, progress=bar.update_total, backend=backend)
    except BaseException:
        bar.close(summary=False)
        raise
    bar.close()
    return funnel
