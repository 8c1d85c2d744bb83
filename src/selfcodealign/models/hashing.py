"""One SHA-256 for a model, whatever form it was loaded from, for provenance in records.

- A GGUF file: the file's own SHA-256 (the embedded model's is pinned, never recomputed).
- A model directory: the SHA-256 of ``sha256sum``-style lines ``"<file sha256>  <name>\\n"``,
  sorted by name, one per model file at the directory's top level (what transformers and
  vLLM load). Names are relative, so a moved or copied directory hashes the same. Model
  files are weights (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.gguf``), configs
  (``config.json``, ``generation_config.json``, ``adapter_config.json``) and tokenizer
  files (``tokenizer*``, ``vocab*``, ``merges.txt``, ``special_tokens_map.json``,
  ``added_tokens.json``, ``chat_template*``) plus ``adapter_model.*``. Anything else
  (READMEs, logs, ``train_config.json`` with its timings) is ignored.
- A LoRA output directory: the SHA-256 of ``"base <base hash>\\nadapter <adapter dir hash>\\n"``.
- A hub id: the directory hash of its local snapshot in the huggingface_hub cache
  (looked up offline); without one, no hash and a note saying why.

Reading gigabytes again on every run would be slow, so each file's hash is cached under
``cache_dir()/sha256``, keyed on the file's resolved path, size and mtime_ns. A cache that
can't be read or written is only a miss.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import NamedTuple

from selfcodealign.errors import UserError
from selfcodealign.ids import make_id
from selfcodealign.models.embedded import MODEL_FILE, MODEL_SHA256, cache_dir, sha256_file
from selfcodealign.models.source import ModelSource, resolve_source

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
CONFIG_NAMES = frozenset({
    "config.json", "generation_config.json", "adapter_config.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json",
})
NAME_PREFIXES = ("tokenizer", "vocab", "chat_template", "adapter_model.")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ModelHash(NamedTuple):
    sha256: str | None
    note: str | None = None  # why sha256 is None


def is_model_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES) or name in CONFIG_NAMES or name.startswith(NAME_PREFIXES)


def _cache_entry(path: Path) -> Path:
    st = path.stat()
    return cache_dir() / "sha256" / make_id(path.resolve(), st.st_size, st.st_mtime_ns, length=32)


def _cached(entry: Path) -> str | None:
    try:
        text = entry.read_text().strip()
    except OSError:
        return None
    return text if _HEX64.fullmatch(text) else None


def _store(entry: Path, sha: str) -> None:
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(sha + "\n")
        # Atomic, so a concurrent reader (another rank, another run) never sees half a hash.
        os.replace(tmp, entry)
    except OSError:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def file_sha256(path: str | Path) -> str:
    """A file's SHA-256, read once per (resolved path, size, mtime_ns)."""
    path = Path(path)
    try:
        entry = _cache_entry(path)
        sha = _cached(entry)
        if sha is None:
            sha = sha256_file(path)
            _store(entry, sha)
    except OSError as e:
        raise UserError(f"cannot read model file {path}: {e.strerror or e}") from None
    return sha


def gguf_sha256(path: str | Path) -> str:
    """A GGUF file's SHA-256; the embedded model's is pinned, so it is never re-read."""
    path = Path(path)
    embedded = cache_dir() / MODEL_FILE
    if path.name == MODEL_FILE and embedded.is_file() and path.resolve() == embedded.resolve():
        return MODEL_SHA256
    return file_sha256(path)


def model_files(directory: Path) -> list[str]:
    """Names of the model files at the top level of ``directory``, sorted."""
    return sorted(p.name for p in directory.iterdir()
                  if not p.name.startswith(".") and is_model_file(p.name) and p.is_file())


def dir_sha256(directory: str | Path) -> str:
    """The hash of a model directory's model files (see the module docstring)."""
    directory = Path(directory)
    try:
        names = model_files(directory)
    except OSError as e:
        raise UserError(f"cannot read model directory {directory}: {e.strerror or e}") from None
    if not names:
        raise UserError(f"{directory} holds no model files (weights, config or tokenizer)")
    lines = "".join(f"{file_sha256(directory / n)}  {n}\n" for n in names)
    return hashlib.sha256(lines.encode()).hexdigest()


def hub_snapshot(repo_id: str, hub_cache: str | None = None) -> Path | None:
    """The local snapshot of ``repo_id`` that transformers/vLLM would load, or None."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, cache_dir=hub_cache, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def _hub_hash(repo_id: str, hub_cache: str | None) -> ModelHash:
    snap = hub_snapshot(repo_id, hub_cache)
    if snap is None or not snap.is_dir():
        return ModelHash(None, f"no local snapshot of hub model {repo_id} in the huggingface_hub cache")
    if not model_files(snap):
        return ModelHash(None, f"the local snapshot of hub model {repo_id} holds no model files")
    return ModelHash(dir_sha256(snap))


def _base_hash(src: ModelSource, hub_cache: str | None) -> ModelHash:
    if src.gguf_file:
        return ModelHash(gguf_sha256(Path(src.path, src.gguf_file)))
    if Path(src.path).is_dir():
        return ModelHash(dir_sha256(src.path))
    return _hub_hash(src.path, hub_cache)


def source_hash(src: ModelSource, hub_cache: str | None = None) -> ModelHash:
    """The hash of everything ``src`` loads: base weights and, if any, the LoRA adapter.
    ``hub_cache`` is a non-default huggingface_hub cache directory (vLLM's download_dir)."""
    base = _base_hash(src, hub_cache)
    if not src.adapter or base.sha256 is None:
        return base
    both = f"base {base.sha256}\nadapter {dir_sha256(src.adapter)}\n"
    return ModelHash(hashlib.sha256(both.encode()).hexdigest())


def model_hash(spec: str | None) -> ModelHash:
    """The hash of a model spec as ``--model`` takes it (see ``models.source``)."""
    return source_hash(resolve_source(spec))
