"""Benchmark tasks from EvalPlus: its own download when online, local files otherwise.

evalplus 0.3.1 reads ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` into module
globals at import time, so we set both the environment (for processes started later)
and the module globals (for this one, whenever it imported evalplus).
"""

from __future__ import annotations

import hashlib
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


BENCHMARKS = {
    "humaneval": Benchmark("humaneval", "HumanEval", "HUMANEVAL_OVERRIDE_PATH", "HumanEvalPlus*.jsonl*"),
    "mbpp": Benchmark("mbpp", "MBPP", "MBPP_OVERRIDE_PATH", "MbppPlus*.jsonl*"),
}


def parse_benchmarks(text: str) -> list[Benchmark]:
    """``humaneval+,mbpp+``: the ``+`` is optional (base and plus are always both scored)."""
    out = []
    for name in (x.strip().lower().rstrip("+") for x in text.split(",")):
        if not name:
            continue
        if name not in BENCHMARKS:
            raise UserError(f"unknown benchmark {name!r}; choose from humaneval+, mbpp+")
        if BENCHMARKS[name] not in out:
            out.append(BENCHMARKS[name])
    if not out:
        raise UserError("no benchmark given; use e.g. --benchmarks humaneval+,mbpp+")
    return out


def default_data_dir() -> Path | None:
    env = os.environ.get("SELFCODEALIGN_EVAL_DATA")
    return Path(env) if env else None


def use_local_data(bench: Benchmark, data_dir: Path | None) -> str | None:
    """Point evalplus at a local data file for ``bench``; returns the path used (None:
    evalplus downloads its own)."""
    path = os.environ.get(bench.env)
    if data_dir is not None:
        found = sorted(Path(data_dir).glob(bench.pattern))
        if not found:
            raise UserError(f"no {bench.pattern} file in {data_dir} for {bench.label}")
        path = str(found[-1].resolve())
    if path is None:
        return None
    if not Path(path).is_file():
        raise UserError(f"{bench.env}={path}: file not found")
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
    """Problems by task id, in the data file's order; ``tasks`` keeps a subset."""
    _import_evalplus()
    use_local_data(bench, data_dir)
    from evalplus.data import get_human_eval_plus, get_mbpp_plus

    try:
        problems = get_human_eval_plus() if bench.dataset == "humaneval" else get_mbpp_plus()
    except Exception as e:  # a download failure surfaces as many different errors
        raise UserError(
            f"cannot load {bench.label}+ data ({type(e).__name__}: {e}); offline, pass "
            f"--data-dir with the EvalPlus files or set {bench.env}"
        ) from None
    if tasks:
        unknown = [t for t in tasks if t not in problems]
        if unknown:
            raise UserError(f"unknown {bench.label} task(s): {', '.join(unknown[:5])}")
        keep = set(tasks)
        problems = {k: v for k, v in problems.items() if k in keep}
    return problems


def problems_hash(bench: Benchmark, problems: dict) -> str:
    """Cache key for ground truth: the dataset file's hash plus the chosen tasks."""
    from evalplus.data import get_human_eval_plus_hash, get_mbpp_plus_hash

    base = get_human_eval_plus_hash() if bench.dataset == "humaneval" else get_mbpp_plus_hash()
    return hashlib.md5((base + "\n" + "\n".join(sorted(problems))).encode()).hexdigest()
