"""The pieces of an optimizer step that supervised fine-tuning (loop.py) and DPO (dpo.py)
share: a packed micro-batch on the device, and the step itself."""

from __future__ import annotations

import logging
import math

from selfcodealign.train.format import IGNORE
from selfcodealign.train.packing import Packed

log = logging.getLogger(__name__)


def model_inputs(p: Packed, device, varlen: bool, max_len: int | None = None):
    """The model's keyword arguments for a packed micro-batch, and the targets of the
    tokens that have a label (the only positions whose logits are computed)."""
    import torch

    cuda = device.type == "cuda"

    def dev(values, dtype=torch.long):
        # pinned + non-blocking: the host goes on packing the next micro-batch instead of
        # waiting for a pageable copy behind the queued kernels
        t = torch.tensor(values, dtype=dtype)
        return t.pin_memory().to(device, non_blocking=True) if cuda else t.to(device)

    keep = [i for i, t in enumerate(p.targets) if t != IGNORE]
    batch = {
        "input_ids": dev([p.input_ids]),
        "position_ids": dev([p.position_ids]),
        "logits_to_keep": dev(keep),
        "use_cache": False,
    }
    if varlen:
        cu = dev(p.cu_seq_lens, torch.int32)
        m = max(p.max_len, max_len or 0)
        batch.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=m, max_length_k=m)
    targets = dev([p.targets[i] for i in keep])
    return batch, targets


def optimizer_step(cfg, acc, model, opt, sched, master):
    """Clip, step, schedule, and get ready for the next step's gradients; returns the
    gradient norm before clipping.

    A step whose gradients are not finite (a NaN or an inf anywhere) is skipped: the
    optimizer does not move, so one bad batch cannot turn every weight into NaN (the
    norm is computed without clipping when ``max_grad_norm`` is 0). The schedule still
    advances; callers see the non-finite norm and count the skip."""
    max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
    # model.parameters(), not the list made before prepare(): FSDP replaces parameters.
    grad_norm = float(master.clip_grad_norm_(max_norm) if master is not None
                      else acc.clip_grad_norm_(model.parameters(), max_norm))
    if math.isfinite(grad_norm):
        opt.step()
    sched.step()
    if master is not None:
        master.refresh()
    else:
        opt.zero_grad(set_to_none=True)
    return grad_norm


def finite_norm(grad_norm: float, step: int) -> float | None:
    """The norm for a step's record: None, with a warning, where the step was skipped."""
    if math.isfinite(grad_norm):
        return grad_norm
    log.warning("step %d: gradient norm %s; the optimizer step was skipped", step, grad_norm)
    return None
