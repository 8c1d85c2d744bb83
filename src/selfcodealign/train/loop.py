"""Supervised fine-tuning: packed micro-batches, loss on replies only, one plain loop.

The loop is ours (about a page) rather than a Trainer subclass because packing across
ranks, token-weighted loss and "logits only where there is a label" are the parts that
matter for speed and correctness here, and they are awkward to bolt onto a Trainer.
``accelerate`` does the rest: device placement, DDP / FSDP from ``accelerate launch``,
mixed precision and tensorboard.

Loss: sum of token cross-entropies over the whole optimizer step divided by the step's
supervised tokens (all ranks), so every reply token weighs the same whatever the packing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfcodealign.errors import UserError
from selfcodealign.models import TRAIN_CONFIG, load_model, load_tokenizer, require, resolve_source, save, source_hash
from selfcodealign.train import attention, dpo, fused_loss
from selfcodealign.train.config import (
    AUTO_BUDGET_FALLBACK,
    AUTO_BUDGET_MAX,
    TrainConfig,
)
from selfcodealign.train.data import load_dataset
from selfcodealign.train.master import MasterWeights
from selfcodealign.models.card import write_model_card
from selfcodealign.train.packing import pack, plan_epoch
from selfcodealign.train.step import Skips, model_inputs, optimizer_step

log = logging.getLogger(__name__)


def resolve_precision(cfg: TrainConfig, cuda: bool, fsdp: bool = False) -> str:
    """The precision ``auto`` stands for here (SFT, DPO and GRPO)."""
    if cfg.precision == "auto":
        # FSDP keeps its own fp32 shards and casts them (accelerate's bf16 policy)
        return ("bf16-mixed" if fsdp else "bf16-master") if cuda else "fp32"
    if cfg.precision == "bf16-master" and fsdp:
        log.warning("precision bf16-master is not used under FSDP: bf16-mixed instead")
        return "bf16-mixed"
    return cfg.precision


def _resolve_attention(cfg: TrainConfig, cuda: bool) -> str:
    if cfg.attention in ("auto", "varlen") and cuda and attention.varlen_available():
        return attention.register()
    if cfg.attention == "varlen":
        raise UserError("attention=varlen needs a CUDA GPU and torch >= 2.10")
    # On CPU, packed rows get a block-diagonal mask from the restarting position ids.
    return "eager" if cfg.attention == "eager" else "sdpa"


def _resolve_kernels(cfg: TrainConfig, cuda: bool, fsdp: bool) -> str:
    if fsdp:
        # FSDP shards the output matrix outside the model's forward: the loss must stay
        # inside it
        if cfg.kernels not in ("auto", "none"):
            log.warning("kernels=%s is not used under FSDP: plain logits and cross-entropy", cfg.kernels)
        return "none"
    if cfg.kernels == "liger" and not fused_loss.liger_available():
        raise UserError("kernels=liger needs a CUDA GPU and Liger Kernel: pip install liger-kernel")
    if cfg.kernels == "auto":
        return "liger" if cuda and fused_loss.liger_available() else "torch"
    return cfg.kernels


# Activation memory a token costs in training, per decoder layer and hidden unit (bf16):
# measured with Liger's kernels on Qwen2.5-Coder-0.5B (~51 GiB at 48k tokens, 24 layers of
# 896); the plain-PyTorch kernels keep more tensors for the backward pass.
ACT_BYTES = {"liger": 52, "torch": 80, "none": 80}
# Kept free: the CUDA context's growth, the allocator's fragmentation, the loss's chunks.
BUDGET_RESERVE = 3 << 30


def _token_budget(cfg: TrainConfig, acc, model, precision: str, kernels: str, fsdp: bool, trainable) -> int:
    """The micro-batch size in tokens: the setting, or for ``auto`` what the GPU's free
    memory holds once the optimizer's state and the gradients exist (they are made at
    the first step), rounded down to 1,024 and the same on every rank."""
    import torch

    if cfg.token_budget != "auto":
        return cfg.token_budget
    if acc.device.type != "cuda" or fsdp:
        return AUTO_BUDGET_FALLBACK
    conf = getattr(model, "config", None)
    layers, hidden = getattr(conf, "num_hidden_layers", None), getattr(conf, "hidden_size", None)
    if not layers or not hidden:
        return AUTO_BUDGET_FALLBACK
    n = sum(p.numel() for p in trainable)
    # Adam's two moments, plus the gradients (bf16 while a micro-batch runs for
    # bf16-master; kept in the parameters' dtype otherwise)
    pending = {"bf16-master": 8 + 2, "bf16": 4 + 2}.get(precision, 8 + 4) * n
    free, _ = torch.cuda.mem_get_info(acc.device)
    per_token = ACT_BYTES[kernels] * layers * hidden * (2 if precision == "fp32" else 1)
    # 80% of what fits: the measured sweet spot (48k tokens for the 0.5B model on 80 GB; 56k
    # was no faster and 64k ran out of memory)
    budget = int(0.8 * max(0, free - pending - BUDGET_RESERVE) / per_token) // 1024 * 1024
    budget = min(max(budget, 1024), AUTO_BUDGET_MAX)
    if acc.num_processes > 1:
        budget = int(acc.gather(torch.tensor([budget], device=acc.device)).min().item())
    log.info("token budget: %d tokens per micro-batch (%.1f GiB free, ~%d KiB a token)",
             budget, free / 2**30, per_token >> 10)
    return budget


def _apply_liger(model) -> None:
    """Liger's fused RMSNorm, SwiGLU and rotary kernels in the model's own modules (the
    loss is applied by the loop)."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True,
                                    cross_entropy=False, fused_linear_cross_entropy=False)


