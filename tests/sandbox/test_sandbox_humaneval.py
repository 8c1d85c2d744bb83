"""HumanEval+ canonical solutions with their base tests all pass; broken variants fail."""

from __future__ import annotations

from selfcodealign.sandbox import Program, run_batch


def _program(task: dict, body: str, suffix: str = "") -> Program:
    return Program(
        id=task["task_id"] + suffix,
        code=task["prompt"] + body,
        tests=task["test"] + f"\ncheck({task['entry_point']})\n",
        timeout=10.0,
    )


def test_canonical_solutions_pass_and_broken_variants_fail(humaneval_plus):
    tasks = humaneval_plus
    assert len(tasks) == 164
    canonical = [_program(t, t["canonical_solution"]) for t in tasks]
    # Three ways to be wrong: no answer, an answer that gives up early with status 0, and
    # a neighbour's (valid, but wrong) solution.
    empty = [_program(t, "    return None\n", "#none") for t in tasks]
    early = [_program(t, "    import sys\n    sys.exit(0)\n", "#exit") for t in tasks[:40]]
    swapped = [
        _program(t, "    pass\n" if t is tasks[0] else "    raise NotImplementedError\n", "#raise")
        for t in tasks[:40]
    ]
    verdicts = run_batch(canonical + empty + early + swapped)
    by_id = {v.id: v for v in verdicts}
    not_passed = {
        t["task_id"]: by_id[t["task_id"]] for t in tasks if by_id[t["task_id"]].status != "passed"
    }
    assert not not_passed, {k: (v.status, v.detail, v.stderr[-300:]) for k, v in not_passed.items()}
    wrongly_passed = [v.id for v in verdicts[len(canonical) :] if v.status == "passed"]
    assert wrongly_passed == []
    assert all(v.status == "failed" for v in verdicts[len(canonical) :])
