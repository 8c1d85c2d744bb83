"""Model hashes for provenance: directories, GGUF files, LoRA outputs, hub snapshots, and
the hf/vllm backends recording them (tiny random-weights models, CPU)."""

import hashlib
import json
import shutil
import sys
import types

import pytest
import torch
import transformers

from selfcodealign.models import hashing as mh
from selfcodealign.backends.base import Completion, SamplingParams
from selfcodealign.errors import UserError
from selfcodealign.records import Example, GenMeta
from selfcodealign.stages.base import ModelInfo, gen_meta
from selfcodealign.models import ModelSource


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFCODEALIGN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def count_reads(monkeypatch):
    """How many times a file's bytes were hashed (cache misses)."""
    reads = []
    real = mh.sha256_file

    def counting(path, *a, **kw):
        reads.append(path.name)
        return real(path, *a, **kw)

    monkeypatch.setattr(mh, "sha256_file", counting)
    return reads


def fake_model_dir(path):
    path.mkdir(parents=True)
    files = {
        "config.json": '{"model_type": "qwen2"}',
        "generation_config.json": "{}",
        "model-00001-of-00002.safetensors": "weights one",
        "model-00002-of-00002.safetensors": "weights two",
        "tokenizer.json": '{"vocab": {}}',
        "tokenizer_config.json": "{}",
        "merges.txt": "a b\n",
        "README.md": "about this model",
        "train.log": "step 1 loss 2.0",
        "train_config.json": '{"seconds": 12.5}',
    }
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_directory_hash_is_stable_and_named_relative(tmp_path):
    d = fake_model_dir(tmp_path / "m")
    first = mh.dir_sha256(d)
    assert first == mh.dir_sha256(d) and len(first) == 64
    # sha256sum-style lines over the model files only, so it can be checked by hand.
    names = sorted(n for n in mh.model_files(d))
    assert "README.md" not in names and "train.log" not in names and "train_config.json" not in names
    lines = "".join(f"{hashlib.sha256((d / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    assert first == hashlib.sha256(lines.encode()).hexdigest()
    moved = tmp_path / "elsewhere" / "copy"
    moved.parent.mkdir()
    shutil.copytree(d, moved)
    assert mh.dir_sha256(moved) == first
    shutil.move(str(d), str(tmp_path / "renamed"))
    assert mh.dir_sha256(tmp_path / "renamed") == first


@pytest.mark.parametrize("name", ["config.json", "model-00002-of-00002.safetensors", "tokenizer.json", "merges.txt"])
def test_any_model_byte_changes_the_hash(tmp_path, name):
    d = fake_model_dir(tmp_path / "m")
    before = mh.dir_sha256(d)
    (d / name).write_text((d / name).read_text() + "x")
    assert mh.dir_sha256(d) != before


def test_unrelated_files_are_ignored(tmp_path):
    d = fake_model_dir(tmp_path / "m")
    before = mh.dir_sha256(d)
    (d / "README.md").write_text("rewritten")
    (d / "train.log").unlink()
    (d / "notes.txt").write_text("new")
    (d / ".hidden.safetensors").write_text("a temp file")
    assert mh.dir_sha256(d) == before
    (d / "added_tokens.json").write_text("{}")  # a tokenizer file does count
    assert mh.dir_sha256(d) != before


def test_second_call_reads_nothing_but_a_changed_file(tmp_path, count_reads):
    d = fake_model_dir(tmp_path / "m")
    first = mh.dir_sha256(d)
    assert len(count_reads) == 7
    count_reads.clear()
    assert mh.dir_sha256(d) == first
    assert count_reads == []
    (d / "config.json").write_text('{"model_type": "llama"}')
    assert mh.dir_sha256(d) != first
    assert count_reads == ["config.json"]


def test_unwritable_cache_is_a_miss(tmp_path, monkeypatch, count_reads):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("SELFCODEALIGN_CACHE", str(blocker / "cache"))
    d = fake_model_dir(tmp_path / "m")
    assert mh.dir_sha256(d) == mh.dir_sha256(d)
    assert len(count_reads) == 14


def test_corrupt_cache_entry_is_a_miss(tmp_path, count_reads):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"abc")
    mh.file_sha256(f)
    mh._cache_entry(f).write_text("garbage")
    assert mh.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(count_reads) == 2


def test_gguf_is_its_file_hash_and_the_embedded_one_is_pinned(tmp_path, count_reads):
    from selfcodealign.models.embedded import MODEL_FILE, MODEL_SHA256, cache_dir

    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF" + b"\0" * 100)
    expect = hashlib.sha256(g.read_bytes()).hexdigest()
    assert mh.gguf_sha256(g) == expect
    assert mh.model_hash(str(g)) == (expect, None)
    count_reads.clear()
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / MODEL_FILE).write_bytes(b"GGUF not the real bytes")
    assert mh.source_hash(ModelSource(str(cache_dir()), MODEL_FILE)).sha256 == MODEL_SHA256
    assert count_reads == []


