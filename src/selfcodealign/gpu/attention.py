"""Attention for the runner: packed prompts (prefill) and one token per slot over the
slot cache (decode), reading only the positions each sequence has.

On CUDA both go to FlashAttention-2's variable-length kernel as PyTorch ships it
(``aten._flash_attention_forward``): prompts are packed end to end with no padding, and
in decode each slot's cache row is one "sequence" of which the kernel reads only the
first ``pos + 1`` positions (``seqused_k``), so the cost follows the tokens in the cache,
not the longest slot. The query heads that share a KV head are laid out as that head's
query rows, so K/V are read once per KV head. Elsewhere (CPU, or a GPU build without
flash) the same functions run through ``scaled_dot_product_attention``: per prompt for
prefill, masked over a common span for decode. That path is the reference the tests
compare with ``model.generate``; the benchmark compares the two on the GPU.

The cache layout is ``[slots, max_len, kv_heads, head_dim]`` per layer (sequence-major,
as the flash kernel reads it).
"""

from __future__ import annotations

import functools


@functools.cache
def flash_available(device_type: str) -> bool:
    import torch

    if device_type != "cuda" or not torch.cuda.is_available():
        return False
    op = getattr(torch.ops.aten, "_flash_attention_forward", None)
    if op is None or "seqused_k" not in str(op.default._schema):
        return False
    major, _ = torch.cuda.get_device_capability()
    return major >= 8


def _flash(q, k, v, cu_q, cu_k, max_q: int, max_k: int, causal: bool, scale: float, used_k=None):
    import torch

    out = torch.ops.aten._flash_attention_forward(
        q, k, v, cu_q, cu_k, max_q, max_k, 0.0, causal, False, scale=scale, seqused_k=used_k)
    return out[0]


def prefill(q, k, v, cu, max_len: int, scale: float, flash: bool):
    """Causal attention within each packed prompt. ``q`` [N, H, hd], ``k``/``v``
    [N, kvh, hd] (N tokens of all prompts end to end), ``cu`` int32 [n + 1] the prompts'
    offsets (a host list too for the reference path). Returns [N, H, hd]."""
    if flash:
        return _flash(q, k, v, cu[0], cu[0], max_len, max_len, True, scale)
    import torch
    import torch.nn.functional as F

    offsets = cu[1]
    g = q.shape[1] // k.shape[1]
    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        qi, ki, vi = (t[a:b].transpose(0, 1) for t in (q, k, v))  # [heads, T, hd]
        if g > 1:
            ki, vi = ki.repeat_interleave(g, dim=0), vi.repeat_interleave(g, dim=0)
        out.append(F.scaled_dot_product_attention(qi[None], ki[None], vi[None], is_causal=True, scale=scale)[0]
                   .transpose(0, 1))
    return torch.cat(out)


def decode(q, kc, vc, pos, span: int, scale: float, flash: bool):
    """One query token per slot ``0..B-1`` at positions ``pos`` [B] over cache rows
    ``kc``/``vc`` [slots, L, kvh, hd] (the token's own K/V already written). ``q``
    [B, H, hd]; returns [B, H * hd]. ``span`` bounds every ``pos`` (fixed shapes)."""
    import torch

    B, H, hd = q.shape
    slots, L, kvh, _ = kc.shape
    g = H // kvh
    if flash:
        # The g query heads of KV head j become g query rows of a sequence with kvh heads.
        qr = q.view(B, kvh, g, hd).transpose(1, 2).reshape(B * g, kvh, hd)
        ar = torch.arange(B + 1, device=q.device, dtype=torch.int32)
        used = (pos + 1).to(torch.int32)
        o = _flash(qr, kc.view(slots * L, kvh, hd), vc.view(slots * L, kvh, hd), ar * g, ar * L, g, span,
                   False, scale, used)
        return o.view(B, g, kvh, hd).transpose(1, 2).reshape(B, H * hd)
    import torch.nn.functional as F

    keys = torch.arange(span, device=q.device)
    mask = (keys[None, :] <= pos[:, None])[:, None, None, :]  # [B, 1, 1, span]
    # The query heads that share a KV head act as that head's query rows: no K/V repeat.
    o = F.scaled_dot_product_attention(
        q.view(B, kvh, g, hd), kc[:B, :span].transpose(1, 2), vc[:B, :span].transpose(1, 2),
        attn_mask=mask, scale=scale)
    return o.reshape(B, H * hd)


@functools.cache
def flash_agrees(device: str, dtype_name: str, heads: int, kv_heads: int, head_dim: int) -> bool:
    """Whether the flash path computes what the reference path does on this GPU, for
    this attention shape (random inputs, bf16/fp16 tolerance). A kernel that is missing,
    refuses the shape or disagrees makes the runner use the reference path."""
    import logging

    import torch

    log = logging.getLogger("selfcodealign.gpu")
    dt = getattr(torch, dtype_name)
    gen = torch.Generator(device=device).manual_seed(0)
    slots, L, B = 6, 160, 5
    try:
        kc = torch.randn(slots, L, kv_heads, head_dim, device=device, dtype=dt, generator=gen)
        vc = torch.randn(slots, L, kv_heads, head_dim, device=device, dtype=dt, generator=gen)
        q = torch.randn(B, heads, head_dim, device=device, dtype=dt, generator=gen)
        pos = torch.tensor([0, 7, 63, 130, 159], device=device)
        errs = [(decode(q, kc, vc, pos, L, 0.125, True) - decode(q, kc, vc, pos, L, 0.125, False)).abs().max()]
        lengths = [3, 70, 17]
        offsets = [0, 3, 73, 90]
        cu = (torch.tensor(offsets, device=device, dtype=torch.int32), offsets)
        qp = torch.randn(90, heads, head_dim, device=device, dtype=dt, generator=gen)
        kp, vp = kc[0, :90], vc[0, :90]
        errs.append((prefill(qp, kp, vp, cu, max(lengths), 0.125, True)
                     - prefill(qp, kp, vp, cu, max(lengths), 0.125, False)).abs().max())
        worst = max(float(e) for e in errs)
    except Exception as e:  # noqa: BLE001 - any failure means: use the reference path
        log.warning("flash attention unavailable (%s: %s); using scaled_dot_product_attention",
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return False
    if worst > 0.05:
        log.warning("flash attention disagrees with the reference by %.3g; using "
                    "scaled_dot_product_attention", worst)
        return False
    return True
