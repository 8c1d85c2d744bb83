"""The hf backend from a model directory, with either engine: chat template, prefill,
n samples, input order, per-request seeds, continuations, and how the engine is chosen."""

import logging
from dataclasses import replace

import pytest
import torch

from selfcodealign.backends.base import BackendError, SamplingParams
from selfcodealign.backends.hf import HFBackend

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, make_model):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["def add(a, b):\n    return a + b\n", "Write a function that sorts a list.", "```python\n"] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = TEMPLATE
    d = tmp_path_factory.mktemp("tiny-chat")
    model = make_model("qwen2", vocab=len(tok))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


ENGINES = ["continuous", "generate"]


@pytest.mark.parametrize("engine", ENGINES)
def test_backend_generates_like_transformers(model_dir, engine):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = [[{"role": "user", "content": f"Write a function that sorts a list of {i} items."}]
               for i in range(5)] + ["def add(a, b):"]
    greedy = SamplingParams(n=2, temperature=0.0, max_tokens=12, prefill="```python\n", stop=("zzz",))
    sampled = SamplingParams(n=3, temperature=0.8, top_p=0.95, max_tokens=12, seed=5)
    params = [greedy] * 3 + [sampled] * 3
    with HFBackend(str(model_dir), engine=engine, batch_size=3) as backend:
        assert backend.device == "cpu" and backend.has_chat_template
        assert backend.engine == engine and backend.name == "hf"
        out = backend.generate(prompts, params)
        again = backend.generate(prompts, params)
        assert backend.stats.requests == 2 * (3 * 2 + 3 * 3)

    assert [len(c) for c in out] == [2, 2, 2, 3, 3, 3]
    assert [[c.text for c in cs] for cs in out] == [[c.text for c in cs] for cs in again]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for i in range(3):
        text = tok.apply_chat_template(prompts[i], tokenize=False, add_generation_prompt=True) + greedy.prefill
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             temperature=None, top_p=None, top_k=None, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id)]
        expected = greedy.prefill + tok.decode(ref, skip_special_tokens=True)
        assert [c.text for c in out[i]] == [expected, expected]
        assert out[i][0].prompt_tokens == ids.shape[1]
        assert out[i][0].completion_tokens == len(ref)
    # Different seeds per sample: the sampled completions of a prompt are not all equal.
    assert any(len({c.text for c in out[i]}) > 1 for i in range(3, 6))
    assert all(c.finish_reason in ("stop", "length") for cs in out for c in cs)


def _tokens(backend, prompts, sp):
    return [[c.text for c in cs] for cs in backend.generate(prompts, sp)]


@pytest.mark.parametrize("engine", ENGINES)
def test_each_sample_has_its_own_seed_whatever_shares_its_batch(model_dir, engine):
    """Sample i of a request is drawn with seed ``seed + i`` on both engines: alone or in a
    batch with other prompts (other lengths, so other padding), it comes out the same.
    Seeding per batch (torch.manual_seed before generate) fails this."""
    prompt = [{"role": "user", "content": "Write a function that sorts a list."}]
    others = [[{"role": "user", "content": "Sort " + "a list of items, " * k}] for k in (1, 3, 6)] + ["def add(a"]
    sp = SamplingParams(n=2, temperature=1.0, max_tokens=10, seed=7, stop=("zzz",))
    with HFBackend(str(model_dir), engine=engine, batch_size=16) as backend:
        alone = _tokens(backend, [prompt], sp)[0]
        for at in (0, 2, 4):  # first, in the middle and last row of the batch
            batch = others[:at] + [prompt] + others[at:]
            assert _tokens(backend, batch, [sp if k == at else replace(sp, seed=100 + k)
                                            for k in range(len(batch))])[at] == alone
        # sample 1 with seed 7 is sample 0 with seed 8: a resumed run draws the same
        assert _tokens(backend, [prompt], replace(sp, n=1, seed=8))[0] == alone[1:]
        other_seed = _tokens(backend, [prompt], replace(sp, seed=1000))[0]
    assert alone[0] != alone[1] and other_seed != alone


