"""Runs evalplus's own checker on model programs; started by ``score.py`` inside the
sandbox's namespaces (``sandbox.wrap_command``: no network, read-only file system
where bubblewrap is available).

Input: a pickle file (argv[1]) with the dataset name, problems, ground truth, samples and
worker count. Output: one JSON list on stdout, one entry per sample, in input order.

Fix for evalplus 0.3.1's HumanEval/32 (``find_zero``): its special oracle checks
``|poly(xs, x)| <= atol`` and then ``continue``s past the line that records the test as
passed, so every solution fails. We check the same condition through a wrapper entry
point that returns whether the root is good, compared with an expected ``True``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor

FIND_ZERO_CHECK = """

def _sca_find_zero_checked(xs):
    import math as _m
    x = find_zero(xs)
    return abs(sum(c * _m.pow(x, i) for i, c in enumerate(xs))) <= {atol!r}
"""


def fix_find_zero(problem: dict, solution: str, expected: dict) -> tuple[dict, str, dict]:
    atol = problem["atol"] or 1e-6
    problem = {**problem, "entry_point": "_sca_find_zero_checked", "atol": 0}
    expected = {
        **expected,
        "base": [True] * len(problem["base_input"]),
        "plus": [True] * len(problem["plus_input"]),
    }
    return problem, solution + FIND_ZERO_CHECK.format(atol=atol), expected


def _check(args):
    from evalplus.evaluate import check_correctness

    dataset, cid, problem, solution, expected = args
    if dataset == "humaneval" and problem["entry_point"] == "find_zero":
        problem, solution, expected = fix_find_zero(problem, solution, expected)
    r = check_correctness(dataset, cid, problem, solution, expected, base_only=False, fast_check=True)
    return r["base"][0], r["plus"][0]


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        job = pickle.load(f)
    dataset, problems, expected = job["dataset"], job["problems"], job["expected"]
    args = [
        (dataset, i, problems[tid], sol, expected[tid])
        for i, (tid, sol) in enumerate(job["samples"])
    ]
    os.environ["EVALPLUS_MAX_MEMORY_BYTES"] = str(job["memory_bytes"])
    with ProcessPoolExecutor(max_workers=job["workers"]) as ex:
        results = list(ex.map(_check, args, chunksize=1))
    json.dump([{"base": b, "plus": p} for b, p in results], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
