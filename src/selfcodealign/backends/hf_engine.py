"""transformers models through our continuous-batching engine (``selfcodealign.gpu``).

The fast path for ``backend.kind: hf`` on a GPU: the engine keeps ``batch_size`` slots
busy, replays decode steps as CUDA graphs and samples each request with its own seed
(sample ``i`` of a prompt uses ``seed + i``, as the llama.cpp backend does). Prompts are
rendered with ``selfcodealign.models.chat.render_prompt``, the function training uses,
so a fine-tuned model sees at evaluation exactly the format it was trained on. The
prefill is part of the prompt and is returned at the start of the completion text.

Models the engine can't run (architectures other than the Llama/Qwen family) go to the
plain ``generate`` backend (``HFBackend``) instead; ``from_config`` decides.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence

from selfcodealign.backends.hf import HFModelMixin
from selfcodealign.backends.base import (
    Backend,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
    continuation_params,
    merge_continuation,
    needs_continuation,
)

log = logging.getLogger("selfcodealign.gpu")

# Share of the GPU memory free after loading the model that the KV cache may take; the
# rest is for logits, prefill activations and graph buffers.
CACHE_SHARE = 0.6


class HFEngineBackend(HFModelMixin, Backend):
    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 256,
        dtype: str = "auto",
        device: str | None = None,
        sync_every: int = 16,
        cuda_graphs: bool | None = None,
    ) -> None:
        super().__init__()
        self.slots = max(1, batch_size)
        self.sync_every = sync_every
        self.cuda_graphs = cuda_graphs
        m = self._load(model, dtype, device)
        if self._src.adapter:
            m = m.merge_and_unload()  # one set of weights: the engine reads plain modules
        from selfcodealign.gpu.model import unsupported_reason

        reason = unsupported_reason(m.config)
        if reason:
            raise BackendError(f"the fast hf engine does not support {reason}")
        self.model = m.to(self.device).eval()
        self._eos = self._eos_ids()
        self._engine = None
        if self.device.startswith("cuda"):
            # The attention kernels are checked against the reference (and compiled) once
            # per process, with the model's load rather than inside the first call.
            from selfcodealign.gpu.model import check_kernels

            check_kernels(self.model)

    @classmethod
    def from_config(cls, cfg) -> Backend:
        """The engine backend, or the plain-generate one for models the engine can't run."""
        reason = _config_reason(cfg.model)
        if reason:
            from selfcodealign.backends.hf import HFBackend

            log.warning("hf: %s; using plain transformers generate (slower)", reason)
            return HFBackend.from_config(cfg)
        return cls(cfg.model, batch_size=cfg.batch_size)

    def engine_for(self, max_len: int):
        """The engine, rebuilt when a call needs longer slots than the current one has."""
        from selfcodealign.gpu.engine import Engine
        from selfcodealign.gpu.model import Runner

        torch = self._torch
        limit = getattr(self.model.config, "max_position_embeddings", None) or max_len
        need = min(limit, -(-max_len // 256) * 256)
        if self._engine is not None and self._engine.max_len >= need:
            return self._engine
        self._engine = None
        slots = self.slots
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info()
            per_slot = Runner.cache_bytes_per_slot(self.model.config, need, self.model.dtype.itemsize)
            fit = int(free * CACHE_SHARE) // per_slot
            if fit < 1:
                raise BackendError(f"not enough GPU memory for one {need}-token sequence")
            if fit < slots:
                log.warning("hf: %d slots of %d tokens fit in GPU memory (asked %d)", fit, need, slots)
                slots = fit
        self._engine = Engine(
            self.model, self.tokenizer, slots=slots, max_len=need, eos_ids=self._eos,
            sync_every=self.sync_every, cuda_graphs=self.cuda_graphs,
        )
        return self._engine

    def iter_generate(
        self, prompts: Sequence[Prompt], params: Sequence[SamplingParams]
    ) -> Iterator[tuple[int, list[Completion]]]:
        from selfcodealign.gpu.engine import Request

        texts = [self.render(p, sp) for p, sp in zip(prompts, params)]
        ids = [tuple(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        requests, owners = [], []
        for i, sp in enumerate(params):
            if sp.n == 0:
                yield i, []
            for s in range(sp.n):
                requests.append(Request(ids[i], sp.max_tokens, sp.temperature, sp.top_p,
                                        sp.seed + s, tuple(sp.stop), tag=(i, s)))
                owners.append((i, s))
        if not requests:
            return
        # a continuation (SamplingParams.require) may run up to 128 tokens past the budget
        extra = 128 + 32 if any(sp.require for sp in params) else 0
        engine = self.engine_for(max(len(r.prompt_ids) + r.max_tokens for r in requests) + extra)
        results: dict[int, list[Completion | None]] = {i: [None] * sp.n for i, sp in enumerate(params) if sp.n}
        left = {i: sp.n for i, sp in enumerate(params) if sp.n}
        # Samples to continue go back into the running engine (its feed) as soon as their
        # first part ends, so the slots never wait for a second pass.
        feed: deque = deque()
        # (prompt, sample) -> the first part and the prefill its continuation started from
        first: dict[tuple[int, int], tuple[Completion, str]] = {}
        try:
            for _, res in engine.run(requests, feed=feed):
                i, s = res.tag
                sp = params[i]
                part, prefill = first.pop((i, s), (None, sp.prefill))
                c = Completion(prefill + res.text if res.finish_reason != "error" else "",
                               res.finish_reason, res.prompt_tokens, res.completion_tokens, res.cached_tokens)
                self.stats.add(c)
                if part is not None:
                    c = merge_continuation(part, c)
                elif needs_continuation(c, sp):
                    more = continuation_params(c, sp)
                    ids_more = self.tokenizer(self.render(prompts[i], more), add_special_tokens=False)["input_ids"]
                    feed.append(Request(tuple(ids_more), more.max_tokens, sp.temperature, sp.top_p,
                                        sp.seed + s, tuple(sp.stop), tag=(i, s)))
                    first[(i, s)] = (c, more.prefill)
                    continue
                results[i][s] = c
                left[i] -= 1
                if left[i] == 0:
                    yield i, results.pop(i)  # type: ignore[misc]
        except self._torch.cuda.OutOfMemoryError:
            raise BackendError(
                f"GPU out of memory with {engine.slots} slots of {engine.max_len} tokens; "
                "lower backend.batch_size"
            ) from None

    def close(self) -> None:
        self._engine = None


def _config_reason(spec: str | None) -> str | None:
    """Why the engine can't run the model named by ``spec``, read from its config alone
    (before loading weights); None when it can or when only loading would tell."""
    from selfcodealign.gpu.model import unsupported_reason
    from selfcodealign.models.loading import require, resolve_source

    src = resolve_source(spec)
    if src.gguf_file:
        return None  # GGUF architectures transformers can load are all Llama/Qwen-like here
    transformers = require("transformers", "train")
    try:
        cfg = transformers.AutoConfig.from_pretrained(src.path)
    except (OSError, ValueError):
        return None  # the loader reports the real problem with a clear message
    return unsupported_reason(cfg)
