"""Saving a model as a Hugging Face directory that loads anywhere: what ``train`` writes
and what ``export`` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from selfcodealign.models.source import TRAIN_CONFIG


def save(model, tokenizer, out_dir: Path, dtype, *, state_dict: dict | None = None,
         train_config: dict | None = None) -> None:
    """``model`` (or ``state_dict``, its gathered weights, when given) in ``dtype`` as
    safetensors, with ``tokenizer``; ``train_config`` (the run's summary) is written last,
    atomically, as ``train_config.json``: its presence marks a finished output."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:
        state_dict = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}
    else:
        model.to(dtype)
    # The model in memory may have been loaded with a custom attention name; a saved copy
    # should load anywhere.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config._attn_implementation = "sdpa"
    base.config.use_cache = True
    base.config.dtype = dtype
    model.save_pretrained(str(out_dir), state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    if train_config is not None:
        tmp = out_dir / (TRAIN_CONFIG + ".tmp")
        tmp.write_text(json.dumps(train_config, indent=2, default=str) + "\n")
        os.replace(tmp, out_dir / TRAIN_CONFIG)
