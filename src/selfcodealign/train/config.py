"""Training settings: defaults, then a YAML file, then flags. Saved beside the model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# The paper's full fine-tuning recipe (SelfCodeAlign, section 4 / StarCoder2-Instruct).
FULL_LR = 1e-5
# LoRA updates a low-rank delta from zero and needs a much larger step to move as far.
LORA_LR = 2e-4
# DPO moves a model that already answers: the usual full / LoRA rates (Zephyr, TRL's examples).
DPO_FULL_LR = 5e-7
DPO_LORA_LR = 5e-6
# GRPO: DeepSeekMath's full fine-tuning rate; LoRA ten times it (as SFT's ratio, roughly).
GRPO_FULL_LR = 1e-6
GRPO_LORA_LR = 1e-5
# token_budget "auto": the ceiling (more gained nothing on an H100) and the value where
# free memory is not what limits it (CPU) or cannot be read simply (FSDP).
AUTO_BUDGET_MAX = 65536
AUTO_BUDGET_FALLBACK = 8192


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="base model: GGUF file, HF directory or hub id (default: embedded)")
    method: Literal["full", "lora"] = "full"
    objective: Literal["sft", "dpo", "grpo"] = Field(
        "sft", description="sft: supervised on a dataset (DATASET.jsonl); dpo: preference pairs "
        "(DATASET.pairs.jsonl), the model before training as the reference; grpo: online, rewarded "
        "by the sandbox on a run's kept tasks (RUN_DIR)")
    dpo_beta: float = Field(0.1, gt=0, description="dpo: how far the model may move from the reference")
    grpo_group_size: int = Field(8, ge=2, description="grpo: samples per prompt (a group)")
    grpo_prompts_per_step: int = Field(8, ge=1, description="grpo: prompts per optimizer step")
    grpo_kl_coef: float = Field(0.02, ge=0, description="grpo: weight of the KL to the start model (k3)")
    grpo_temperature: float = Field(1.0, gt=0, description="grpo: sampling temperature of the rollouts")
    grpo_max_new_tokens: int = Field(512, ge=1, description="grpo: token budget of a rollout")
    grpo_scale_std: bool = Field(True, description="grpo: divide advantages by the group's std "
                                 "(false: Dr. GRPO's unscaled advantages)")
    grpo_clip: float = Field(0.2, gt=0, description="grpo: PPO clip range of the probability ratio")
    # A rollout that loops holds its whole batch's rewards for the limit: with the run's 10 s
    # that wait was most of a step. The passing programs of a run take milliseconds (p99
    # 25 ms, the slowest 1.6 s, in the 600-seed run of docs/results.md).
    grpo_reward_timeout: float = Field(3.0, gt=0, description="grpo: seconds a rollout's program may run "
                                       "against its tests (at most the run's execute timeout)")
    grpo_shuffle_rewards: bool = Field(False, description="grpo: permute rewards within each batch "
                                       "(seeded): the control arm with no signal")
    # The band keeps tasks the model sometimes fails: an always-passed task gives its
    # groups no signal. 0 and 1: every kept task, with or without a recorded pass rate.
    grpo_pass_rate_min: float = Field(0.1, ge=0, le=1, description="grpo: keep tasks whose pass rate in the "
                                      "run (recorded in dataset.jsonl's quality.pass_rate) is at least this")
    grpo_pass_rate_max: float = Field(0.9, ge=0, le=1, description="grpo: ... and at most this")
    grpo_overlap: bool = Field(True, description="grpo: score step t's rollouts while step t+1's are "
                               "generated (those then come from the weights before step t's update)")
    grpo_rollouts: Literal["auto", "engine", "generate"] = Field(
        "auto", description="grpo: what samples the rollouts: our engine on the policy (auto: where it runs "
        "the model) or transformers' generate")
    grpo_save_every: int = Field(25, ge=1, description="grpo: write a checkpoint every this many steps")
    epochs: float = Field(4, gt=0, description="passes over the data (StarCoder2-Instruct ran 4); grpo: over "
                          "the tasks, grpo_prompts_per_step a step")
    # GRPO samples fresh answers every step: its length is a number of steps, and an epoch
    # only orders the tasks; SFT and DPO pass over fixed data, which max_steps cuts short.
    max_steps: int | None = Field(None, ge=1, description="sft, dpo: at most this many optimizer steps (the "
                                  "fewer of this and epochs' steps); grpo: this many steps, in place of epochs")
    lr: float | None = Field(None, gt=0, description=f"peak learning rate (default {FULL_LR} full, {LORA_LR} LoRA; "
                             f"dpo {DPO_FULL_LR} full, {DPO_LORA_LR} LoRA; "
                             f"grpo {GRPO_FULL_LR} full, {GRPO_LORA_LR} LoRA)")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    examples_per_step: int = Field(64, ge=1, description="effective batch (examples per optimizer step, all GPUs)")
    max_len: int = Field(1280, ge=16, description="longer examples are dropped, not cut")
    # auto sizes it from the GPU's free memory: the 0.5B model ran fastest at 44-48k tokens
    # on an H100, while 8,192 suits a 7B model on the same card (docs/train_eval.md).
    token_budget: Annotated[int, Field(ge=16)] | Literal["auto"] = Field(
        "auto",
        description="tokens per packed micro-batch (per GPU); auto: sized from the GPU's free memory "
        f"(at most {AUTO_BUDGET_MAX}; {AUTO_BUDGET_FALLBACK} on CPU and under FSDP)",
    )
    precision: Literal["auto", "fp32", "bf16-master", "bf16-mixed", "bf16"] = Field(
        "auto",
        description="bf16-master: bf16 model, fp32 master weights and gradient sums (fastest); "
        "bf16-mixed: fp32 model under autocast; bf16: bf16 everywhere (small updates are lost); "
        "auto: bf16-master on GPU (bf16-mixed under FSDP), fp32 on CPU",
    )
    attention: Literal["auto", "varlen", "sdpa", "eager"] = "auto"
    compile: bool = Field(False, description="torch.compile the model (GPU)")
    kernels: Literal["auto", "liger", "torch", "none"] = Field(
        "auto",
        description="loss without full logits + fused kernels: liger (Liger Kernel, CUDA), torch "
        "(chunked loss in PyTorch), none (plain logits); auto: liger if installed on CUDA, else torch",
    )
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"
    merge_lora: bool = Field(False, description="save the LoRA-merged full model instead of the adapter")
    save_dtype: Literal["auto", "bf16", "fp32"] = "auto"
    seed: int = 0
    log_every: int = 1

    @property
    def grpo_band(self) -> tuple[float, float] | None:
        lo, hi = self.grpo_pass_rate_min, self.grpo_pass_rate_max
        return None if (lo, hi) == (0.0, 1.0) else (lo, hi)

    def total_steps(self, steps_per_epoch: float) -> int:
        """Optimizer steps of a run: ``epochs`` passes of ``steps_per_epoch`` steps, rounded
        up; ``max_steps`` caps them (sft, dpo) or stands in their place (grpo)."""
        total = math.ceil(round(self.epochs * steps_per_epoch, 6))  # 0.3 * 10 is not above 3
        if not self.max_steps:
            return total
        return self.max_steps if self.objective == "grpo" else min(total, self.max_steps)

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.objective == "dpo":
            return DPO_LORA_LR if self.method == "lora" else DPO_FULL_LR
        if self.objective == "grpo":
            return GRPO_LORA_LR if self.method == "lora" else GRPO_FULL_LR
        return LORA_LR if self.method == "lora" else FULL_LR


def load_config(path: str | Path | None, overrides: dict) -> TrainConfig:
    """Defaults -> YAML file (its ``train:`` section, or the whole file) -> flags."""
    from selfcodealign.config import load_settings, load_yaml

    return load_settings(TrainConfig, file=load_yaml(path, "train") if path else None, flags=overrides,
                         what="training setting")
