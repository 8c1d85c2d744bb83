"""The engine as GRPO's rollout source, on CPU: it samples from the policy as it trains
(in-place updates reach its weights, cached prefixes of old weights are not reused), with
full fine-tuning and with LoRA (merged into the engine's own buffers, or through PEFT's
modules where the merge does not cover the variant)."""

import logging

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.gpu.engine import Request
from selfcodealign.train.rollouts import EngineRollouts


def greedy(model, prompt, n):
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, eos_token_id=None, pad_token_id=0, top_k=None, top_p=None)
    return list(out[0, len(prompt):].tolist())


def engine_greedy(src, prompt, n):
    [r] = src.engine.generate([Request(tuple(prompt), n)])
    return list(r.token_ids), r.cached_tokens


def step(model, prompt):
    """One AdamW step that changes every trainable weight (a large learning rate)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    ids = torch.tensor([prompt])
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad()


@pytest.fixture
def prompt(qwen_tokenizer):
    # longer than two prefix blocks (64 tokens), so the engine would reuse a cached prefix
    text = "Write a function that adds two numbers and explains each step of the addition. " * 6
    return qwen_tokenizer(text)["input_ids"][:150]


def test_full_fine_tuning_updates_reach_the_engine(tiny_model_dir, qwen_tokenizer, prompt):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=12, slots=4, max_len=200)
    assert src.engine.runner.fused  # the optimizer will write into the engine's fused weights
    before, _ = engine_greedy(src, prompt, 12)
    assert before == greedy(model, prompt, 12)
    step(model, prompt)
    src.sync(model)
    after, cached = engine_greedy(src, prompt, 12)
    assert cached == 0  # the prompt's K/V from the old weights were not reused
    assert after == greedy(model, prompt, 12) != before
    # Without the sync, the prompt's cached K/V (the weights before the step) are reused.
    step(model, prompt)
    _, cached = engine_greedy(src, prompt, 12)
    assert cached > 0


def lora_policy(tiny_model_dir, **config):
    peft = pytest.importorskip("peft")
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return peft.get_peft_model(base, peft.LoraConfig(**{"r": 8, "lora_alpha": 16, "target_modules": "all-linear",
                                                        **config}))


def engine_buffers(runner):
    """The tensors the fused decode path reads: per layer q/k/v, o, gate/up, down."""
    return [t for _, _, qkv, o, _, _, gate_up, down in runner.fused_layers
            for t in (qkv[0], qkv[1], o.weight, gate_up[0], down.weight)]


def frozen(model):
    """The trained model's frozen tensors: where they are and what they hold."""
    return {n: (p.data_ptr(), p.detach().clone()) for n, p in model.named_parameters() if not p.requires_grad}


def assert_untouched(model, before):
    after = frozen(model)
    assert after.keys() == before.keys()
    for n, (ptr, value) in before.items():
        assert after[n][0] == ptr and torch.equal(after[n][1], value), n


def test_lora_samples_come_from_the_adapter_merged_into_the_engines_own_buffers(tiny_model_dir, qwen_tokenizer,
                                                                                 prompt):
    model = lora_policy(tiny_model_dir, lora_dropout=0.1)
    base_weights = frozen(model)
    src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=12, slots=4, max_len=200, lora=True)
    runner = src.engine.runner
    # The fused path runs on the merged copy: plain linears of its own, slices of the fused tensors.
    assert src.merged is not None and runner.model is src.merged.model and runner.fused
    q = runner.layers[0].self_attn.q_proj
    assert type(q) is torch.nn.Linear and q is not model.get_base_model().model.layers[0].self_attn.q_proj
    assert q.weight.data_ptr() == runner.fused_layers[0][2][0].data_ptr()
    pointers = [t.data_ptr() for t in engine_buffers(runner)]
    before, _ = engine_greedy(src, prompt, 12)
    for _ in range(2):
        merged = [t.clone() for t in engine_buffers(runner)]
        step(model, prompt)  # lora_B leaves zero: the adapter now changes the outputs
        src.sync(model)
        assert [t.data_ptr() for t in engine_buffers(runner)] == pointers  # re-merged in place
        assert not torch.equal(engine_buffers(runner)[0], merged[0])
        after, cached = engine_greedy(src, prompt, 12)
        assert cached == 0
        model.eval()  # sampling's mode: no dropout, where the merge is exact
        assert after == greedy(model, prompt, 12) != before
    with model.disable_adapter():
        assert greedy(model, prompt, 12) == before
    assert_untouched(model, base_weights)  # not re-pointed, not changed by building the engine or by sync


