"""Run every response with its own tests in the sandbox."""

from __future__ import annotations

from typing import Any

from selfcodealign.checks import build_program, meaningful_asserts
from selfcodealign.config import ExecuteConfig
from selfcodealign.ids import make_id
from selfcodealign.records import Drop, Executed, Record, Response, Verdict
from selfcodealign.stages.base import ExecutionStage


class ExecuteStage(ExecutionStage):
    name = "execute"
    input_type = Response
    output_type = Executed
    reads = ("responses",)
    follows = "responses"

    def __init__(self, cfg: ExecuteConfig):
        self.cfg = cfg

    @classmethod
    def from_config(cls, cfg, env=None) -> ExecuteStage:
        return cls(cfg.execute)

    @classmethod
    def settings(cls, cfg) -> dict[str, Any]:
        return cls(cfg.execute).config_key()

    def config_key(self) -> dict[str, Any]:
        # Worker count and overlap change speed, not results.
        return self.cfg.model_dump(exclude={"workers", "overlap"})

    def programs(self, rec: Response) -> list:
        from selfcodealign.sandbox import Program

        code, tests = build_program(rec.code, rec.tests)
        return [Program(id=rec.id, code=code, tests=tests, timeout=self.cfg.timeout,
                        memory_mb=self.cfg.memory_mb)]

    def parse(self, rec: Response, verdicts: list[Verdict]) -> list[Record | Drop]:
        (verdict,) = verdicts
        return [Executed(
            id=make_id(rec.id, self.name), parent_id=rec.id, response=rec, verdict=verdict,
            meaningful_tests=meaningful_asserts(rec.code, rec.tests) > 0,
        )]

    def counts_as_pass(self, rec: Executed) -> bool:
        return rec.verdict.status == "passed" and (
            rec.meaningful_tests or not self.cfg.require_meaningful_tests
        )
