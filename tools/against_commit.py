"""A benchmark script run on this tree and on an earlier commit, in alternating rounds of one
run, with every figure of its output side by side.

    python tools/against_commit.py --rev REV [--rounds 2] -- benchmarks/X.py [ARGS...]

The earlier commit is checked out into a temporary git worktree (or REV is a folder that
holds its src/ and benchmarks/, e.g. `git archive REV src benchmarks` unpacked where there
is no git) and run from there (its own benchmarks/ and src/ first on the path, the same
Python). Rounds alternate which side
goes first (the VM's speed drifts). Output lines are matched by their shape (the line with
its numbers blanked); for each number of each matched line it prints both sides' values
over the rounds and the ratio of their means (this tree / REV), so a figure that moved
beyond its spread shows.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def run_side(tree: Path, script: str, args: list[str], script_tree: Path | None = None) -> str:
    script_tree = script_tree or tree
    path = [str(tree / "src"), str(script_tree / "benchmarks"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    done = subprocess.run([sys.executable, str(script_tree / script), *args], check=False, cwd=tree, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{script} failed in {tree} ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def figures(text: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        nums = NUMBER.findall(line)
        if nums:
            shape = NUMBER.sub("#", line.strip())
            out.setdefault(shape, [float(n.replace(",", "")) for n in nums])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", required=True, help="the earlier commit")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--same-script", action="store_true",
                    help="run this tree's benchmark script on both sides (REV's own may be older or broken)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- benchmarks/X.py [ARGS...]")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("give the benchmark: -- benchmarks/X.py [ARGS...]")
    with tempfile.TemporaryDirectory() as tmp:
        given = Path(a.rev).is_dir()
        old = Path(a.rev).resolve() if given else Path(tmp) / "old"
        if not given:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(old), a.rev], check=True)
        try:
            seen: dict[str, dict[str, list[list[float]]]] = {"this": defaultdict(list), "rev": defaultdict(list)}
            for r in range(a.rounds):
                order = [("this", REPO), ("rev", old)] if r % 2 == 0 else [("rev", old), ("this", REPO)]
                for side, tree in order:
                    text = run_side(tree, cmd[0], cmd[1:], REPO if a.same_script else None)
                    print(f"--- round {r + 1}, {side}:\n{text.strip()}\n", flush=True)
                    for shape, nums in figures(text).items():
                        seen[side][shape].append(nums)
        finally:
            if not given:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    print(f"=== every figure: this tree / {a.rev} (values over {a.rounds} rounds)")
    for shape, runs in seen["this"].items():
        theirs = seen["rev"].get(shape)
        if not theirs or len({len(x) for x in runs + theirs}) != 1:
            continue
        cells = []
        for i in range(len(runs[0])):
            mine, base = [x[i] for x in runs], [x[i] for x in theirs]
            if mine == base:
                cells.append(f"#{i + 1}: {mine[0]:g} both, every round")
                continue
            ratio = statistics.mean(mine) / statistics.mean(base) if statistics.mean(base) else float("nan")
            cells.append(f"#{i + 1}: {mine} vs {base} ({ratio:.2f}x)")
        print(f"{shape}\n    " + "\n    ".join(cells))


if __name__ == "__main__":
    main()
