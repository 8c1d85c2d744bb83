"""LoRA on the real embedded model (dequantised GGUF, fp32 on CPU), then generation
from the saved adapter through the HF backend. ~2-3 minutes on 2 cores."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from selfcodealign.backends.base import SamplingParams
from selfcodealign.train.config import TrainConfig
from selfcodealign.train.loop import train

pytestmark = pytest.mark.model

ROWS = [
    {"instruction": "Write a function add(a, b) returning the sum.",
     "response": "```python\ndef add(a, b):\n    return a + b\n```"},
    {"instruction": "Write a function is_even(n).",
     "response": "```python\ndef is_even(n):\n    return n % 2 == 0\n```"},
    {"instruction": "Write a function first(xs) returning the first item or None.",
     "response": "```python\ndef first(xs):\n    return xs[0] if xs else None\n```"},
]


def test_lora_train_then_generate(tmp_path):
    data = tmp_path / "dataset.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "lora"
    cfg = TrainConfig(method="lora", epochs=3, examples_per_step=3, lora_r=4, lora_alpha=8,
                      lr=1e-3, warmup_ratio=0.0, max_len=256, token_budget=512)
    s = train(cfg, data, out)
    losses = [h["loss"] for h in s["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (out / "adapter_model.safetensors").is_file()
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["model"] is None and saved["base_model"].startswith("Qwen2.5-Coder-0.5B")
    assert len(saved["data_sha256"]) == 64

    from safetensors.torch import load_file

    lora_b = [t for k, t in load_file(out / "adapter_model.safetensors").items() if "lora_B" in k]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: it learned

    from selfcodealign.backends.hf import HFBackend

    with HFBackend(str(out), batch_size=2) as b:
        assert b.model_id == "lora" and b.has_chat_template
        prompts = [[{"role": "user", "content": "Write a function add(a, b) returning the sum."}],
                   "def is_even(n):\n"]
        res = b.generate(prompts, SamplingParams(max_tokens=12, prefill="```python\n", stop=("\n```",)))
    chat, text = res[0][0], res[1][0]
    assert chat.text.startswith("```python\n") and "def " in chat.text
    assert text.text.startswith("```python\n") and 0 < text.completion_tokens <= 12
    assert chat.finish_reason in ("stop", "length")
