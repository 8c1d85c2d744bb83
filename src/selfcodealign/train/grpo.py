"""GRPO: online self-alignment from execution feedback.

Each step takes ``grpo_prompts_per_step`` tasks of a run (``train.tasks``), samples
``grpo_group_size`` answers to each from the policy being trained (``train.rollouts``),
scores them in the sandbox against the tests verification trusted, and moves the policy
towards the answers that beat their group:

- advantage of sample i of a group: ``(r_i - mean(r)) / (std(r) + eps)`` (without the
  division with ``grpo_scale_std=false``, as Dr. GRPO); a group whose rewards are all
  equal has no signal (advantage 0) and is counted; a sample the sandbox failed to run
  (``sandbox_error``: not the model's doing) gets advantage 0 and is left out of its
  group's mean and std;
- loss per sampled token: ``-min(rho * A, clip(rho, 1 - c, 1 + c) * A) + beta * k3``, where
  ``rho`` is the probability ratio of the policy to the weights that sampled the token
  and ``k3 = exp(q - p) - (q - p) - 1`` (Schulman's estimator of KL(policy || start
  model), ``p``, ``q`` the policy's and the start model's log-probabilities); averaged
  over all sampled tokens of the step. The start model is the base with the LoRA adapter
  disabled, or (full fine-tuning) a frozen copy.

Rewards of step t are computed (a background thread; the sandbox's own processes do the
work) while step t+1's answers are generated. Those answers then come from the weights
before step t's update, one step behind the policy: that is what the ratio ``rho``
corrects, clipped as in PPO (``grpo_overlap=false`` samples after the update: rho = 1, and
the update's own log-probabilities, detached, stand for the sampling weights').

Log-probabilities use the logits divided by the sampling temperature, the distribution
the answers were drawn from. A checkpoint (``OUT/checkpoint/state.pt``: trainable
weights, optimizer, schedule, history and the next step's rollouts) is written every
``grpo_save_every`` steps; ``resume`` continues from it with the same tasks, order and
samples as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shutil
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.jsonl import Appender, write_atomic
from selfcodealign.models import load_model, load_tokenizer, require, resolve_source, source_hash
from selfcodealign.settings_diff import changed_keys
from selfcodealign.train.config import AUTO_BUDGET_FALLBACK, TrainConfig
from selfcodealign.train.loop import (
    check_out,
    make_optimizer,
    prepare_for_training,
    resolve_precision,
    save_trained,
)
from selfcodealign.train.policy_gradient import (
    group_advantages,
    micro_batches,
    pg_loss,
    sampled_logps,
    shuffled,
)
from selfcodealign.train.rollouts import EngineRollouts, GenerateRollouts, Rollout
from selfcodealign.train.step import Skips
from selfcodealign.train.tasks import MASKED, REWARDS, Tasks, load_tasks, score

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
STEP_LOG = "grpo_steps.jsonl"


# ---- the task order ---------------------------------------------------------------

def task_plan(n_tasks: int, per_step: int, steps: int, seed: int) -> list[list[int]]:
    """``steps`` lists of ``per_step`` task indices: the tasks shuffled per epoch
    (seeded), one epoch after another, cut into steps."""
    stream: list[int] = []
    epoch = 0
    while len(stream) < steps * per_step:
        order = list(range(n_tasks))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        stream += order
        epoch += 1
    return [stream[i * per_step : (i + 1) * per_step] for i in range(steps)]


# ---- one step's data -----------------------------------------------------------------

@dataclass
class Batch:
    """One step's rollouts, the log-probabilities of the weights that sampled them, and
    how long sampling took."""

    step: int
    tasks: list[int]
    rollouts: list[Rollout]
    old_logps: list | None  # tensors on the run's device (CPU in a checkpoint); None: see sampled_behind
    rollout_s: float
    tokens: int

    def state(self) -> dict:
        return {"step": self.step, "tasks": self.tasks, "rollouts": [asdict(r) for r in self.rollouts],
                "old_logps": None if self.old_logps is None else [x.cpu() for x in self.old_logps],
                "rollout_s": self.rollout_s, "tokens": self.tokens}

    @classmethod
    def from_state(cls, s: dict, device) -> Batch:
        rs = [Rollout(r["prompt"], tuple(r["prompt_ids"]), tuple(r["ids"]), r["text"], r["finish_reason"])
              for r in s["rollouts"]]
        old = None if s["old_logps"] is None else [x.to(device) for x in s["old_logps"]]
        return cls(s["step"], s["tasks"], rs, old, s["rollout_s"], s["tokens"])


@dataclass
class Scored:
    outcomes: list[str]
    seconds: float  # wall time of the sandbox batch (in the background)


@dataclass
class Run:
    """What the steps share: settings, model, optimizer, data, and the log so far."""

    cfg: TrainConfig
    acc: object
    model: object
    ref: object | None  # the start model for full fine-tuning (LoRA: the adapter disabled)
    opt: object
    sched: object
    master: object | None
    tasks: Tasks
    prompts: list[list[int]]
    plan: list[list[int]]
    source: object
    budget: int
    out_dir: Path | None
    trackers: str | None
    history: list[dict] = field(default_factory=list)
    skips: Skips = field(default_factory=Skips)  # steps skipped for gradients that are not finite
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="grpo-reward"))

    @property
    def unwrapped(self):
        return self.acc.unwrap_model(self.model)


def sampled_behind(cfg: TrainConfig, step: int) -> bool:
    """Whether step ``step``'s rollouts come from weights its update no longer starts from:
    with overlap, each batch after the first is sampled before the previous step's update.
    Otherwise (one update per batch) the update's own log-probabilities, detached, are
    those of the sampling weights, and no forward pass is spent on them beforehand."""
    return cfg.grpo_overlap and step > 1


def sample(run: Run, step: int) -> Batch:
    """Step ``step``'s rollouts from the policy as it is now, with their log-probabilities
    where the update needs them (``sampled_behind``)."""
    import torch

    t0 = time.perf_counter()
    idx = run.plan[step - 1]
    before = run.source.generated_tokens
    rollouts = run.source.generate([run.prompts[i] for i in idx], run.cfg.grpo_group_size,
                                   seed=run.cfg.seed * 1_000_003 + step)
    old = None
    if sampled_behind(run.cfg, step):
        old = []
        with torch.no_grad(), run.acc.autocast():
            for mb in micro_batches(rollouts, run.budget):
                old += sampled_logps(run.unwrapped, [rollouts[i] for i in mb], run.cfg.grpo_temperature)
    return Batch(step, idx, rollouts, old, time.perf_counter() - t0, run.source.generated_tokens - before)


def submit_rewards(run: Run, batch: Batch) -> Future:
    tasks = run.tasks

    def job() -> Scored:
        t0 = time.perf_counter()
        answers = [(r.text, r.finish_reason, tasks.tasks[batch.tasks[r.prompt]]) for r in batch.rollouts]
        limit = min(tasks.timeout, run.cfg.grpo_reward_timeout)
        return Scored(score(answers, limit, tasks.memory_mb), time.perf_counter() - t0)

    return run.pool.submit(job)


def update(run: Run, batch: Batch, rewards: list[float], masked: list[bool] | None = None) -> dict:
    """One optimizer step on the batch; returns its loss, KL and advantage counts
    (``masked`` rewards: advantage 0, out of their group's statistics)."""
    import torch

    from selfcodealign.train.step import optimizer_step

    cfg = run.cfg
    adv, flat = group_advantages(rewards, cfg.grpo_group_size, cfg.grpo_scale_std, masked)
    n_tokens = sum(len(r.ids) for r in batch.rollouts)
    dev = run.acc.device
    loss_sum = kl_sum = clipped = worst = 0.0
    for mb in micro_batches(batch.rollouts, run.budget):
        rs = [batch.rollouts[i] for i in mb]
        a = torch.tensor([adv[i] for i in mb for _ in batch.rollouts[i].ids], device=dev)
        with run.acc.autocast():
            ref = reference_logps(run, rs) if cfg.grpo_kl_coef > 0 else None
            logp = torch.cat(sampled_logps(run.unwrapped, rs, cfg.grpo_temperature))
            old = logp.detach() if batch.old_logps is None else torch.cat([batch.old_logps[i] for i in mb])
            loss, kl, clip_n, w = pg_loss(logp, old, ref, a, cfg.grpo_clip, cfg.grpo_kl_coef)
            run.acc.backward(loss / max(n_tokens, 1))
        if run.master is not None:
            run.master.accumulate()
        loss_sum += loss.item()
        kl_sum += kl.item()
        clipped += clip_n.item()
        w = w.item()
        worst = w if math.isnan(w) or w > worst else worst  # a NaN stays visible
    grad_norm = run.skips.record(optimizer_step(cfg, run.acc, run.model, run.opt, run.sched, run.master), batch.step)
    if grad_norm is None and run.out_dir is not None:  # what the failing update started from
        where = run.out_dir / f"nonfinite_step{batch.step}.pt"
        torch.save({"batch": batch.state(), "rewards": rewards, "masked": masked,
                    "params": {n: p.detach().cpu() for n, p in _trainable(run).items()}}, where)
        log.warning("step %d's batch, rewards and trainable weights: %s", batch.step, where)
    run.source.sync(run.unwrapped)
    groups = len(rewards) // cfg.grpo_group_size
    return {"loss": loss_sum / max(n_tokens, 1), "kl": kl_sum / max(n_tokens, 1),
            "clip_fraction": clipped / max(n_tokens, 1), "groups": groups, "groups_flat": flat,
            "signal_fraction": (groups - flat) / groups, "lr": run.sched.get_last_lr()[0],
            "grad_norm": grad_norm, "skipped": grad_norm is None, "max_log_ratio": worst}


def reference_logps(run: Run, rollouts: list[Rollout]):
    import torch

    with torch.no_grad():
        if run.ref is not None:
            return torch.cat(sampled_logps(run.ref, rollouts, run.cfg.grpo_temperature))
        with run.unwrapped.disable_adapter():
            return torch.cat(sampled_logps(run.unwrapped, rollouts, run.cfg.grpo_temperature))


# ---- the loop ------------------------------------------------------------------------

def run_steps(run: Run, first: Batch, total: int, stop_after: int | None) -> Batch | None:
    """Steps ``first.step`` .. ``total`` (or ``stop_after``); returns the next step's batch
    when stopped early (it goes into the checkpoint)."""
    cfg = run.cfg
    batch, pending = first, submit_rewards(run, first)
    for step in range(first.step, total + 1):
        t_step = time.perf_counter()
        nxt = sample(run, step + 1) if cfg.grpo_overlap and step < total else None
        t_wait = time.perf_counter()
        scored = pending.result()
        reward_wait = time.perf_counter() - t_wait
        rewards = [REWARDS[o] for o in scored.outcomes]
        masked = [o in MASKED for o in scored.outcomes]
        if cfg.grpo_shuffle_rewards:  # a reward and its mask move together
            used, used_mask = map(list, zip(*shuffled(list(zip(rewards, masked)), cfg.seed, step)))
        else:
            used, used_mask = rewards, masked
        t_up = time.perf_counter()
        stats = update(run, batch, used, used_mask)
        update_s = time.perf_counter() - t_up
        if nxt is None and step < total:
            nxt = sample(run, step + 1)
        rec = _record(run, batch, nxt, scored, rewards, stats, reward_wait, update_s, time.perf_counter() - t_step)
        _log(run, rec, total)
        run.skips.stop_if_stuck(step, f" (the step log: {run.out_dir / STEP_LOG})" if run.out_dir else "")
        if nxt is None:
            return None
        if step == stop_after:  # its rewards are computed after the resume
            save_checkpoint(run, nxt)
            return nxt
        batch, pending = nxt, submit_rewards(run, nxt)
        if step % cfg.grpo_save_every == 0:
            save_checkpoint(run, batch)
    return None


def _record(run, batch, nxt, scored, rewards, stats, reward_wait, update_s, step_s) -> dict:
    # What this step's wall time went to: sampling the next step's batch (the first batch
    # is sampled before step 1: the summary's first_rollout_s), waiting for the rewards
    # (those computed while sampling are reward_overlapped_s) and the update.
    rollout_s = nxt.rollout_s if nxt is not None else 0.0
    tokens = nxt.tokens if nxt is not None else 0
    return {
        "step": batch.step, "tasks": [run.tasks.tasks[i].id for i in batch.tasks], "rewards": rewards,
        "reward_mean": sum(rewards) / len(rewards),
        "outcomes": dict(Counter(scored.outcomes)), "shuffled": run.cfg.grpo_shuffle_rewards,
        **stats,
        "rollout_s": rollout_s, "reward_s": reward_wait, "reward_overlapped_s": max(0.0, scored.seconds - reward_wait),
        "reward_total_s": scored.seconds, "update_s": update_s, "step_s": step_s,
        "rollout_tokens": tokens, "rollout_tokens_per_s": tokens / rollout_s if rollout_s else 0.0,
        "completion_tokens": sum(len(r.ids) for r in batch.rollouts),
    }


def _log(run: Run, rec: dict, total: int) -> None:
    run.history.append(rec)
    if run.out_dir is not None:
        with Appender(run.out_dir / STEP_LOG) as f:  # durable line by line; a torn last line is cut
            f.write(rec)
    if run.trackers:
        run.acc.log({f"grpo/{k}": rec[k] for k in ("reward_mean", "signal_fraction", "kl", "loss", "rollout_s",
                                                   "reward_s", "update_s", "rollout_tokens_per_s")}, step=rec["step"])
    skipped = " | SKIPPED (gradients not finite)" if rec.get("skipped") else ""
    log.info("step %d/%d reward %.3f signal %.2f kl %.4f loss %.4f | rollout %.1fs reward %.1fs (+%.1fs overlapped) "
             "update %.1fs | %.0f tokens/s%s", rec["step"], total, rec["reward_mean"], rec["signal_fraction"],
             rec["kl"], rec["loss"], rec["rollout_s"], rec["reward_s"], rec["reward_overlapped_s"],
             rec["update_s"], rec["rollout_tokens_per_s"], skipped)


# ---- checkpoints ---------------------------------------------------------------------

def _trainable(run: Run) -> dict:
    if run.master is not None:
        return dict(zip(_names(run), run.master.master))
    return {n: p for n, p in run.unwrapped.named_parameters() if p.requires_grad}


def _names(run: Run) -> list[str]:
    return [n for n, p in run.unwrapped.named_parameters() if p.requires_grad]


def save_checkpoint(run: Run, nxt: Batch) -> None:
    import torch

    if run.out_dir is None:
        return
    d = run.out_dir / CHECKPOINT
    d.mkdir(parents=True, exist_ok=True)
    state = {"step": nxt.step - 1, "config": run.cfg.model_dump(mode="json"), "tasks_sha256": run.tasks.sha256,
             "params": {n: p.detach().cpu().clone() for n, p in _trainable(run).items()},
             "optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
             "history": run.history, "next": nxt.state()}
    torch.save(state, d / "state.pt.tmp")
    os.replace(d / "state.pt.tmp", d / "state.pt")
    log.info("checkpoint at step %d: %s", state["step"], d)


def load_checkpoint(run: Run) -> Batch:
    """Restore the weights, optimizer, schedule and log; returns the batch to go on with."""
    import torch

    path = run.out_dir / CHECKPOINT / "state.pt"
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    # settings added since the checkpoint was made count as unchanged at their default
    changed = changed_keys(state["config"], run.cfg.model_dump(mode="json"), TrainConfig().model_dump(mode="json"))
    if changed:
        raise UserError(f"the checkpoint in {run.out_dir} was made with other settings ({', '.join(changed)})")
    if state["tasks_sha256"] != run.tasks.sha256:
        raise UserError(f"the checkpoint in {run.out_dir} was made from other tasks (dataset.jsonl changed)")
    with torch.no_grad():
        for n, p in _trainable(run).items():
            p.copy_(state["params"][n])
    if run.master is not None:
        run.master.refresh()
    run.source.sync(run.unwrapped)  # a source with weights of its own (merged LoRA) takes the restored ones
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.history = state["history"]
    # the step log as of the checkpoint: steps logged after it are done again
    write_atomic(run.out_dir / STEP_LOG, run.history)
    log.info("resuming after step %d", state["step"])
    return Batch.from_state(state["next"], run.acc.device)


# ---- setup and saving ----------------------------------------------------------------

def _policy(cfg: TrainConfig, src, precision: str):
    """The model to train (LoRA-wrapped or whole) and, for full fine-tuning with a KL
    term, a frozen copy of the start model."""
    dtype = "bfloat16" if precision in ("bf16", "bf16-master") else "float32"
    model = prepare_for_training(cfg, load_model(src, dtype=dtype, attn="sdpa"))  # as SFT: no dropout
    ref = None
    if cfg.method != "lora" and cfg.grpo_kl_coef > 0:
        ref = load_model(src, dtype=dtype, attn="sdpa").eval().requires_grad_(False)
    return model, ref


def _check_out(out_dir: Path | None, overwrite: bool, resume: bool) -> None:
    if out_dir is None:
        if resume:
            raise UserError("resume needs --out (where the checkpoint is)")
        return
    check_out(out_dir, overwrite)
    if resume and not (out_dir / CHECKPOINT / "state.pt").is_file():
        raise UserError(f"nothing to resume: {out_dir / CHECKPOINT / 'state.pt'} does not exist")
    if not resume and (out_dir / CHECKPOINT).exists():
        if not overwrite:
            raise UserError(f"{out_dir} holds a checkpoint of an unfinished run; pass --resume to go on with "
                            "it or --overwrite to start again")
        shutil.rmtree(out_dir / CHECKPOINT)
        (out_dir / STEP_LOG).unlink(missing_ok=True)


def _save(run: Run, tok, precision: str, summary: dict) -> None:
    """The policy saved as SFT saves (``loop.save_trained``); the checkpoint goes."""
    save_trained(run.acc, run.model, tok, run.cfg, precision, run.out_dir, summary, run.master)
    shutil.rmtree(run.out_dir / CHECKPOINT, ignore_errors=True)


def _setup(cfg: TrainConfig, run_dir, out_dir: Path | None, source_factory):
    """Everything a run needs, before its first step."""
    torch, transformers, accelerate = require("torch"), require("transformers"), require("accelerate")
    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg, cuda)
    if precision == "bf16-mixed" and not cuda:
        raise UserError("precision bf16-mixed needs a CUDA GPU")
    trackers = None
    if out_dir is not None:
        with contextlib.suppress(ImportError):
            import tensorboard  # noqa: F401

            trackers = "tensorboard"
    acc = accelerate.Accelerator(mixed_precision="bf16" if precision == "bf16-mixed" else "no",
                                 log_with=trackers, project_dir=str(out_dir) if out_dir else None)
    if acc.num_processes > 1:
        raise UserError("train --objective grpo runs in one process (one GPU or the CPU), not under accelerate launch")
    transformers.set_seed(cfg.seed)
    src = resolve_source(cfg.model)
    if src.adapter:
        raise UserError("train from a full model, not a LoRA directory (merge it first: train --merge-lora)")
    tok = load_tokenizer(src)
    tasks = load_tasks(run_dir, cfg.grpo_band)
    prompts = _prompts(tok, tasks, cfg)
    model, ref = _policy(cfg, src, precision)
    model.to(acc.device)
    if ref is not None:
        ref.to(acc.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    from selfcodealign.train.master import MasterWeights

    master = MasterWeights(trainable) if precision == "bf16-master" else None
    total = cfg.total_steps(len(tasks.tasks) / cfg.grpo_prompts_per_step)  # steps run across epochs' ends
    model, opt, sched = make_optimizer(cfg, acc, trackers, model, trainable, master, total)
    unwrapped = acc.unwrap_model(model)
    source = (source_factory(unwrapped, tok, cfg) if source_factory
              else rollout_source(unwrapped, tok, cfg, max(map(len, prompts))))
    budget = cfg.token_budget if cfg.token_budget != "auto" else AUTO_BUDGET_FALLBACK
    plan = task_plan(len(tasks.tasks), cfg.grpo_prompts_per_step, total, cfg.seed)
    run = Run(cfg, acc, model, ref, opt, sched, master, tasks, prompts, plan, source, budget, out_dir, trackers)
    return run, src, tok, precision, total


MAX_SLOTS = 512  # sequences the engine decodes at once; a step's samples beyond it queue


def rollout_source(model, tok, cfg: TrainConfig, longest_prompt: int):
    """The engine on the policy (``train.rollouts``) where it runs the model and
    ``grpo_rollouts`` allows it, else ``generate``."""
    from selfcodealign.gpu.model import unsupported_reason

    base = model.get_base_model() if cfg.method == "lora" else model
    reason = unsupported_reason(base.config)
    if cfg.grpo_rollouts == "engine" and reason:
        raise UserError(f"grpo_rollouts engine: the engine does not run this model ({reason}); "
                        "use --grpo-rollouts generate")
    if cfg.grpo_rollouts == "generate" or reason:
        if reason:
            log.info("rollouts with transformers' generate: the engine does not run this model (%s)", reason)
        return GenerateRollouts(model, tok, temperature=cfg.grpo_temperature, max_new_tokens=cfg.grpo_max_new_tokens)
    return EngineRollouts(model, tok, temperature=cfg.grpo_temperature, max_new_tokens=cfg.grpo_max_new_tokens,
                          slots=min(MAX_SLOTS, cfg.grpo_prompts_per_step * cfg.grpo_group_size),
                          max_len=longest_prompt + cfg.grpo_max_new_tokens + 1, lora=cfg.method == "lora")


def _prompts(tok, tasks: Tasks, cfg: TrainConfig) -> list[list[int]]:
    """The tasks' prompts as token ids; tasks whose prompt and answer budget exceed
    ``max_len`` are dropped (counted)."""
    from selfcodealign.train.format import encode_prompt

    keep, prompts = [], []
    for t in tasks.tasks:
        ids = encode_prompt(tok, list(t.prompt))
        if len(ids) + cfg.grpo_max_new_tokens > cfg.max_len:
            tasks.dropped["too_long"] += 1
            continue
        keep.append(t)
        prompts.append(ids)
    if not keep:
        raise UserError(f"every task's prompt plus {cfg.grpo_max_new_tokens} answer tokens exceeds max_len "
                        f"{cfg.max_len}")
    tasks.tasks = keep
    return prompts


def train(cfg: TrainConfig, run_dir: str | Path, out_dir: str | Path | None, *, overwrite: bool = False,
          resume: bool = False, stop_after: int | None = None, source_factory=None) -> dict:
    """GRPO on the kept tasks of the run in ``run_dir``; returns a summary (also saved as
    ``train_config.json`` beside the model). ``stop_after``: stop after that step, with a
    checkpoint and no model saved (``resume`` goes on from it). ``source_factory(model,
    tokenizer, cfg)`` makes the rollout source (default: ``rollout_source``)."""
    import torch
    import transformers

    if cfg.objective != "grpo":
        raise ValueError("grpo.train needs objective grpo")
    out_dir = Path(out_dir) if out_dir else None
    _check_out(out_dir, overwrite, resume)
    run, src, tok, precision, total = _setup(cfg, run_dir, out_dir, source_factory)
    t0 = time.perf_counter()
    first = load_checkpoint(run) if resume else sample(run, 1)
    try:
        rest = run_steps(run, first, total, stop_after) if first.step <= total else None
    finally:
        run.pool.shutdown(wait=True, cancel_futures=True)
    summary = {
        **cfg.model_dump(), "base_model": src.name, "base_model_sha256": source_hash(src).sha256,
        "precision": precision, "data": str(Path(run_dir).resolve()), "data_sha256": run.tasks.sha256,
        "data_lines": run.tasks.lines, "peak_lr": cfg.peak_lr, "rollouts": getattr(run.source, "name", None),
        "examples": len(run.tasks.tasks), "dropped": dict(run.tasks.dropped), "steps": total,
        "epochs_done": total * cfg.grpo_prompts_per_step / len(run.tasks.tasks),
        "steps_done": run.history[-1]["step"] if run.history else 0, "rewards": REWARDS,
        "steps_skipped": sum(bool(r.get("skipped")) for r in run.history),
        "final_loss": run.history[-1]["loss"] if run.history else None,
        "final_reward_mean": run.history[-1]["reward_mean"] if run.history else None,
        "seconds": time.perf_counter() - t0, "first_rollout_s": first.rollout_s, "history": run.history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    if rest is None and out_dir is not None:
        _save(run, tok, precision, summary)
    if run.trackers:
        run.acc.end_training()
    return summary
