"""MasterWeights: fp32 gradient sums over micro-batches, step after step."""

import pytest

torch = pytest.importorskip("torch")

from selfcodealign.train.master import MasterWeights  # noqa: E402


def test_sums_each_step_afresh_and_zeroes_what_got_no_gradient():
    a = torch.nn.Parameter(torch.zeros(4, dtype=torch.bfloat16))
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.bfloat16))
    mw = MasterWeights([a, b])
    for step in range(3):
        # micro 1 touches only a; micro 2 both: b's sum must not keep the last step's value
        a.grad = torch.full((4,), 1.0 + step, dtype=torch.bfloat16)
        mw.accumulate()
        assert a.grad is None and b.grad is None
        a.grad = torch.full((4,), 0.5, dtype=torch.bfloat16)
        b.grad = torch.full((3,), 2.0, dtype=torch.bfloat16)
        mw.accumulate()
        ga, gb = (m.grad for m in mw.master)
        assert ga.dtype == torch.float32
        assert torch.equal(ga, torch.full((4,), 1.5 + step))
        assert torch.equal(gb, torch.full((3,), 2.0))
        mw.master[0].data += 1
        mw.refresh()
        assert torch.equal(a.detach(), torch.full((4,), float(step + 1), dtype=torch.bfloat16))


def test_a_step_whose_first_micro_batch_has_no_gradient_starts_from_zero():
    a = torch.nn.Parameter(torch.zeros(2, dtype=torch.bfloat16))
    mw = MasterWeights([a])
    a.grad = torch.ones(2, dtype=torch.bfloat16)
    mw.accumulate()
    mw.refresh()
    mw.accumulate()  # nothing this time (a zero-weight pass that produced no gradient)
    a.grad = torch.full((2,), 3.0, dtype=torch.bfloat16)
    mw.accumulate()
    assert torch.equal(mw.master[0].grad, torch.full((2,), 3.0))
