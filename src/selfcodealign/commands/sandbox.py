"""`selfcodealign sandbox`: run programs from a JSONL file in the sandbox, or --check it."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from selfcodealign.errors import UserError

HELP_IN = (
    'JSONL, one program a line: {"id": ..., "code": ...} with optional "tests" (run after '
    'code), "timeout" (seconds) and "memory_mb"'
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sandbox",
        help="run untrusted programs (code + tests) in the sandbox; or show its mode",
        description=(
            "Run each program of --in in an isolated sandbox and write one verdict a line "
            "to --out, in input order (status: passed, failed, timeout, oom, crashed, "
            "error). Rerunning the same command skips ids already in --out."
        ),
    )
    p.add_argument("--check", action="store_true", help="print the isolation mode and exit")
    p.add_argument("--in", dest="inp", type=Path, metavar="PROGRAMS.jsonl", help=HELP_IN)
    p.add_argument(
        "--out", type=Path, metavar="VERDICTS.jsonl", help="verdicts JSONL (appended to; resumable)"
    )
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: cores)")
    p.add_argument("--timeout", type=float, default=10.0, help="default seconds per program")
    p.add_argument("--memory-mb", type=int, default=1024, help="default memory per program")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        from selfcodealign.sandbox import check

        # Not logged as a warning: the summary already says what a weak mode lacks.
        print(check(warn=False).summary())
        return 0
    if args.inp is None or args.out is None:
        raise UserError("give --in PROGRAMS.jsonl and --out VERDICTS.jsonl (or --check)")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if not args.timeout > 0:
        raise UserError("--timeout must be positive")
    if args.inp.resolve() == args.out.resolve():
        raise UserError("--in and --out must be different files")
    return run_file(args.inp, args.out, args.workers, args.timeout, args.memory_mb)


def _done_ids(out: Path) -> set[str]:
    from selfcodealign.jsonl import read_lines

    if not out.exists():
        return set()
    return {str(obj["id"]) for _, obj in read_lines(out) if isinstance(obj, dict) and "id" in obj}


def parse_program(obj: object, default_timeout: float, default_memory_mb: int):
    """One input line -> Program, or a reason (str) why the line is dropped."""
    from selfcodealign.sandbox import Program

    if not isinstance(obj, dict):
        return "not a JSON object"
    pid = obj.get("id")
    if isinstance(pid, bool) or not isinstance(pid, (str, int)) or str(pid) == "":
        return "missing or invalid 'id' (a non-empty string or an integer)"
    code = obj.get("code")
    if not isinstance(code, str):
        return "missing or invalid 'code' (a string)"
    tests = obj.get("tests", "")
    if tests is None:
        tests = ""
    if not isinstance(tests, str):
        return "'tests' must be a string"
    timeout = obj.get("timeout", default_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        return "'timeout' must be a number of seconds"
    if not 0 < timeout <= 3600:
        return "'timeout' must be in (0, 3600] seconds"
    memory = obj.get("memory_mb", default_memory_mb)
    if isinstance(memory, bool) or not isinstance(memory, int) or not 32 <= memory <= 1 << 20:
        return "'memory_mb' must be an integer in [32, 1048576]"
    unknown = set(obj) - {"id", "code", "tests", "timeout", "memory_mb"}
    if unknown:
        return f"unknown field(s): {', '.join(sorted(unknown))}"
    return Program(id=str(pid), code=code, tests=tests, timeout=float(timeout), memory_mb=memory)


def run_file(inp: Path, out: Path, workers: int | None, timeout: float, memory_mb: int) -> int:
    from selfcodealign.jsonl import Appender, read_lines
    from selfcodealign.sandbox import check, iter_batch

    info = check()
    print(f"sandbox mode: {info.mode}", file=sys.stderr)
    done = _done_ids(out)
    drops: Counter[str] = Counter()
    skipped = 0
    seen: set[str] = set()

    def programs() -> Iterator:
        nonlocal skipped
        for lineno, obj in read_lines(inp):
            if obj == {}:
                continue  # blank line
            p = parse_program(obj, timeout, memory_mb)
            if isinstance(p, str):
                drops[p] += 1
                print(f"{inp}:{lineno}: dropped: {p}", file=sys.stderr)
                continue
            if p.id in seen:
                drops["duplicate id"] += 1
                print(f"{inp}:{lineno}: dropped: duplicate id {p.id!r}", file=sys.stderr)
                continue
            seen.add(p.id)
            if p.id in done:
                skipped += 1
                continue
            yield p

    counts: Counter[str] = Counter()
    pending: dict[int, object] = {}
    next_index = 0
    started = time.monotonic()
    with Appender(out, fsync=False) as sink:
        for i, verdict in iter_batch(programs(), workers):
            pending[i] = verdict
            counts[verdict.status] += 1
            ready = []
            while next_index in pending:
                ready.append(pending.pop(next_index))
                next_index += 1
            # Flushed to the OS at once: a killed run loses nothing already reported.
            sink.write_many(ready)
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to run"
    rate = f" ({total / elapsed:.0f}/s)" if total and elapsed > 0 else ""
    print(f"ran {total} program(s) in {elapsed:.1f}s{rate}: {summary}", file=sys.stderr)
    if skipped:
        print(f"skipped {skipped} id(s) already in {out}", file=sys.stderr)
    if drops:
        n = sum(drops.values())
        reasons = "; ".join(f"{r}: {c}" for r, c in drops.most_common())
        print(f"dropped {n} bad line(s): {reasons}", file=sys.stderr)
    return 0
