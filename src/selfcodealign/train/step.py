"""The pieces of an optimizer step that supervised fine-tuning (loop.py) and DPO (dpo.py)
share: a packed micro-batch on the device, and the step itself."""

from __future__ import annotations

import logging
import math
import warnings

from selfcodealign.errors import UserError
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
    gradient norm before clipping (a float: one wait for the GPU a step).

    A step whose gradients are not finite (a NaN or an inf anywhere) is skipped: the
    optimizer does not move, so one bad batch cannot turn every weight into NaN (the
    norm is computed without clipping when ``max_grad_norm`` is 0). The schedule still
    advances; ``Skips`` counts the skip."""
    max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
    # model.parameters(), not the list made before prepare(): FSDP replaces parameters.
    grad_norm = float(master.clip_grad_norm_(max_norm) if master is not None
                      else acc.clip_grad_norm_(model.parameters(), max_norm))
    if math.isfinite(grad_norm):
        opt.step()
        sched.step()
    else:
        with warnings.catch_warnings():  # "scheduler before optimizer": here the skip is meant
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            sched.step()
    if master is not None:
        master.refresh()
    else:
        opt.zero_grad(set_to_none=True)
    return grad_norm


class Skips:
    """Optimizer steps skipped for gradients that are not finite (SFT, DPO and GRPO):
    counted, logged (on the main process), and a run stopped once ``MAX_IN_A_ROW`` in a
    row moved nothing."""

    MAX_IN_A_ROW = 3

    def __init__(self, main: bool = True) -> None:
        self.main = main
        self.total = 0
        self.in_a_row = 0

    def record(self, grad_norm: float, step: int) -> float | None:
        """The norm for the step's record: None where the step was skipped."""
        if math.isfinite(grad_norm):
            self.in_a_row = 0
            return grad_norm
        self.total += 1
        self.in_a_row += 1
        if self.main:
            log.warning("step %d: gradient norm %s; the optimizer step was skipped", step, grad_norm)
        return None

    def stop_if_stuck(self, step: int, where: str = "") -> None:
        if self.in_a_row >= self.MAX_IN_A_ROW:
            raise UserError(f"training stopped at step {step}: the gradients were not finite for "
                            f"{self.in_a_row} steps in a row, so no step moved the weights{where}")
