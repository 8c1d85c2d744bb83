"""The decode step's attention as Triton kernels (flash-decoding with small query tiles).

One decode token per slot has only ``heads / kv_heads`` query rows per KV head (7 for
Qwen2.5-0.5B), while FlashAttention-2 tiles queries by 128 rows: most of its work is
padding. Here a program takes one (slot, KV head) pair, its query rows padded to 16, and
streams that slot's keys in blocks up to the slot's own length (read from ``pos`` on the
device, so one compiled step serves every length: a CUDA graph per batch size, not per
span). With few slots the keys are split over several programs whose partial results a
second kernel combines, so small batches still fill the GPU.

Two kernels run per layer: ``rope_store`` rotates the new token's keys and writes K and
V into the cache; ``attend`` rotates the queries on load (straight from the fused q/k/v
projection) and writes the output in the layout the output projection reads. That
replaces the rotary, cache-write, layout and attention kernels of the plain path.

``agrees`` checks them against the reference at start-up; the runner uses them only
then (and only on CUDA with Triton installed, or in Triton's interpreter for tests).
"""

from __future__ import annotations

import functools
import os

BLOCK_N = 64  # keys per step of a program
ROWS = 16  # query rows per program (the tensor cores' smallest tile)
TARGET_PROGRAMS = 1024  # split the keys until about this many programs run
WARPS, STAGES = 4, 3  # launch settings of ``attend`` (benchmarks/decode_attention.py compares others)


@functools.cache
def available(device_type: str) -> bool:
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if device_type != "cuda" and not interpret:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def supports(heads: int, kv_heads: int, head_dim: int) -> bool:
    g = heads // kv_heads
    return head_dim in (32, 64, 128, 256) and 0 < g <= ROWS and heads % kv_heads == 0


# Each kernel is made on first use: Triton is imported only where the kernels run.
@functools.cache
def _rope_store_kernel():
    """Rotates the new token's keys and writes K and V into the cache at ``pos``."""
    import triton
    import triton.language as tl

    @triton.jit
    def rope_store(Y, y_row, COS, SIN, POS, KC, VC, c_slot, c_pos,
                   H: tl.constexpr, KVH: tl.constexpr, KVH_P: tl.constexpr, HD: tl.constexpr):
        b = tl.program_id(0)
        p = tl.load(POS + b)
        half: tl.constexpr = HD // 2
        h = tl.arange(0, KVH_P)[:, None]
        d = tl.arange(0, half)[None, :]
        hm = h < KVH
        src = Y + b * y_row + H * HD + h * HD + d
        k1 = tl.load(src, mask=hm, other=0.0).to(tl.float32)
        k2 = tl.load(src + half, mask=hm, other=0.0).to(tl.float32)
        c1 = tl.load(COS + p * HD + d).to(tl.float32)
        c2 = tl.load(COS + p * HD + half + d).to(tl.float32)
        s1 = tl.load(SIN + p * HD + d).to(tl.float32)
        s2 = tl.load(SIN + p * HD + half + d).to(tl.float32)
        dst = b * c_slot + p * c_pos + h * HD + d
        tl.store(KC + dst, (k1 * c1 - k2 * s1).to(KC.dtype.element_ty), mask=hm)
        tl.store(KC + dst + half, (k2 * c2 + k1 * s2).to(KC.dtype.element_ty), mask=hm)
        dv = tl.arange(0, HD)[None, :]
        v = tl.load(Y + b * y_row + (H + KVH) * HD + h * HD + dv, mask=hm, other=0.0)
        tl.store(VC + b * c_slot + p * c_pos + h * HD + dv, v, mask=hm)

    return rope_store


