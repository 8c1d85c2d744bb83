"""Models: resolving a spec (embedded, GGUF, directory, LoRA output, hub id), the embedded
model, hashing, loading, saving, exporting, the prompt format, and the optional-dependency
check, shared by train, the generation backends and eval."""

from selfcodealign.models.chat import has_chat_template, render_prompt
from selfcodealign.models.hashing import ModelHash, gguf_sha256, model_hash, source_hash
from selfcodealign.models.loading import export, load_model, load_tokenizer, require
from selfcodealign.models.saving import save
from selfcodealign.models.source import TRAIN_CONFIG, ModelSource, resolve_gguf, resolve_source

__all__ = ["TRAIN_CONFIG", "ModelHash", "ModelSource", "export", "gguf_sha256", "has_chat_template", "load_model",
           "load_tokenizer", "model_hash", "render_prompt", "require", "resolve_gguf", "resolve_source",
           "save", "source_hash"]
