"""The embedded engine: llama.cpp's own server, in-process through ``xllamacpp``.

llama.cpp batches the slots itself (continuous batching); we keep ``n_parallel`` requests
in flight from a thread pool. Each sample is its own request with its own seed, so
sample ``i`` of a prompt is the same whether the run was resumed or not. Prompt caching
is on: requests that share a few-shot prefix reuse the slot's KV cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from selfcodealign.backends.base import (
    BackendError, Completion, Prompt, SamplingParams, ThreadedBackend, completion_from_openai,
)
from selfcodealign.models import ModelHash


class LlamaCppBackend(ThreadedBackend):
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        model_name: str | None = None,
        model_sha256: str | None = None,
        n_parallel: int = 4,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        verbose: bool = False,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__()
        try:
            import xllamacpp
        except ImportError:  # pragma: no cover - part of the default install
            raise BackendError("xllamacpp is not installed: pip install xllamacpp") from None
        self._path = Path(model_path)
        self._name = model_name or self._path.name
        self.model_hash = ModelHash(model_sha256, None if model_sha256 else "no hash was given")
        self.n_parallel = self.concurrency = max(1, n_parallel)
        p = xllamacpp.CommonParams()
        p.model.path = str(self._path)
        p.n_parallel = self.n_parallel
        p.n_ctx = ctx_per_slot * self.n_parallel
        n_threads = threads or max(1, os.cpu_count() or 1)
        p.cpuparams.n_threads = n_threads
        p.cpuparams_batch.n_threads = n_threads
        p.cache_prompt = True
        # Prefer the slot whose cached prompt shares the longest prefix with the request.
        p.slot_prompt_similarity = 0.1
        p.verbosity = 3 if verbose else -1
        if port is not None:
            p.port = port
            p.hostnames = [host]
        try:
            self._server = xllamacpp.Server(p)
        except Exception as e:  # the engine reports a bad file as a generic error
            raise BackendError(f"could not load model {self._path}: {e}") from None

    @property
    def model_id(self) -> str:
        return self._name

    @property
    def has_chat_template(self) -> bool:
        return gguf_has_chat_template(self._path)

    @property
    def listening_address(self) -> str:
        return self._server.listening_address

    def _request(self, prompt: Prompt, sp: SamplingParams, sample: int) -> Completion:
        body: dict = {
            "max_tokens": sp.max_tokens,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
            "seed": (sp.seed + sample) % (2**31 - 1),
            "stop": list(sp.stop),
            "cache_prompt": True,
        }
        if isinstance(prompt, str):
            body["prompt"] = prompt + sp.prefill
            res = self._server.handle_completions(body)
        else:
            msgs = list(prompt)
            if sp.prefill:
                msgs.append({"role": "assistant", "content": sp.prefill})
            body["messages"] = msgs
            res = self._server.handle_chat_completions(body)
        return completion_from_openai(res, prompt, sp)

    def close(self) -> None:
        super().close()
        server = getattr(self, "_server", None)
        if server is not None:
            self._server = None
            del server


def gguf_has_chat_template(path: Path, limit: int = 64 << 20) -> bool:
    """Whether the GGUF metadata holds a chat template. Metadata sits at the start of the
    file (before the tensors), so scanning its first megabytes for the key suffices."""
    key = b"tokenizer.chat_template"
    with open(path, "rb") as f:
        tail = b""
        read = 0
        while read < limit:
            block = f.read(1 << 20)
            if not block:
                return False
            if key in tail + block:
                return True
            tail = block[-len(key):]
            read += len(block)
    return False
