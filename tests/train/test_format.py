import copy

import pytest

from selfcodealign.models.chat import render_prompt
from selfcodealign.train.format import IGNORE, encode_chat, example_messages

CONV = [
    {"role": "system", "content": "You are a careful programmer."},
    {"role": "user", "content": "Write add(a, b)."},
    {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"},
]


def test_loss_only_on_the_reply_and_prompt_is_what_generation_sees(qwen_tokenizer):
    tok = qwen_tokenizer
    enc = encode_chat(tok, CONV)
    n_prompt = sum(1 for x in enc.labels if x == IGNORE)
    # The masked part is exactly the generation prompt the backends render.
    assert tok.decode(enc.input_ids[:n_prompt]) == render_prompt(tok, CONV[:-1])
    reply = tok.decode(enc.input_ids[n_prompt:])
    assert reply.startswith("```python\ndef add")
    assert reply.rstrip("\n").endswith("<|im_end|>")  # the model learns to stop
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]


def test_plain_template_for_models_without_one(qwen_tokenizer):
    tok = copy.copy(qwen_tokenizer)
    tok.chat_template = None
    enc = encode_chat(tok, CONV)
    n_prompt = sum(1 for x in enc.labels if x == IGNORE)
    assert tok.decode(enc.input_ids[:n_prompt]) == (
        "You are a careful programmer.\n\n### Instruction\nWrite add(a, b).\n\n### Response\n"
    )
    assert enc.input_ids[-1] == tok.eos_token_id


def test_example_messages_from_either_format():
    assert example_messages({"instruction": "q", "response": "a"}) == [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert example_messages({"messages": CONV, "instruction": "x", "response": "y"}) == CONV
    with pytest.raises(ValueError):
        example_messages({"text": "hello"})


def test_conversation_must_end_with_the_reply(qwen_tokenizer):
    with pytest.raises(ValueError):
        encode_chat(qwen_tokenizer, CONV[:-1])
