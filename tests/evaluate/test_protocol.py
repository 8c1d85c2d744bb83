"""Our prompts must be byte-identical to EvalPlus's own chat protocol."""

import pytest

from selfcodealign.evaluate import protocol
from selfcodealign.models.chat import render_prompt


@pytest.mark.parametrize("file,dataset", [("humaneval_plus", "humaneval"), ("mbpp_plus", "mbpp")])
def test_chat_prompt_matches_evalplus(qwen_tokenizer, test_data, file, dataset):
    from evalplus.provider.utility import make_raw_chat_prompt

    for p in test_data.read_jsonl_gz(getattr(test_data, file))[:5]:
        req = protocol.make_request(p, dataset, chat=True)
        ours = render_prompt(qwen_tokenizer, req.prompt, req.prefill)
        theirs = make_raw_chat_prompt(
            p["prompt"].strip() + "\n", protocol.INSTRUCTION_PREFIX, protocol.RESPONSE_PREFIX,
            qwen_tokenizer,
        )
        assert ours == theirs


def test_stop_strings_match_evalplus():
    from evalplus.provider.utility import EOS, extra_eos_for_direct_completion

    p = {"prompt": "def f():\n", "entry_point": "f"}
    assert protocol.make_request(p, "humaneval", chat=True).stop == tuple(EOS) + ("\n```\n",)
    base = protocol.make_request(p, "mbpp", chat=False)
    assert base.stop == tuple(EOS) + tuple(extra_eos_for_direct_completion("mbpp"))


def test_solution_of_chat_drops_prefill_and_cuts_at_fence():
    p = {"prompt": "def f():\n    pass\n", "entry_point": "f"}
    req = protocol.make_request(p, "humaneval", chat=True)
    text = req.prefill + "def f():\n\treturn 1\n```\nExplanation: ..."
    assert protocol.solution_of(req, text) == "def f():\n    return 1"


def test_solution_of_base_prepends_task_prompt():
    p = {"prompt": "def f():\n", "entry_point": "f"}
    req = protocol.make_request(p, "humaneval", chat=False)
    assert protocol.solution_of(req, "    return 1\ndef g(): pass") == "def f():\n    return 1"


def test_engine_decodes_as_the_tokenizer_does(qwen_tokenizer):
    """The engine's host checks call the fast tokenizer's backend directly; the texts
    must be batch_decode's, special tokens skipped."""
    from selfcodealign.gpu.engine import Engine

    engine = Engine.__new__(Engine)
    engine.tokenizer = qwen_tokenizer
    seqs = [qwen_tokenizer("def f(x):\n    return x  # é ✓\n")["input_ids"], [qwen_tokenizer.eos_token_id, 13, 14], []]
    assert engine._decode_many(seqs) == qwen_tokenizer.batch_decode(seqs, skip_special_tokens=True)
    assert engine._decode_text(seqs[0]) == qwen_tokenizer.decode(seqs[0], skip_special_tokens=True)
    assert getattr(qwen_tokenizer, "_tokenizer", None) is not None  # the fast path ran
