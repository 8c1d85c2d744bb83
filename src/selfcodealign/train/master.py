"""bf16 weights for the model's arithmetic, fp32 master weights for the optimizer.

Autocast ("bf16-mixed") keeps fp32 parameters and casts every weight to bf16 again in
every micro-batch, forward and backward: on a small model that casting was a fifth of
the GPU's time (profile in docs/train_eval.md). Here the model itself is bf16; after
each micro-batch its gradients are added into fp32 gradient buffers and freed; the
optimizer steps on fp32 copies of the weights, which are then copied back into the
model. Small updates (lr 1e-5) are kept in fp32, as with autocast.
"""

from __future__ import annotations


class MasterWeights:
    def __init__(self, params) -> None:
        import torch

        self.torch = torch
        self.params = [p for p in params if p.requires_grad]
        with torch.no_grad():
            self.master = [torch.nn.Parameter(p.detach().float().clone()) for p in self.params]
        for m in self.master:
            m.grad = torch.zeros_like(m)
        self._fresh = True  # the buffers hold nothing of this step yet

    def accumulate(self) -> None:
        """Add the model's (bf16) gradients into the fp32 buffers; free them.

        The first micro-batch of a step copies instead of adding, so the buffers are
        never zeroed: that saves a write and a read of every fp32 gradient per step."""
        torch = self.torch
        dst = [m.grad for m, p in zip(self.master, self.params) if p.grad is not None]
        src = [p.grad for p in self.params if p.grad is not None]
        if self._fresh:
            if src:
                torch._foreach_copy_(dst, src)  # casts bf16 -> fp32
            missing = [m.grad for m, p in zip(self.master, self.params) if p.grad is None]
            if missing:
                torch._foreach_zero_(missing)
            self._fresh = False
        elif src:
            torch._foreach_add_(dst, src)  # in place, fp32 += bf16: no fp32 copy of the gradients
        for p in self.params:
            p.grad = None

    def clip_grad_norm_(self, max_norm: float):
        return self.torch.nn.utils.clip_grad_norm_(self.master, max_norm)

    def refresh(self) -> None:
        """After an optimizer step: the model's weights from the masters. The gradient
        buffers are overwritten by the next step's first micro-batch."""
        with self.torch.no_grad():
            self.torch._foreach_copy_(self.params, self.master)
        self._fresh = True
