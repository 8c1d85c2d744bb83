"""Cross-entropy over the vocabulary without materialising every logit at once.

With a 152k vocabulary the logits of an 8k-token micro-batch (fp32 for the loss) take
more memory than the rest of a 0.5B model's training step, which caps the micro-batch
size. Here the model returns its final hidden states and the loss applies the output
matrix itself, a chunk of tokens at a time. Each chunk's gradients (softmax minus
one-hot, then back through the matrix) are computed in the forward pass, so only one
chunk of logits ever exists and the backward pass has nothing left to do but scale.

On CUDA with Liger Kernel installed (``pip install liger-kernel``), its Triton kernel
does the same with fewer passes over memory; elsewhere the plain PyTorch version below.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager

CHUNK_TOKENS = 4096


def liger_available() -> bool:
    if importlib.util.find_spec("liger_kernel") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _compute_dtype(x):
    import torch

    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype


def _chunked_function():
    import torch

    class ChunkedLinearCrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, hidden, weight, targets, chunk):
            dt = _compute_dtype(hidden)
            need_w = ctx.needs_input_grad[1]  # not for a frozen output layer (LoRA)
            with torch.autocast(hidden.device.type, enabled=False):
                w = weight.to(dt)
                grad_h = torch.empty_like(hidden)
                grad_w = torch.zeros(weight.shape if need_w else (), dtype=torch.float32, device=weight.device)
                loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
                for s in range(0, hidden.shape[0], chunk):
                    h = hidden[s : s + chunk].to(dt)
                    t = targets[s : s + chunk]
                    logits = (h @ w.t()).float()
                    lse = torch.logsumexp(logits, dim=-1)
                    loss += (lse - logits.gather(1, t[:, None])[:, 0]).sum()
                    # d loss / d logits = softmax - one_hot, built in place of the logits
                    g = logits.sub_(lse[:, None]).exp_()
                    g[torch.arange(len(t), device=g.device), t] -= 1.0
                    g = g.to(dt)
                    grad_h[s : s + chunk] = (g @ w).to(hidden.dtype)
                    if need_w:
                        # in the compute dtype, summed in fp32: what autocast's matmul
                        # backward and the fp32 .grad accumulation would do
                        grad_w += (g.t() @ h).float()
            ctx.save_for_backward(grad_h, grad_w)
            ctx.weight_dtype = weight.dtype
            return loss

        @staticmethod
        def backward(ctx, grad_out):
            grad_h, grad_w = ctx.saved_tensors
            gw = (grad_w * grad_out).to(ctx.weight_dtype) if ctx.needs_input_grad[1] else None
            return grad_h * grad_out.to(grad_h.dtype), gw, None, None

    return ChunkedLinearCrossEntropy


_FN = None


def linear_cross_entropy(hidden, weight, targets, *, use_liger: bool = False, chunk: int = CHUNK_TOKENS):
    """Summed cross-entropy of ``hidden @ weight.T`` against ``targets`` (every target
    counts: the caller keeps only supervised positions)."""
    global _FN
    if use_liger:
        return _liger(hidden, weight, targets)
    if _FN is None:
        _FN = _chunked_function()
    return _FN.apply(hidden, weight, targets, chunk)


# Liger sizes its chunks so that one chunk of logits is no larger than the hidden states
# times this. Its default (1) makes ~170 chunks of a 152k vocabulary at any batch size,
# each re-reading the whole output-matrix gradient: a fixed ~0.1 s per micro-batch on an
# H100. 32 gives a few chunks of ~2.5 GB of logits.
LIGER_CHUNK_MEM = 32


def _liger(hidden, weight, targets):
    import inspect

    import torch
    from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction as F

    # positional (autograd.Function.apply takes no keywords), by name: the argument list
    # grows between Liger releases
    given = {"_input": hidden, "weight": weight, "target": targets, "reduction": "sum",
             "accum_dtype": torch.float32, "chunk_mem_const": LIGER_CHUNK_MEM}
    params = [p for n, p in inspect.signature(F.forward).parameters.items() if n != "ctx"]
    out = F.apply(*(given.get(p.name, p.default) for p in params))
    return out[0] if isinstance(out, tuple) else out


def _identity(x):
    return x


@contextmanager
def hidden_states_out(model):
    """While inside, the model's output layer returns its input: "logits" are the final
    hidden states, for ``linear_cross_entropy`` to apply the output matrix. Its parameters
    stay where they are (names, optimizer, tying, saving)."""
    head = model.get_output_embeddings()
    head.forward = _identity
    try:
        yield head
    finally:
        del head.forward
