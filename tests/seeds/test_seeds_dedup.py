import pytest

from selfcodealign.seeds import dedup
from selfcodealign.seeds.extract import extract
from seeds_corpus import GOOD, NEAR_COPY


@pytest.mark.parametrize("use_minhash", [True, False])
def test_renamed_near_copy_is_a_duplicate(use_minhash):
    good = {c.name: c for c in extract(GOOD)}
    (copy,) = extract(NEAR_COPY)
    idx = dedup.NearDupIndex(0.5, use_minhash=use_minhash)
    assert idx.add_if_new(idx.signature(good["entropy"].code))
    assert idx.add_if_new(idx.signature(good["clamp"].code))  # unrelated: kept
    assert not idx.add_if_new(idx.signature(copy.code))
    assert len(idx) == 2


def test_minhash_agrees_with_exact_jaccard():
    a = dedup.shingles(GOOD)
    b = dedup.shingles(NEAR_COPY)
    exact = len(a & b) / len(a | b)
    from datasketch import MinHash

    ma = dedup._minhash(dedup.signature(GOOD, True))
    mb = dedup._minhash(dedup.signature(NEAR_COPY, True))
    assert isinstance(ma, MinHash)
    assert abs(ma.jaccard(mb) - exact) < 0.15
