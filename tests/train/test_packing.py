from collections import Counter

import pytest

from selfcodealign.train.format import IGNORE, Encoded
from selfcodealign.train.packing import pack, pack_bins, plan_epoch


def test_pack_bins_respects_budget_and_keeps_every_example():
    lengths = [7, 3, 5, 9, 1, 4, 6]
    bins = pack_bins(lengths, range(len(lengths)), budget=10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # 35 tokens in bins of 10: first-fit decreasing finds the minimum


@pytest.mark.parametrize("world", [1, 2, 3])
def test_plan_covers_each_example_once_per_epoch_on_equal_pass_counts(world):
    lengths = [5, 17, 3, 9, 12, 8, 2, 20, 7, 11]
    labels = [n // 2 for n in lengths]
    plans = [
        plan_epoch(lengths, labels, examples_per_step=4, token_budget=24, world_size=world, rank=r, seed=1)
        for r in range(world)
    ]
    seen = Counter(i for plan in plans for step in plan for mb in step.micro for i in mb)
    assert seen == Counter(range(len(lengths)))
    for steps in zip(*plans):
        # Every rank runs the same number of forward passes in each step.
        assert len({len(s.micro) for s in steps}) == 1
        # Each rank weighs its loss by the tokens of the whole step.
        chosen = [i for s in steps for mb in s.micro for i in mb]
        assert {s.label_tokens for s in steps} == {sum(labels[i] for i in chosen)}
        for s in steps:
            assert all(sum(lengths[i] for i in mb) <= 24 for mb in s.micro)


def test_plan_differs_between_epochs_but_not_between_runs():
    lengths = list(range(1, 30))
    a = plan_epoch(lengths, lengths, examples_per_step=5, token_budget=64, seed=3, epoch=0)
    b = plan_epoch(lengths, lengths, examples_per_step=5, token_budget=64, seed=3, epoch=0)
    c = plan_epoch(lengths, lengths, examples_per_step=5, token_budget=64, seed=3, epoch=1)
    assert a == b
    assert a != c


def test_plan_rejects_example_longer_than_budget():
    with pytest.raises(ValueError):
        plan_epoch([5, 50], [1, 1], examples_per_step=2, token_budget=20)


def test_pack_restarts_positions_and_never_predicts_across_examples():
    a = Encoded([1, 2, 3, 4], [IGNORE, IGNORE, 3, 4])
    b = Encoded([5, 6, 7], [IGNORE, 6, 7])
    p = pack([a, b], pad_id=0, pad_to_multiple=8)
    assert p.input_ids == [1, 2, 3, 4, 5, 6, 7, 0]
    assert p.position_ids == [0, 1, 2, 3, 0, 1, 2, 0]
    assert p.cu_seq_lens == [0, 4, 7, 8]
    # position p predicts token p+1 of its own example, only where that token is a label
    assert p.targets == [IGNORE, 3, 4, IGNORE, 6, 7, IGNORE, IGNORE]
    assert p.n_tokens == 7 and p.max_len == 4


def test_empty_micro_batch_is_a_zero_weight_pass():
    p = pack([], pad_id=9)
    assert p.input_ids == [9] and p.targets == [IGNORE] and p.n_tokens == 0


def test_micro_batches_are_made_ahead_on_request():
    # fill() makes the next micro-batch while the GPU works on the current one; take()
    # hands each one out once, in order, making it then if fill() was not called
    from selfcodealign.train.loop import _Ahead

    made = []

    def produce():
        for i in range(3):
            made.append(i)
            yield i

    ahead = _Ahead(produce())
    assert made == []
    assert ahead.take() == 0 and made == [0]
    ahead.fill()
    ahead.fill()
    assert made == [0, 1]
    assert ahead.take() == 1 and ahead.take() == 2
    with pytest.raises(StopIteration):
        ahead.take()
