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

Every selection holds out the same seeds (select.holdout_seeds): their tasks, with the
verified selection's strong tests, are the held-out slice (selfval) that picks each arm's
recipe (at most 3) and, among paper/dpo/strong/band, the one arm named in
preregistered.json before any trained model is scored on HumanEval+ or MBPP+. Steps
whose output exists are skipped, so the script resumes.

    python benchmarks/experiment.py --run runs/gpu --out runs/exp --holdout-seeds 300 \\
        --eval-args "--backend hf --batch-size 1024"
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ARMS = ("start", "paper", "dpo", "strong", "random", "failing", "band")
PICKABLE = ("paper", "dpo", "strong", "band")  # the arms the held-out slice may name
# Selection per arm: verified checks or not, and `select` settings.
SELECTION = {
    "paper": (False, []),
    "dpo": (True, []),
    "strong": (True, []),
    "random": (False, ["select.pick=any"]),
    "failing": (False, ["select.pick=failing"]),
    "band": (True, ["select.pass_rate=[0.001,0.999]"]),
}
# Training recipes per arm (train flags); the first of each is the default.
RECIPES = {
    "paper": [{}],
    "random": [{}],
    "failing": [{}],
    "strong": [{}, {"lr": 5e-6, "epochs": 2}, {"method": "lora"}],
    "band": [{}, {"lr": 5e-6, "epochs": 2}],
    "dpo": [{"objective": "dpo"}, {"objective": "dpo", "lr": 2e-6}, {"objective": "dpo", "method": "lora"}],
}


def recipe_name(arm: str, k: int) -> str:
    return arm if arm == "start" else f"{arm}-r{k}"


def pick_preregistered(selfval: dict[str, float]) -> str:
    """The recipe (``arm-rK``) of a pickable arm with the highest held-out pass@1; ties
    go to the earlier arm in PICKABLE, then the lower K."""
    ranked = [(n, s) for n, s in selfval.items() if n.split("-r")[0] in PICKABLE]
    if not ranked:
        raise SystemExit("no pickable arm has a held-out score")
    order = {a: i for i, a in enumerate(PICKABLE)}
    return max(ranked, key=lambda x: (x[1], -order[x[0].split("-r")[0]], -int(x[0].split("-r")[1])))[0]


class Runner:
    def __init__(self, args) -> None:
        self.args = args
        self.out: Path = args.out
        self.log = self.out / "commands.log"

    def cmd(self, *argv: str, done: Path | None = None) -> None:
        """Run ``selfcodealign ARGV`` unless ``done`` exists; log it; stop on failure."""
        line = "selfcodealign " + " ".join(shlex.quote(a) for a in argv)
        if done is not None and done.exists():
            print(f"[skip] {line}", flush=True)
            return
        print(f"[run] {line}", flush=True)
        if self.args.dry_run:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        t0 = time.perf_counter()
        done_run = subprocess.run([sys.executable, "-m", "selfcodealign", *argv], check=False)
        if done_run.returncode:
            raise SystemExit(f"failed ({done_run.returncode}): {line}")
        with self.log.open("a") as f:
            f.write(f"  {time.perf_counter() - t0:.1f} s\n")

    def select(self, arm: str) -> Path:
        verified, sets = SELECTION[arm]
        data = self.out / "data" / arm / "dataset.jsonl"
        argv = ["select", "--in", str(self.args.run / "executed.jsonl"), "--out", str(data),
                "--set", f"select.holdout_seeds={self.args.holdout_seeds}", "--quiet"]
        if verified:
            argv += ["--verified", str(self.args.run / "verified.jsonl")]
        for s in sets:
            argv += ["--set", s]
        self.cmd(*argv, done=data)
        return data

    def train(self, arm: str, k: int, data: Path) -> Path:
        recipe = RECIPES[arm][k]
        model_dir = self.out / "models" / recipe_name(arm, k)
        if recipe.get("objective") == "dpo":
            data = data.with_name("dataset.pairs.jsonl")
        argv = ["train", "--data", str(data), "--out", str(model_dir), "--overwrite"]
        if self.args.model:
            argv += ["--model", self.args.model]
        for key, value in recipe.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        argv += shlex.split(self.args.train_args)
        self.cmd(*argv, done=model_dir / "train_config.json")
        return model_dir

    def eval(self, name: str, model: str | None, benchmarks: str, sub: str) -> Path:
        out = self.out / "evals" / sub / name
        argv = ["eval", "--out", str(out), "--benchmarks", benchmarks]
        if model:
            argv += ["--model", model]
        argv += shlex.split(self.args.eval_args)
        self.cmd(*argv, done=out / "results.json")
        return out


