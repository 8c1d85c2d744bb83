"""Hugging Face transformers models as a generation backend (``backend.kind: hf``; GPU,
works on CPU, slowly).

One backend with two engines, chosen by ``backend.engine`` and logged when the model loads:

- ``continuous``: our continuous-batching engine (``selfcodealign.gpu``) keeps
  ``batch_size`` slots busy, replays decode steps as CUDA graphs and takes continuations
  into the running engine. Llama/Qwen family only (``gpu.model.unsupported_reason``).
- ``generate``: transformers' ``model.generate`` over batches of up to ``batch_size``
  samples (sorted by prompt length, so left padding stays small); any architecture, slower.
- ``auto``: continuous where the model allows it, else generate (with a warning saying why).

Both engines sample alike: sample ``i`` of a request is drawn with its own seed
``seed + i`` by ``gpu.sampling.sample`` (noise hashed from the seed and the token's
position), as on llama.cpp and vLLM, so it does not depend on which other requests share
its batch, and the two engines give the same tokens up to floating-point differences.
Only temperature and top-p shape sampling; the model's own generation settings (top-k,
repetition penalty) are not applied. Prompts are rendered with
``selfcodealign.models.chat.render_prompt``, the function training uses, so a fine-tuned
model sees at evaluation exactly the format it was trained on. The prefill is part of the
prompt and is returned at the start of the completion text; stop strings end a sequence
and are cut from the text.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence

from selfcodealign.backends.base import (
    Backend,
    BackendError,
    Completion,
    Job,
    Prompt,
)

log = logging.getLogger(__name__)


def eos_token_ids(tokenizer, model) -> list[int]:
    """The tokens that end an answer: the model's generation config's and the tokenizer's
    (sorted, each once)."""
    ids: set[int] = set()
    gen = getattr(model, "generation_config", None)
    for src in (getattr(gen, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(src)
    return sorted(ids)

# Share of the GPU memory free after loading the model that the KV cache may take; the
# rest is for logits, prefill activations and graph buffers.
CACHE_SHARE = 0.6


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        *,
        engine: str = "auto",
        batch_size: int = 256,
        dtype: str = "auto",
        device: str | None = None,
        attn: str = "sdpa",
        sync_every: int = 16,
        cuda_graphs: bool | None = None,
    ) -> None:
        super().__init__()
        from selfcodealign.gpu.model import check_kernels, unsupported_reason
        from selfcodealign.models import load_model, load_tokenizer, require, resolve_source, source_hash

        if engine not in ("auto", "continuous", "generate"):
            raise BackendError(f"unknown hf engine {engine!r} (auto, continuous or generate)")
        self.batch_size, self.sync_every, self.cuda_graphs = max(1, batch_size), sync_every, cuda_graphs
        self._torch = torch = require("torch", "train")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self._src = resolve_source(model)
        self.tokenizer = load_tokenizer(self._src)
        m = load_model(self._src, dtype=dtype, attn=attn)
        # After loading: for a hub id, only now are its files in the local cache.
        self.model_hash = source_hash(self._src)
        if self._src.adapter:
            m = m.merge_and_unload()  # one set of weights: faster, and the engine reads plain modules
        reason = unsupported_reason(m.config)
        if reason and engine == "continuous":
            raise BackendError(f"backend.engine=continuous: the continuous engine does not support {reason} "
                               f"({self._src.name}); use --set backend.engine=generate")
        self.engine = "generate" if reason or engine == "generate" else "continuous"
        why = (f"backend.engine={engine}" if engine != "auto" else
               f"auto: the continuous engine does not support {reason}; slower" if reason else
               "auto: the model's architecture allows it")
        log.log(logging.WARNING if reason and engine == "auto" else logging.INFO,
                "hf: %s engine for %s (%s)", self.engine, self._src.name, why)
        self.model = m.to(self.device).eval()
        self._eos = eos_token_ids(self.tokenizer, self.model)
        self._engine = None
        if self.engine == "continuous" and self.device.startswith("cuda"):
            # The attention kernels are checked against the reference (and compiled) once
            # per process, with the model's load rather than inside the first call.
            check_kernels(self.model)

    @property
    def model_id(self) -> str:
        return self._src.name

    @property
    def has_chat_template(self) -> bool:
        from selfcodealign.models.chat import has_chat_template

        return has_chat_template(self.tokenizer)

    def _token_ids(self, prompts: Sequence[Prompt], jobs: list[Job]) -> list[tuple[int, ...]]:
        """Each job's rendered prompt (prefill included) as token ids, each one tokenized once."""
        from selfcodealign.models.chat import render_prompt

        ids: dict[tuple[int, str], tuple[int, ...]] = {}
        for i, _, sp in jobs:
            if (i, sp.prefill) not in ids:
                text = render_prompt(self.tokenizer, prompts[i], sp.prefill)
                ids[i, sp.prefill] = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return [ids[i, sp.prefill] for i, _, sp in jobs]

    def _out_of_memory(self, what: str) -> BackendError:
        return BackendError(f"GPU out of memory with {what}; lower backend.batch_size")

    def _run(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        return (self._continuous if self.engine == "continuous" else self._generate)(prompts, jobs)

    # ---- the continuous engine ------------------------------------------------------

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
        slots = self.batch_size
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

    def _continuous(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        from selfcodealign.gpu.engine import Request

        def take() -> list[Request]:
            batch = list(jobs)
            jobs.clear()
            return [Request(ids, sp.max_tokens, sp.temperature, sp.top_p, sp.seed + s, sp.stop, tag=(i, s, sp))
                    for (i, s, sp), ids in zip(batch, self._token_ids(prompts, batch))]

        requests = take()
        if not requests:
            return
        # a continuation (SamplingParams.require) may run up to 128 tokens past the budget
        extra = 128 + 32 if any(r.tag[2].require for r in requests) else 0
        engine = self.engine_for(max(len(r.prompt_ids) + r.max_tokens for r in requests) + extra)
        # Jobs queued while the engine runs (continuations) go into it (its feed) at once,
        # so the slots never wait for a second pass.
        feed: deque = deque()
        try:
            for _, res in engine.run(requests, feed=feed):
                text = res.tag[2].prefill + res.text if res.finish_reason != "error" else ""
                yield res.tag, Completion(text, res.finish_reason, res.prompt_tokens, res.completion_tokens,
                                          res.cached_tokens)
                feed.extend(take())
        except self._torch.cuda.OutOfMemoryError:
            raise self._out_of_memory(f"{engine.slots} slots of {engine.max_len} tokens") from None

    # ---- transformers' generate -----------------------------------------------------

    def _generate(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        # Jobs queued meanwhile (continuations) run after this round's batches.
        while jobs:
            batch = list(jobs)
            jobs.clear()
            ids = self._token_ids(prompts, batch)
            # One generate call shares max_tokens and stop strings; longest prompts first.
            groups: dict[tuple, list[int]] = {}
            for k in sorted(range(len(batch)), key=lambda k: -len(ids[k])):
                groups.setdefault((batch[k][2].max_tokens, batch[k][2].stop), []).append(k)
            for ks in groups.values():
                for start in range(0, len(ks), self.batch_size):
                    chunk = [(batch[k], ids[k]) for k in ks[start : start + self.batch_size]]
                    yield from zip([job for job, _ in chunk], self._generate_batch(chunk))

    def _generate_batch(self, chunk: list[tuple[Job, tuple[int, ...]]]) -> list[Completion]:
        from selfcodealign.gpu.sampling import fold_seed, sample
        from selfcodealign.gpu.stops import cut_at_stop

        torch, dev, pad_id = self._torch, self.device, self.tokenizer.pad_token_id
        sp = chunk[0][0][2]  # max_tokens and stop strings: the same for all rows
        width = max(len(ids) for _, ids in chunk)
        pad = [width - len(ids) for _, ids in chunk]
        # Left padding: every row's last prompt token sits at the same position.
        input_ids = torch.tensor([[pad_id] * p + list(ids) for p, (_, ids) in zip(pad, chunk)], device=dev)
        mask = torch.tensor([[0] * p + [1] * len(ids) for p, (_, ids) in zip(pad, chunk)], device=dev)
        seeds = torch.tensor([fold_seed(s.seed + i) for (_, i, s), _ in chunk], device=dev)
        temp = torch.tensor([s.temperature for (_, _, s), _ in chunk], dtype=torch.float32, device=dev)
        top_p = torch.tensor([s.top_p for (_, _, s), _ in chunk], dtype=torch.float32, device=dev)
        pad_t = torch.tensor(pad, device=dev)

        def pick(input_ids, scores):
            # Each row's token drawn as the continuous engine draws it (its own seed, its
            # position as the counter); only that token is left for greedy search to take.
            tok = sample(scores, temp, top_p, seeds, input_ids.shape[1] - pad_t)
            return torch.full_like(scores, float("-inf")).scatter_(1, tok[:, None], 0.0)

        kw = {"stop_strings": list(sp.stop), "tokenizer": self.tokenizer} if sp.stop else {}
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids, attention_mask=mask, max_new_tokens=sp.max_tokens, do_sample=False,
                    temperature=None, top_p=None, top_k=None, repetition_penalty=None, logits_processor=[pick],
                    eos_token_id=self._eos, pad_token_id=pad_id, **kw,
                )
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory(f"a batch of {len(chunk)}") from None
        # A row that ended early is filled with pad tokens up to the batch's longest.
        ends = set(self._eos) | {pad_id}
        comps = []
        for row, ((_, _, s), ids) in zip(out[:, width:].tolist(), chunk):
            n = next((j for j, t in enumerate(row) if t in ends), len(row))
            text, hit = cut_at_stop(self.tokenizer.decode(row[:n], skip_special_tokens=True), s.stop)
            reason = "stop" if hit or (n < len(row) and row[n] in self._eos) else "length"
            comps.append(Completion(s.prefill + text, reason, prompt_tokens=len(ids), completion_tokens=n))
        return comps

    def close(self) -> None:
        self._engine = None
