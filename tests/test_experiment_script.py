"""benchmarks/experiment.py's plan: every selection holds out the same seeds and the
verified selection comes first (its held-out tasks are the slice); recipes are scored on
the slice before any benchmark; the pre-registered arm is the slice's best pickable one."""

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "experiment.py"


def load():
    spec = importlib.util.spec_from_file_location("experiment", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_plan(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--run", str(tmp_path / "run"), "--out", str(tmp_path / "x"),
                           "--holdout-seeds", "7", "--dry-run", "--eval-args", "--backend hf"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [x.removeprefix("[run] selfcodealign ") for x in done.stdout.splitlines()]
    selects = [x for x in lines if x.startswith("select ")]
    assert len(selects) == 6 and "/strong/" in selects[0] and all("select.holdout_seeds=7" in x for x in selects)
    assert all(("--verified" in x) == any(f"/{a}/" in x for a in ("strong", "dpo", "band")) for x in selects)
    trains = [x for x in lines if x.startswith("train ")]
    assert len(trains) == 1 + 1 + 1 + 3 + 2 + 3  # paper, random, failing, strong, band, dpo
    assert all("dataset.pairs.jsonl" in x for x in trains if "--objective dpo" in x)
    evals = [x for x in lines if x.startswith("eval ")]
    assert len(evals) == len(trains) + 1 and all("selfval:" in x and "/strong/dataset.heldout.jsonl" in x
                                                 and "--backend hf" in x for x in evals)
    assert lines.index(evals[0]) > lines.index(trains[-1])
    assert not any("humaneval" in x for x in lines)  # no benchmark before pre-registration


def test_pre_registration_picks_the_best_pickable_recipe():
    exp = load()
    assert exp.pick_preregistered({"paper-r0": 0.30, "strong-r1": 0.34, "random-r0": 0.50, "dpo-r0": 0.34}) == "dpo-r0"
    assert exp.pick_preregistered({"strong-r2": 0.2, "strong-r0": 0.2}) == "strong-r0"
