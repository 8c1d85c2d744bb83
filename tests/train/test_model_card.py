"""The model card `train` writes beside a model, read back with huggingface_hub's card
parser, and the scores `eval` adds to it: a tiny random model trained for one step, then
evaluated on one HumanEval+ task and one MBPP+ task (the real `eval` command: the hf
backend on the CPU, EvalPlus's checker)."""

from __future__ import annotations

import json

import pytest

from selfcodealign.cli import main
from selfcodealign.models.embedded import sha256_file

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
huggingface_hub = pytest.importorskip("huggingface_hub")

ROWS = [
    {"instruction": "Write add(a, b).", "response": "```python\ndef add(a, b):\n    return a + b\n```"},
    {"instruction": "Write neg(x).", "response": "```python\ndef neg(x):\n    return -x\n```"},
    {"text": "not a training example"},
]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.loop import train

    d = tmp_path_factory.mktemp("card")
    data = d / "dataset.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    train(TrainConfig(model=str(tiny_model_dir), max_steps=1, examples_per_step=2, max_len=256, token_budget=256),
          data, d / "model")
    return d / "model", data


def test_train_writes_a_card_naming_base_model_data_hash_and_examples(trained, tiny_model_dir):
    from huggingface_hub import ModelCard

    model, data = trained
    card = ModelCard.load(model / "README.md")
    saved = json.loads((model / "train_config.json").read_text())
    assert card.data.library_name == "transformers" and "sft" in card.data.tags
    assert card.data.eval_results is None and "Not evaluated yet" in card.text
    assert f"`{tiny_model_dir.name}` | `{saved['base_model_sha256']}` |" in card.text
    assert saved["base_model_sha256"] and len(saved["base_model_sha256"]) == 64
    assert f"| `{data.resolve()}` | `{sha256_file(data)}` | 3 | 2 | unreadable 1 |" in card.text
    assert "| objective | `sft` |" in card.text and "| steps | `1` |" in card.text
    assert "| peak lr | `1e-05` |" in card.text  # the full SFT default


def _eval(model, out, bench, task, capsys):
    rc = main(["eval", "--model", str(model), "--backend", "hf", "--out", str(out), "--benchmarks", bench,
               "--tasks", task, "--max-tokens", "4", "--batch-size", "1"])
    assert rc == 0
    return capsys.readouterr().out


def test_eval_adds_its_scores_and_a_new_eval_replaces_only_its_own(trained, tmp_path, capsys):
    from huggingface_hub import ModelCard

    model, _ = trained
    out = _eval(model, tmp_path / "he", "humaneval+", "HumanEval/0", capsys)
    assert f"model card: {model / 'README.md'} has these scores" in out
    report = json.loads((tmp_path / "he" / "results.json").read_text())
    card = ModelCard.load(model / "README.md")
    got = {(r.dataset_type, r.metric_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    he = report["benchmarks"]["humaneval"]
    assert got == {("evalplus/humanevalplus", "base", "pass@1"): round(100 * he["base"]["pass@1"], 1),
                   ("evalplus/humanevalplus", "plus", "pass@1"): round(100 * he["plus"]["pass@1"], 1)}
    assert "model-index" in (model / "README.md").read_text()
    assert "| HumanEval+ | plus | pass@1 |" in card.text and "Not evaluated yet" not in card.text

    _eval(model, tmp_path / "mb", "mbpp+", "Mbpp/2", capsys)
    _eval(model, tmp_path / "he2", "humaneval+", "HumanEval/0", capsys)
    card = ModelCard.load(model / "README.md")
    keys = [(r.dataset_type, r.metric_config) for r in card.data.eval_results]
    assert sorted(keys) == [("evalplus/humanevalplus", "base"), ("evalplus/humanevalplus", "plus"),
                            ("evalplus/mbppplus", "base"), ("evalplus/mbppplus", "plus")]


def test_eval_of_a_model_train_did_not_write_leaves_it_alone(tiny_model_dir, tmp_path, capsys):
    out = _eval(tiny_model_dir, tmp_path / "e", "humaneval+", "HumanEval/0", capsys)
    assert "model card" not in out and not (tiny_model_dir / "README.md").exists()


def test_a_lora_adapter_card_says_so_and_carries_the_lora_settings(tiny_model_dir, tmp_path):
    from huggingface_hub import ModelCard

    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.loop import train

    data = tmp_path / "dataset.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    train(TrainConfig(model=str(tiny_model_dir), method="lora", max_steps=1, examples_per_step=2, max_len=256,
                      token_budget=256), data, tmp_path / "lora")
    card = ModelCard.load(tmp_path / "lora" / "README.md")
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    assert card.data.library_name == "peft" and "A LoRA adapter" in card.text
    assert "| lora_r | `16` |" in card.text and "| peak lr | `0.0002` |" in card.text
