"""Benchmark tasks from EvalPlus: the files shipped in the package (``selfcodealign/data``)
unless another copy is named.

evalplus 0.3.1 reads ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` into module
globals at import time, so we set both the environment (for processes started later)
and the module globals (for this one, whenever it imported evalplus).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError, missing_extra


@dataclass(frozen=True)
class Benchmark:
    dataset: str  # evalplus's name: humaneval | mbpp
    label: str  # how we report it
    env: str
    pattern: str
    path: str = ""  # selfval: the held-out tasks file


BENCHMARKS = {
    "humaneval": Benchmark("humaneval", "HumanEval", "HUMANEVAL_OVERRIDE_PATH", "HumanEvalPlus*.jsonl*"),
    "mbpp": Benchmark("mbpp", "MBPP", "MBPP_OVERRIDE_PATH", "MbppPlus*.jsonl*"),
}


def parse_benchmarks(text: str) -> list[Benchmark]:
    """``humaneval+,mbpp+``: the ``+`` is optional (base and plus are always both scored);
    ``selfval:FILE`` names held-out generated tasks (``selfcodealign.evaluate.selfval``)."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if item.lower().startswith("selfval:") and item[8:]:
            if not Path(item[8:]).is_file():
                raise UserError(f"selfval: no file {item[8:]} (select.holdout_seeds writes DATASET.heldout.jsonl)")
            out.append(Benchmark("selfval", "SelfVal", "", "", item[8:]))
            continue
        name = item.lower().rstrip("+")
        if not name:
            continue
        if name not in BENCHMARKS:
            raise UserError(f"unknown benchmark {name!r}; choose from humaneval+, mbpp+, selfval:FILE")
        if BENCHMARKS[name] not in out:
            out.append(BENCHMARKS[name])
    if not out:
        raise UserError("no benchmark given; use e.g. --benchmarks humaneval+,mbpp+")
    return out


PACKAGED_DATA = Path(__file__).resolve().parent.parent / "data"


def default_data_dir() -> Path | None:
    """$SELFCODEALIGN_EVAL_DATA, else None: the packaged files, unless evalplus's own
    override variable names another (see ``data_file``)."""
    env = os.environ.get("SELFCODEALIGN_EVAL_DATA")
    return Path(env) if env else None


def data_file(bench: Benchmark, data_dir: Path | None = None) -> Path:
    """The data file for ``bench``: from ``data_dir``, else evalplus's override variable,
    else the copy shipped in the package."""
    if data_dir is not None:
        found = sorted(Path(data_dir).glob(bench.pattern))
        if not found:
            raise UserError(f"no {bench.pattern} file in {data_dir} for {bench.label}")
        return found[-1].resolve()
    env = os.environ.get(bench.env)
    if env:
        if not Path(env).is_file():
            raise UserError(f"{bench.env}={env}: file not found")
        return Path(env)
    found = sorted(PACKAGED_DATA.glob(bench.pattern))
    if not found:
        raise UserError(f"the package's {bench.label}+ data file is missing from {PACKAGED_DATA}; "
                        "reinstall selfcodealign or pass --data-dir")
    return found[-1]


def use_local_data(bench: Benchmark, data_dir: Path | None) -> str:
    """Point evalplus at the data file for ``bench``; returns the path used."""
    path = str(data_file(bench, data_dir))
    os.environ[bench.env] = path
    import evalplus.data.humaneval as he
    import evalplus.data.mbpp as mb

    setattr(he if bench.dataset == "humaneval" else mb, bench.env, path)
    return path


def _import_evalplus():
    try:
        import evalplus.data  # noqa: F401
    except ImportError:
        raise missing_extra("evalplus", "eval") from None


def load_problems(bench: Benchmark, data_dir: Path | None = None, tasks: list[str] | None = None) -> dict:
    """Problems by task id as evalplus reads them (with what its checker needs), in the
    data file's order; ``tasks`` keeps a subset."""
    if bench.dataset == "selfval":
        return read_problems(bench, data_dir, tasks)
    _import_evalplus()
    use_local_data(bench, data_dir)
    from evalplus.data import get_human_eval_plus, get_mbpp_plus

    try:
        problems = get_human_eval_plus() if bench.dataset == "humaneval" else get_mbpp_plus()
    except Exception as e:  # a damaged file surfaces as many different errors
        raise UserError(f"cannot load {bench.label}+ data ({type(e).__name__}: {e})") from None
    return _subset(bench, problems, tasks)


def read_problems(bench: Benchmark, data_dir: Path | None = None, tasks: list[str] | None = None) -> dict:
    """Problems by task id straight from the data file: enough to generate (prompt, entry
    point), without evalplus and what it imports (a GPU machine may lack them)."""
    if bench.dataset == "selfval":
        return load_selfval(Path(bench.path), tasks)
    path = data_file(bench, data_dir)
    try:
        with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {bench.label}+ data {path}: {e}") from None
    return _subset(bench, {r["task_id"]: r for r in rows}, tasks)


def load_selfval(path: Path, tasks: list[str] | None = None) -> dict[str, dict]:
    """Held-out tasks (``DATASET.heldout.jsonl``, see ``selfval``) by id (``instruction``,
    ``tests``), in the file's order; ``tasks`` keeps a subset."""
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


def _subset(bench: Benchmark, problems: dict, tasks: list[str] | None) -> dict:
    if not tasks:
        return problems
    unknown = [t for t in tasks if t not in problems]
    if unknown:
        raise UserError(f"unknown {bench.label} task(s): {', '.join(unknown[:5])}")
    keep = set(tasks)
    return {k: v for k, v in problems.items() if k in keep}


def problems_hash(bench: Benchmark, problems: dict) -> str:
    """Cache key for ground truth: the dataset file's hash plus the chosen tasks."""
    from evalplus.data import get_human_eval_plus_hash, get_mbpp_plus_hash

    base = get_human_eval_plus_hash() if bench.dataset == "humaneval" else get_mbpp_plus_hash()
    return hashlib.md5((base + "\n" + "\n".join(sorted(problems))).encode()).hexdigest()
