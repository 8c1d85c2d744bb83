"""Training settings: defaults, then a YAML file, then flags. Saved beside the model."""

from __future__ import annotations

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
# token_budget "auto": the ceiling (more gained nothing on an H100) and the value where
# free memory is not what limits it (CPU) or cannot be read simply (FSDP).
AUTO_BUDGET_MAX = 65536
AUTO_BUDGET_FALLBACK = 8192


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="base model: GGUF file, HF directory or hub id (default: embedded)")
    method: Literal["full", "lora"] = "full"
    objective: Literal["sft", "dpo"] = Field(
        "sft", description="sft: supervised on a dataset (DATASET.jsonl); dpo: preference pairs "
        "(DATASET.pairs.jsonl), the model before training as the reference")
    dpo_beta: float = Field(0.1, gt=0, description="dpo: how far the model may move from the reference")
    epochs: float = Field(4, gt=0, description="passes over the data (StarCoder2-Instruct ran 4)")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    lr: float | None = Field(None, gt=0, description=f"peak learning rate (default {FULL_LR} full, {LORA_LR} LoRA; "
                             f"dpo {DPO_FULL_LR} full, {DPO_LORA_LR} LoRA)")
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
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.objective == "dpo":
            return DPO_LORA_LR if self.method == "lora" else DPO_FULL_LR
        return LORA_LR if self.method == "lora" else FULL_LR


def load_config(path: str | Path | None, overrides: dict) -> TrainConfig:
    """Defaults -> YAML file (its ``train:`` section, or the whole file) -> flags."""
    from selfcodealign.config import load_settings, load_yaml

    return load_settings(TrainConfig, file=load_yaml(path, "train") if path else None, flags=overrides,
                         what="training setting")
