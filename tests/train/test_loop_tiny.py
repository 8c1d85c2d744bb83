"""The training loop end to end on a tiny random model with the real tokenizer (fast)."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.errors import UserError
from selfcodealign.train.config import TrainConfig
from selfcodealign.train.loop import train

ROWS = [
    {"instruction": "Write add(a, b).", "response": "```python\ndef add(a, b):\n    return a + b\n```"},
    {"instruction": "Write neg(x).", "response": "```python\ndef neg(x):\n    return -x\n```"},
    {"messages": [{"role": "user", "content": "Square x."},
                  {"role": "assistant", "content": "```python\ndef sq(x):\n    return x * x\n```"}]},
    {"instruction": "A very long one. " * 200, "response": "too long to keep"},
    {"text": "not a training example"},
]


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "dataset.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return p


def test_full_training_lowers_loss_and_saves_a_loadable_model(tiny_model_dir, data, tmp_path):
    out = tmp_path / "out"
    cfg = TrainConfig(model=str(tiny_model_dir), lr=2e-2, epochs=10, examples_per_step=3,
                      max_len=256, token_budget=128, warmup_ratio=0.0)
    s = train(cfg, data, out)
    losses = [h["loss"] for h in s["history"]]
    assert s["examples"] == 3 and s["dropped"] == {"too_long": 1, "unreadable": 1}
    assert losses[-1] < losses[0] * 0.7
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["data_sha256"] == s["data_sha256"] and saved["steps"] == 10
    # What was saved loads as a plain model and generates.
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert not getattr(model.config, "quantization_config", None)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok("def", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=3, min_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3


def test_loss_weights_every_reply_token_equally_whatever_the_packing(tiny_model_dir, data, tmp_path):
    # One micro-batch per step or one per example: the same loss (token-weighted).
    common = dict(model=str(tiny_model_dir), max_steps=1, examples_per_step=3, max_len=256, lr=1e-9)
    one = train(TrainConfig(token_budget=1024, **common), data, None)
    many = train(TrainConfig(token_budget=256, **common), data, None)
    assert one["history"][0]["loss"] == pytest.approx(many["history"][0]["loss"], rel=1e-5)


def test_refuses_to_overwrite_a_model(tiny_model_dir, data):
    with pytest.raises(UserError, match="already holds a model"):
        train(TrainConfig(model=str(tiny_model_dir)), data, tiny_model_dir)


def test_chunked_loss_trains_like_plain_logits(tiny_model_dir, data, tmp_path):
    runs = {}
    for kernels in ("none", "torch"):
        cfg = TrainConfig(model=str(tiny_model_dir), lr=1e-2, epochs=3, examples_per_step=3,
                          max_len=256, token_budget=128, warmup_ratio=0.0, kernels=kernels)
        s = train(cfg, data, tmp_path / kernels)
        assert s["kernels"] == kernels
        runs[kernels] = ([h["loss"] for h in s["history"]],
                         transformers.AutoModelForCausalLM.from_pretrained(tmp_path / kernels).state_dict())
    (plain, plain_sd), (chunked, chunked_sd) = runs["none"], runs["torch"]
    assert chunked == pytest.approx(plain, rel=1e-4)
    assert plain_sd.keys() == chunked_sd.keys()  # the output layer saved as a normal layer
    for k in plain_sd:
        assert torch.allclose(plain_sd[k], chunked_sd[k], atol=1e-4), k


def test_bf16_master_weights_train_like_fp32(tiny_model_dir, data, tmp_path):
    # bf16 arithmetic, fp32 masters: the same loss curve as fp32 within bf16 rounding, and
    # the saved fp32 weights are the masters (not bf16 copies)
    runs = {}
    for precision in ("fp32", "bf16-master"):
        cfg = TrainConfig(model=str(tiny_model_dir), lr=1e-2, epochs=4, examples_per_step=3, max_len=256,
                          token_budget=128, warmup_ratio=0.0, precision=precision, save_dtype="fp32")
        s = train(cfg, data, tmp_path / precision)
        assert s["precision"] == precision
        runs[precision] = ([h["loss"] for h in s["history"]],
                           transformers.AutoModelForCausalLM.from_pretrained(tmp_path / precision).state_dict())
    (ref, ref_sd), (got, got_sd) = runs["fp32"], runs["bf16-master"]
    assert got == pytest.approx(ref, rel=0.05)
    assert got[-1] < got[0] - 0.5
    w = got_sd["model.layers.0.mlp.up_proj.weight"]
    assert w.dtype == torch.float32 and not torch.equal(w, w.bfloat16().float())  # fp32 detail kept
    # moved like the fp32 run's weights (Adam turns bf16 rounding of tiny gradients into
    # full-size steps now and then, so compare on average)
    w0 = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()[
        "model.layers.0.mlp.up_proj.weight"]
    ref_w = ref_sd["model.layers.0.mlp.up_proj.weight"]
    assert (w - ref_w).abs().mean() < 0.3 * (ref_w - w0).abs().mean()


def test_gpu_out_of_memory_is_a_one_line_error_naming_the_token_budget(tiny_model_dir, data, monkeypatch):
    # A budget too large for the card is a setting to change, not a traceback. The OOM is
    # raised by a stand-in for the step loop: this CPU machine cannot run out of GPU memory.
    from selfcodealign.train import loop

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "_run_steps", oom)
    cfg = TrainConfig(model=str(tiny_model_dir), max_steps=1, max_len=256, token_budget=49152)
    with pytest.raises(UserError, match=r"up to 49,152 tokens.*lower --token-budget") as e:
        train(cfg, data, None)
    assert "\n" not in str(e.value)


def test_auto_token_budget_from_free_gpu_memory(monkeypatch):
    # The arithmetic of "auto" with the GPU's free memory given (no GPU here): the 0.5B
    # model on an 80 GB card lands near the measured sweet spot (44-48k tokens); a 7B LoRA
    # near the 8k that suits it; a full card gives the floor; CPU keeps 8,192.
    from types import SimpleNamespace

    from selfcodealign.train.loop import _token_budget

    gib = 1 << 30
    cuda = SimpleNamespace(device=SimpleNamespace(type="cuda"), num_processes=1)

    def budget(free, layers, hidden, trainable, precision="bf16-master", method="full", dev=cuda):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *_: (free, 80 * gib))
        model = SimpleNamespace(config=SimpleNamespace(num_hidden_layers=layers, hidden_size=hidden))
        cfg = TrainConfig(method=method)
        return _token_budget(cfg, dev, model, precision, "liger", False, [SimpleNamespace(numel=lambda: trainable)])

    qwen05 = budget(int(73.2 * gib), 24, 896, 630_000_000)
    assert 40_960 <= qwen05 <= 49_152 and qwen05 % 1024 == 0
    assert 6_144 <= budget(64 * gib, 28, 3584, 40_000_000, method="lora") <= 12_288
    assert budget(2 * gib, 24, 896, 630_000_000) == 1024
    assert budget(200 * gib, 24, 896, 1000) == 65_536  # the ceiling
    cpu = SimpleNamespace(device=SimpleNamespace(type="cpu"), num_processes=1)
    assert budget(73 * gib, 24, 896, 1, dev=cpu) == 8192
    fixed = TrainConfig(token_budget=12_345)
    assert _token_budget(fixed, cuda, None, "bf16-master", "liger", False, []) == 12_345


def test_dpo_prefers_the_chosen_answers(tiny_model_dir, tmp_path):
    """DPO on pass/fail pairs: the chosen answers' margin over the rejected ones (against
    the reference) grows, the model saves with its provenance, and bad lines are counted."""
    from selfcodealign.records import Message, PreferencePair, Verdict

    pairs = []
    for i, (good, bad) in enumerate([("return a + b", "return a - b"), ("return -x", "return x"),
                                     ("return x * x", "return x + x"), ("return s[::-1]", "return s")]):
        pairs.append(PreferencePair(
            id=f"p{i}", parent_id=f"i{i}", seed_id=f"s{i}", prompt=[Message(role="user", content=f"Task {i}.")],
            chosen=f"```python\ndef f(a, b=0, x=0, s=''):\n    {good}\n```", rejected=f"```python\ndef f():\n    {bad}\n```",
            chosen_id=f"c{i}", rejected_id=f"r{i}", rejected_verdict=Verdict(id=f"r{i}", status="failed")))
    data = tmp_path / "dataset.pairs.jsonl"
    data.write_text("".join(p.model_dump_json() + "\n" for p in pairs) + '{"id": "broken"}\n')
    out = tmp_path / "dpo"
    cfg = TrainConfig(model=str(tiny_model_dir), objective="dpo", lr=5e-3, epochs=8, examples_per_step=4,
                      max_len=256, token_budget=512, warmup_ratio=0.0)
    s = train(cfg, data, out)
    h = s["history"]
    assert s["examples"] == 4 and s["dropped"] == {"unreadable": 1} and s["objective"] == "dpo"
    # Step 1 starts at the reference: loss log 2, no margin; training opens a margin.
    assert h[0]["loss"] == pytest.approx(0.6931, abs=1e-3) and abs(h[0]["margin"]) < 1e-3
    assert h[-1]["margin"] > 1.0 and h[-1]["reward_accuracy"] == 1.0 and h[-1]["loss"] < 0.6
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["data_sha256"] == s["data_sha256"] and saved["objective"] == "dpo"
    assert transformers.AutoModelForCausalLM.from_pretrained(out) is not None
    # An SFT dataset given as pairs: one clear error.
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(ROWS[0]) + "\n")
    with pytest.raises(UserError, match="no usable preference pairs"):
        train(cfg, rows, tmp_path / "x")
