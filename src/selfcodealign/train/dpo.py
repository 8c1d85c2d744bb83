"""Direct preference optimisation (DPO) on the pairs selection writes (DATASET.pairs.jsonl).

Each pair is a prompt with a passing answer (chosen) and a failing one (rejected). The
loss is DPO's: ``-log sigmoid(beta * ((log p(chosen) - log p_ref(chosen)) - (log
p(rejected) - log p_ref(rejected))))``, log-probabilities summed over the answer's
tokens. The reference is the model before training: its log-probabilities are computed
once, before the first step. The rest is the SFT loop's: the same packing (a pair's two
answers side by side in a micro-batch, never attending to each other), precision,
LoRA, optimizer, schedule and saved provenance.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.train.format import Encoded, encode_chat

log = logging.getLogger(__name__)


@dataclass
class Pairs:
    pairs: list[tuple[Encoded, Encoded]]  # (chosen, rejected)
    sha256: str
    lines: int
    dropped: Counter = field(default_factory=Counter)

    @property
    def examples(self) -> list:  # what the loop counts and sizes steps by
        return self.pairs


def load_pairs(path: str | Path, tokenizer, max_len: int) -> Pairs:
    from pydantic import ValidationError

    from selfcodealign.records import PreferencePair
    from selfcodealign.models.embedded import sha256_file
    from selfcodealign.train.data import encode_file

    def encode(obj) -> tuple[Encoded, Encoded]:
        p = PreferencePair.model_validate(obj)
        prompt = [m.model_dump() for m in p.prompt]
        c, r = (encode_chat(tokenizer, prompt + [{"role": "assistant", "content": a}]) for a in (p.chosen, p.rejected))
        return c, r

    path = Path(path)
    pairs, dropped, lines = encode_file(path, encode, max_len, (ValidationError,))
    if not pairs:
        why = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "file is empty"
        raise UserError(f"{path}: no usable preference pairs ({lines} lines; {why}); `select` writes "
                        "them to DATASET.pairs.jsonl")
    return Pairs(pairs, sha256_file(path), lines, dropped)


def plan(n_pairs: int, lengths: list[int], *, pairs_per_step: int, token_budget: int, steps: int,
         seed: int) -> list[list[list[int]]]:
    """``steps`` optimizer steps, each a list of micro-batches of pair indices: the pairs
    shuffled per epoch (seeded), cut into steps, each step's pairs packed first-fit
    decreasing into micro-batches of at most ``token_budget`` tokens (both answers)."""
    from selfcodealign.train.packing import pack_bins

    out: list[list[list[int]]] = []
    epoch = 0
    while len(out) < steps:
        order = list(range(n_pairs))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        for a in range(0, n_pairs, pairs_per_step):
            out.append(pack_bins(lengths, order[a : a + pairs_per_step], token_budget))
        epoch += 1
    return out[:steps]


def _logps(model, micro: list[int], data: Pairs, device, pad_id: int, varlen: bool):
    """Summed answer log-probabilities [n, 2] (chosen, rejected) of the pairs ``micro``."""
    import torch

    from selfcodealign.train.packing import pack
    from selfcodealign.train.step import model_inputs

    encs = [e for i in micro for e in data.pairs[i]]
    batch, targets = model_inputs(pack(encs, pad_id), device, varlen)
    logits = model(**batch).logits[0]
    tok_logp = -torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    sums = torch.stack([s.sum() for s in torch.split(tok_logp, [e.n_label_tokens for e in encs])])
    return sums.view(-1, 2)


def reference_logps(model, steps, data: Pairs, device, pad_id: int, varlen: bool) -> dict[int, tuple[float, float]]:
    """The model's log-probabilities of every planned pair, before training (no grad)."""
    import torch

    ref: dict[int, tuple[float, float]] = {}
    with torch.no_grad():
        for step in steps:
            for micro in step:
                todo = [i for i in micro if i not in ref]
                if todo:
                    for i, (c, r) in zip(todo, _logps(model, todo, data, device, pad_id, varlen).tolist()):
                        ref[i] = (c, r)
    return ref


def run_steps(cfg, acc, model, opt, sched, steps, data: Pairs, ref, pad_id, varlen, master, total,
              trackers, skips) -> list[dict]:
    import torch

    from selfcodealign.train.step import optimizer_step

    history = []
    for step_no, step in enumerate(steps, 1):
        t0 = time.perf_counter()
        n = sum(len(m) for m in step)
        loss_sum = torch.zeros((), device=acc.device)
        right = torch.zeros((), device=acc.device)
        margin = torch.zeros((), device=acc.device)
        tokens = 0
        for micro in step:
            tokens += sum(len(e) for i in micro for e in data.pairs[i])
            with acc.autocast():
                lp = _logps(model, micro, data, acc.device, pad_id, varlen)
                r = torch.tensor([ref[i] for i in micro], device=acc.device)
                z = cfg.dpo_beta * ((lp[:, 0] - r[:, 0]) - (lp[:, 1] - r[:, 1]))
                loss = -torch.nn.functional.logsigmoid(z).sum()
                acc.backward(loss / n)
            if master is not None:
                master.accumulate()
            loss_sum += loss.detach()
            right += (z.detach() > 0).sum()
            margin += z.detach().sum() / cfg.dpo_beta
        grad_norm = skips.record(optimizer_step(cfg, acc, model, opt, sched, master), step_no)
        skips.stop_if_stuck(step_no)
        if step_no % cfg.log_every == 0 or step_no == total:
            dt = time.perf_counter() - t0
            rec = {"step": step_no, "loss": loss_sum.item() / n, "reward_accuracy": right.item() / n,
                   "margin": margin.item() / n, "lr": sched.get_last_lr()[0], "tokens": tokens, "seconds": dt,
                   "grad_norm": grad_norm}
            history.append(rec)
            if trackers:
                acc.log({"train/loss": rec["loss"], "train/reward_accuracy": rec["reward_accuracy"],
                         "train/lr": rec["lr"]}, step=step_no)
            if acc.is_main_process:
                log.info("step %d/%d dpo loss %.4f reward accuracy %.2f margin %.2f lr %.2e", step_no, total,
                         rec["loss"], rec["reward_accuracy"], rec["margin"], rec["lr"])
    return history
