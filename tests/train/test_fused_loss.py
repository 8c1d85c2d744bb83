"""The chunked loss (output matrix applied inside the loss) against plain logits + cross-entropy."""

import pytest

torch = pytest.importorskip("torch")

from selfcodealign.train.fused_loss import hidden_states_out, linear_cross_entropy


@pytest.mark.parametrize("n, chunk", [(37, 8), (37, 37), (5, 4096)])
def test_loss_and_gradients_match_plain_cross_entropy(n, chunk):
    g = torch.Generator().manual_seed(n)
    h = torch.randn(n, 16, generator=g, requires_grad=True)
    w = torch.randn(101, 16, generator=g, requires_grad=True)
    t = torch.randint(0, 101, (n,), generator=g)
    ref = torch.nn.functional.cross_entropy(h @ w.t(), t, reduction="sum")
    (ref * 0.25).backward()
    want_h, want_w = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    got = linear_cross_entropy(h, w, t, chunk=chunk)
    (got * 0.25).backward()
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(h.grad, want_h, atol=1e-5) and torch.allclose(w.grad, want_w, atol=1e-5)


def test_a_frozen_output_matrix_gets_no_gradient():
    h = torch.randn(9, 8, requires_grad=True)
    w = torch.randn(30, 8)
    linear_cross_entropy(h, w, torch.randint(0, 30, (9,)), chunk=4).backward()
    assert h.grad is not None and w.grad is None


def test_the_output_layer_passes_hidden_states_only_inside_the_context():
    model = torch.nn.Module()
    model.lm_head = torch.nn.Linear(4, 6, bias=False)
    model.get_output_embeddings = lambda: model.lm_head
    x = torch.randn(2, 4)
    with hidden_states_out(model) as head:
        assert head is model.lm_head and torch.equal(model.lm_head(x), x)
    assert model.lm_head(x).shape == (2, 6)
    assert [n for n, _ in model.named_parameters()] == ["lm_head.weight"]