def check_out(out_dir: Path | None, overwrite: bool) -> None:
    """Refuses an output directory that already holds a model, unless ``overwrite``."""
    if out_dir is None:
        return
    held = [n for n in ("config.json", "adapter_config.json", TRAIN_CONFIG) if (out_dir / n).exists()]
    if held and not overwrite:
        raise UserError(f"{out_dir} already holds a model ({held[0]}); choose another --out or pass --overwrite")


@dataclass
class _Setup:
    """How this run trains, settled before the model loads."""

    acc: Any  # accelerate.Accelerator
    precision: str
    fsdp: bool
    attn: str
    trackers: str | None
    dpo: bool

    @property
    def varlen(self) -> bool:
        return self.attn not in ("sdpa", "eager")


def train(cfg: TrainConfig, data_path: str | Path, out_dir: str | Path | None, *, overwrite: bool = False) -> dict:
    """Fine-tune; returns a summary (also saved as ``train_config.json`` beside the model)."""
    if cfg.objective == "grpo":  # online, with its own loop: train.grpo.train (it imports this module)
        raise ValueError("objective grpo trains with selfcodealign.train.grpo.train")
    out_dir = Path(out_dir) if out_dir else None
    check_out(out_dir, overwrite)
    run = _setup(cfg, out_dir)
    src = resolve_source(cfg.model)
    if src.adapter:
        raise UserError("train from a full model, not a LoRA directory (merge it first: train --merge-lora)")
    tok = load_tokenizer(src)
    data = _load_data(cfg, run, data_path, tok)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    model, kernels = _load_model(cfg, run, src)
    trainable = [p for p in model.parameters() if p.requires_grad]
    master = MasterWeights(trainable) if run.precision == "bf16-master" else None
    budget = max(_token_budget(cfg, run.acc, model, run.precision, kernels, run.fsdp, trainable),
                 2 * cfg.max_len if run.dpo else cfg.max_len)
    plan, total, steps_per_epoch = _plan(cfg, run, data, budget)
    model, opt, sched = make_optimizer(cfg, run.acc, run.trackers, model, trainable, master, total)
    if run.acc.is_main_process:
        log.info(
            "training %s (%s, %s, attention %s) on %d examples (%s dropped), %d steps, %d GPU(s)/process(es)",
            src.name, cfg.method, run.precision, run.attn, len(data.examples), dict(data.dropped) or "none", total,
            run.acc.num_processes,
        )
    t_start = time.perf_counter()
    skips = Skips(main=run.acc.is_main_process)
    history = _fit(cfg, run, model, opt, sched, plan, data, pad_id, kernels, master, total, budget, skips)
    elapsed = time.perf_counter() - t_start
    summary = _summary(cfg, run, src, data_path, data, kernels, budget, total, steps_per_epoch, history, elapsed)
    summary["steps_skipped"] = skips.total
    if out_dir is not None:
        save_trained(run.acc, model, tok, cfg, run.precision, out_dir, summary, master)
    if run.trackers:
        run.acc.end_training()
    return summary


