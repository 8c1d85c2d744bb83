"""GRPO's learning signal: group-relative advantages, the shuffled control, the clipped
policy-gradient loss with a k3 KL term, and the log-probabilities of sampled tokens
(``train.grpo`` runs the steps; the formulas are in its docstring)."""

from __future__ import annotations

import random

from selfcodealign.train.rollouts import Rollout

ADV_EPS = 1e-4  # keeps a group of near-equal rewards from exploding
LOG_RATIO_MAX = 20.0  # exp(20) = 5e8: far past any clip, far from float32's overflow at 88
LOGP_CHUNK = 1024  # sampled tokens whose logits exist at once (152k-word vocabulary)


def group_advantages(rewards: list[float], group: int, scale_std: bool = True,
                     masked: list[bool] | None = None) -> tuple[list[float], int]:
    """Each reward minus its group's mean (over its group's std, population, + ADV_EPS,
    with ``scale_std``); groups are consecutive runs of ``group`` rewards. A ``masked``
    reward (the sandbox failed: not the model's doing) gets advantage 0 and is left out
    of its group's mean and std. Returns the advantages and how many groups had all
    their (unmasked) rewards equal (no signal)."""
    if len(rewards) % group:
        raise ValueError(f"{len(rewards)} rewards do not make groups of {group}")
    if masked is not None and len(masked) != len(rewards):
        raise ValueError(f"{len(masked)} mask entries for {len(rewards)} rewards")
    out, flat = [], 0
    for a in range(0, len(rewards), group):
        keep = [not masked[i] for i in range(a, a + group)] if masked is not None else [True] * group
        g = [r for r, k in zip(rewards[a : a + group], keep) if k]
        if len(g) < 2 or all(r == g[0] for r in g):
            flat += 1
            out += [0.0] * group
            continue
        mean = sum(g) / len(g)
        std = (sum((r - mean) ** 2 for r in g) / len(g)) ** 0.5
        out += [0.0 if not k else (r - mean) / (std + ADV_EPS) if scale_std else r - mean
                for r, k in zip(rewards[a : a + group], keep)]
    return out, flat


def shuffled(rewards: list[float], seed: int, step: int) -> list[float]:
    """The batch's rewards permuted across all its samples (the control arm): the same
    rewards, no longer tied to the answers that earned them."""
    out = list(rewards)
    random.Random(f"grpo-shuffle|{seed}|{step}").shuffle(out)
    return out


def pg_loss(logp, old_logp, ref_logp, adv, clip: float, kl_coef: float):
    """Per-token loss (summed) and its parts: the clipped policy gradient, k3 KL, the
    clipped-token count and the largest |log ratio| of policy to sampler.

    Both exponents are clamped to +-``LOG_RATIO_MAX``. Without it one token whose log
    ratio passes 88 makes ``exp`` inf in float32: ``min(inf * A, clip * A)`` still picks
    a finite value for A > 0, so the loss looks fine, but the backward pass multiplies
    the unselected branch's zero gradient by inf, and every weight becomes NaN. A
    clamped token gets no gradient: at ratios that far from 1 the clip gives it none
    anyway."""
    import torch

    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio.clamp(-LOG_RATIO_MAX, LOG_RATIO_MAX))
    pg = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    if ref_logp is None:
        kl = torch.zeros_like(logp)
    else:
        d = (ref_logp - logp).clamp(-LOG_RATIO_MAX, LOG_RATIO_MAX)
        kl = torch.exp(d) - d - 1
    clipped = ((ratio - 1).abs() > clip).float()
    worst = log_ratio.detach().abs().max() if log_ratio.numel() else log_ratio.new_zeros(())
    return (pg + kl_coef * kl).sum(), kl.detach().sum(), clipped.sum(), worst


def _chunk_logp(h, w, t, temperature: float):
    import torch

    logits = (h @ w.t()).float() / temperature
    return logits.gather(1, t[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)


def sampled_logps(model, rollouts: list[Rollout], temperature: float):
    """Each rollout's sampled tokens' log-probabilities under ``model`` (one tensor per
    rollout). Only the sampled positions get logits, a chunk at a time, recomputed in
    the backward pass rather than kept."""
    import torch
    from torch.utils.checkpoint import checkpoint

    from selfcodealign.train.fused_loss import hidden_states_out

    dev = next(model.parameters()).device
    rows = [list(r.prompt_ids) + list(r.ids) for r in rollouts]
    width = max(len(x) for x in rows)
    ids = torch.tensor([x + [0] * (width - len(x)) for x in rows], device=dev)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in rows], device=dev)
    with hidden_states_out(model) as head:
        hidden = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        b = torch.tensor([i for i, r in enumerate(rollouts) for _ in r.ids], device=dev)
        pos = torch.tensor([len(r.prompt_ids) - 1 + k for r in rollouts for k in range(len(r.ids))], device=dev)
        targets = torch.tensor([t for r in rollouts for t in r.ids], device=dev)
        h = hidden[b, pos]
        parts = []
        for s in range(0, len(targets), LOGP_CHUNK):
            args = (h[s : s + LOGP_CHUNK], head.weight, targets[s : s + LOGP_CHUNK], temperature)
            parts.append(checkpoint(_chunk_logp, *args, use_reentrant=False) if torch.is_grad_enabled()
                         else _chunk_logp(*args))
    return list(torch.cat(parts).split([len(r.ids) for r in rollouts]))


def micro_batches(rollouts: list[Rollout], budget: int) -> list[list[int]]:
    """Rollout indices in order, cut so that a micro-batch's padded tokens stay within
    ``budget`` (a longer rollout goes alone)."""
    out: list[list[int]] = []
    cur: list[int] = []
    width = 0
    for i, r in enumerate(rollouts):
        n = len(r.prompt_ids) + len(r.ids)
        if cur and max(width, n) * (len(cur) + 1) > budget:
            out.append(cur)
            cur, width = [], 0
        cur.append(i)
        width = max(width, n)
    return out + ([cur] if cur else [])
