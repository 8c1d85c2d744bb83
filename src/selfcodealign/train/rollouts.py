"""Where online training's samples come from: the policy being trained, G answers per
prompt.

A rollout source has two methods: ``generate(prompts, group, seed)`` returns ``group``
samples of each prompt (token ids in, token ids and text out, in input order), and
``sync(model)`` is called after every optimizer step so that the next samples come
from the updated weights.

Two sources:

- ``EngineRollouts``, the default where the model allows it: our engine
  (``selfcodealign.gpu.Engine``; CUDA graphs on a GPU) built once on the module being
  trained, so the samples come from the weights as they are after each step.
  - Full fine-tuning: the engine's runner re-points the model's q/k/v and gate/up weights
    at slices of fused tensors, so the optimizer's in-place updates (and the bf16 masters'
    ``copy_`` back) are what the engine, and the graphs it captured, read. ``sync`` checks
    that no step replaced a weight tensor (FSDP or ``torch.compile`` of the policy would;
    the run stops with a clear error instead of sampling from stale weights).
  - LoRA: the engine runs its fused path on weight buffers of its own
    (``gpu.merged_lora``): every LoRA-wrapped linear merged, ``W0 + scaling * B @ A`` for
    the active adapter, and the decoder layers' other linears copied, while embeddings,
    norms and the LM head are shared. ``sync`` re-merges them in place (the same storage,
    so the captured graphs stay valid); the trained model's tensors are only read. This
    costs one extra copy of the decoder layers' linear weights (0.72 GB at the 0.5B
    model's shape in bf16). The merged weights equal PEFT's layers up to rounding
    ``W0 + delta`` to bf16 (small early updates round away, as with PEFT's ``merge``), in
    eval mode, which is how samples are drawn (dropout off). LoRA the merge does not
    cover (DoRA and other variants, ``lora_bias``, LoRA on embeddings, several active
    adapters, ``modules_to_save``) runs on the engine's plain path, through PEFT's
    adapter-wrapped modules, 4x slower at the 0.5B shape; a log line says why.
  - ``sync`` forgets the engine's cached prompt prefixes: their K/V came from the
    weights before the step.
  - Sampling considers each row's ``CANDIDATES`` most likely tokens. At temperature 1
    the embedded model puts 0.013% of its probability (mean over 920 sampled positions;
    largest 1.6%) outside its top 1,024 tokens (0.07% outside the top 128, the engine's
    default for generation): the samples are the policy's up to that.
- ``GenerateRollouts``: transformers' ``generate`` on the model being trained, for
  architectures the engine does not run.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from selfcodealign.backends.hf import eos_token_ids

log = logging.getLogger(__name__)

CANDIDATES = 1024


@dataclass(frozen=True)
class Rollout:
    prompt: int  # index of the prompt in the batch
    prompt_ids: tuple[int, ...]
    ids: tuple[int, ...]  # the sampled tokens, the end-of-sequence token included when sampled
    text: str  # the sampled text, without the end-of-sequence token
    finish_reason: str  # "stop" (ended itself) | "length" (hit the token budget)


@contextmanager
def eval_mode(model):
    """The model in eval mode (no dropout) while it samples, then back as it was."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class RolloutSource(Protocol):
    name: str  # recorded in the run's summary
    def generate(self, prompts: list[list[int]], group: int, seed: int) -> list[Rollout]: ...

    def sync(self, model) -> None: ...