def _setup(cfg: TrainConfig, out_dir: Path | None) -> _Setup:
    torch = require("torch")
    transformers = require("transformers")
    accelerate = require("accelerate")
    cuda = torch.cuda.is_available()
    # accelerate's own test (`accelerate launch` with an FSDP config sets it; we never pass
    # a plugin): known here, before the Accelerator, because precision depends on it
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    precision = resolve_precision(cfg, cuda, fsdp)
    trackers = None
    if out_dir is not None:
        try:
            import tensorboard  # noqa: F401

            trackers = "tensorboard"
        except ImportError:
            log.warning("tensorboard is not installed: no training curves will be written")
    acc = accelerate.Accelerator(
        mixed_precision="bf16" if precision == "bf16-mixed" else "no",
        log_with=trackers,
        project_dir=str(out_dir) if out_dir else None,
    )
    transformers.set_seed(cfg.seed)
    attn = _resolve_attention(cfg, acc.device.type == "cuda")
    return _Setup(acc, precision, fsdp, attn, trackers, cfg.objective == "dpo")


def _load_data(cfg: TrainConfig, run: _Setup, data_path: str | Path, tok):
    if not run.dpo:
        return load_dataset(data_path, tok, cfg.max_len)
    if run.acc.num_processes > 1:
        raise UserError("train --objective dpo runs in one process (one GPU or the CPU), not under "
                        "accelerate launch")
    return dpo.load_pairs(data_path, tok, cfg.max_len)


def _load_model(cfg: TrainConfig, run: _Setup, src):
    """The model, ready to train on the run's device, and the loss kernels it uses."""
    dtype = "bfloat16" if run.precision in ("bf16", "bf16-master") else "float32"
    model = load_model(src, dtype=dtype, attn=run.attn)
    model.config.use_cache = False
    # DPO needs each answer's log-probabilities: plain logits, not the fused loss
    kernels = "none" if run.dpo else _resolve_kernels(cfg, run.acc.device.type == "cuda", run.fsdp)
    if kernels == "liger":
        _apply_liger(model)
    model = prepare_for_training(cfg, model)
    model.to(run.acc.device)
    if cfg.compile:
        # Regional compilation: one graph for the decoder layer, reused by every layer,
        # fuses the norm / rotary / SwiGLU / residual element-wise work that dominates a
        # small model. Packed rows are padded to a multiple of 256 and attention gets
        # a fixed max length so that shapes rarely change.
        for m in model.modules():
            if type(m).__name__.endswith("DecoderLayer"):
                m.compile(dynamic=True)
    return model, kernels


def prepare_for_training(cfg: TrainConfig, model):
    """The loaded model without dropout (the paper trains without it), LoRA-wrapped for
    ``method: lora`` (SFT, DPO and GRPO); SDPA kept off cuDNN (``attention.avoid_cudnn_sdpa``)."""
    torch = require("torch")
    attention.avoid_cudnn_sdpa()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    if cfg.method == "lora":
        peft = require("peft")
        targets = cfg.lora_targets if cfg.lora_targets == "all-linear" else cfg.lora_targets.split(",")
        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout, target_modules=targets,
            ),
        )
    return model


def _plan(cfg: TrainConfig, run: _Setup, data, budget: int):
    """(the micro-batches of every optimizer step, the number of steps, steps per epoch)."""
    steps_per_epoch = math.ceil(len(data.examples) / cfg.examples_per_step)
    total = cfg.total_steps(steps_per_epoch)
    if run.dpo:
        plan = dpo.plan(len(data.pairs), [len(c) + len(r) for c, r in data.pairs],
                        pairs_per_step=cfg.examples_per_step, token_budget=budget, steps=total, seed=cfg.seed)
        return plan, total, steps_per_epoch
    plan_kw = dict(
        examples_per_step=cfg.examples_per_step, token_budget=budget,
        world_size=run.acc.num_processes, rank=run.acc.process_index, seed=cfg.seed,
    )
    plan = []
    epoch = 0
    while len(plan) < total:
        plan += plan_epoch(data.lengths, data.label_tokens, epoch=epoch, **plan_kw)
        epoch += 1
    return plan[:total], total, steps_per_epoch