def test_lora_output_covers_base_and_adapter(tmp_path):
    base = fake_model_dir(tmp_path / "base")
    out = tmp_path / "lora"
    out.mkdir()
    (out / "adapter_config.json").write_text('{"r": 8}')
    (out / "adapter_model.safetensors").write_text("adapter weights")
    (out / "train_config.json").write_text(json.dumps({"model": str(base), "seconds": 3}))
    h = mh.model_hash(str(out))
    assert h.sha256 and h.note is None
    assert h.sha256 not in (mh.dir_sha256(base), mh.dir_sha256(out))
    (out / "train_config.json").write_text(json.dumps({"model": str(base), "seconds": 4}))
    assert mh.model_hash(str(out)) == h
    (out / "adapter_model.safetensors").write_text("other adapter weights")
    changed_adapter = mh.model_hash(str(out))
    assert changed_adapter != h
    (base / "model-00001-of-00002.safetensors").write_text("other base")
    assert mh.model_hash(str(out)) not in (h, changed_adapter)


def test_hub_id_hashes_its_local_snapshot_or_says_why_not(tmp_path):
    hub = tmp_path / "hub"
    repo = hub / "models--acme--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = fake_model_dir(repo / "snapshots" / commit)
    h = mh.source_hash(ModelSource("acme/tiny"), hub_cache=str(hub))
    assert h == (mh.dir_sha256(snap), None)
    missing = mh.source_hash(ModelSource("acme/absent"), hub_cache=str(hub))
    assert missing.sha256 is None and "acme/absent" in missing.note
    # An adapter on a base that can't be hashed has no hash either, and says why.
    lora = ModelSource("acme/absent", adapter=str(snap))
    assert mh.source_hash(lora, hub_cache=str(hub)) == missing


def test_bad_paths_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read model directory"):
        mh.dir_sha256(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no model files"):
        mh.dir_sha256(tmp_path / "empty")
    with pytest.raises(UserError, match="cannot read model file"):
        mh.file_sha256(tmp_path / "absent.safetensors")
    with pytest.raises(UserError, match="model not found"):
        mh.model_hash(str(tmp_path / "no" / "such" / "model"))


def test_records_carry_the_note_and_old_records_still_load():
    old = {"model": "m", "model_sha256": "abc", "backend": "llamacpp", "prompt_style": "chat",
           "temperature": 0.0, "top_p": 1.0, "max_tokens": 8, "seed": 1, "finish_reason": "stop"}
    assert GenMeta.model_validate_json(json.dumps(old)).model_sha256_note is None
    fields = set(Example.model_fields)
    assert "model_sha256_note" in fields
    info = ModelInfo(model="served", model_sha256=None, backend="openai", prompt_style="chat",
                     model_sha256_note="weights out of reach")
    meta = gen_meta(info, SamplingParams(), 0, Completion("x", "stop"))
    assert meta.model_sha256 is None and meta.model_sha256_note == "weights out of reach"


# --- the backends record the hash of what they loaded -------------------------------

@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(["def add(a, b):\n    return a + b\n"] * 10, trainers.BpeTrainer(
        vocab_size=280, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                               pad_token="<|endoftext|>")
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny-qwen2")
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    (d / "README.md").write_text("not part of the model")
    return d


@pytest.mark.parametrize("engine", ["generate", "continuous"])
def test_hf_backend_records_the_directory_hash(tiny_qwen2, engine):
    from selfcodealign.backends.hf import HFBackend

    with HFBackend(str(tiny_qwen2), engine=engine, device="cpu") as b:
        assert b.model_sha256 == mh.dir_sha256(tiny_qwen2) and b.model_sha256_note is None
        out = b.generate(["def add"], SamplingParams(max_tokens=3))
        assert out[0][0].finish_reason in ("stop", "length")


def test_vllm_backend_records_the_hash(tiny_qwen2, monkeypatch):
    """vLLM is not in the test venv: a stand-in LLM checks what the backend asks it to load."""
    loaded = []

    class FakeLLM:
        def __init__(self, model, **kw):
            loaded.append(model)

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=dict))
    from selfcodealign.backends.vllm_offline import VLLMBackend

    b = VLLMBackend(str(tiny_qwen2))
    assert loaded == [str(tiny_qwen2.resolve())]
    assert b.model_sha256 == mh.dir_sha256(tiny_qwen2) and b.model_sha256_note is None
