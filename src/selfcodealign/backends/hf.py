"""Hugging Face transformers as a generation backend (GPU; works on CPU, slowly).

Requests (one per sample) with the same decoding settings are batched, sorted by prompt
length so that left padding stays small, and run through ``model.generate`` with its KV
cache. Stop strings end a sequence early (transformers' ``stop_strings``) and are cut
from the text. Prompts are rendered with ``selfcodealign.models.chat.render_prompt``,
the same function training uses, so a fine-tuned model sees at evaluation exactly the
format it was trained on.

Sampling seeds: a batch is seeded from its first request's seed, so sampled outputs are
reproducible for the same prompts and batch size, not per request as on llama.cpp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from selfcodealign.backends.base import (
    Backend,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
)


class HFModelMixin:
    """What the transformers-based backends share: loading, identity, chat template, end
    tokens and prompt rendering (the same function training uses)."""

    def _load(self, model: str | None, dtype: str, device: str | None, attn: str = "sdpa"):
        """Set ``device``, ``_src``, ``model_hash`` and ``tokenizer``; return the loaded (CPU) model."""
        from selfcodealign.models.loading import load_model, load_tokenizer, require, resolve_source

        torch = require("torch", "train")
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self._src = resolve_source(model)
        self.tokenizer = load_tokenizer(self._src)
        loaded = load_model(self._src, dtype=dtype, attn=attn)
        # After loading: for a hub id, only now are its files in the local cache.
        self.model_hash = self._src.content_hash()
        return loaded

    @property
    def model_id(self) -> str:
        return self._src.name

    @property
    def has_chat_template(self) -> bool:
        from selfcodealign.models.chat import has_chat_template

        return has_chat_template(self.tokenizer)

    def _eos_ids(self) -> list[int]:
        ids = set()
        gen = getattr(self.model, "generation_config", None)
        for src in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(src)
        return sorted(ids)

    def render(self, prompt: Prompt, sp: SamplingParams) -> str:
        from selfcodealign.models.chat import render_prompt

        if isinstance(prompt, str):
            return prompt + sp.prefill
        return render_prompt(self.tokenizer, prompt, sp.prefill)


class HFBackend(HFModelMixin, Backend):
    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 64,
        dtype: str = "auto",
        device: str | None = None,
        attn: str = "sdpa",
    ) -> None:
        super().__init__()
        self.batch_size = max(1, batch_size)
        m = self._load(model, dtype, device, attn)
        # Left padding: every row's last prompt token sits at the same position.
        self.tokenizer.padding_side = "left"
        if self._src.adapter:
            m = m.merge_and_unload()  # generation speed: one set of weights
        self.model = m.to(self.device).eval()
        self._eos = self._eos_ids()

    @classmethod
    def from_config(cls, cfg) -> HFBackend:
        return cls(cfg.model, batch_size=cfg.batch_size)

    def iter_generate(
        self, prompts: Sequence[Prompt], params: Sequence[SamplingParams]
    ) -> Iterator[tuple[int, list[Completion]]]:
        return self._continued(self._first_pass, prompts, params)

    def _first_pass(
        self, prompts: Sequence[Prompt], params: Sequence[SamplingParams]
    ) -> Iterator[tuple[int, list[Completion]]]:
        texts = [self.render(p, sp) for p, sp in zip(prompts, params)]
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        requests = [(i, s) for i in range(len(prompts)) for s in range(params[i].n)]
        for i in range(len(prompts)):
            if params[i].n == 0:
                yield i, []

        def key(sp: SamplingParams):
            return (sp.temperature, sp.top_p, sp.max_tokens, sp.stop)

        groups: dict[tuple, list[tuple[int, int]]] = {}
        for r in requests:
            groups.setdefault(key(params[r[0]]), []).append(r)
        results = {i: [None] * params[i].n for i in range(len(prompts)) if params[i].n}
        left = {i: params[i].n for i in results}
        for reqs in groups.values():
            reqs.sort(key=lambda r: -lengths[r[0]])
            for start in range(0, len(reqs), self.batch_size):
                chunk = reqs[start : start + self.batch_size]
                sp = params[chunk[0][0]]
                comps = self._generate_batch([texts[i] for i, _ in chunk], sp, seed=sp.seed + chunk[0][1])
                for (i, s), c in zip(chunk, comps):
                    if sp.prefill:
                        c = Completion(sp.prefill + c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens)
                    self.stats.add(c)
                    results[i][s] = c
                    left[i] -= 1
                    if left[i] == 0:
                        yield i, results.pop(i)

    def _generate_batch(self, texts: list[str], sp: SamplingParams, seed: int) -> list[Completion]:
        torch = self._torch
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kw = {}
        if sp.temperature > 0:
            kw.update(do_sample=True, temperature=sp.temperature, top_p=sp.top_p)
            torch.manual_seed(seed)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sp.stop:
            kw.update(stop_strings=list(sp.stop), tokenizer=self.tokenizer)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=sp.max_tokens,
                    eos_token_id=self._eos,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **kw,
                )
        except torch.cuda.OutOfMemoryError:
            raise BackendError(
                f"GPU out of memory at batch size {len(texts)}; lower backend.batch_size"
            ) from None
        new = out[:, enc["input_ids"].shape[1] :]
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        # A row that ended early is filled with pad tokens up to the batch's longest.
        ends = set(self._eos) | {self.tokenizer.pad_token_id}
        comps = []
        for row, plen in zip(new.tolist(), prompt_lens):
            n, hit_eos = len(row), False
            for j, t in enumerate(row):
                if t in ends:
                    n, hit_eos = j, t in self._eos
                    break
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            cut = min((text.find(s) for s in sp.stop if s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
            reason = "stop" if hit_eos or cut >= 0 else "length"
            comps.append(Completion(text, reason, prompt_tokens=int(plen), completion_tokens=n))
        return comps
