"""benchmarks/experiment.py's plan: every selection holds out the same seeds, the
ablations are as large as the paper's selection, models are made in the issue's priority
and only sampled on the GPU; recipes are scored on the held-out slice before any
benchmark; the pre-registered arm is the slice's best pickable one."""

import subprocess
import sys
from pathlib import Path

from repo_scripts import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "experiment.py"


def load():
    return load_script("benchmarks/experiment.py")


def plan(tmp_path, phase):
    done = subprocess.run([sys.executable, str(SCRIPT), "--run", str(tmp_path / "run"), "--out", str(tmp_path / "x"),
                           "--holdout-seeds", "7", "--dry-run", "--phase", phase, "--eval-args", "--backend hf"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [x.removeprefix("[run] selfcodealign ") for x in done.stdout.splitlines()]


def test_generate_plan(tmp_path):
    lines = plan(tmp_path, "generate")
    selects = [x for x in lines if x.startswith("select ")]
    assert len(selects) == 5 and all("select.holdout_seeds=7" in x for x in selects)  # dpo shares verified
    assert all(("--verified" in x) == any(f"/{a}/" in x for a in ("verified", "band")) for x in selects)
    assert all(("select.max_examples=" in x) == any(f"/{a}/" in x for a in ("random", "failing")) for x in selects)
    assert max(i for i, x in enumerate(selects) if "/paper/" in x) < min(
        i for i, x in enumerate(selects) if "max_examples" in x)
    trains = [x for x in lines if x.startswith("train ")]
    assert len(trains) == 1 + 1 + 1 + 3 + 2 + 3  # paper, random, failing, strong, band, dpo
    assert all("dataset.pairs.jsonl" in x for x in trains if "--objective dpo" in x)
    order = [x.split("/models/")[1].split()[0] for x in trains]
    assert order[:5] == ["paper-r0", "dpo-r0", "strong-r0", "random-r0", "failing-r0"]
    evals = [x for x in lines if x.startswith("eval ")]
    assert len(evals) == len(trains) + 1
    assert all("--generate-only" in x and "selfval:" in x and "/verified/dataset.heldout.jsonl" in x
               and "humaneval+,mbpp+" in x and "--backend hf" in x for x in evals)
    # each model is sampled right after its training (the GPU time may end between models)
    assert lines.index(evals[1]) == lines.index(trains[0]) + 1


def test_scoring_plan_scores_the_slice_before_any_benchmark(tmp_path):
    lines = plan(tmp_path, "selfval")
    evals = [x for x in lines if x.startswith("eval ")]
    assert len(evals) == 12 and all("--samples" in x and "--benchmarks selfval:" in x for x in evals)
    assert not any("humaneval" in x or x.startswith(("train ", "select ")) for x in lines)


def test_pre_registration_picks_the_best_pickable_recipe():
    exp = load()
    assert exp.pick_preregistered({"paper-r0": 0.30, "strong-r1": 0.34, "random-r0": 0.50, "dpo-r0": 0.34}) == "dpo-r0"
    assert exp.pick_preregistered({"strong-r2": 0.2, "strong-r0": 0.2}) == "strong-r0"


def test_hold_out_takes_the_fewest_seeds_that_give_the_tasks():
    exp = load()
    order = ["a", "b", "c", "d", "e"]
    assert exp.holdout_size(order, {"b", "d"}, 1) == 2
    assert exp.holdout_size(order, {"b", "d"}, 2) == 4
    assert exp.holdout_size(order, {"b", "d"}, 3) == 5  # fewer tasks than wanted: every seed