def make_optimizer(cfg: TrainConfig, acc, trackers: str | None, model, trainable, master, total: int):
    """(the prepared model, its optimizer, the learning-rate schedule), trackers started
    (SFT, DPO and GRPO)."""
    torch = require("torch")
    transformers = require("transformers")
    opt = torch.optim.AdamW(
        master.master if master is not None else trainable, lr=cfg.peak_lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999),
        fused=acc.device.type == "cuda",
    )
    sched = transformers.get_scheduler(
        cfg.schedule if cfg.schedule != "constant" else "constant_with_warmup",
        opt, num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total,
    )
    model, opt = acc.prepare(model, opt)
    if trackers:
        acc.init_trackers("train", config={k: v for k, v in cfg.model_dump().items() if v is not None})
    return model, opt, sched


def _fit(cfg: TrainConfig, run: _Setup, model, opt, sched, plan, data, pad_id: int, kernels: str, master,
         total: int, budget: int, skips: Skips) -> list[dict]:
    """Every optimizer step of the plan; returns the logged steps."""
    torch = require("torch")
    acc = run.acc
    if run.dpo:
        ref = dpo.reference_logps(model, plan, data, acc.device, pad_id, run.varlen)
    model.train()
    stack = contextlib.ExitStack()
    head_weight = None
    if kernels != "none":
        head_weight = stack.enter_context(fused_loss.hidden_states_out(acc.unwrap_model(model))).weight
    with stack:
        try:
            if run.dpo:
                return dpo.run_steps(cfg, acc, model, opt, sched, plan, data, ref, pad_id, run.varlen, master,
                                     total, run.trackers, skips)
            return _run_steps(cfg, acc, model, opt, sched, plan, data, pad_id, run.varlen, kernels,
                              head_weight, master, acc.num_processes, total, run.trackers, skips)
        except torch.cuda.OutOfMemoryError:
            # The usual cause is a --token-budget set for a smaller model or a larger card.
            raise UserError(
                f"GPU out of memory with micro-batches of up to {budget:,} tokens ({run.precision}, "
                f"{cfg.method}); set a lower --token-budget, or use --method lora or FSDP"
            ) from None