def test_merged_weights_follow_peft_scaling_and_copy_the_untargeted_projections(tiny_model_dir, qwen_tokenizer,
                                                                                 prompt):
    # rsLoRA scales by alpha / sqrt(r); a random lora_B makes the adapter count from the start.
    model = lora_policy(tiny_model_dir, r=4, lora_alpha=8, use_rslora=True, init_lora_weights=False,
                        target_modules=["q_proj", "v_proj"])
    base_weights = frozen(model)
    src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=12, slots=4, max_len=200, lora=True)
    assert_untouched(model, base_weights)  # the untargeted k_proj was copied into the fused tensor, not re-pointed
    runner, trained = src.engine.runner, model.get_base_model().model.layers[0].self_attn
    assert src.merged is not None and runner.fused
    q, k = trained.q_proj, trained.k_proj
    qkv = runner.fused_layers[0][2][0]
    by_hand = q.base_layer.weight + 8 / 4**0.5 * q.lora_B["default"].weight @ q.lora_A["default"].weight
    torch.testing.assert_close(qkv[: q.out_features], by_hand)
    assert torch.equal(qkv[q.out_features : q.out_features + k.out_features], k.weight)
    model.eval()
    got, _ = engine_greedy(src, prompt, 12)
    assert got == greedy(model, prompt, 12)
    with model.disable_adapter():
        assert greedy(model, prompt, 12) != got


@pytest.mark.parametrize("variant", [{"use_dora": True}, {"lora_bias": True, "target_modules": ["q_proj", "v_proj"]}],
                         ids=["dora", "lora_bias"])
def test_lora_the_merge_does_not_cover_samples_through_peft_on_the_plain_path(tiny_model_dir, qwen_tokenizer, prompt,
                                                                           variant, caplog):
    model = lora_policy(tiny_model_dir, init_lora_weights=False, **variant)
    with caplog.at_level(logging.INFO, logger="selfcodealign.train.rollouts"):
        src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=12, slots=4, max_len=200,
                             lora=True)
    name = "DoraLinearVariant" if "use_dora" in variant else "lora_bias"
    assert "plain path" in caplog.text and name in caplog.text
    assert src.merged is None and src.engine.runner.model is model.get_base_model() and not src.engine.runner.fused
    model.eval()
    got, _ = engine_greedy(src, prompt, 12)
    assert got == greedy(model, prompt, 12)


def test_rollouts_end_with_the_sampled_end_token_and_are_seeded(tiny_model_dir, qwen_tokenizer, prompt):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=8, slots=8, max_len=200)
    rs = src.generate([prompt, prompt[:40]], group=3, seed=5)
    assert [r.prompt for r in rs] == [0, 0, 0, 1, 1, 1] and rs[3].prompt_ids == tuple(prompt[:40])
    assert len({r.ids for r in rs[:3]}) > 1  # a group's samples differ
    assert [r.ids for r in src.generate([prompt, prompt[:40]], group=3, seed=5)] == [r.ids for r in rs]
    assert src.generated_tokens == 2 * sum(len(r.ids) for r in rs)
    # A model whose most likely first token is an end token: the rollout holds it, its text does not.
    [first], _ = engine_greedy(src, prompt, 1)
    model.generation_config.eos_token_id = [qwen_tokenizer.eos_token_id, first]
    src = EngineRollouts(model, qwen_tokenizer, temperature=1e-4, max_new_tokens=8, slots=8, max_len=200)
    [r] = src.generate([prompt], group=1, seed=0)
    assert first in src.eos and (r.ids, r.text, r.finish_reason) == ((first,), "", "stop")


def test_a_replaced_weight_stops_the_run(tiny_model_dir, qwen_tokenizer):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    src = EngineRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=4, slots=2, max_len=64)
    model.lm_head.weight.data = model.lm_head.weight.data.clone()
    with pytest.raises(RuntimeError, match="replaced the policy's weight tensors"):
        src.sync(model)


def test_a_model_the_engine_cannot_run_samples_with_generate_or_fails_clearly(qwen_tokenizer):
    from selfcodealign.errors import UserError
    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.grpo import rollout_source

    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64))
    auto = rollout_source(gpt2, qwen_tokenizer, TrainConfig(objective="grpo"), 10)
    assert auto.name == "generate"
    with pytest.raises(UserError, match="--grpo-rollouts generate"):
        rollout_source(gpt2, qwen_tokenizer, TrainConfig(objective="grpo", grpo_rollouts="engine"), 10)
