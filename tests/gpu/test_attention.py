"""The runner's attention: the flash path's packing (GQA heads as query rows, slot rows
as sequences of which only ``pos + 1`` positions are read, prompts end to end) checked on
the CPU against the reference path, with FlashAttention's variable-length contract
emulated in plain torch (the kernel itself only runs on a GPU: the benchmark and
``flash_agrees`` compare it there)."""

import pytest

torch = pytest.importorskip("torch")

from selfcodealign.gpu import attention  # noqa: E402


def varlen_reference(q, k, v, cu_q, cu_k, max_q, max_k, dropout, causal, debug, *, scale, seqused_k=None):
    """FlashAttention-2's varlen forward, as documented: sequence i's queries are rows
    cu_q[i]:cu_q[i+1], its keys rows cu_k[i]: (seqused_k[i] of them when given); query
    head h reads KV head h // (heads / kv_heads); causal masks align bottom-right."""
    H, kvh = q.shape[1], k.shape[1]
    out = torch.zeros_like(q)
    for i in range(len(cu_q) - 1):
        qa, qb = int(cu_q[i]), int(cu_q[i + 1])
        ka = int(cu_k[i])
        n_k = int(seqused_k[i]) if seqused_k is not None else int(cu_k[i + 1]) - ka
        assert qb - qa <= max_q and n_k <= max_k
        for h in range(H):
            qi, ki, vi = q[qa:qb, h].float(), k[ka:ka + n_k, h // (H // kvh)].float(), v[ka:ka + n_k, h // (H // kvh)].float()
            s = qi @ ki.T * scale
            if causal:
                nq = qb - qa
                allowed = torch.arange(n_k)[None, :] <= torch.arange(nq)[:, None] + (n_k - nq)
                s = s.masked_fill(~allowed, float("-inf"))
            out[qa:qb, h] = (torch.softmax(s, -1) @ vi).to(q.dtype)
    return (out, None, None, None, None)


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setattr(torch.ops.aten, "_flash_attention_forward", varlen_reference, raising=False)


@pytest.mark.parametrize("heads,kv_heads", [(14, 2), (4, 4), (8, 1)])
def test_decode_packing_matches_the_reference(emulated, heads, kv_heads):
    g = torch.Generator().manual_seed(0)
    slots, L, B, hd = 7, 96, 5, 16
    kc = torch.randn(slots, L, kv_heads, hd, generator=g)
    vc = torch.randn(slots, L, kv_heads, hd, generator=g)
    q = torch.randn(B, heads, hd, generator=g)
    pos = torch.tensor([0, 5, 40, 95, 63])
    flash = attention.decode(q, kc, vc, pos, L, 0.3, True)
    ref = attention.decode(q, kc, vc, pos, L, 0.3, False)
    assert flash.shape == ref.shape == (B, heads * hd)
    assert torch.allclose(flash, ref, atol=1e-5)
    # Positions past pos are never read: garbage there changes nothing.
    kc2 = kc.clone()
    for b in range(B):
        kc2[b, int(pos[b]) + 1:] = 1e4
    assert torch.allclose(attention.decode(q, kc2, vc, pos, L, 0.3, True), flash, atol=1e-5)


@pytest.mark.parametrize("heads,kv_heads", [(14, 2), (4, 4)])
def test_packed_prefill_matches_one_prompt_at_a_time(emulated, heads, kv_heads):
    """Sequences in cache rows 0, 2, 3, 5, two of them after a cached prefix (their new
    tokens see the prefix and themselves, causally)."""
    g = torch.Generator().manual_seed(1)
    slots, L, hd = 6, 48, 8
    host = [(0, 0, 1), (2, 0, 9), (3, 10, 40), (5, 44, 48)]
    N = sum(e - a for _, a, e in host)
    q = torch.randn(N, heads, hd, generator=g)
    kc = torch.randn(slots, L, kv_heads, hd, generator=g)
    vc = torch.randn(slots, L, kv_heads, hd, generator=g)
    seqs = attention.pack(host, L, slots, "cpu")
    flash = attention.prefill(q, kc, vc, seqs, 0.5, True)
    ref = attention.prefill(q, kc, vc, seqs, 0.5, False)
    assert flash.shape == ref.shape == (N, heads, hd)
    assert torch.allclose(flash, ref, atol=1e-5)
    # The third sequence's first new token (position 10) sees exactly positions 0..10.
    qh = q[10, 0]
    keys, vals = kc[3, :11, 0], vc[3, :11, 0]
    expect = torch.softmax(keys @ qh * 0.5, -1) @ vals
    assert torch.allclose(ref[10, 0], expect, atol=1e-5)
    # Sequences do not see each other's rows, nor positions past their end.
    kc2 = kc.clone()
    kc2[2] += 3
    kc2[3, 40:] = 1e4
    other = attention.prefill(q, kc2, vc, seqs, 0.5, False)
    keep = torch.ones(N, dtype=torch.bool)
    keep[1:10] = False
    assert torch.allclose(other[keep], ref[keep]) and not torch.allclose(other[~keep], ref[~keep])