def test_both_engines_draw_the_same_tokens(model_dir):
    """One sampler (gpu.sampling) for both engines: the same requests give the same text."""
    prompts = [[{"role": "user", "content": f"Write a function that sorts {i} items."}] for i in range(3)]
    params = [SamplingParams(n=2, temperature=t, top_p=p, max_tokens=10, seed=3)
              for t, p in ((0.0, 1.0), (0.8, 0.95), (1.0, 1.0))]
    outs = []
    for engine in ENGINES:
        with HFBackend(str(model_dir), engine=engine, batch_size=8) as backend:
            outs.append(_tokens(backend, prompts, params))
    assert outs[0] == outs[1]


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, model_dir):
    """A model the continuous engine does not run (GPT-2), with the same tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=256))
    model.generation_config.eos_token_id = tok.eos_token_id
    d = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_the_engine_choice_is_logged_and_explicit(model_dir, gpt2_dir, caplog):
    from selfcodealign.backends import make_backend
    from selfcodealign.config import BackendConfig

    caplog.set_level(logging.INFO, logger="selfcodealign")
    with make_backend(BackendConfig(kind="hf", model=str(model_dir), batch_size=4)) as b:
        assert b.engine == "continuous"
    [rec] = [r for r in caplog.records if r.name.startswith("selfcodealign.backends")]
    assert rec.levelno == logging.INFO and "continuous engine" in rec.getMessage()
    caplog.clear()
    with make_backend(BackendConfig(kind="hf", model=str(gpt2_dir), batch_size=4)) as b:
        assert b.engine == "generate"
        [[c]] = b.generate(["def add"], SamplingParams(max_tokens=3, temperature=1.0))
        assert c.completion_tokens > 0
    [rec] = [r for r in caplog.records if r.name.startswith("selfcodealign.backends")]
    assert rec.levelno == logging.WARNING and "'gpt2'" in rec.getMessage() and "generate engine" in rec.getMessage()
    with pytest.raises(BackendError, match="'gpt2'.*--set backend.engine=generate"):
        make_backend(BackendConfig(kind="hf", model=str(gpt2_dir), engine="continuous"))
    with make_backend(BackendConfig(kind="hf", model=str(model_dir), engine="generate")) as b:
        assert b.engine == "generate"


def test_export_writes_a_loadable_bf16_directory(model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from selfcodealign.cli import main

    assert main(["export", str(model_dir), str(tmp_path / "out")]) == 0
    m = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert m.dtype == torch.bfloat16
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
    assert main(["export", str(model_dir), str(tmp_path / "out")]) == 2  # not empty


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reply_without_its_section_is_continued_once(model_dir, engine):
    """SamplingParams.require: a sample that stops without the marker is continued from
    its own text plus the section opening, with its own seed, exactly as one more request
    with that prefill would be."""
    from selfcodealign.backends.base import (
        continuation_params,
        merge_continuation,
        needs_continuation,
    )

    prompts = [[{"role": "user", "content": f"Write a function that sorts {i} items."}] for i in range(4)]
    with HFBackend(str(model_dir), engine=engine, batch_size=4) as backend:
        base = SamplingParams(n=2, temperature=0.8, max_tokens=10, seed=3)
        plain = backend.generate(prompts, base)
        # per prompt, a stop string that its first sample reaches: it ends "stop" without the marker
        stops = [next(ch for ch in cs[0].text[1:] if ch.isalnum()) for cs in plain]
        params = [replace(base, stop=(st,), require=("### Tests", "\n\n### Tests\n")) for st in stops]
        out = backend.generate(prompts, params)
        first = backend.generate(prompts, [replace(sp, require=None) for sp in params])
        continued = 0
        for i, sp in enumerate(params):
            for s in range(2):
                c = first[i][s]
                if not needs_continuation(c, sp):
                    assert out[i][s] == c
                    continue
                more = backend.generate([prompts[i]], replace(continuation_params(c, sp), n=1, seed=sp.seed + s))
                assert out[i][s] == merge_continuation(c, more[0][0])
                assert out[i][s].text.startswith(c.text.rstrip() + "\n\n### Tests\n")
                assert out[i][s].completion_tokens == c.completion_tokens + more[0][0].completion_tokens
                continued += 1
    assert continued >= len(prompts)
