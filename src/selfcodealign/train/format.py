"""Training examples as token ids, in the prompt format of ``models.chat``: the loss
falls on the reply only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfcodealign.models.chat import has_chat_template, render_prompt

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One training example as token ids; ``labels`` is IGNORE on the prompt."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_label_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def encode_chat(tokenizer, messages: Sequence[dict]) -> Encoded:
    """Tokenise a conversation whose last message is the assistant's reply.

    The prompt is tokenised on its own, exactly as ``render_prompt`` makes it for
    generation; the reply (with the template's end-of-turn tokens) follows it. Loss falls
    on the reply only.
    """
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise ValueError("a training conversation must end with an assistant message")
    prompt_text = render_prompt(tokenizer, messages[:-1])
    if has_chat_template(tokenizer):
        full_text = tokenizer.apply_chat_template(list(messages), tokenize=False)
        if not full_text.startswith(prompt_text):
            # Some templates rewrite earlier turns once a reply follows (e.g. strip
            # reasoning); then the generation prompt is not a prefix and we refuse.
            raise ValueError("chat template renders the prompt differently once a reply follows")
        reply_text = full_text[len(prompt_text) :]
        eos: list[int] = []
    else:
        reply_text = messages[-1]["content"]
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    prompt_ids = _prompt_ids(tokenizer, prompt_text)
    reply_ids = tokenizer(reply_text, add_special_tokens=False)["input_ids"] + eos
    return Encoded(
        input_ids=prompt_ids + reply_ids,
        labels=[IGNORE] * len(prompt_ids) + list(reply_ids),
    )


def encode_prompt(tokenizer, messages: Sequence[dict]) -> list[int]:
    """The token ids a model answers from (no reply yet), as ``encode_chat`` starts a
    training example: what online training (GRPO) samples from."""
    return _prompt_ids(tokenizer, render_prompt(tokenizer, messages))


def _prompt_ids(tokenizer, prompt_text: str) -> list[int]:
    ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    # Templates that start with BOS put it in the text; tokenizers that add it themselves
    # (add_special_tokens) would add it at generation too, so add it here the same way.
    if bos is not None and getattr(tokenizer, "add_bos_token", False) and ids[:1] != [bos]:
        ids = [bos] + ids
    return ids


def example_messages(obj: dict) -> list[dict]:
    """Messages of a dataset line: ``messages`` if present, else instruction/response."""
    msgs = obj.get("messages")
    if msgs:
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    if "instruction" in obj and "response" in obj:
        return [
            {"role": "user", "content": obj["instruction"]},
            {"role": "assistant", "content": obj["response"]},
        ]
    raise ValueError("line has neither messages nor instruction/response")
