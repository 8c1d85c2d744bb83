"""Backends by name, imported lazily so one backend never needs another's packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from selfcodealign.backends.base import Backend, BackendError, Completion, SamplingParams

if TYPE_CHECKING:
    from selfcodealign.config import BackendConfig

__all__ = ["Backend", "BackendError", "Completion", "SamplingParams", "make_backend"]


def make_backend(cfg: "BackendConfig", *, verbose: bool = False) -> Backend:
    if cfg.kind == "llamacpp":
        from selfcodealign.backends.llamacpp import LlamaCppBackend
        from selfcodealign.models import gguf_sha256, resolve_gguf

        path, name, sha = resolve_gguf(cfg.model)
        return LlamaCppBackend(
            path,
            model_name=name,
            model_sha256=sha or gguf_sha256(path),
            n_parallel=cfg.n_parallel,
            ctx_per_slot=cfg.ctx_per_slot,
            threads=cfg.threads,
            verbose=verbose,
        )
    if cfg.kind == "openai":
        from selfcodealign.backends.openai_http import OpenAIBackend

        return OpenAIBackend(
            cfg.base_url or "",
            cfg.model_name or "",
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            retries=cfg.retries,
        )
    if cfg.kind == "hf":
        from selfcodealign.backends.hf import HFBackend

        return HFBackend(cfg.model, engine=cfg.engine, batch_size=cfg.batch_size)
    if cfg.kind == "vllm":
        from selfcodealign.backends.vllm_offline import VLLMBackend  # type: ignore[import-not-found]

        return VLLMBackend.from_config(cfg)
    raise BackendError(f"unknown backend {cfg.kind!r}")
