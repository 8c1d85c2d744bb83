"""One prompt format for training, generation and evaluation.

A model with a chat template is trained on exactly the text its template renders, and the
generation and evaluation backends render prompts with the same template, so train and
eval never disagree about where the reply starts. A model without a template (a base
model) gets the plain template below; its special tokens are only the tokenizer's EOS.

Plain template (documented in docs/train_eval.md)::

    {system}\n\n            (only when there is a system message)
    ### Instruction\n{user}\n\n### Response\n{assistant}{eos}
"""

from __future__ import annotations

from collections.abc import Sequence

PLAIN_INSTRUCTION = "### Instruction\n"
PLAIN_RESPONSE = "\n\n### Response\n"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer, messages: Sequence[dict] | str, prefill: str = "") -> str:
    """The text a model sees before its reply: every message but the reply, then the
    start of the assistant turn, then ``prefill`` (the reply's forced opening). A prompt
    given as text (completion style) is taken as it is, then ``prefill``."""
    if isinstance(messages, str):
        return messages + prefill
    if not messages or messages[-1]["role"] == "assistant":
        raise ValueError("a prompt must end with a user message")
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
    else:
        text = _plain_prompt(messages)
    return text + prefill


def _plain_prompt(messages: Sequence[dict]) -> str:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    user = "\n\n".join(m["content"] for m in messages if m["role"] == "user")
    head = system + "\n\n" if system else ""
    return head + PLAIN_INSTRUCTION + user + PLAIN_RESPONSE
