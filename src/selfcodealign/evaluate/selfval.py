"""Held-out generated tasks as a benchmark (``eval --benchmarks selfval:FILE``).

``FILE`` is the ``DATASET.heldout.jsonl`` that ``select`` writes with
``select.holdout_seeds``: tasks whose instructions (and near-copies) no training set
holds, each with the tests of a passing response that verification found strong. The
model gets the instruction as the user turn, the format it is trained on; the code of
its answer runs with the task's tests in the sandbox. Recipes are chosen on this score,
never on HumanEval or MBPP. The tasks themselves load with the other benchmarks'
(``data.load_selfval``).
"""

from __future__ import annotations


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
