"""The pieces of an optimizer step that supervised fine-tuning (loop.py) and DPO (dpo.py)
share: a packed micro-batch on the device, and the step itself."""

from __future__ import annotations

from selfcodealign.train.format import IGNORE
from selfcodealign.train.packing import Packed


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
    gradient norm before clipping (None without clipping)."""
    grad_norm = None
    if cfg.max_grad_norm > 0:
        # model.parameters(), not the list made before prepare(): FSDP replaces parameters.
        grad_norm = (master.clip_grad_norm_(cfg.max_grad_norm) if master is not None
                     else acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
    opt.step()
    sched.step()
    if master is not None:
        master.refresh()
    else:
        opt.zero_grad(set_to_none=True)
    return grad_norm
