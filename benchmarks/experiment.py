"""Does self-alignment make the model better? The arms of the experiment, run with product
commands only (`select`, `train`, `eval`, `compare`), from one run's executed (and
verified) responses.

Arms (each a selection, then training):
  start    the model itself
  paper    a random passing response, the paper's SFT recipe (train's defaults)
  dpo      DPO on pass/fail pairs of the verified selection
  strong   the verified selection ("Data that teaches"), SFT
  random   any response, passing or not, the paper's recipe (ablation)
  failing  a failing response only, the paper's recipe (ablation)
  band     the verified selection of tasks the model sometimes fails (0 < pass rate < 1)

Every selection holds out the same seeds (select.holdout_seeds; by default the fewest
that give --holdout-tasks scored tasks): their tasks, with the verified selection's strong
tests, are the held-out slice (selfval). The ablations take as many examples as the
paper's selection (select.max_examples), so that only the choice of response differs.

Phases, each resuming (a step whose output exists is skipped):
  generate  selections; then, model by model in priority order, train and write greedy
            samples of the held-out slice, HumanEval+ and MBPP+ (`eval --generate-only`).
            Needs the GPU; scores nothing.
  selfval   score the held-out slice's samples; once every recipe of the pickable arms
            (paper, dpo, strong, band) has its score, name the pre-registered one in
            preregistered.json: before any benchmark is scored.
  all       besides: score HumanEval+/MBPP+ for the start model and each arm's recipe
            chosen on the slice, and write results.md with `compare`'s intervals.

    python benchmarks/experiment.py --run runs/gpu --out runs/exp --phase generate \\
        --model MODEL --eval-args "--backend hf --batch-size 1024"
    python benchmarks/experiment.py --run runs/gpu --out runs/exp --phase selfval
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ARMS = ("start", "paper", "dpo", "strong", "random", "failing", "band")
PICKABLE = ("paper", "dpo", "strong", "band")  # the arms the held-out slice may name
# Each arm's selection: its data folder (arms sharing one share the selection), verified
# checks or not, `select` settings.
SELECTION = {
    "paper": ("paper", False, []),
    "strong": ("verified", True, []),
    "dpo": ("verified", True, []),
    "band": ("band", True, ["select.pass_rate=[0.001,0.999]"]),
    "random": ("random", False, ["select.pick=any"]),
    "failing": ("failing", False, ["select.pick=failing"]),
}
SIZED_LIKE_PAPER = ("random", "failing")
# Training recipes per arm (train flags); the first of each is the default.
RECIPES = {
    "paper": [{}],
    "random": [{}],
    "failing": [{}],
    "strong": [{}, {"lr": 5e-6, "epochs": 2}, {"method": "lora"}],
    "band": [{}, {"lr": 5e-6, "epochs": 2}],
    "dpo": [{"objective": "dpo"}, {"objective": "dpo", "lr": 2e-6}, {"objective": "dpo", "method": "lora"}],
}
# The order models are made in (the GPU time may run out): every arm's first recipe, in
# the priority, then the further recipes, then the band.
PRIORITY = ["start", "paper-r0", "dpo-r0", "strong-r0", "random-r0", "failing-r0",
            "strong-r1", "dpo-r1", "strong-r2", "dpo-r2", "band-r0", "band-r1"]
BENCH = "humaneval+,mbpp+"


def recipe_name(arm: str, k: int) -> str:
    return arm if arm == "start" else f"{arm}-r{k}"


def arm_of(name: str) -> str:
    return name.split("-r")[0]


def planned(arms: list[str]) -> list[str]:
    names = [n for n in PRIORITY if arm_of(n) in arms]
    assert all(recipe_name(a, k) in PRIORITY for a in arms if a != "start" for k in range(len(RECIPES[a])))
    return names


def pick_preregistered(selfval: dict[str, float]) -> str:
    """The recipe (``arm-rK``) of a pickable arm with the highest held-out pass@1; ties
    go to the earlier arm in PICKABLE, then the lower K."""
    ranked = [(n, s) for n, s in selfval.items() if arm_of(n) in PICKABLE]
    if not ranked:
        raise SystemExit("no pickable arm has a held-out score")
    order = {a: i for i, a in enumerate(PICKABLE)}
    return max(ranked, key=lambda x: (x[1], -order[arm_of(x[0])], -int(x[0].split("-r")[1])))[0]


def holdout_size(order: list[str], task_seeds: set[str], tasks: int) -> int:
    """The fewest seeds, taken in hold-out order, whose instructions give ``tasks`` scored
    tasks (all of them when there are fewer)."""
    found = 0
    for i, s in enumerate(order, 1):
        found += s in task_seeds
        if found >= tasks:
            return i
    return len(order)


class Runner:
    def __init__(self, args) -> None:
        self.args = args
        self.out: Path = args.out
        self.log = self.out / "commands.log"

    def cmd(self, *argv: str, done: Path | None = None) -> None:
        """Run ``selfcodealign ARGV`` unless ``done`` exists; log it; stop on failure."""
        line = "selfcodealign " + " ".join(shlex.quote(a) for a in argv)
        if done is not None and done.exists():
            sys.stdout.write(f"[skip] {line}\n")  # one write: selections print from threads
            return
        sys.stdout.write(f"[run] {line}\n")
        sys.stdout.flush()
        if self.args.dry_run:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        done_run = subprocess.run([sys.executable, "-m", "selfcodealign", *argv], check=False)
        if done_run.returncode:
            raise SystemExit(f"failed ({done_run.returncode}): {line}")
        with self.log.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n  {time.perf_counter() - t0:.1f} s\n")

    def holdout_seeds(self) -> int:
        """--holdout-seeds, or the fewest seeds that give --holdout-tasks scored tasks (from
        a selection that holds out every seed), saved in holdout.json."""
        if self.args.holdout_seeds is not None:
            return self.args.holdout_seeds
        saved = self.out / "holdout.json"
        if saved.exists():
            return json.loads(saved.read_text())["holdout_seeds"]
        trial = self.out / "data" / "all-held-out" / "dataset.jsonl"
        self.cmd("select", "--in", str(self.args.run / "executed.jsonl"), "--verified",
                 str(self.args.run / "verified.jsonl"), "--out", str(trial), "--set",
                 "select.holdout_seeds=1000000000", "--quiet", done=trial)
        if self.args.dry_run:
            return 0
        from selfcodealign.stages.select import holdout_order

        with open(self.args.run / "executed.jsonl") as f:
            seed_ids = (json.loads(line)["response"]["instruction"]["seed_id"] for line in f)
            order = holdout_order(seed_ids, 0)  # select.seed, left at 0 by every selection here
        with open(trial.with_name("dataset.heldout.jsonl")) as f:
            task_seeds = {json.loads(line)["seed_id"] for line in f}
        n = holdout_size(order, task_seeds, self.args.holdout_tasks)
        saved.write_text(json.dumps({"holdout_seeds": n, "seeds": len(order), "tasks_wanted": self.args.holdout_tasks,
                                     "tasks_if_all_held_out": len(task_seeds)}, indent=1) + "\n")
        return n

    def select(self, folder: str, verified: bool, sets: list[str], holdout: int) -> None:
        data = self.out / "data" / folder / "dataset.jsonl"
        argv = ["select", "--in", str(self.args.run / "executed.jsonl"), "--out", str(data),
                "--set", f"select.holdout_seeds={holdout}", "--quiet"]
        if verified:
            argv += ["--verified", str(self.args.run / "verified.jsonl")]
        for s in sets:
            argv += ["--set", s]
        self.cmd(*argv, done=data)

    def selections(self, arms: list[str]) -> dict[str, Path]:
        holdout = self.holdout_seeds()
        folders = {SELECTION[a][0]: a for a in arms if a in SELECTION}
        folders.setdefault("verified", "strong")  # its held-out tasks are the slice for all
        if any(a in SIZED_LIKE_PAPER for a in arms):
            folders.setdefault("paper", "paper")
        first = [f for f, a in folders.items() if a not in SIZED_LIKE_PAPER]
        later = [f for f, a in folders.items() if a in SIZED_LIKE_PAPER]
        with ThreadPoolExecutor(len(first)) as pool:  # each its own process
            list(pool.map(lambda f: self.select(f, *SELECTION[folders[f]][1:], holdout), first))
        if later:
            paper = self.out / "data" / "paper" / "dataset.jsonl"
            size = 0 if self.args.dry_run else sum(1 for _ in paper.open())
            with ThreadPoolExecutor(len(later)) as pool:
                list(pool.map(lambda f: self.select(f, *SELECTION[folders[f]][1:2],
                                                    SELECTION[folders[f]][2] + [f"select.max_examples={size}"],
                                                    holdout), later))
        return {a: self.out / "data" / SELECTION[a][0] / "dataset.jsonl" for a in arms if a in SELECTION}

    @property
    def heldout(self) -> Path:
        return self.out / "data" / "verified" / "dataset.heldout.jsonl"

    def train(self, name: str, data: Path) -> str:
        arm, k = arm_of(name), int(name.split("-r")[1])
        recipe = RECIPES[arm][k]
        model_dir = self.out / "models" / name
        if recipe.get("objective") == "dpo":
            data = data.with_name("dataset.pairs.jsonl")
        argv = ["train", "--data", str(data), "--out", str(model_dir), "--overwrite"]
        if self.args.model:
            argv += ["--model", self.args.model]
        for key, value in recipe.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        argv += shlex.split(self.args.train_args)
        self.cmd(*argv, done=model_dir / "train_config.json")
        return str(model_dir)

    def generate(self, name: str, model: str | None) -> None:
        out = self.out / "evals" / "samples" / name
        argv = ["eval", "--generate-only", "--out", str(out), "--benchmarks", f"selfval:{self.heldout},{BENCH}"]
        if model:
            argv += ["--model", model]
        argv += shlex.split(self.args.eval_args)
        self.cmd(*argv, done=out / "results.json")

    def score(self, name: str, benchmarks: str, kind: str) -> Path:
        out = self.out / "evals" / kind / name
        self.cmd("eval", "--samples", str(self.out / "evals" / "samples" / name), "--benchmarks", benchmarks,
                 "--out", str(out), done=out / "results.json")
        return out


def pass_at_1(eval_dir: Path, bench: str) -> float | None:
    try:
        return json.loads((eval_dir / "results.json").read_text())["benchmarks"][bench]["base"]["pass@1"]
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run directory with executed.jsonl and verified.jsonl")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--phase", choices=["generate", "selfval", "all"], required=True)
    ap.add_argument("--model", help="the start model (default: the embedded one)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--holdout-seeds", type=int, help="seeds held out (default: enough for --holdout-tasks)")
    ap.add_argument("--holdout-tasks", type=int, default=300, help="scored held-out tasks wanted (default 300)")
    ap.add_argument("--train-args", default="", help="extra train flags for every arm")
    ap.add_argument("--eval-args", default="", help="extra eval flags for generation (backend, batch size, ...)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="pre-register among the recipes that have samples, naming the others as not run")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
    r = Runner(args)
    names = planned(arms)

    if args.phase == "generate":
        data = r.selections(arms)
        for name in names:
            if (r.out / "evals" / "samples" / name / "results.json").exists():
                print(f"[skip] {name}: samples exist", flush=True)
                continue
            model = args.model if name == "start" else r.train(name, data[arm_of(name)])
            r.generate(name, model)
        return 0

    # Scoring, anywhere with the sandbox (and evalplus for the benchmarks).
    have = [n for n in names if (r.out / "evals" / "samples" / n / "results.json").exists() or args.dry_run]
    missing = [n for n in names if n not in have]
    if missing:
        print(f"no samples yet for: {', '.join(missing)} (phase generate makes them)", flush=True)
    scores = {n: pass_at_1(r.score(n, f"selfval:{r.heldout}", "selfval"), "selfval") for n in have}
    if args.dry_run:
        return 0
    (r.out / "selfval.json").write_text(json.dumps(scores, indent=1) + "\n")
    best: dict[str, str] = {}
    for name, s in scores.items():
        arm = arm_of(name)
        if s is not None and (arm not in best or s > scores[best[arm]]):
            best[arm] = name
    prereg = r.out / "preregistered.json"
    if not prereg.exists():
        if any(arm_of(n) in PICKABLE for n in missing) and not args.allow_missing:
            print("not pre-registering: recipes of pickable arms lack samples (--allow-missing: pick among "
                  "those that have them)", flush=True)
            return 0 if args.phase == "selfval" else 2
        chosen = pick_preregistered({n: scores[n] for n in best.values() if n != "start"})
        prereg.write_text(json.dumps({"recipe": chosen, "selfval_pass@1": scores[chosen], "chosen_recipes": best,
                                      "selfval": scores, "not_run": missing,
                                      "written": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")
        print(f"pre-registered: {chosen} (held-out pass@1 {scores[chosen]:.3f})", flush=True)
    if args.phase == "selfval":
        return 0

    # The benchmarks, for the start model and each arm's chosen recipe, with intervals.
    lines = []
    start = r.score("start", BENCH, "bench")
    for arm, name in best.items():
        if name == "start":
            continue
        ev = r.score(name, BENCH, "bench")
        for kind, a, b in (("bench", start, ev), ("selfval", r.out / "evals" / "selfval" / "start",
                                                  r.out / "evals" / "selfval" / name)):
            done = subprocess.run([sys.executable, "-m", "selfcodealign", "compare", str(a), str(b)],
                                  capture_output=True, text=True, check=False)
            lines.append(f"## {name} against the start model ({kind})\n\n```\n{done.stdout.strip()}\n```\n")
    (r.out / "results.md").write_text(
        f"# Experiment\n\nPre-registered: {json.loads(prereg.read_text())['recipe']}\n\n" + "\n".join(lines))
    print(f"table: {r.out / 'results.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
