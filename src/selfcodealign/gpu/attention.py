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
from typing import Any, NamedTuple


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


class Packed(NamedTuple):
    """New tokens of several sequences, end to end, and where each sequence's keys are:
    sequence i's tokens are rows ``cu_q[i]:cu_q[i+1]`` of the queries, and its keys the
    first ``used_k[i]`` positions of cache row ``slot[i]`` (its cached prefix, then its
    new tokens, already written). Tensors on the device (int32), lists on the host."""

    cu_q: Any
    cu_k: Any  # slot[i] * max_len, then slots * max_len (ascending: slots are sorted)
    used_k: Any
    max_q: int
    max_k: int
    host: list  # (slot, first new position, end) per sequence


def pack(host: list, max_len: int, slots: int, device) -> Packed:
    """``Packed`` for sequences ``(slot, start, end)`` listed in ascending slot order."""
    import torch

    from selfcodealign.gpu.transfer import on_device

    cu_q = [0]
    for _, start, end in host:
        cu_q.append(cu_q[-1] + end - start)
    cu_k = [s * max_len for s, _, _ in host] + [slots * max_len]
    used = [end for _, _, end in host]
    t_q, t_k, t_used = on_device(torch.device(device), torch.int32, cu_q, cu_k, used)
    return Packed(t_q, t_k, t_used, max(e - a for _, a, e in host), max(used), host)


def prefill(q, kc, vc, seqs: Packed, scale: float, flash: bool):
    """Causal attention of each sequence's new tokens over its cache row. ``q``
    [N, H, hd] (N new tokens of all sequences, end to end), ``kc``/``vc`` [slots, L, kvh,
    hd] with the new tokens' K/V already written. A sequence whose first ``start``
    positions were cached before (a shared prefix) computes only the rest. Returns
    [N, H, hd]."""
    slots, L, kvh, hd = kc.shape
    if flash:
        # Causal masks align bottom-right: new token j of a sequence sees start + j + 1 keys.
        return _flash(q, kc.view(slots * L, kvh, hd), vc.view(slots * L, kvh, hd), seqs.cu_q, seqs.cu_k,
                      seqs.max_q, seqs.max_k, True, scale, seqs.used_k)
    import torch
    import torch.nn.functional as F

    g = q.shape[1] // kvh
    out, a = [], 0
    for slot, start, end in seqs.host:
        b = a + end - start
        qi = q[a:b].transpose(0, 1)  # [H, new, hd]
        ki, vi = (c[slot, :end].transpose(0, 1).repeat_interleave(g, dim=0) for c in (kc, vc))
        mask = torch.arange(end, device=q.device)[None, :] <= torch.arange(start, end, device=q.device)[:, None]
        out.append(F.scaled_dot_product_attention(qi[None], ki[None], vi[None], attn_mask=mask, scale=scale)[0]
                   .transpose(0, 1))
        a = b
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
        # Three sequences in cache rows 1, 3, 4: one from scratch, two after a cached prefix.
        seqs = pack([(1, 0, 3), (3, 40, 110), (4, 100, 117)], L, slots, device)
        qp = torch.randn(3 + 70 + 17, heads, head_dim, device=device, dtype=dt, generator=gen)
        errs.append((prefill(qp, kc, vc, seqs, 0.125, True) - prefill(qp, kc, vc, seqs, 0.125, False)).abs().max())
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
