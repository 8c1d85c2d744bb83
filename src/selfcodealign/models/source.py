"""Resolving a model spec, the one place that does: ``embedded`` (or None), a GGUF file,
a Hugging Face model directory, a LoRA output directory of ``train`` (adapter + the base
spec in ``train_config.json``), or a hub id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.models.embedded import MODEL_NAME, MODEL_SHA256, embedded_model_path

TRAIN_CONFIG = "train_config.json"


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


def resolve_source(spec: str | None) -> ModelSource:
    """Where the weights of ``spec`` (as ``--model`` takes it) are."""
    if not spec or spec == "embedded":
        p = embedded_model_path()
        return ModelSource(str(p.parent), p.name, display=MODEL_NAME)
    p = Path(spec).expanduser()
    if p.is_file():
        with open(p, "rb") as f:
            if f.read(4) != b"GGUF":
                raise UserError(f"{spec} is not a GGUF file (bad magic bytes)")
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


def resolve_gguf(spec: str | None) -> tuple[Path, str, str | None]:
    """(file, display name, pinned sha256 or None) of a GGUF model, for engines that read
    the file themselves (llama.cpp): the embedded model or a GGUF file."""
    if spec and spec != "embedded" and not Path(spec).expanduser().is_file():
        raise UserError(f"model file not found: {spec}")
    src = resolve_source(spec)
    embedded = not spec or spec == "embedded"
    return Path(src.path, src.gguf_file), src.name, MODEL_SHA256 if embedded else None
