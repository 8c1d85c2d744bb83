"""Do our verdicts agree with EvalPlus's own on the same samples (HumanEval+ base tests)?

    python benchmarks/sandbox_evalplus_agreement.py --samples samples.jsonl
    python benchmarks/sandbox_evalplus_agreement.py --generate 164  # the embedded model
    python benchmarks/sandbox_evalplus_agreement.py --mutants 3     # no model at all

`--samples` is EvalPlus's sample format, one line per sample: {"task_id", "solution"}
(the whole program), covering every HumanEval+ task (EvalPlus requires it); e.g. what
`selfcodealign eval` or `evalplus.codegen` wrote for a model. `--generate N` has the
embedded model (Qwen2.5-Coder-0.5B, llama.cpp) complete the first N task prompts at
temperature 0.8 (to get both passing and failing code); the other tasks get their
canonical solution and are left out of the figures. `--mutants N` instead makes
N deterministic variants of each canonical solution (operators and constants changed),
which exercises the harness but is no substitute for model-written code.

EvalPlus (0.3.1, `evaluate(..., base_only=True)`) checks outputs on the base inputs
against the reference solution's; we run the task's own `check()` on the sample. Both
are "the base tests", built differently, so a handful of disagreements can be genuine
(e.g. float tolerance); each one is listed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "src/selfcodealign/data/HumanEvalPlus-v0.1.10.jsonl.gz"

MUTATIONS = [
    (r"<=", "<"),
    (r">=", ">"),
    (r"(?<![<>=!])<(?![<=])", "<="),
    (r" \+ 1", ""),
    (r" - 1", ""),
    (r"\bTrue\b", "False"),
    (r"\band\b", "or"),
    (r"==", "!="),
    (r"\[1:\]", "[2:]"),
    (r"\breturn (\w+)$", r"return \1 if False else None"),
]


def mutants(tasks: list[dict], per_task: int) -> list[dict]:
    out = []
    for t in tasks:
        body = t["canonical_solution"]
        made = 0
        for pat, rep in MUTATIONS:
            if made == per_task:
                break
            new, n = re.subn(pat, rep, body, count=1, flags=re.M)
            if n and new != body:
                out.append({"task_id": t["task_id"], "solution": t["prompt"] + new, "how": pat})
                made += 1
        out.append({"task_id": t["task_id"], "solution": t["prompt"] + body, "how": "canonical"})
    return out


def generate(tasks: list[dict], n: int) -> list[dict]:
    """Model-written samples: the embedded model continues each task's prompt."""
    from selfcodealign.backends.base import SamplingParams
    from selfcodealign.backends.llamacpp import LlamaCppBackend
    from selfcodealign.models import resolve_gguf

    path, name, sha = resolve_gguf(None)
    backend = LlamaCppBackend(path, model_name=name, model_sha256=sha, n_parallel=4)
    try:
        params = SamplingParams(
            temperature=0.8,
            top_p=0.95,
            max_tokens=384,
            stop=("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ", "\n```"),
            seed=1234,
        )
        outs = backend.generate([t["prompt"] for t in tasks[:n]], params)
    finally:
        backend.close()
    samples = [
        {"task_id": t["task_id"], "solution": t["prompt"] + o[0].text, "how": "model"}
        for t, o in zip(tasks[:n], outs, strict=True)
    ]
    samples += [
        {
            "task_id": t["task_id"],
            "solution": t["prompt"] + t["canonical_solution"],
            "how": "canonical",
        }
        for t in tasks[n:]
    ]
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", type=Path)
    src.add_argument("--mutants", type=int)
    src.add_argument("--generate", type=int, metavar="N")
    ap.add_argument("--save", type=Path, help="write the samples used here (JSONL)")
    args = ap.parse_args()

    # Set before evalplus is imported: it reads the dataset path at import time.
    os.environ["HUMANEVAL_OVERRIDE_PATH"] = str(args.data)
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        tasks = {t["task_id"]: t for t in map(json.loads, f)}
    if args.samples:
        samples = [
            json.loads(line) for line in args.samples.read_text().splitlines() if line.strip()
        ]
    elif args.generate:
        samples = generate(list(tasks.values()), args.generate)
    else:
        samples = mutants(list(tasks.values()), args.mutants)
    if args.save:
        args.save.write_text("".join(json.dumps(s) + "\n" for s in samples))

    from evalplus.evaluate import evaluate

    from selfcodealign.sandbox import Program, check, run_batch

    work = Path(tempfile.mkdtemp(prefix="agreement-"))
    try:
        path = work / "samples.jsonl"
        path.write_text(
            "".join(
                json.dumps({"task_id": s["task_id"], "solution": s["solution"]}) + "\n"
                for s in samples
            )
        )
        evaluate(dataset="humaneval", samples=str(path), base_only=True, i_just_wanna_run=True)
        results = json.loads((work / "samples_eval_results.json").read_text())["eval"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # evalplus groups results by task, in sample order within a task.
    theirs: list[bool] = []
    cursor: dict[str, int] = {}
    for s in samples:
        k = cursor.get(s["task_id"], 0)
        cursor[s["task_id"]] = k + 1
        theirs.append(results[s["task_id"]][k]["base_status"] == "pass")

    programs = [
        Program(
            id=f"{i}",
            code=s["solution"],
            tests=tasks[s["task_id"]]["test"] + f"\ncheck({tasks[s['task_id']]['entry_point']})\n",
        )
        for i, s in enumerate(samples)
    ]
    ours = [v.status == "passed" for v in run_batch(programs)]
    if args.generate:
        # Only the model's own samples count; the canonical fillers are there for EvalPlus.
        keep = [i for i, s in enumerate(samples) if s.get("how") == "model"]
        samples = [samples[i] for i in keep]
        ours = [ours[i] for i in keep]
        theirs = [theirs[i] for i in keep]
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    if args.samples:
        kind = "from --samples"
    elif args.generate:
        kind = "written by the embedded model"
    else:
        kind = f"{args.mutants} mutants per task + canonical"
    print(f"sandbox mode: {check().mode}; samples: {len(samples)} ({kind})")
    print(
        f"evalplus passed {sum(theirs)}, ours passed {sum(ours)}; agreement {agree}/{len(samples)}"
        f" = {100 * agree / len(samples):.1f}% (HumanEval/32 always fails in evalplus 0.3.1)"
    )
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            print(
                f"  disagree: {samples[i]['task_id']} ours={'pass' if a else 'fail'} "
                f"evalplus={'pass' if b else 'fail'} ({samples[i].get('how', 'sample')})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
