"""Packed rows must give each example exactly the logits it gets alone."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.train.format import IGNORE, Encoded
from selfcodealign.train.packing import pack


def tiny_qwen(attn):
    cfg = transformers.Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg)
    model.set_attn_implementation(attn)
    return model.eval().to(torch.float64).requires_grad_(False)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_equal_separate_logits(attn):
    model = tiny_qwen(attn)
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, 64, (n,), generator=g).tolist() for n in (5, 9, 3)]
    p = pack([Encoded(s, [IGNORE] * len(s)) for s in seqs])
    packed = model(
        input_ids=torch.tensor([p.input_ids]), position_ids=torch.tensor([p.position_ids]),
        use_cache=False,  # with a cache, transformers ignores packing
    ).logits[0]
    start = 0
    for s in seqs:
        alone = model(input_ids=torch.tensor([s])).logits[0]
        assert torch.allclose(packed[start : start + len(s)], alone, atol=1e-9)
        start += len(s)


def test_unpacked_row_would_leak_between_examples():
    # The check above can fail: without restarting positions, the second example sees the first.
    model = tiny_qwen("sdpa")
    seqs = [[1, 2, 3, 4], [5, 6, 7]]
    flat = model(input_ids=torch.tensor([seqs[0] + seqs[1]]), use_cache=False).logits[0]
    alone = model(input_ids=torch.tensor([seqs[1]])).logits[0]
    assert not torch.allclose(flat[4:], alone, atol=1e-6)


def test_training_keeps_sdpa_off_cudnn_on_a_gpu(monkeypatch):
    """cuDNN's SDPA backward gives NaN gradients for Qwen2.5 on padded batches of some
    widths (train.attention.avoid_cudnn_sdpa): training switches that backend off."""
    from selfcodealign.train import attention

    was = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert attention.avoid_cudnn_sdpa() is False and torch.backends.cuda.cudnn_sdp_enabled()
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert attention.avoid_cudnn_sdpa() is True and not torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(was)


def test_preparing_a_model_for_training_switches_cudnn_attention_off_on_a_gpu(monkeypatch, tiny_model_dir):
    from selfcodealign.models import load_model, resolve_source
    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.loop import prepare_for_training

    was = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        prepare_for_training(TrainConfig(model=str(tiny_model_dir)), load_model(resolve_source(str(tiny_model_dir))))
        assert not torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(was)