class GenerateRollouts:
    """Samples from the model being trained with ``generate``: pure sampling at
    ``temperature`` (no top-k, no top-p, no repetition penalty, whatever the model's
    generation config says: the loss assumes softmax(logits / T)), prompts left-padded
    into one batch of at most ``batch`` sequences, seeded per call (the same seed gives the same samples)."""

    name = "generate"

    def __init__(self, model, tokenizer, *, temperature: float, max_new_tokens: int, batch: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.max_new_tokens, self.batch = temperature, max_new_tokens, batch
        self.eos = eos_token_ids(tokenizer, model)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos or [0])[0]
        self.generated_tokens = 0

    def sync(self, model) -> None:
        return None  # generate runs on the trained module itself

    def generate(self, prompts: list[list[int]], group: int, seed: int) -> list[Rollout]:
        import torch

        owners = [p for p in range(len(prompts)) for _ in range(group)]
        out: list[Rollout] = []
        with eval_mode(self.model):
            for a in range(0, len(owners), self.batch):
                chunk = owners[a : a + self.batch]
                torch.manual_seed(seed * 1_000_003 + a)
                out += self._sample([prompts[p] for p in chunk], chunk)
        return out

    def _sample(self, rows: list[list[int]], owners: list[int]) -> list[Rollout]:
        import torch

        width = max(len(r) for r in rows)
        dev = next(self.model.parameters()).device
        ids = torch.tensor([[self.pad] * (width - len(r)) + r for r in rows], device=dev)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=dev)
        with torch.no_grad():
            seqs = self.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=self.temperature, top_k=0,
                top_p=1.0, repetition_penalty=None, max_new_tokens=self.max_new_tokens, eos_token_id=self.eos,
                pad_token_id=self.pad, use_cache=True,
            )
        out = []
        for owner, row, gen in zip(owners, rows, seqs[:, width:].tolist()):
            end = next((i for i, t in enumerate(gen) if t in self.eos), None)
            kept = gen if end is None else gen[: end + 1]
            self.generated_tokens += len(kept)
            text = self.tokenizer.decode(kept if end is None else kept[:-1], skip_special_tokens=True)
            out.append(Rollout(owner, tuple(row), tuple(kept), text, "length" if end is None else "stop"))
        return out


class EngineRollouts:
    """Samples from the model being trained with the engine built on it (see the module
    docstring): pure sampling at ``temperature`` within the ``CANDIDATES`` most likely
    tokens, each sample seeded by the call's seed and its place in the call. ``slots``:
    sequences decoded at once; ``max_len``: the longest prompt plus answer. ``lora``:
    ``model`` is a PEFT model; ``merged`` is then the engine's merged copy of it, or None
    where the engine runs PEFT's modules."""

    name = "engine"

    def __init__(self, model, tokenizer, *, temperature: float, max_new_tokens: int, slots: int, max_len: int,
                 lora: bool = False, cuda_graphs: bool | None = None):
        from selfcodealign.gpu.engine import Engine

        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.max_new_tokens = temperature, max_new_tokens
        base = model.get_base_model() if lora else model
        self.eos = eos_token_ids(tokenizer, base)
        self.merged = self._merged(model) if lora else None
        if self.merged is not None:
            base = self.merged.model
        self.engine = Engine(base, tokenizer, slots=slots, max_len=max_len, eos_ids=self.eos, candidates=CANDIDATES,
                             fused=False if lora and self.merged is None else None, cuda_graphs=cuda_graphs)
        self._storage = self._pointers()
        self.generated_tokens = 0

    @staticmethod
    def _merged(model):
        from selfcodealign.gpu.merged_lora import MergedLora, unsupported_reason

        reason = unsupported_reason(model)
        if reason is None:
            return MergedLora(model)
        log.info("LoRA rollouts on the engine's plain path (PEFT's modules, slower): the merged path "
                 "does not support %s", reason)
        return None

    def _pointers(self) -> list[int]:
        return [p.data_ptr() for p in self.model.parameters()]

    def sync(self, model) -> None:
        if self._pointers() != self._storage:
            raise RuntimeError("a training step replaced the policy's weight tensors: the engine would sample "
                               "from the old ones (train without torch.compile or FSDP, or with --grpo-rollouts generate)")
        if self.merged is not None:
            self.merged.remerge()
        self.engine.forget_prefixes()

    def generate(self, prompts: list[list[int]], group: int, seed: int) -> list[Rollout]:
        from selfcodealign.gpu.engine import Request

        owners = [p for p in range(len(prompts)) for _ in range(group)]
        requests = [Request(tuple(prompts[p]), self.max_new_tokens, self.temperature, 1.0,
                            seed=seed * 1_000_003 + j, tag=p) for j, p in enumerate(owners)]
        with eval_mode(self.model):
            results = self.engine.generate(requests)
        out = []
        for req, res in zip(requests, results):
            if res.finish_reason == "error":
                raise RuntimeError(f"the engine could not sample prompt {res.tag} ({len(req.prompt_ids)} tokens)")
            ids = res.token_ids + ((res.eos_id,) if res.eos_id is not None else ())
            self.generated_tokens += len(ids)
            out.append(Rollout(res.tag, req.prompt_ids, ids, res.text, res.finish_reason))
        return out
