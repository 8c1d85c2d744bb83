"""Writing a model (any spec ``resolve_source`` takes; LoRA merged) as a GGUF file that
llama.cpp, the embedded engine and Ollama run: weights, hyperparameters, the BPE
tokenizer and the chat template.

Tensor names come from the ``gguf`` package's own HF -> GGUF name map; special token ids,
merges and the chat template from its ``SpecialVocab`` reading the saved tokenizer.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.models.loading import load_model, load_tokenizer, require
from selfcodealign.models.source import resolve_source

TYPES = ("f16", "q8_0", "bf16", "f32")


@dataclass(frozen=True)
class _Arch:
    gguf_arch: str  # a gguf.MODEL_ARCH member name
    pre: str  # llama.cpp's name for the tokenizer's pre-tokenizer regex


# Qwen2 and Qwen2.5 checkpoints share one tokenizer family, so the pre-tokenizer follows
# from the architecture. Rotary embeddings are NEOX-style in both worlds: q/k are copied
# as they are (llama's interleaved layout would need a permutation).
ARCHS = {"qwen2": _Arch("QWEN2", "qwen2")}


def _check_arch(config) -> _Arch:
    arch = ARCHS.get(config.model_type)
    if arch is None:
        raise UserError(f"cannot write a {config.model_type} model as GGUF (supported: "
                        f"{', '.join(ARCHS)}); export a model directory and use llama.cpp's convert_hf_to_gguf.py")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default" or getattr(config, "use_sliding_window", False):
        raise UserError(f"cannot write this {config.model_type} model as GGUF: rope scaling "
                        "and sliding-window attention are not supported")
    return arch


def _rope_theta(config) -> float:
    rope = getattr(config, "rope_parameters", None) or {}
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _token_types(tok, n_vocab: int, gguf) -> tuple[list[str], list[int]]:
    """Token texts by id (byte-level BPE strings) and their llama.cpp types; ids past the
    tokenizer's end (the embedding is padded to a round size) become ``[PAD<id>]``."""
    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = tok.added_tokens_decoder
    T = gguf.TokenType
    texts, types = [], []
    for i in range(n_vocab):
        text = by_id.get(i, f"[PAD{i}]")
        if i in added:
            typ = T.CONTROL if added[i].special else T.USER_DEFINED
        elif text == f"[PAD{i}]":
            typ = T.UNUSED
        else:
            typ = T.NORMAL
        texts.append(text)
        types.append(int(typ))
    return texts, types


def _add_tokenizer(w, tok, n_vocab: int, arch: _Arch, gguf) -> None:
    if type(tok.backend_tokenizer.model).__name__ != "BPE":
        raise UserError("cannot write this tokenizer as GGUF: only byte-level BPE tokenizers are supported")
    texts, types = _token_types(tok, n_vocab, gguf)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(arch.pre)
    w.add_token_list(texts)
    w.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        special = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=n_vocab)
    # What the tokenizer actually does decides whether llama.cpp adds BOS/EOS: an absent
    # key means "add BOS" to llama.cpp for some vocabularies, never for transformers.
    ids = tok("x")["input_ids"]
    special.add_special_token["bos"] = tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id]
    special.add_special_token["eos"] = tok.eos_token_id is not None and ids[-1:] == [tok.eos_token_id]
    if not special.merges:
        raise UserError("cannot write this tokenizer as GGUF: its tokenizer.json has no BPE merges")
    special.add_to_gguf(w, quiet=True)
    if special.chat_template is None and getattr(tok, "chat_template", None):
        w.add_chat_template(tok.chat_template)


def _add_hparams(w, config, name: str, file_type: int, gguf) -> None:
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    w.add_file_type(file_type)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_rope_freq_base(_rope_theta(config))
    w.add_layer_norm_rms_eps(config.rms_norm_eps)


def _add_tensors(w, model, arch: _Arch, qtype, gguf) -> None:
    import numpy as np

    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.gguf_arch), model.config.num_hidden_layers)
    Q = gguf.GGMLQuantizationType
    tied = model.config.tie_word_embeddings
    for hf_name, t in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when output is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UserError(f"cannot write tensor {hf_name} as GGUF: no GGUF name for it")
        data = t.detach().float().numpy()
        # Norms and biases stay float32, as llama.cpp's converter keeps them; a row that
        # is not a whole number of Q8_0 blocks falls back to f16.
        typ = qtype if data.ndim > 1 else Q.F32
        if typ == Q.Q8_0 and data.shape[-1] % gguf.GGML_QUANT_SIZES[Q.Q8_0][0]:
            typ = Q.F16
        out = gguf.quants.quantize(np.ascontiguousarray(data), typ)
        w.add_tensor(name, out, raw_dtype=typ)  # a quantised array has its byte shape


def write_gguf(model: str | None, out: Path, qtype: str = "f16") -> None:
    """Write ``model`` (any spec; a LoRA output is merged first) to ``out`` as GGUF."""
    gguf = require("gguf")
    transformers = require("transformers")
    if qtype not in TYPES:
        raise UserError(f"unknown GGUF type {qtype!r} (choose from {', '.join(TYPES)})")
    src = resolve_source(model)
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    try:
        config = transformers.AutoConfig.from_pretrained(src.path, **kw)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the config of {src.name}: {str(e).splitlines()[0]}") from None
    arch = _check_arch(config)
    tok = load_tokenizer(src)
    # A bf16 checkpoint loads as it is: half the memory of float32, and each tensor is
    # widened exactly on its way out. Anything else, and a LoRA merge, in float32.
    bf16 = str(getattr(config, "dtype", None) or "").endswith("bfloat16") and not src.adapter
    m = load_model(src, dtype="bfloat16" if bf16 else "float32")
    if src.adapter:
        m = m.merge_and_unload()
    Q, F = gguf.GGMLQuantizationType, gguf.LlamaFileType
    qt, ft = {"f16": (Q.F16, F.MOSTLY_F16), "q8_0": (Q.Q8_0, F.MOSTLY_Q8_0),
              "bf16": (Q.BF16, F.MOSTLY_BF16), "f32": (Q.F32, F.ALL_F32)}[qtype]
    # Written beside OUT and renamed at the end: a failed export leaves no partial file.
    tmp = out.with_name(f".{out.name}.part")
    try:
        w = gguf.GGUFWriter(tmp, arch=gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, arch.gguf_arch)])
        _add_hparams(w, m.config, src.name, int(ft), gguf)
        _add_tokenizer(w, tok, m.config.vocab_size, arch, gguf)
        _add_tensors(w, m, arch, qt, gguf)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