def _summary(cfg: TrainConfig, run: _Setup, src, data_path, data, kernels: str, budget: int, total: int,
             steps_per_epoch: int, history: list[dict], elapsed: float) -> dict:
    torch = require("torch")
    transformers = require("transformers")
    return {
        **cfg.model_dump(),
        "base_model": src.name, "base_model_sha256": source_hash(src).sha256,
        "precision": run.precision,
        "attention": run.attn,
        "kernels": kernels,
        "world_size": run.acc.num_processes,
        "data": str(Path(data_path).resolve()),
        "data_sha256": data.sha256,
        "data_lines": data.lines,
        "peak_lr": cfg.peak_lr,
        "examples": len(data.examples),
        "token_budget_used": budget,
        "dropped": dict(data.dropped),
        "steps": total,
        "epochs_done": total / steps_per_epoch,
        "final_loss": history[-1]["loss"] if history else None,
        "seconds": elapsed,
        "history": history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def _micro_batches(cfg, device, plan, data, pad_id, varlen):
    """(real tokens, model inputs, targets) for every micro-batch of the plan, in order."""
    for step in plan:
        for idx in step.micro:
            packed = pack([data.examples[i] for i in idx], pad_id, pad_to_multiple=256 if cfg.compile else 1)
            batch, targets = model_inputs(packed, device, varlen, cfg.max_len if cfg.compile else None)
            yield packed.n_tokens, batch, targets


class _Ahead:
    """Hands out items made ahead of time. ``fill()`` makes the next one; the loop calls
    it once the current micro-batch's work is queued on the GPU, so the host packs and
    uploads micro-batch k+1 while the GPU runs k, and the next step's first micro-batch
    is ready before the sync at a step's end (packing ~50k tokens in Python takes 10-20
    ms: time the GPU would otherwise sit idle in every step)."""

    def __init__(self, items) -> None:
        self._it = iter(items)
        self._next = None

    def fill(self) -> None:
        if self._next is None:
            self._next = next(self._it, None)

    def take(self):
        self.fill()
        item, self._next = self._next, None
        if item is None:
            raise StopIteration
        return item


def _run_steps(cfg, acc, model, opt, sched, plan, data, pad_id, varlen, kernels, head_weight, master, world,
               total, trackers, skips: Skips) -> list[dict]:
    import torch

    history = []
    micro_batches = _Ahead(_micro_batches(cfg, acc.device, plan, data, pad_id, varlen))
    for step_no, step in enumerate(plan, 1):
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=acc.device)
        tokens = 0
        scale = world / max(step.label_tokens, 1)
        for j in range(len(step.micro)):
            n_tokens, batch, targets = micro_batches.take()
            tokens += n_tokens
            sync = j == len(step.micro) - 1
            # master weights sum every micro-batch's (all-reduced) gradients in fp32
            ctx = contextlib.nullcontext() if sync or world == 1 or master else acc.no_sync(model)
            with ctx, acc.autocast():
                out = model(**batch).logits[0]  # final hidden states when head_weight is set
                if head_weight is not None:
                    ce = fused_loss.linear_cross_entropy(out, head_weight, targets, use_liger=kernels == "liger")
                else:
                    ce = torch.nn.functional.cross_entropy(out.float(), targets, reduction="sum")
                acc.backward(ce * scale)
            micro_batches.fill()  # the GPU has queued work: pack the next one meanwhile
            if master is not None:
                master.accumulate()
            loss_sum += ce.detach()
        grad_norm = skips.record(optimizer_step(cfg, acc, model, opt, sched, master), step_no)
        skips.stop_if_stuck(step_no)
        if step_no % cfg.log_every == 0 or step_no == total:
            stats = torch.stack([loss_sum, torch.tensor(float(tokens), device=acc.device)])
            stats = acc.reduce(stats, reduction="sum")
            if acc.device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            rec = {
                "step": step_no,
                "loss": stats[0].item() / max(step.label_tokens, 1),
                "lr": sched.get_last_lr()[0],
                "tokens": int(stats[1].item()),
                "seconds": dt,
                "grad_norm": grad_norm,
            }
            history.append(rec)
            if trackers:
                acc.log({"train/loss": rec["loss"], "train/lr": rec["lr"],
                         "train/tokens_per_s": rec["tokens"] / dt}, step=step_no)
            if acc.is_main_process:
                log.info("step %d/%d loss %.4f lr %.2e %.0f tokens/s", step_no, total, rec["loss"],
                         rec["lr"], rec["tokens"] / dt)
    return history


def save_trained(acc, model, tok, cfg: TrainConfig, precision: str, out_dir: Path, summary: dict,
                 master=None) -> None:
    """The trained weights, gathered onto the main process, saved through ``models.save``
    with the summary and the model card (SFT, DPO and GRPO)."""
    import torch

    acc.wait_for_everyone()
    state = acc.get_state_dict(model)  # gathers FSDP shards on the main process
    if not acc.is_main_process:
        return
    model = acc.unwrap_model(model)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    save_dtype = cfg.save_dtype
    if save_dtype == "auto":
        save_dtype = "bf16" if precision.startswith("bf16") else "fp32"
    dtype = torch.bfloat16 if save_dtype == "bf16" else torch.float32
    if master is not None and dtype == torch.float32:
        # the fp32 master weights, not their bf16 copies (no FSDP here: the model is whole)
        model.float()
        with torch.no_grad():
            torch._foreach_copy_(master.params, master.master)
        state = None
    if cfg.method == "lora" and cfg.merge_lora:
        model = model.merge_and_unload()
        state = None
    summary["saved_dtype"] = save_dtype
    summary["merged"] = bool(cfg.method == "lora" and cfg.merge_lora)
    save(model, tok, out_dir, dtype, state_dict=state, train_config=summary)
    write_model_card(out_dir)
