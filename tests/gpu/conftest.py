"""Tiny randomly initialised decoders (CPU, float32) for the engine's correctness tests,
and Triton's interpreter for its kernels (set before anything imports Triton)."""

import os

import pytest

os.environ["TRITON_INTERPRET"] = "1"

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 64


class CharTokenizer:
    """Token i decodes to one letter: stop strings can be chosen from the output."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(97 + i % 26) for i in ids)


def tiny_model(kind: str = "qwen2", vocab: int = VOCAB, seed: int = 0):
    common = {"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}
    cfg = {
        "qwen2": lambda: transformers.Qwen2Config(**common),
        "llama": lambda: transformers.LlamaConfig(**common),
        "qwen3": lambda: transformers.Qwen3Config(head_dim=16, **common),
    }[kind]()
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def qwen2():
    return tiny_model("qwen2")


@pytest.fixture(scope="session")
def tok():
    return CharTokenizer()


@pytest.fixture(scope="session")
def prompts():
    g = torch.Generator().manual_seed(1)
    lens = torch.randint(2, 24, (6,), generator=g).tolist()
    return [tuple(torch.randint(1, VOCAB, (n,), generator=g).tolist()) for n in lens]


@pytest.fixture(scope="session")
def make_model():
    return tiny_model


@pytest.fixture(scope="session")
def greedy_reference():
    return _greedy_reference


def _greedy_reference(model, prompt, max_new):
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False,
                         temperature=None, top_p=None, top_k=None, eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="session")
def triton_interpreter():
    """Triton running kernels on the CPU. Its interpreter holds scalars as 1-element
    arrays and turns them into loop bounds with int(array), which NumPy >= 2.4 refuses;
    it is given the element instead."""
    pytest.importorskip("triton")
    import triton.runtime.interpreter as interp

    patch = interp._patch_lang_tensor

    def patch_scalars(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patch_scalars
    yield
    interp._patch_lang_tensor = patch
