"""GGUF writing on tiny models (seconds): a tied-embedding Qwen2 read back by transformers
gives the same logits and runs in the embedded engine; a LoRA output is merged;
unsupported input ends in one line. The real model's round trip is
in test_gguf_roundtrip.py."""

import json
import sys

import pytest

pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.cli import main  # noqa: E402
from selfcodealign.errors import UserError  # noqa: E402
from selfcodealign.models.gguf_write import write_gguf  # noqa: E402


def _tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["def add(a, b):\n    return a + b\n", "Write a function that sorts a list."] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab - 2, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}<|im_end|>{% endfor %}"
    return tok


def _model_dir(tmp_path, model_type: str = "qwen2", vocab: int = 320):
    tok = _tokenizer(vocab - 8)  # the embedding is padded past the tokenizer, as Qwen's is
    cfg = transformers.AutoConfig.for_model(
        model_type, vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, eos_token_id=tok.eos_token_id, initializer_range=0.3)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    d = tmp_path / model_type
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d, model, tok


def test_a_tied_qwen2_reads_back_with_the_same_logits(tmp_path):
    import gguf

    d, model, tok = _model_dir(tmp_path)
    write_gguf(str(d), tmp_path / "m.gguf", "f32")
    r = gguf.GGUFReader(tmp_path / "m.gguf")
    names = {t.name for t in r.tensors}
    assert "output.weight" not in names and "token_embd.weight" in names  # tied: no copy
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    assert len(tokens) == 320 and tokens[-1] == "[PAD319]" and types[-1] == gguf.TokenType.UNUSED
    assert types[tok.convert_tokens_to_ids("<|im_end|>")] == gguf.TokenType.CONTROL
    assert r.fields["tokenizer.chat_template"].contents() == tok.chat_template
    assert r.fields["tokenizer.ggml.add_bos_token"].contents() is False

    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="m.gguf",
                                                             dtype=torch.float32).eval()
    ids = torch.tensor([tok("def add(a, b):\n    return a + b").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, model(ids).logits, rtol=1e-4, atol=1e-4)


def test_a_tied_qwen2_runs_in_the_embedded_engine_as_under_transformers(tmp_path):
    """llama.cpp reuses token_embd for the missing output matrix; f32 on both sides, so
    the greedy continuations are the same text (the seeded weights make them varied)."""
    from selfcodealign.backends.base import SamplingParams
    from selfcodealign.backends.llamacpp import LlamaCppBackend

    d, model, tok = _model_dir(tmp_path)
    write_gguf(str(d), tmp_path / "t.gguf", "f32")
    prompt = "Write a function that sorts a list."
    ids = torch.tensor([tok(prompt).input_ids])
    with torch.no_grad():
        ref = model.generate(ids, do_sample=False, max_new_tokens=12, eos_token_id=None)[0, ids.shape[1]:]
    with LlamaCppBackend(tmp_path / "t.gguf", n_parallel=1, threads=1, ctx_per_slot=128) as b:
        [[got]] = b.generate([prompt], SamplingParams(max_tokens=12))
    assert len(set(ref.tolist())) > 6
    assert got.completion_tokens == 12 and got.text == tok.decode(ref)


def test_a_lora_output_is_merged_before_writing(tmp_path):
    peft = pytest.importorskip("peft", reason="LoRA outputs need peft (the train extra)")
    d, model, tok = _model_dir(tmp_path)
    ids = torch.tensor([tok("def add(a, b):").input_ids])
    with torch.no_grad():
        base = model(ids).logits
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "down_proj"],
                                                      init_lora_weights=False))
    lora.save_pretrained(tmp_path / "lora")
    (tmp_path / "lora" / "train_config.json").write_text(json.dumps({"model": str(d)}))
    write_gguf(str(tmp_path / "lora"), tmp_path / "l.gguf", "f32")

    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="l.gguf",
                                                             dtype=torch.float32).eval()
    with torch.no_grad():
        tuned = lora.merge_and_unload()(ids).logits
        got = back(ids).logits
    assert (tuned - base).abs().max() > 1e-3  # the adapter changes the model...
    torch.testing.assert_close(got, tuned, rtol=1e-4, atol=1e-4)  # ...and the file holds it


@pytest.mark.parametrize("typ", ["q8_0", "bf16"])
def test_matrices_take_the_type_asked_for_and_norms_stay_float32(tmp_path, typ):
    import gguf

    d, _, _ = _model_dir(tmp_path)
    write_gguf(str(d), tmp_path / "q.gguf", typ)
    assert not list(tmp_path.glob(".*.part"))
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(tmp_path / "q.gguf").tensors}
    Q = gguf.GGMLQuantizationType
    want = Q[typ.upper()]
    assert types["blk.0.ffn_up.weight"] == want and types["token_embd.weight"] == want
    assert types["blk.1.attn_norm.weight"] == Q.F32 and types["blk.1.attn_k.bias"] == Q.F32


def test_an_unsupported_architecture_is_one_line(tmp_path):
    d, _, _ = _model_dir(tmp_path, "llama")
    with pytest.raises(UserError, match="cannot write a llama model as GGUF .supported: qwen2."):
        write_gguf(str(d), tmp_path / "x.gguf")
    assert not [p for p in tmp_path.iterdir() if "gguf" in p.name]


def test_export_to_gguf_refuses_an_existing_out_and_a_directory_that_is_no_model(tmp_path, capsys):
    d, _, _ = _model_dir(tmp_path)
    (tmp_path / "taken.gguf").write_bytes(b"x")
    assert main(["export", str(d), str(tmp_path / "taken.gguf")]) == 2
    assert "taken.gguf exists" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "y.gguf")]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main(["export", str(d), str(tmp_path / "ok.gguf"), "--type", "q8_0"]) == 0
    assert (tmp_path / "ok.gguf").read_bytes()[:4] == b"GGUF"


def test_a_missing_gguf_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'selfcodealign\[train\]'"):
        write_gguf(str(tmp_path), tmp_path / "x.gguf")
