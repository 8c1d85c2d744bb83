"""The Triton decode kernels (rotary + cache write, attention, split combine) against the
plain torch path, run in Triton's interpreter on the CPU (the benchmark and ``agrees``
check the compiled kernels on a GPU)."""

import pytest

torch = pytest.importorskip("torch")

from selfcodealign.gpu import decode_kernels as dk  # noqa: E402

pytestmark = pytest.mark.usefixtures("triton_interpreter")


# Few slots with long rows: keys split over programs, then combined; many slots: one pass.
@pytest.mark.parametrize("B,heads,kv_heads,hd,L", [(3, 14, 2, 64, 600), (2, 8, 1, 32, 600), (130, 4, 2, 32, 100)])
def test_kernels_match_the_reference(B, heads, kv_heads, hd, L):
    g = torch.Generator().manual_seed(B)
    kc = torch.randn(B + 2, L, kv_heads, hd, generator=g)
    vc = torch.randn(B + 2, L, kv_heads, hd, generator=g)
    y = torch.randn(B, (heads + 2 * kv_heads) * hd, generator=g)
    ang = torch.randn(L, hd // 2, generator=g)
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    pos = torch.randint(0, L, (B,), generator=g)
    pos[0] = 0
    pos[-1] = L - 1
    nsplit, chunk = dk.splits(B, kv_heads, L)
    assert nsplit * chunk >= L and chunk % dk.BLOCK_N == 0
    assert (nsplit > 1) == (B * kv_heads < dk.TARGET_PROGRAMS // 4)
    kc2, vc2 = kc.clone(), vc.clone()
    got = dk.attend(y, cos, sin, pos, kc, vc, heads, 0.3)
    want = dk.reference(y, cos, sin, pos, kc2, vc2, heads, 0.3)
    assert got.shape == want.shape == (B, heads * hd)
    assert torch.allclose(kc, kc2, atol=1e-5) and torch.equal(vc, vc2)
    assert torch.allclose(got, want, atol=1e-4)
    # Positions past a slot's own are never read.
    for b in range(B):
        kc[b, int(pos[b]) + 1:] = 1e4
    assert torch.allclose(dk.attend(y, cos, sin, pos, kc, vc, heads, 0.3), want, atol=1e-4)


def test_splits_fill_the_gpu_and_cover_the_cache():
    assert dk.splits(1024, 2, 1536) == (1, 1536)
    n, chunk = dk.splits(1, 2, 1536)
    assert n > 1 and n * chunk >= 1536 and chunk >= 4 * dk.BLOCK_N