def score(eval_dir: Path, bench: str) -> float | None:
    try:
        return json.loads((eval_dir / "results.json").read_text())["benchmarks"][bench]["base"]["pass@1"]
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run directory with executed.jsonl (and verified.jsonl)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", help="the start model (default: the embedded one)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--holdout-seeds", type=int, default=300)
    ap.add_argument("--train-args", default="", help="extra train flags for every arm")
    ap.add_argument("--eval-args", default="", help="extra eval flags (backend, batch size, ...)")
    ap.add_argument("--phase", choices=["selfval", "all"], default="all",
                    help="selfval: select, train and score on the held-out slice only (and pre-register)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
    r = Runner(args)

    # 1. Selections (the verified one first: its held-out tasks are the slice for all).
    data = {}
    for arm in sorted((a for a in arms if a != "start"), key=lambda a: a != "strong"):
        data[arm] = r.select(arm)
    heldout = r.out / "data" / "strong" / "dataset.heldout.jsonl"
    if "strong" not in data:
        r.select("strong")
    selfval = f"selfval:{heldout}"

    # 2. Training, every recipe; 3. the held-out slice for every model.
    models: dict[str, str | None] = {"start": args.model}
    for arm in data:
        for k in range(len(RECIPES[arm])):
            models[recipe_name(arm, k)] = str(r.train(arm, k, data[arm]))
    scores = {}
    for name, model in models.items():
        scores[name] = score(r.eval(name, model, selfval, "selfval"), "selfval")
    if args.dry_run:
        return 0
    (r.out / "selfval.json").write_text(json.dumps(scores, indent=1) + "\n")

    # 4. Each arm's recipe, chosen on the held-out slice; the pre-registered arm, named
    #    before any trained model meets a benchmark.
    best = {}
    for name, s in scores.items():
        arm = name.split("-r")[0]
        if s is not None and (arm not in best or s > scores[best[arm]]):
            best[arm] = name
    prereg = r.out / "preregistered.json"
    if not prereg.exists():
        chosen = pick_preregistered({n: scores[n] for n in best.values() if n != "start"})
        prereg.write_text(json.dumps({"recipe": chosen, "selfval_pass@1": scores[chosen], "chosen_recipes": best,
                                      "written": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")
        print(f"pre-registered: {chosen} (held-out pass@1 {scores[chosen]:.3f})", flush=True)
    if args.phase == "selfval":
        return 0

    # 5. Benchmarks for the start model and each arm's chosen recipe; compare with intervals.
    lines = []
    start = r.eval("start", args.model, "humaneval+,mbpp+", "bench")
    for arm, name in best.items():
        if name == "start":
            continue
        ev = r.eval(name, models[name], "humaneval+,mbpp+", "bench")
        for sub in ("bench", "selfval"):
            done = subprocess.run([sys.executable, "-m", "selfcodealign", "compare",
                                   str(r.out / "evals" / sub / "start"), str(ev if sub == "bench" else
                                   r.out / "evals" / "selfval" / name)], capture_output=True, text=True, check=False)
            lines.append(f"## {name} against the start model ({sub})\n\n```\n{done.stdout.strip()}\n```\n")
    (r.out / "results.md").write_text(
        f"# Experiment\n\nPre-registered: {json.loads(prereg.read_text())['recipe']}\n\n" + "\n".join(lines))
    print(f"table: {r.out / 'results.md'} (start model scored in {start})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
