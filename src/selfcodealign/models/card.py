"""The model card (README.md, the Hub's format) of a model `train` wrote: its base model and
hash, the data (path, hash, examples), the recipe, and the scores of every `eval` run on it
since (the YAML's model-index and a table).

The card is made from ``train_config.json`` each time; the scores live in the card's
model-index, so a new eval replaces that benchmark's earlier scores and keeps the others.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from selfcodealign.hub.card import markdown_table
from selfcodealign.models import TRAIN_CONFIG

log = logging.getLogger(__name__)

CARD = "README.md"
# eval's benchmarks as Hub datasets (selfval: the run's held-out tasks, no Hub id)
BENCHMARK_DATASETS = {"humaneval": ("evalplus/humanevalplus", "HumanEval+"),
                      "mbpp": ("evalplus/mbppplus", "MBPP+"),
                      "selfval": ("selfval", "held-out generated tasks")}
TESTS = {"base": "base tests", "plus": "base and plus tests"}
RECIPE = ["objective", "method", "epochs", "epochs_done", "steps", "schedule", "warmup_ratio",
          "weight_decay", "max_grad_norm", "examples_per_step", "max_len", "token_budget_used", "precision",
          "attention", "kernels", "world_size", "seed", "saved_dtype", "final_loss", "seconds"]
RECIPE_LORA = ["lora_r", "lora_alpha", "lora_dropout", "lora_targets", "merged"]
RECIPE_GRPO = ["grpo_group_size", "grpo_prompts_per_step", "grpo_kl_coef", "grpo_temperature", "grpo_max_new_tokens",
               "grpo_scale_std", "grpo_clip", "grpo_reward_timeout", "grpo_shuffle_rewards", "grpo_pass_rate_min",
               "grpo_pass_rate_max", "grpo_overlap", "final_reward_mean"]


def _is_hub_id(spec: str | None) -> bool:
    return bool(spec) and spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


def _peak_lr(t: dict[str, Any]) -> float | None:
    """The learning rate training used, as recorded at train time; for a summary older
    than that record, the setting or its default for the method and objective (None when
    those settings no longer make a valid config)."""
    if t.get("peak_lr") is not None:
        return t["peak_lr"]
    from selfcodealign.train.config import TrainConfig

    try:
        return TrainConfig(**{k: t[k] for k in TrainConfig.model_fields if k in t}).peak_lr
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


def eval_results(report: dict[str, Any]) -> list:
    """An eval's results.json as the Hub's EvalResults: pass@k of each benchmark, on its base
    tests and (EvalPlus) its plus tests, in percent."""
    from huggingface_hub import EvalResult

    s = report.get("settings") or {}
    args = {k: s[k] for k in ("n", "temperature", "max_tokens", "protocol") if k in s}
    out = []
    for name, m in (report.get("benchmarks") or {}).items():
        dataset_type, dataset_name = BENCHMARK_DATASETS.get(name, (name, name))
        for tests in ("base", "plus"):
            for k, v in sorted((m.get(tests) or {}).items()):
                if k.startswith("pass@") and v is not None:
                    out.append(EvalResult(
                        task_type="text-generation", dataset_type=dataset_type, dataset_name=dataset_name,
                        metric_type=k, metric_name=f"{k} ({TESTS[tests]})", metric_config=tests,
                        metric_value=round(100 * v, 1), metric_args={**args, "tasks": m.get("tasks")},
                    ))
    return out


def model_card(out_dir: Path, results: list | None = None):
    """The card of the model in ``out_dir`` from its train_config.json, with ``results``."""
    from huggingface_hub import ModelCard, ModelCardData

    t = json.loads((out_dir / TRAIN_CONFIG).read_text())
    lora = t.get("method") == "lora"
    data = ModelCardData(
        base_model=t["model"] if _is_hub_id(t.get("model")) else None,
        library_name="peft" if lora and not t.get("merged") else "transformers",
        pipeline_tag="text-generation",
        tags=["code", "selfcodealign", t.get("objective", "sft")],
        model_name=out_dir.resolve().name,
        eval_results=results or None,
    )
    objective = {"dpo": ["dpo_beta"], "grpo": RECIPE_GRPO}.get(t.get("objective"), [])
    keys = RECIPE + (RECIPE_LORA if lora else []) + objective
    recipe = [[k, f"`{t[k]}`"] for k in keys if t.get(k) is not None]
    peak_lr = _peak_lr(t)
    if peak_lr is not None:
        recipe.insert(2, ["peak lr", f"`{peak_lr}`"])
    if results:
        scores = markdown_table(["benchmark", "tests", "metric", "value", "tasks", "settings"], [
            [r.dataset_name, r.metric_config, r.metric_type, r.metric_value, (r.metric_args or {}).get("tasks", ""),
             ", ".join(f"{k} {v}" for k, v in (r.metric_args or {}).items() if k != "tasks")] for r in results])
    else:
        scores = (f"Not evaluated yet: `selfcodealign eval --model {out_dir.resolve().name} --out DIR` adds its "
                  "scores here.")
    dropped = ", ".join(f"{k} {v}" for k, v in (t.get("dropped") or {}).items()) or "none"
    versions = ", ".join(f"{k} {v}" for k, v in (t.get("versions") or {}).items())
    adapter = " A LoRA adapter: load it on the base model." if data.library_name == "peft" else ""
    # the data's line count, where the summary has one
    lines = t.get("data_lines") is not None
    data_table = markdown_table(
        ["file", "SHA-256"] + (["lines"] if lines else []) + ["examples trained on", "dropped"],
        [[f"`{t.get('data')}`", f"`{t.get('data_sha256')}`"] + ([t["data_lines"]] if lines else [])
         + [t.get("examples"), dropped]])
    body = f"""# {data.model_name}

{t.get('objective', 'sft').upper()} ({t.get('method')}) of `{t['base_model']}` with `selfcodealign train`
(SelfCodeAlign) on the data below.{adapter}

## Base model

{markdown_table(["model", "SHA-256"], [[f"`{t['base_model']}`", f"`{t.get('base_model_sha256')}`"]])}

## Data

{data_table}

## Recipe

{markdown_table(["setting", "value"], recipe)}

Every setting is in `{TRAIN_CONFIG}`, with the loss of every step. Versions: {versions}.

## Evaluation

{scores}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def write_model_card(out_dir: Path) -> Path:
    """README.md beside the model `train` saved in ``out_dir``."""
    path = Path(out_dir) / CARD
    model_card(Path(out_dir)).save(path)
    return path


def add_eval_results(model_dir: Path, report: dict[str, Any]) -> Path | None:
    """Adds an eval's scores to the card of a model `train` wrote (replacing that benchmark's
    earlier scores); None where ``model_dir`` is not such a model."""
    from huggingface_hub import ModelCard

    model_dir = Path(model_dir)
    if not (model_dir / TRAIN_CONFIG).is_file() or not (model_dir / CARD).is_file():
        return None
    new = eval_results(report)
    if not new:
        return None
    old = ModelCard.load(model_dir / CARD).data.eval_results or []
    replaced = {(r.dataset_type, r.metric_config, r.metric_type) for r in new}
    kept = [r for r in old if (r.dataset_type, r.metric_config, r.metric_type) not in replaced]
    path = model_dir / CARD
    model_card(model_dir, kept + new).save(path)
    log.info("model card: %s has the scores", path)
    return path