@functools.cache
def _attend_kernel():
    """Attention of one slot's query rows for one KV head over a span of its keys: the
    output, or (``PARTIAL``) the span's running max, sum and unnormalised output."""
    import triton
    import triton.language as tl

    @triton.jit
    def attend(Y, y_row, COS, SIN, POS, KC, VC, c_slot, c_pos, O, o_row, PO, PM, PL, scale_log2, chunk, nsplit,
               KVH: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, HD: tl.constexpr,
               BLOCK: tl.constexpr, PARTIAL: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        sp = tl.program_id(2)
        p = tl.load(POS + b)
        start = sp * chunk
        end = tl.minimum(start + chunk, p + 1)
        half: tl.constexpr = HD // 2
        g = tl.arange(0, GP)
        gm = g[:, None] < G
        d = tl.arange(0, half)[None, :]
        qrow = Y + b * y_row + (h * G + g[:, None]) * HD
        q1 = tl.load(qrow + d, mask=gm, other=0.0).to(tl.float32)
        q2 = tl.load(qrow + half + d, mask=gm, other=0.0).to(tl.float32)
        c1 = tl.load(COS + p * HD + d).to(tl.float32)
        c2 = tl.load(COS + p * HD + half + d).to(tl.float32)
        s1 = tl.load(SIN + p * HD + d).to(tl.float32)
        s2 = tl.load(SIN + p * HD + half + d).to(tl.float32)
        # Rotated and pre-scaled (exp2 below), in the cache's dtype for the tensor cores.
        r1 = ((q1 * c1 - q2 * s1) * scale_log2).to(KC.dtype.element_ty)
        r2 = ((q2 * c2 + q1 * s2) * scale_log2).to(KC.dtype.element_ty)
        m_i = tl.full([GP], float("-inf"), tl.float32)
        l_i = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, HD], tl.float32)
        n_off = tl.arange(0, BLOCK)
        dv = tl.arange(0, HD)[None, :]
        kv = b * c_slot + h * HD
        for n0 in range(start, end, BLOCK):
            n = n0 + n_off
            nm = n < end
            rows = kv + n[:, None] * c_pos
            k1 = tl.load(KC + rows + d, mask=nm[:, None], other=0.0)
            k2 = tl.load(KC + rows + half + d, mask=nm[:, None], other=0.0)
            s = tl.dot(r1, tl.trans(k1)) + tl.dot(r2, tl.trans(k2))
            s = tl.where(nm[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp2(m_i - m_new)
            e = tl.exp2(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(e, 1)
            v = tl.load(VC + rows + dv, mask=nm[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(e.to(VC.dtype.element_ty), v)
            m_i = m_new
        if PARTIAL:
            at = ((b * KVH + h) * nsplit + sp) * GP + g
            tl.store(PM + at, m_i)
            tl.store(PL + at, l_i)
            tl.store(PO + at[:, None] * HD + dv, acc)
        else:
            out = acc / l_i[:, None]
            tl.store(O + b * o_row + (h * G + g[:, None]) * HD + dv, out.to(O.dtype.element_ty), mask=gm)

    return attend


@functools.cache
def _combine_kernel():
    """Combines the partial results of a slot's key spans into its output."""
    import triton
    import triton.language as tl

    @triton.jit
    def combine(PO, PM, PL, POS, O, o_row, chunk, nsplit,
                KVH: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, HD: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        p = tl.load(POS + b)
        g = tl.arange(0, GP)
        dv = tl.arange(0, HD)[None, :]
        m_all = tl.full([GP], float("-inf"), tl.float32)
        l_all = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, HD], tl.float32)
        used = tl.minimum((p + chunk) // chunk, nsplit)  # splits that saw keys
        for sp in range(used):
            at = ((b * KVH + h) * nsplit + sp) * GP + g
            m = tl.load(PM + at)
            m_new = tl.maximum(m_all, m)
            a = tl.exp2(m_all - m_new)
            w = tl.exp2(m - m_new)
            l_all = l_all * a + tl.load(PL + at) * w
            acc = acc * a[:, None] + tl.load(PO + at[:, None] * HD + dv) * w[:, None]
            m_all = m_new
        out = acc / l_all[:, None]
        tl.store(O + b * o_row + (h * G + g[:, None]) * HD + dv, out.to(O.dtype.element_ty), mask=g[:, None] < G)

    return combine


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def splits(batch: int, kv_heads: int, max_len: int, block: int = BLOCK_N) -> tuple[int, int]:
    """(number of key splits, keys per split) for a batch: enough programs to fill the
    GPU, each split a whole number of key blocks (at least four)."""
    n = max(1, min(-(-TARGET_PROGRAMS // (batch * kv_heads)), -(-max_len // (4 * block))))
    chunk = -(-max_len // n)
    chunk = -(-chunk // block) * block
    return -(-max_len // chunk), chunk


def attend(y, cos, sin, pos, kc, vc, heads: int, scale: float, *, block: int = BLOCK_N, warps: int = WARPS,
           stages: int = STAGES):
    """Rotary, cache write and attention for one decode token per slot ``0..B-1``.

    ``y`` [B, (heads + 2 kv_heads) * head_dim]: the fused q/k/v projection (un-rotated);
    ``cos``/``sin`` [max_len, head_dim]; ``pos`` [B] each slot's position; ``kc``/``vc``
    [slots, max_len, kv_heads, head_dim] (written at ``pos``). Returns [B, heads * head_dim]."""
    import torch

    rope_store, attend_k, combine = _rope_store_kernel(), _attend_kernel(), _combine_kernel()
    B = y.shape[0]
    _, L, kvh, hd = kc.shape
    g = heads // kvh
    out = torch.empty(B, heads * hd, device=y.device, dtype=y.dtype)
    c_slot, c_pos = kc.stride(0), kc.stride(1)
    rope_store[(B,)](y, y.stride(0), cos, sin, pos, kc, vc, c_slot, c_pos, H=heads, KVH=kvh,
                     KVH_P=_pow2(kvh), HD=hd)
    nsplit, chunk = splits(B, kvh, L, block)
    scale_log2 = scale * 1.4426950408889634
    common = {"KVH": kvh, "G": g, "GP": ROWS, "HD": hd, "BLOCK": block, "num_warps": warps, "num_stages": stages}
    if nsplit == 1:
        attend_k[(B, kvh, 1)](y, y.stride(0), cos, sin, pos, kc, vc, c_slot, c_pos, out, out.stride(0),
                              out, out, out, scale_log2, chunk, 1, PARTIAL=False, **common)
        return out
    po = torch.empty(B * kvh * nsplit * ROWS, hd, device=y.device, dtype=torch.float32)
    pm = torch.empty(B * kvh * nsplit * ROWS, device=y.device, dtype=torch.float32)
    pl = torch.empty_like(pm)
    attend_k[(B, kvh, nsplit)](y, y.stride(0), cos, sin, pos, kc, vc, c_slot, c_pos, out, out.stride(0),
                               po, pm, pl, scale_log2, chunk, nsplit, PARTIAL=True, **common)
    combine[(B, kvh)](po, pm, pl, pos, out, out.stride(0), chunk, nsplit, KVH=kvh, G=g, GP=ROWS, HD=hd)
    return out


def reference(y, cos, sin, pos, kc, vc, heads: int, scale: float):
    """What ``attend`` computes, in plain torch (the runner's unfused decode path)."""
    import torch

    from selfcodealign.gpu import attention

    B = y.shape[0]
    _, L, kvh, hd = kc.shape
    q = y[:, : heads * hd].view(B, heads, hd).float()
    k = y[:, heads * hd : (heads + kvh) * hd].view(B, kvh, hd).float()
    v = y[:, (heads + kvh) * hd :].view(B, kvh, hd)
    c, s = cos[pos][:, None, :].float(), sin[pos][:, None, :].float()

    def rot(x):
        h = x.shape[-1] // 2
        return x * c + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * s

    rows = torch.arange(B, device=y.device) * L + pos
    kc.view(-1, kvh * hd).index_copy_(0, rows, rot(k).to(kc.dtype).reshape(B, -1))
    vc.view(-1, kvh * hd).index_copy_(0, rows, v.reshape(B, -1))
    return attention.decode(rot(q).to(kc.dtype), kc, vc, pos, L, scale, False)


@functools.cache
def agrees(device: str, dtype_name: str, heads: int, kv_heads: int, head_dim: int) -> bool:
    """Whether the kernels compute what ``reference`` does on this device (random inputs,
    several batch sizes so both the one-pass and the split paths run)."""
    import logging

    import torch

    log = logging.getLogger("selfcodealign.gpu")
    dt = getattr(torch, dtype_name)
    gen = torch.Generator(device=device).manual_seed(0)
    L = 320
    worst = 0.0
    try:
        for B in (3, 64):
            kc = torch.randn(B + 1, L, kv_heads, head_dim, device=device, dtype=dt, generator=gen)
            vc = torch.randn(B + 1, L, kv_heads, head_dim, device=device, dtype=dt, generator=gen)
            y = torch.randn(B, (heads + 2 * kv_heads) * head_dim, device=device, dtype=dt, generator=gen)
            ang = torch.randn(L, head_dim // 2, device=device, generator=gen)
            cos = torch.cat([ang.cos(), ang.cos()], -1).to(dt)
            sin = torch.cat([ang.sin(), ang.sin()], -1).to(dt)
            pos = torch.randint(0, L, (B,), device=device, generator=gen)
            pos[0] = 0
            kc2, vc2 = kc.clone(), vc.clone()
            got = attend(y, cos, sin, pos, kc, vc, heads, 0.125)
            want = reference(y, cos, sin, pos, kc2, vc2, heads, 0.125)
            worst = max(worst, float((got.float() - want.float()).abs().max()),
                        float((kc.float() - kc2.float()).abs().max()), float((vc.float() - vc2.float()).abs().max()))
    except Exception as e:  # noqa: BLE001 - any failure means: use the other path
        log.warning("Triton decode kernels unavailable (%s: %s)", type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "")
        return False
    if worst > 0.05:
        log.warning("Triton decode kernels disagree with the reference by %.3g; not used", worst)
        return False
    return True
