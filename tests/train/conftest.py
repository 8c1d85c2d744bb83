import pytest


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The embedded model's tokenizer (read from the GGUF: ~10 s, once per session)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from selfcodealign.models import load_tokenizer, resolve_source

    return load_tokenizer(resolve_source(None))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, qwen_tokenizer):
    """A tiny random Qwen2 model (2 layers of 32) with the embedded model's tokenizer."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("tiny")
    cfg = transformers.Qwen2Config(
        vocab_size=len(qwen_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        eos_token_id=qwen_tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(d)
    qwen_tokenizer.save_pretrained(d)
    return d
