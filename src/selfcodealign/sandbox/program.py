"""What the sandbox runs: a program, its tests and its limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Program:
    id: str
    code: str
    tests: str = ""
    timeout: float = 10.0
    memory_mb: int = 1024
