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
    g = torch.Generator().manual_seed(1)
    lengths = [1, 9, 30, 4]
    offsets = [0]
    for n in lengths:
        offsets.append(offsets[-1] + n)
    N, hd = offsets[-1], 8
    q = torch.randn(N, heads, hd, generator=g)
    k = torch.randn(N, kv_heads, hd, generator=g)
    v = torch.randn(N, kv_heads, hd, generator=g)
    cu = (torch.tensor(offsets, dtype=torch.int32), offsets)
    flash = attention.prefill(q, k, v, cu, max(lengths), 0.5, True)
    ref = attention.prefill(q, k, v, cu, max(lengths), 0.5, False)
    assert torch.allclose(flash, ref, atol=1e-5)
    # Prompts do not see each other: changing the second leaves the others' rows alone.
    k2 = k.clone()
    k2[offsets[1]:offsets[2]] += 3
    other = attention.prefill(q, k2, v, cu, max(lengths), 0.5, False)
    keep = torch.ones(N, dtype=torch.bool)
    keep[offsets[1]:offsets[2]] = False
    assert torch.allclose(other[keep], ref[keep]) and not torch.allclose(other[~keep], ref[~keep])
