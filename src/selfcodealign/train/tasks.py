"""Online training's tasks and rewards: a run's kept instructions, scored in the sandbox
against the tests verification trusted.

A task is an instruction for which selection kept a response (a line of the run's
``dataset.jsonl``); its reward tests are that kept response's tests, never the tests a
rollout writes for itself. Optionally only tasks the model sometimes fails are kept: a
band of the pass rates each kept example records (``quality.pass_rate``: its
instruction's passing and executed responses, counted by verify).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selfcodealign.errors import UserError

# How a rollout scores. Only a pass earns a reward: a broken program, one that runs out
# of time and an answer without code are all failures to solve the task. Recorded in
# train_config.json.
REWARD_PASSED = 1.0
REWARD_FAILED = 0.0  # an assertion failed, an exception, a crash or out of memory
REWARD_SYNTAX_ERROR = 0.0  # the code does not parse (not run)
REWARD_TIMEOUT = 0.0
REWARD_NO_CODE = 0.0  # no Python block in the answer (not run)
REWARD_SANDBOX_ERROR = 0.0  # the sandbox itself failed: counted apart, it is not the model's doing
REWARDS = {"passed": REWARD_PASSED, "failed": REWARD_FAILED, "syntax_error": REWARD_SYNTAX_ERROR,
           "timeout": REWARD_TIMEOUT, "no_code": REWARD_NO_CODE, "sandbox_error": REWARD_SANDBOX_ERROR}
# Outcomes that say nothing of the answer: masked in the update (advantage 0, left out of
# their group's mean and std).
MASKED = frozenset({"sandbox_error"})


@dataclass(frozen=True)
class Task:
    id: str  # the kept example's id
    prompt: tuple[dict, ...]  # system (if any) and user turns, as training formats them
    tests: str  # the kept response's tests
    pass_rate: tuple[int, int] | None = None  # (passing, executed) responses in the run, as recorded


@dataclass
class Tasks:
    tasks: list[Task]
    sha256: str  # of dataset.jsonl: the tasks, their tests and pass rates (the band is a setting)
    timeout: float  # the run's execute settings: how long and how much memory a program gets
    memory_mb: int
    dropped: Counter = field(default_factory=Counter)
    lines: int = 0  # examples in dataset.jsonl, before any were dropped


def _execute_config(run_dir: Path):
    from selfcodealign.config import ExecuteConfig
    from selfcodealign.merge import run_config

    try:
        return ExecuteConfig.model_validate(run_config(run_dir).get("execute") or {})
    except ValueError:
        return ExecuteConfig()


def load_tasks(run_dir: str | Path, band: tuple[float, float] | None) -> Tasks:
    """The run's kept instructions as tasks; with ``band`` (lo, hi), only those whose
    recorded pass rate lies in [lo, hi]."""
    from selfcodealign.jsonl import read_records
    from selfcodealign.records import Example
    from selfcodealign.models.embedded import sha256_file

    run_dir = Path(run_dir)
    dataset = run_dir / "dataset.jsonl"
    if not dataset.is_file():
        raise UserError(f"{run_dir}: no dataset.jsonl (give the directory of a run that reached select)")
    if band is not None and band[0] > band[1]:
        raise UserError(f"the pass-rate band {band[0]},{band[1]} is empty (its low end is above its high end)")
    tasks, dropped, lines = [], Counter(), 0
    for ex in read_records(dataset, Example):
        lines += 1
        rate = ex.quality.pass_rate if ex.quality is not None else None
        if band is not None:
            if rate is None:
                dropped["no_pass_rate"] += 1
                continue
            if not band[0] <= rate[0] / rate[1] <= band[1]:
                dropped["pass_rate_outside_band"] += 1
                continue
        if not ex.tests.strip():
            dropped["no_tests"] += 1
            continue
        prompt = tuple(m.model_dump() for m in ex.messages[:-1])
        tasks.append(Task(id=ex.id, prompt=prompt, tests=ex.tests, pass_rate=rate))
    if not tasks:
        if lines and dropped["no_pass_rate"] == lines:
            raise UserError(f"{run_dir}: dataset.jsonl records no pass rates (select made it without verify's "
                            "results): run the pipeline on it again, or give --grpo-pass-rate 0,1 to keep every "
                            "kept task")
        why = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "dataset.jsonl is empty"
        raise UserError(f"{run_dir}: no tasks to train on ({why})")
    execute_cfg = _execute_config(run_dir)
    return Tasks(tasks, sha256_file(dataset), execute_cfg.timeout, execute_cfg.memory_mb, dropped, lines)


def runnable_code(text: str, finish_reason: str) -> tuple[str | None, str | None]:
    """(the answer's solution code, None), or (None, its outcome) when it cannot run:
    no Python block, or code that does not parse."""
    from selfcodealign.checks import parse_ok
    from selfcodealign.parsing import solution_code

    code = solution_code(text, finish_reason)
    if code is None:
        return None, "no_code"
    if not parse_ok(code):
        return None, "syntax_error"
    return code, None


def outcome_of(status: str) -> str:
    """A sandbox verdict's status as an outcome (a key of REWARDS)."""
    return {"passed": "passed", "timeout": "timeout", "error": "sandbox_error"}.get(status, "failed")


def score(answers: list[tuple[str, str, Task]], timeout: float, memory_mb: int,
          workers: int | None = None) -> list[str]:
    """Outcomes of (text, finish reason, task) answers: each runnable one's code with the
    task's tests, as one batch through the sandbox's front door."""
    from selfcodealign.checks import build_program
    from selfcodealign.sandbox import Program, run_batch

    outcomes: list[str | None] = []
    programs: list[Program] = []
    slots: list[int] = []
    for text, reason, task in answers:
        code, early = runnable_code(text, reason)
        outcomes.append(early)
        if code is not None:
            c, t = build_program(code, task.tests)
            slots.append(len(outcomes) - 1)
            programs.append(Program(id=f"rollout-{len(programs)}", code=c, tests=t, timeout=timeout,
                                    memory_mb=memory_mb))
    for i, v in zip(slots, run_batch(programs, workers=workers) if programs else []):
        outcomes[i] = outcome_of(v.status)
    return outcomes  # type: ignore[return-value]
