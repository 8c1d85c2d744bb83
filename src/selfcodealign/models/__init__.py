"""Models: resolving a spec (embedded, GGUF, directory, LoRA output, hub id), loading,
exporting, the prompt format, and the optional-dependency check, shared by train, the
generation backends and eval."""

from selfcodealign.models.chat import has_chat_template, render_prompt
from selfcodealign.models.loading import (
    TRAIN_CONFIG,
    ModelSource,
    export,
    load_model,
    load_tokenizer,
    require,
    resolve_source,
)

__all__ = ["TRAIN_CONFIG", "ModelSource", "export", "has_chat_template", "load_model", "load_tokenizer",
           "render_prompt", "require", "resolve_source"]
