"""TRL as a consumer of `export-dataset`: its SFTTrainer and DPOTrainer train a tiny random
Qwen2 model (the embedded model's tokenizer and chat template) for two steps on the CPU,
on a run made by the real pipeline (scripted backend) and exported, with nothing between
`datasets.load_dataset` and the trainer.

SFT puts the loss on the assistant turn only with TRL's `assistant_only_loss=True`: TRL
swaps the Qwen2.5 chat template for its training copy, which marks the assistant turn
with `{% generation %}`."""

from __future__ import annotations

import math
import sys

import pytest
from scripted_backend import scripted_run

from selfcodealign.cli import main

if sys.version_info < (3, 11):
    pytest.skip("TRL 1.16 needs Python >= 3.11 (the test extra installs it there)", allow_module_level=True)
trl = pytest.importorskip("trl", reason="trl is not installed: pip install -e '.[test]'")
datasets = pytest.importorskip("datasets", reason="the hf extra (datasets) is not installed")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run, _ = scripted_run(tmp_path_factory.mktemp("run"), "select.system_prompt=You write Python.")
    out = tmp_path_factory.mktemp("export") / "ds"
    assert main(["export-dataset", str(run), str(out)]) == 0
    return out


def load(folder, config, tmp_path):
    return datasets.load_dataset(str(folder), config, split="train", cache_dir=str(tmp_path / "cache"))


def common(tmp_path) -> dict:
    return dict(output_dir=str(tmp_path / "trl"), max_steps=2, per_device_train_batch_size=1, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False, seed=0,
                gradient_checkpointing=False, disable_tqdm=True)


def losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_sft_trainer_trains_on_the_assistant_turns_of_the_exported_dataset(exported, tiny_model_dir, tmp_path):
    train = load(exported, "default", tmp_path)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = trl.SFTTrainer(model=model, processing_class=tok, train_dataset=train,
                             args=trl.SFTConfig(assistant_only_loss=True, max_length=512, **common(tmp_path)))
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(losses(trainer)) == 2 and all(math.isfinite(x) and x > 0 for x in losses(trainer))

    # The loss covers the answer and its end of turn, never the system or user turn: TRL
    # folded the assistant mask into the labels (-100: no loss).
    row = trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    answer = train[0]["messages"][-1]["content"]
    assert tok.decode([t for t, lab in zip(ids, labels) if lab != -100]).strip() == answer + "<|im_end|>"
    prompt = tok.decode([t for t, lab in zip(ids, labels) if lab == -100])
    assert train[0]["messages"][0]["content"] in prompt and train[0]["messages"][1]["content"] in prompt
    assert answer not in prompt
    assert trainer.data_collator([row])["labels"][0].tolist() == labels


def test_dpo_trainer_trains_on_the_exported_pairs(exported, tiny_model_dir, tmp_path):
    pairs = load(exported, "pairs", tmp_path)
    assert len(pairs) >= 2
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = trl.DPOTrainer(model=model, processing_class=tok, train_dataset=pairs,
                             args=trl.DPOConfig(max_length=512, **common(tmp_path)))
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(losses(trainer)) == 2 and all(math.isfinite(x) for x in losses(trainer))
    # TRL read the pair as a conversation: the chat template around the prompt, the answers after it
    row = trainer.train_dataset[0]
    assert tok.decode(row["prompt_ids"]).endswith("<|im_start|>assistant\n")
    assert tok.decode(row["chosen_ids"]).startswith(pairs[0]["chosen"][0]["content"])
    assert tok.decode(row["rejected_ids"]).startswith(pairs[0]["rejected"][0]["content"])
