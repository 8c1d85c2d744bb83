import pytest


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The embedded model's tokenizer (read from the GGUF: ~10 s, once per session)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from selfcodealign.models import load_tokenizer, resolve_source

    return load_tokenizer(resolve_source(None))
