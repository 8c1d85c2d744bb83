"""Resolving, loading and exporting models, for training, HF generation and eval.

A model spec is one of: ``embedded`` (or None), a GGUF file (transformers dequantises it;
needs ``gguf``), a Hugging Face model directory, a LoRA output directory of ``train``
(adapter + the base spec in ``train_config.json``), or a hub id.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError, missing_extra

TRAIN_CONFIG = "train_config.json"


def require(package: str, extra: str = "train"):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise missing_extra(package, extra) from None


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: ``path`` is a directory or hub id, ``gguf_file`` a file
    name inside it, ``adapter`` a LoRA directory applied on top."""

    path: str
    gguf_file: str | None = None
    adapter: str | None = None
    display: str = ""

    @property
    def name(self) -> str:
        return self.display or Path(self.path).name

    def content_hash(self, hub_cache: str | None = None):
        """(sha256, note) over the files this source loads: see ``selfcodealign.model_hash``."""
        from selfcodealign.model_hash import source_hash

        return source_hash(self, hub_cache)


def resolve_source(spec: str | None) -> ModelSource:
    from selfcodealign.embedded import MODEL_NAME, embedded_model_path

    if not spec or spec == "embedded":
        p = embedded_model_path()
        return ModelSource(str(p.parent), p.name, display=MODEL_NAME)
    p = Path(spec).expanduser()
    if p.is_file():
        with open(p, "rb") as f:
            if f.read(4) != b"GGUF":
                raise UserError(f"{spec} is a file but not a GGUF model (bad magic bytes)")
        return ModelSource(str(p.resolve().parent), p.name, display=p.name)
    if p.is_dir():
        if (p / "adapter_config.json").is_file():
            cfg = p / TRAIN_CONFIG
            if cfg.is_file():  # our own output: its base spec (None = the embedded model)
                base = json.loads(cfg.read_text()).get("model")
            else:
                base = json.loads((p / "adapter_config.json").read_text()).get(
                    "base_model_name_or_path"
                )
            src = resolve_source(base)
            return ModelSource(src.path, src.gguf_file, str(p.resolve()), display=p.name)
        if not (p / "config.json").is_file():
            raise UserError(f"{spec} is a directory without config.json: not a model directory")
        return ModelSource(str(p.resolve()), display=p.name)
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return ModelSource(spec, display=spec)  # a hub id
    raise UserError(f"model not found: {spec} (expected a GGUF file, model directory or hub id)")


def _gguf_tokenizer_cache(src: ModelSource) -> Path:
    from selfcodealign.embedded import cache_dir
    from selfcodealign.ids import make_id

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
    src = resolve_source(model)
    m = load_model(src, dtype=dtype)
    if src.adapter:
        m = m.merge_and_unload()
    m.save_pretrained(out)
    load_tokenizer(src).save_pretrained(out)
