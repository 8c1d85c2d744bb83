"""Where online training's samples come from: the policy being trained, G answers per
prompt.

A rollout source has two methods: ``generate(prompts, group, seed)`` returns ``group``
samples of each prompt (token ids in, token ids and text out, in input order), and
``sync(model)`` is called after every optimizer step so that the next samples come
from the updated weights.

``GenerateRollouts`` samples with transformers' ``generate`` on the model being trained
(nothing to sync: it is the same module). The GPU engine (``selfcodealign.gpu.Engine``)
is to plug in as a second source; its ``Request`` already carries the prompt ids,
temperature, seed and token budget that ``generate`` takes here. What it needs:

- Full fine-tuning: ``gpu.model.Runner`` re-points the model's q/k/v and gate/up weights
  at slices of fused tensors, so the optimizer's in-place updates (and the bf16 masters'
  ``copy_`` back) reach the engine's weights with nothing copied and the captured CUDA
  graphs' pointers stay valid; ``sync`` has nothing to do, as long as no step replaces a
  parameter tensor (FSDP, ``torch.compile`` of the policy would).
- LoRA: the runner must be built on the base model's modules, with the adapter merged
  into their weights in place before sampling (peft's ``merge_adapter``) and unmerged
  after, so the engine samples from the policy and training sees the base again.
- To measure once built: after a step, the engine's logits for a prompt equal the
  policy's (graphs replaying the updated weights), and its tokens/s against the engine
  standalone in the same run (the issue's goal: at least half).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from selfcodealign.backends.hf import eos_token_ids


@dataclass(frozen=True)
class Rollout:
    prompt: int  # index of the prompt in the batch
    prompt_ids: tuple[int, ...]
    ids: tuple[int, ...]  # the sampled tokens, the end-of-sequence token included when sampled
    text: str  # the sampled text, without the end-of-sequence token
    finish_reason: str  # "stop" (ended itself) | "length" (hit the token budget)


class RolloutSource(Protocol):
    def generate(self, prompts: list[list[int]], group: int, seed: int) -> list[Rollout]: ...

    def sync(self, model) -> None: ...


class GenerateRollouts:
    """Samples from the model being trained with ``generate``: pure sampling at
    ``temperature`` (no top-k, no top-p, no repetition penalty, whatever the model's
    generation config says: the loss assumes softmax(logits / T)), prompts left-padded
    into one batch of at most ``batch`` sequences, seeded per call (the same seed gives the same samples)."""

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

        jobs = [(p, k) for p in range(len(prompts)) for k in range(group)]
        out: list[Rollout] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for a in range(0, len(jobs), self.batch):
                chunk = jobs[a : a + self.batch]
                torch.manual_seed(seed * 1_000_003 + a)
                out += self._sample([prompts[p] for p, _ in chunk], [p for p, _ in chunk])
        finally:
            self.model.train(was_training)
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
