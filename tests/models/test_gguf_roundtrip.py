"""The round trip on the real embedded model: GGUF (Q4_K_M) -> bf16 directory (`export`)
-> GGUF f16 and q8_0 (`export OUT.gguf`) -> the embedded engine (xllamacpp).

Tolerance, and why: the directory's weights are bf16 values, which f16 holds exactly, so
the two files carry the same numbers; what differs is the arithmetic (llama.cpp rounds
activations to f16 for its f16 matmuls, transformers here computes in float32). Such
noise can flip a near-tie between two tokens, and from there the continuations part.
So each prompt's greedy continuation must agree token for token for its first
``PREFIX`` tokens (or until either ends), and over all prompts at least ``SHARE`` of the
tokens must lie in the common prefixes. A wrong tensor layout, hyperparameter, tokenizer
or chat template fails at the first token. q8_0 adds quantisation error: it must give
text on every prompt and agree with f16 on the first ``Q8_PREFIX`` tokens.

Measured: 128 of 128 tokens agree (f16 vs transformers), 84 of 128 (q8_0 vs f16).
Runtime: 2 min 24 s on 2 nearly idle cores (exports 30 + 7 + 7 s, transformers' 128
tokens in float32 65 s, reading the GGUF metadata 20 s); 4 min 44 s at load ~10.
"""

import pytest

pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.backends.base import SamplingParams  # noqa: E402
from selfcodealign.backends.llamacpp import LlamaCppBackend  # noqa: E402
from selfcodealign.cli import main  # noqa: E402

pytestmark = pytest.mark.model

MAX_TOKENS = 32
PREFIX = 16
SHARE = 0.9
Q8_PREFIX = 8
PROMPTS = [[{"role": "user", "content": c}] for c in (
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Explain what a hash map is in two sentences.",
    "Write a Python function that merges two sorted lists into one sorted list.",
)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model_path):
    d = tmp_path_factory.mktemp("roundtrip")
    assert main(["export", str(model_path), str(d / "bf16")]) == 0
    assert main(["export", str(d / "bf16"), str(d / "f16.gguf")]) == 0
    assert main(["export", str(d / "bf16"), str(d / "q8.gguf"), "--type", "q8_0"]) == 0
    return d


def _engine_texts(path) -> tuple[list[str], list[int]]:
    with LlamaCppBackend(path, n_parallel=1, threads=2) as b:
        res = b.generate(PROMPTS, SamplingParams(max_tokens=MAX_TOKENS))
    return [r[0].text for r in res], [r[0].prompt_tokens for r in res]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.fixture(scope="module")
def tokenizer(exported):
    return transformers.AutoTokenizer.from_pretrained(exported / "bf16")


@pytest.fixture(scope="module")
def f16_texts(exported):
    return _engine_texts(exported / "f16.gguf")


def test_the_written_gguf_carries_the_source_tokenizer_template_and_shape(exported, model_path):
    import gguf

    def fields(path):
        r = gguf.GGUFReader(path)
        return {k: f.contents() for k, f in r.fields.items() if k.startswith(("tokenizer.", "qwen2."))}, \
            {t.name: tuple(t.shape) for t in r.tensors}, {t.name: t.tensor_type.name for t in r.tensors}

    src, src_shapes, _ = fields(model_path)
    out, out_shapes, out_types = fields(exported / "f16.gguf")
    assert src_shapes == out_shapes
    assert out_types["blk.0.attn_q.weight"] == "F16" and out_types["blk.0.attn_q.bias"] == "F32"
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
                "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template"):
        assert out[key] == src[key], key
    assert {k: v for k, v in out.items() if k.startswith("qwen2.")} == \
        {k: v for k, v in src.items() if k.startswith("qwen2.")}
    q8 = {t.name: t.tensor_type.name for t in gguf.GGUFReader(exported / "q8.gguf").tensors}
    assert q8["blk.0.ffn_down.weight"] == "Q8_0" and q8["output_norm.weight"] == "F32"


def test_f16_greedy_tokens_match_transformers_on_the_bf16_directory(exported, tokenizer, f16_texts):
    model = transformers.AutoModelForCausalLM.from_pretrained(exported / "bf16", dtype=torch.float32).eval()
    texts, prompt_tokens = f16_texts
    agree = total = 0
    for msgs, text, n_prompt in zip(PROMPTS, texts, prompt_tokens):
        prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        assert ids.shape[1] == n_prompt  # same chat template, same tokenizer
        with torch.no_grad():
            gen = model.generate(ids, do_sample=False, max_new_tokens=MAX_TOKENS)[0, ids.shape[1]:]
        ref = tokenizer(tokenizer.decode(gen, skip_special_tokens=True)).input_ids
        got = tokenizer(text).input_ids
        n = _common_prefix(ref, got)
        assert n >= min(PREFIX, len(ref), len(got)), (tokenizer.decode(ref), text)
        agree, total = agree + n, total + max(len(ref), len(got))
    print(f"f16 vs transformers: {agree}/{total} tokens in common prefixes")
    assert agree >= SHARE * total


def test_q8_0_generates_and_agrees_with_f16_on_the_first_tokens(exported, tokenizer, f16_texts):
    q8, _ = _engine_texts(exported / "q8.gguf")
    agree = total = 0
    for a, b in zip(f16_texts[0], q8):
        assert b.strip()
        ta, tb = tokenizer(a).input_ids, tokenizer(b).input_ids
        n = _common_prefix(ta, tb)
        assert n >= min(Q8_PREFIX, len(ta), len(tb)), (a, b)
        agree, total = agree + n, total + max(len(ta), len(tb))
    print(f"q8_0 vs f16: {agree}/{total} tokens in common prefixes")
    assert (exported / "q8.gguf").stat().st_size < 0.6 * (exported / "f16.gguf").stat().st_size
