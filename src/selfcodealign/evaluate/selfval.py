"""Held-out generated tasks as a benchmark (``eval --benchmarks selfval:FILE``).

``FILE`` is the ``DATASET.heldout.jsonl`` that ``select`` writes with
``select.holdout_seeds``: tasks whose instructions (and near-copies) no training set
holds, each with the tests of a passing response that verification found strong. The
model gets the instruction as the user turn, the format it is trained on; the code of
its answer runs with the task's tests in the sandbox. Recipes are chosen on this score,
never on HumanEval or MBPP.
"""

from __future__ import annotations

from pathlib import Path

from selfcodealign.errors import UserError


def load_tasks(path: Path, tasks: list[str] | None = None) -> dict[str, dict]:
    """Tasks by id (``instruction``, ``tests``), in the file's order; ``tasks`` keeps a subset."""
    from pydantic import ValidationError

    from selfcodealign.jsonl import read_lines
    from selfcodealign.records import HeldOutTask

    if not path.is_file():
        raise UserError(f"selfval: no file {path} (select.holdout_seeds writes DATASET.heldout.jsonl)")
    out: dict[str, dict] = {}
    for lineno, obj in read_lines(path):
        if not obj:
            continue
        try:
            t = HeldOutTask.model_validate(obj)
        except ValidationError as e:
            raise UserError(f"{path}:{lineno}: not a held-out task ({e.errors()[0]['loc']}: "
                            f"{e.errors()[0]['msg']})") from None
        out[t.id] = {"task_id": t.id, "instruction": t.instruction, "tests": t.tests}
    if not out:
        raise UserError(f"selfval: {path} holds no task")
    if tasks:
        unknown = [t for t in tasks if t not in out]
        if unknown:
            raise UserError(f"unknown selfval task(s): {', '.join(unknown[:5])}")
        out = {k: v for k, v in out.items() if k in set(tasks)}
    return out


def code_of(text: str) -> str:
    """The code of an answer: its solution blocks when it has tests after them, else its
    Python blocks, else the text itself."""
    from selfcodealign.parsing import ParseError, fenced_blocks, parse_response

    parsed = parse_response(text)
    if not isinstance(parsed, ParseError):
        return parsed.code
    blocks = [b.code for b in fenced_blocks(text) if b.lang in ("python", "python3", "py", "") and b.code.strip()]
    return "\n".join(blocks) if blocks else text


def check(problems: dict, pairs: list[tuple[str, str]], *, workers: int | None, memory_gb: float,
          timeout: float = 10.0) -> list:
    """Each (task, code) with the task's tests, in the sandbox: ``SampleResult``s whose
    base and plus are both the verdict (pass or fail)."""
    from selfcodealign.evaluate.score import SampleResult
    from selfcodealign.sandbox import Program, run_batch

    progs = [Program(id=str(i), code=code, tests=problems[task]["tests"], timeout=timeout,
                     memory_mb=int(memory_gb * 1024)) for i, (task, code) in enumerate(pairs)]
    verdicts = run_batch(progs, workers=workers)
    out = []
    for (task, _), v in zip(pairs, verdicts):
        status = "pass" if v.status == "passed" else "fail"
        out.append(SampleResult(task, status, status))
    return out
