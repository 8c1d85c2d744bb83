"""`selfcodealign report MODEL_DIR` on `train` outputs: a real 2-step GRPO run and a real
2-step SFT run of the tiny model on a run made by the real pipeline (scripted backend),
their reports checked against the files the trainings wrote."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil

import pytest
from scripted_backend import HandWritten, scripted_run

from selfcodealign.cli import main
from selfcodealign.report.html import short
from selfcodealign.report.train_report import GRPO_CHARTS, SUPERVISED_CHARTS

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out, _ = scripted_run(tmp_path_factory.mktemp("run"), n_seeds=6)
    return out


@pytest.fixture(scope="module")
def grpo_dir(run_dir, tiny_model_dir, tmp_path_factory):
    """Three GRPO steps; the answers are hand-written, right or wrong (the tiny random model
    writes no code), and scored in the sandbox, so rewards, loss and KL move."""
    from selfcodealign.train import grpo
    from selfcodealign.train.config import TrainConfig

    out = tmp_path_factory.mktemp("grpo") / "m"
    cfg = TrainConfig(model=str(tiny_model_dir), objective="grpo", max_steps=3, grpo_group_size=4,
                      grpo_prompts_per_step=2, grpo_max_new_tokens=24, max_len=512, lr=5e-3,
                      grpo_pass_rate_min=0.0, grpo_pass_rate_max=1.0)
    grpo.train(cfg, run_dir, out, source_factory=HandWritten)
    return out


@pytest.fixture(scope="module")
def sft_dir(run_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "m"
    assert main(["train", "--data", str(run_dir / "dataset.jsonl"), "--out", str(out), "--model",
                 str(tiny_model_dir), "--max-steps", "2", "--examples-per-step", "2", "--max-len", "512"]) == 0
    return out


def embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="train-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def chart(page: str, key: str) -> str:
    m = re.search(rf'<svg [^>]*data-testid="chart-{key}">.*?</svg>', page, re.S)
    assert m, f"no chart for {key}"
    return htmllib.unescape(m.group(0))


def setting_cell(page: str, key: str) -> str:
    m = re.search(r'<td data-k="' + re.escape(htmllib.escape(json.dumps([key]))) + r'"><code>(.*?)</code></td>', page)
    assert m, f"no recipe row for {key}"
    return htmllib.unescape(m.group(1))


def points(page: str, charts, steps: list[dict]) -> int:
    """Checks that each series' chart holds every step's value; returns how many."""
    n = 0
    for _, series in charts:
        for key, label, _ in series:
            if all(rec.get(key) is None for rec in steps):
                assert f'data-testid="chart-{key}"' not in page
                continue
            svg = chart(page, series[0][0])
            for rec in steps:
                if key == "rollout_tokens_per_s" and not rec["rollout_s"]:
                    assert f"step {rec['step']}: {label} " not in svg  # nothing sampled, no rate
                    continue
                if rec.get(key) is not None:
                    assert f"step {rec['step']}: {label} {short(rec[key])}</title>" in svg, (key, rec["step"])
                    n += 1
    return n


def test_a_grpo_output_shows_every_series_by_step_the_recipe_and_the_outcomes(grpo_dir, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(grpo_dir), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"report: {out}" in err and "grpo training, 3 steps" in err
    page = out.read_text()
    steps = [json.loads(x) for x in (grpo_dir / "grpo_steps.jsonl").read_text().splitlines()]
    saved = json.loads((grpo_dir / "train_config.json").read_text())
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert embedded(page) == {"objective": "grpo", "source": "grpo_steps.jsonl", "steps": steps}
    # the answers carried a signal: the series are not all zero
    assert {s["reward_mean"] for s in steps} - {0.0} and any(s["loss"] for s in steps)
    # 13 series of 3 steps; no rollout rate for the last step, which samples nothing
    assert points(page, GRPO_CHARTS, steps) == 13 * 3 - 1
    for key, value in [("objective", "grpo"), ("method", "full"), ("grpo_group_size", "4"),
                       ("grpo_prompts_per_step", "2"), ("grpo_kl_coef", short(saved["grpo_kl_coef"])),
                       ("grpo_temperature", "1"), ("rollouts", "hand-written"), ("steps", "3"),
                       ("peak_lr", short(saved["peak_lr"])), ("data", saved["data"]),
                       ("data_sha256", saved["data_sha256"]), ("base_model_sha256", saved["base_model_sha256"])]:
        assert setting_cell(page, key) == value, key
    assert "dpo_beta" not in re.search(r'data-testid="recipe".*?</table>', page, re.S).group(0)
    total: dict[str, int] = {}
    for s in steps:
        for k, v in s["outcomes"].items():
            total[k] = total.get(k, 0) + v
    assert sum(total.values()) == 3 * 2 * 4
    for k, v in total.items():
        assert f'data-outcome="{k}">{v:,}</td>' in page
    assert "Where the steps' time went" in page
    for bad in ("src=\"http", "href=\"http", "@import", "url(http"):
        assert bad not in page


def test_without_a_step_log_the_history_in_train_config_is_charted(grpo_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(grpo_dir, d)
    (d / "grpo_steps.jsonl").unlink()
    assert main(["report", str(d)]) == 0
    page = (d / "report.html").read_text()
    history = json.loads((d / "train_config.json").read_text())["history"]
    assert embedded(page)["source"] == "train_config.json's history"
    assert points(page, GRPO_CHARTS, history) == 13 * 3 - 1


def test_malformed_step_lines_are_skipped_and_counted(grpo_dir, tmp_path, capsys):
    d = tmp_path / "m"
    shutil.copytree(grpo_dir, d)
    first, second, third = (d / "grpo_steps.jsonl").read_text().splitlines()
    (d / "grpo_steps.jsonl").write_text(f'{first}\n{{"step": 2, "rew\n[1, 2]\n{{"no_step": 1}}\n{second}\n{third}\n')
    (d / "train_config.json").unlink()  # an unfinished run: the step log alone
    assert main(["report", str(d)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    page = (d / "report.html").read_text()
    assert "grpo_steps.jsonl: 2 unreadable line(s) skipped" in page
    assert "grpo_steps.jsonl: 1 record(s) without a step number skipped" in page
    assert "no train_config.json: the run has not finished" in page
    assert [s["step"] for s in embedded(page)["steps"]] == [1, 2, 3]
    assert 'id="recipe"' not in page and 'data-testid="chart-reward_mean"' in page


def test_an_sft_output_charts_its_history_or_says_it_has_none(sft_dir, tmp_path):
    assert main(["report", str(sft_dir)]) == 0
    page = (sft_dir / "report.html").read_text()
    saved = json.loads((sft_dir / "train_config.json").read_text())
    history = saved["history"]
    assert [h["step"] for h in history] == [1, 2]
    rates = [{**h, "tokens_per_s": h["tokens"] / h["seconds"]} for h in history]
    assert points(page, SUPERVISED_CHARTS, rates) == 2 * 4  # loss, lr, tokens/s, grad norm; no DPO series
    assert setting_cell(page, "objective") == "sft" and setting_cell(page, "data_sha256") == saved["data_sha256"]
    assert "grpo_group_size" not in re.search(r'data-testid="recipe".*?</table>', page, re.S).group(0)
    assert 'data-testid="outcomes"' not in page
    (sft_dir / "train_config.json").write_text(json.dumps({**saved, "history": []}))
    assert main(["report", str(sft_dir), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert 'data-testid="no-history"' in page and "only the recipe and the final figures" in page
    assert setting_cell(page, "steps") == "2" and 'data-k="[&quot;final_loss&quot;]"' in page


def test_bad_directories_are_one_line_errors_and_a_run_dir_still_gets_the_run_report(run_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "holds no run files" in err and "train_config.json" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train_config.json").write_text("{not json")
    assert main(["report", str(tmp_path / "broken")]) == 0
    page = (tmp_path / "broken" / "report.html").read_text()
    assert "train_config.json is not valid JSON: ignored" in page and 'data-testid="no-history"' in page
    assert main(["report", str(run_dir), "--out", str(tmp_path / "run.html")]) == 0
    page = (tmp_path / "run.html").read_text()
    assert "<title>SelfCodeAlign run report</title>" in page and 'data-testid="funnel"' in page
