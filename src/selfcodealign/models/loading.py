"""Loading and exporting models (a resolved ``ModelSource``), for training, HF generation
and eval. A GGUF file is dequantised by transformers (needs ``gguf``)."""

from __future__ import annotations

import os
from pathlib import Path

from selfcodealign.errors import UserError, missing_extra
from selfcodealign.ids import make_id
from selfcodealign.models.embedded import cache_dir
from selfcodealign.models.saving import save
from selfcodealign.models.source import ModelSource, resolve_source


def require(package: str, extra: str = "train"):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise missing_extra(package, extra) from None


def _gguf_tokenizer_cache(src: ModelSource) -> Path:
    f = Path(src.path, src.gguf_file)
    st = f.stat()
    return cache_dir() / "tokenizers" / make_id(f.resolve(), st.st_size, st.st_mtime_ns)


def load_tokenizer(src: ModelSource):
    """The tokenizer; for a GGUF, converted once (slow: ~10 s) and cached as HF files."""
    transformers = require("transformers")
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    path = src.adapter if src.adapter and Path(src.adapter, "tokenizer_config.json").is_file() else src.path
    cached = None
    if path == src.adapter:
        kw = {}
    elif src.gguf_file:
        cached = _gguf_tokenizer_cache(src)
        if (cached / "tokenizer_config.json").is_file():
            path, kw = str(cached), {}
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, **kw)
    except OSError as e:
        raise UserError(f"cannot load tokenizer of {src.name}: {str(e).splitlines()[0]}") from None
    if cached is not None and kw:
        import shutil
        import tempfile

        tmp = None
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-")
            tok.save_pretrained(tmp)
            os.replace(tmp, cached)
        except OSError:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)  # a cache miss next time, nothing worse
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(src: ModelSource, dtype: str = "float32", attn: str = "sdpa", device: str | None = None):
    """The model in ``dtype`` (``float32`` / ``bfloat16`` / ``float16``), adapter applied
    (not merged) when the source has one."""
    transformers = require("transformers")
    torch = require("torch")
    if src.gguf_file:
        require("gguf")
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            src.path, dtype=getattr(torch, dtype), attn_implementation=attn, **kw
        )
    except OSError as e:
        raise UserError(f"cannot load model {src.name}: {str(e).splitlines()[0]}") from None
    # A dequantised GGUF keeps a "gguf" quantization_config that would make a saved copy
    # look quantised; the weights in memory are plain tensors.
    if getattr(model.config, "quantization_config", None) and src.gguf_file:
        del model.config.quantization_config
        model.hf_quantizer = None
        model.is_quantized = False
    if device:
        model.to(device)
    if src.adapter:
        peft = require("peft")
        model = peft.PeftModel.from_pretrained(model, src.adapter)
    return model


def export(model: str | None, out: Path, dtype: str = "bfloat16") -> None:
    """Save ``model`` (any spec) as a plain Hugging Face directory, LoRA merged."""
    torch = require("torch")
    src = resolve_source(model)
    m = load_model(src, dtype=dtype)
    if src.adapter:
        m = m.merge_and_unload()
    save(m, load_tokenizer(src), out, getattr(torch, dtype))
