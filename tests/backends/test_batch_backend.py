"""A batch backend's ``_run`` under the shared ``iter_generate``: the vLLM backend with a
stand-in ``vllm`` module (the real one is in test_vllm_offline.py)."""

import sys
import types
from dataclasses import dataclass

from selfcodealign.backends.base import SamplingParams


@dataclass
class _Out:
    text: str
    token_ids: list
    finish_reason: str = "stop"


BATCHES: list[int] = []


class FakeLLM:
    """Answers a prompt ending in the tests heading with tests, anything else with code
    that names its seed; keeps the size of every batch in BATCHES."""

    def __init__(self, model, **kw):
        pass

    def get_tokenizer(self):
        return types.SimpleNamespace(encode=lambda text, add_special_tokens: [ord(c) for c in text])

    def generate(self, prompts, params, use_tqdm):
        BATCHES.append(len(prompts))
        outs = []
        for p, sp in zip(prompts, params):
            text = "".join(map(chr, p["prompt_token_ids"]))
            reply = "assert f() == 1" if text.endswith("### Tests\n") else f"def f(): return {sp['seed']}"
            outs.append(types.SimpleNamespace(prompt_token_ids=p["prompt_token_ids"], outputs=[_Out(reply, [1, 2])]))
        return outs


def test_vllm_batches_samples_with_their_seeds_and_continues_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=dict))
    from selfcodealign.backends.vllm_offline import VLLMBackend

    BATCHES.clear()
    b = VLLMBackend("someone/model", batch_size=4)
    sp = SamplingParams(n=3, seed=10, require=("### Tests", "\n### Tests\n"))
    out = b.generate(["a:", "b:", "c:"], [sp, SamplingParams(n=0), sp])
    assert [len(cs) for cs in out] == [3, 0, 3]
    assert [c.text for c in out[2]] == [f"def f(): return {10 + s}\n### Tests\nassert f() == 1" for s in range(3)]
    first = "a:" + "def f(): return 11\n### Tests\n"  # the continuation's prompt
    assert out[0][1].completion_tokens == 4 and out[0][1].prompt_tokens == 2 + len(first)
    # batches of at most 4 samples; continuations go first
    assert BATCHES == [4, 4, 2, 2] and b.stats.requests == 12
