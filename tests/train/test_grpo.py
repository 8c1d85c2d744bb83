"""GRPO on CPU: rewards from the real sandbox, group-relative advantages, the shuffled
control, resume, and a short run from a real run directory on a tiny model."""

import hashlib
import json
import random
import statistics

import pytest
from scripted_backend import HandWritten

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from selfcodealign.errors import UserError
from selfcodealign.train import grpo
from selfcodealign.train import policy_gradient as pg
from selfcodealign.train.config import TrainConfig
from selfcodealign.train.rollouts import Rollout
from selfcodealign.train.tasks import REWARDS, Task, load_tasks, score

ADD = Task(id="t-add", prompt=({"role": "user", "content": "Write add(a, b)."},),
           tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0\n")


def fenced(code: str) -> str:
    return f"Here it is.\n\n```python\n{code}```\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A pipeline run (seeds to dataset.jsonl) through the real ledger and sandbox, its
    model a scripted backend whose samples pass or fail their tests."""
    from scripted_backend import Scripted

    from selfcodealign.config import build_config
    from selfcodealign.executors.local import LocalExecutor
    from selfcodealign.ids import make_id
    from selfcodealign.jsonl import write_atomic
    from selfcodealign.pipeline import Pipeline
    from selfcodealign.records import Seed

    tmp = tmp_path_factory.mktemp("grpo-run")
    seeds = [Seed(id=make_id("seed", i), code=f"def g{i}(x):\n    \"\"\"Doc {i}.\"\"\"\n    return x + {i}\n",
                  name=f"g{i}", source="test", path=f"m{i}.py", line_start=1, line_end=3) for i in range(8)]
    write_atomic(tmp / "seeds.jsonl", seeds)
    cfg = build_config(sets=[f"seeds.source=seeds:{tmp / 'seeds.jsonl'}", "prompts.style=completion",
                             "responses.n=4", "execute.workers=2",
                             # the scripted answers are one-line functions: kept here despite that
                             "select.keep_reasons=[trivial]"])
    backend = Scripted()
    Pipeline(cfg, tmp / "run", lambda: LocalExecutor(lambda: backend, 2), quiet=True).run()
    return tmp / "run"


# ---- rewards -------------------------------------------------------------------------

def test_rewards_come_from_the_sandbox_with_the_stated_scores():
    answers = {
        "right": fenced("def add(a, b):\n    return a + b\n"),
        "wrong": fenced("def add(a, b):\n    return a - b\n"),
        # its own tests pass, the task's do not: the answer's tests are never the reward
        "wrong_with_own_passing_tests": fenced("def add(a, b):\n    return a * b\n")
        + "\n### Tests\n```python\nassert add(2, 2) == 4\n```\n",
        "syntax_error": fenced("def add(a, b)\n    return a + b\n"),
        "timeout": fenced("def add(a, b):\n    while True:\n        pass\n"),
        "no_code": "I would add the two numbers.",
        "raises": fenced("def add(a, b):\n    raise ValueError('no')\n"),
    }
    outcomes = dict(zip(answers, score([(t, "stop", ADD) for t in answers.values()], timeout=2, memory_mb=512)))
    assert outcomes == {"right": "passed", "wrong": "failed", "wrong_with_own_passing_tests": "failed",
                        "syntax_error": "syntax_error", "timeout": "timeout", "no_code": "no_code",
                        "raises": "failed"}
    assert {o: REWARDS[o] for o in outcomes.values()} == {
        "passed": 1.0, "failed": 0.0, "syntax_error": 0.0, "timeout": 0.0, "no_code": 0.0}


def test_a_looping_rollout_waits_for_the_reward_timeout_not_the_runs():
    from types import SimpleNamespace

    from selfcodealign.train.tasks import Tasks

    loop = fenced("def add(a, b):\n    while True:\n        pass\n")
    tasks = Tasks([ADD], "x", timeout=30.0, memory_mb=512)
    run = SimpleNamespace(tasks=tasks, cfg=TrainConfig(model="m", grpo_reward_timeout=1.0),
                          pool=grpo.ThreadPoolExecutor(1))
    batch = SimpleNamespace(rollouts=[Rollout(0, (1,), (2,), loop, "stop")], tasks=[0])
    scored = grpo.submit_rewards(run, batch).result()
    assert scored.outcomes == ["timeout"] and scored.seconds < 10


def test_tasks_are_the_kept_examples_with_their_tests_and_the_band_counts_drops(run_dir):
    kept = [json.loads(line) for line in (run_dir / "dataset.jsonl").read_text().splitlines()]
    every = load_tasks(run_dir, None)
    assert [t.id for t in every.tasks] == [e["id"] for e in kept]
    assert [t.tests for t in every.tasks] == [e["tests"] for e in kept]
    assert all(t.prompt[-1]["role"] == "user" for t in every.tasks)
    band = load_tasks(run_dir, (0.1, 0.9))
    rates = [t.pass_rate for t in band.tasks]
    assert rates and all(0.1 <= a / b <= 0.9 for a, b in rates)
    assert len(band.tasks) + band.dropped["pass_rate_outside_band"] == len(kept)
    # the pass rate each example records is its instruction's count in executed.jsonl
    from selfcodealign.config import ExecuteConfig
    from selfcodealign.jsonl import read_records
    from selfcodealign.records import Executed
    from selfcodealign.stages.execute import ExecuteStage

    passes = ExecuteStage(ExecuteConfig(workers=2)).counts_as_pass
    executed = list(read_records(run_dir / "executed.jsonl", Executed))
    instruction = {e.id: e.response.parent_id for e in executed}
    for t, e in zip(every.tasks, kept):
        group = [x for x in executed if x.response.parent_id == instruction[e["parent_id"]]]
        assert t.pass_rate == (sum(map(passes, group)), len(group))
    # the hash is the dataset file's: the band is a setting, the rates are in the file
    assert band.sha256 == every.sha256 == hashlib.sha256((run_dir / "dataset.jsonl").read_bytes()).hexdigest()
    with pytest.raises(UserError, match="no dataset.jsonl"):
        load_tasks(run_dir / "nope", None)


def test_examples_without_a_recorded_pass_rate_are_dropped_by_the_band(run_dir, tmp_path):
    lines = (run_dir / "dataset.jsonl").read_text().splitlines()
    bare = [json.dumps({**json.loads(x), "quality": None}) for x in lines]
    (tmp_path / "dataset.jsonl").write_text("\n".join(bare[:2] + lines[2:]) + "\n")
    some = load_tasks(tmp_path, (0.0, 0.99))
    assert some.dropped["no_pass_rate"] == 2 and len(some.tasks) + sum(some.dropped.values()) == len(lines)
    (tmp_path / "dataset.jsonl").write_text("\n".join(bare) + "\n")
    assert len(load_tasks(tmp_path, None).tasks) == len(lines)
    with pytest.raises(UserError, match="records no pass rates.*--grpo-pass-rate 0,1"):
        load_tasks(tmp_path, (0.1, 0.9))


# ---- the learning signal -------------------------------------------------------------

def test_advantages_are_relative_to_their_group_and_flat_groups_are_counted():
    adv, flat = pg.group_advantages([1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1], 4)
    std = (0.25 * 0.75) ** 0.5
    assert adv[:4] == pytest.approx([0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std], rel=1e-3)
    assert adv[4:8] == [0.0] * 4 and flat == 1
    assert adv[8:] == pytest.approx([-1, -1, 1, 1], rel=1e-3)
    # Dr. GRPO: centred, not scaled
    adv, flat = pg.group_advantages([1, 0, 0, 0, 0, 0, 0, 0], 4, scale_std=False)
    assert adv == [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0] and flat == 1
    with pytest.raises(ValueError):
        pg.group_advantages([1, 0, 1], 2)


def test_sandbox_errors_are_masked_out_of_their_group():
    """A sample the sandbox failed to run is not the model's doing: advantage 0, and its
    0.0 reward is not part of its group's mean or std."""
    from selfcodealign.train.tasks import MASKED

    assert MASKED == {"sandbox_error"}
    rewards = [1, 0, 0, 0, 1, 0, 1, 0]
    masked = [False, False, True, True, False, True, True, True]
    adv, flat = pg.group_advantages(rewards, 4, masked=masked)
    # group 1 is [1, 0] once masked: mean 0.5, std 0.5
    assert adv[:4] == pytest.approx([0.5 / 0.5, -0.5 / 0.5, 0.0, 0.0], rel=1e-3)
    # group 2 keeps one reward: nothing to compare it with
    assert adv[4:] == [0.0] * 4 and flat == 1
    assert pg.group_advantages(rewards, 4, masked=[False] * 8) == pg.group_advantages(rewards, 4)
    adv, _ = pg.group_advantages([1, 0, 0, 0], 4, scale_std=False, masked=[False, False, False, True])
    assert adv == pytest.approx([2 / 3, -1 / 3, -1 / 3, 0.0])
    with pytest.raises(ValueError):
        pg.group_advantages(rewards, 4, masked=[False])


def test_the_shuffled_control_carries_no_signal():
    """Over many batches, a batch's shuffled rewards do not correlate with which of its
    answers passed, and the advantages they give do not depend on it; unshuffled, they
    do."""
    rng = random.Random(7)
    group, n_groups = 8, 8
    corr_true, corr_shuf, passed, adv_true, adv_shuf = [], [], [], [], []
    for step in range(1, 1501):
        rates = [rng.choice([0.0, 0.1, 0.3, 0.5, 0.8, 1.0]) for _ in range(n_groups)]
        r = [float(rng.random() < p) for p in rates for _ in range(group)]
        s = pg.shuffled(r, seed=3, step=step)
        assert sorted(s) == sorted(r)  # the same rewards, moved
        if 0 < sum(r) < len(r):
            corr_true.append(statistics.correlation(r, r))
            corr_shuf.append(statistics.correlation(r, s))
        passed += r
        adv_true += pg.group_advantages(r, group)[0]
        adv_shuf += pg.group_advantages(s, group)[0]
    assert len(corr_shuf) > 1000
    assert statistics.fmean(corr_true) == pytest.approx(1.0)
    # a uniform permutation of n values: expected correlation -1/(n-1), here -0.016
    assert abs(statistics.fmean(corr_shuf)) < 0.03
    mean = lambda xs, want: statistics.fmean(a for a, p in zip(xs, passed) if p == want)  # noqa: E731
    assert mean(adv_true, 1.0) > 0.5 and mean(adv_true, 0.0) < -0.3
    assert abs(mean(adv_shuf, 1.0)) < 0.03 and abs(mean(adv_shuf, 0.0)) < 0.03
    # seeded: the same permutation for the same (seed, step), another for the next step
    r = [float(i % 3 == 0) for i in range(64)]
    assert pg.shuffled(r, 3, 5) == pg.shuffled(r, 3, 5) != pg.shuffled(r, 3, 6)


def test_each_epoch_takes_every_task_once_in_a_seeded_order():
    plan = grpo.task_plan(5, 2, 7, seed=1)
    flat = sum(plan, [])
    assert len(plan) == 7 and all(len(s) == 2 for s in plan)
    assert sorted(flat[:5]) == sorted(flat[5:10]) == list(range(5)) and flat[:5] != flat[5:10]
    assert plan == grpo.task_plan(5, 2, 7, seed=1) != grpo.task_plan(5, 2, 7, seed=2)


def test_max_steps_caps_sft_and_sets_grpos_length():
    """Epochs' steps rounded up (SFT's steps per epoch are whole, its last step may be
    short; GRPO's a fraction, its steps run on into the next epoch); max_steps cuts SFT
    and DPO short and is GRPO's length, more epochs or fewer."""
    for objective in ("sft", "dpo", "grpo"):
        assert TrainConfig(objective=objective, epochs=4).total_steps(10 / 8) == 5
        assert TrainConfig(objective=objective, epochs=4, max_steps=3).total_steps(10 / 8) == 3
        assert TrainConfig(objective=objective, epochs=0.3).total_steps(10) == 3  # 0.3 * 10 = 3.0000000000000004
    assert TrainConfig(objective="sft", epochs=1, max_steps=100).total_steps(10 / 8) == 2
    assert TrainConfig(objective="dpo", epochs=1, max_steps=100).total_steps(10 / 8) == 2
    assert TrainConfig(objective="grpo", epochs=1, max_steps=100).total_steps(10 / 8) == 100


def test_micro_batches_keep_order_and_their_padded_size_within_the_budget():
    rs = [Rollout(0, (1,) * p, (2,) * n, "", "stop") for p, n in [(10, 5), (10, 20), (3, 3), (50, 50), (4, 4)]]
    mbs = pg.micro_batches(rs, budget=40)
    assert sum(mbs, []) == list(range(5))
    for mb in mbs:  # a rollout longer than the budget goes alone
        width = max(len(rs[i].prompt_ids) + len(rs[i].ids) for i in mb)
        assert width * len(mb) <= 40 or len(mb) == 1


def test_a_batch_keeps_its_log_probabilities_on_the_device_and_checkpoints_them_on_the_cpu():
    rs = [Rollout(0, (1, 2), (3, 4, 5), "x", "stop")]
    state = grpo.Batch(2, [0], rs, [torch.tensor([-0.1, -0.2, -0.3])], 1.5, 3).state()
    assert state["old_logps"][0].device.type == "cpu"
    back = grpo.Batch.from_state(state, "meta")
    assert back.old_logps[0].device.type == "meta" and back.rollouts == rs and back.step == 2

def _rollout(tok, prompt: str, answer: str) -> Rollout:
    from selfcodealign.train.format import encode_prompt

    ids = encode_prompt(tok, [{"role": "user", "content": prompt}])
    return Rollout(0, tuple(ids), tuple(tok(answer, add_special_tokens=False)["input_ids"]), answer, "stop")


def test_sampled_logps_are_the_models_token_log_probabilities(tiny_model_dir, qwen_tokenizer):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rs = [_rollout(qwen_tokenizer, "Write add.", "def add(a, b): return a + b"),
          _rollout(qwen_tokenizer, "Write a much longer thing, please.", "x = 1")]
    got = pg.sampled_logps(model, rs, temperature=0.7)
    for r, lp in zip(rs, got):
        ids = torch.tensor([list(r.prompt_ids) + list(r.ids)])
        logits = model(ids).logits[0, len(r.prompt_ids) - 1 : -1].float() / 0.7
        want = torch.log_softmax(logits, -1).gather(1, torch.tensor(r.ids)[:, None])[:, 0]
        assert torch.allclose(lp, want, atol=1e-4)


def test_a_step_moves_the_policy_towards_the_rewarded_answer(tiny_model_dir, qwen_tokenizer):
    """Hand-written rollouts, one rewarded and one not: the loss raises the first's
    probability against the second's; the KL term starts at 0."""
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    good, bad = (_rollout(qwen_tokenizer, "Write add.", a) for a in ("return a + b", "return a - b"))
    adv, _ = pg.group_advantages([1.0, 0.0], 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)

    def gap():
        with torch.no_grad():
            g, b = pg.sampled_logps(model, [good, bad], 1.0)
        return (g.sum() - b.sum()).item(), (g.detach(), b.detach())

    before, (og, ob) = gap()
    logp = pg.sampled_logps(model, [good, bad], 1.0)
    a = torch.tensor([adv[0]] * len(good.ids) + [adv[1]] * len(bad.ids))
    cat = torch.cat(logp)
    loss, kl, clipped, _ = pg.pg_loss(cat, torch.cat([og, ob]), cat.detach(), a, clip=0.2, kl_coef=0.02)
    assert kl.item() == pytest.approx(0.0, abs=1e-6) and clipped.item() == 0
    (loss / len(a)).backward()
    opt.step()
    after, _ = gap()
    assert after > before + 0.01


def test_a_far_off_policy_token_leaves_the_gradient_finite():
    """The failure an H100 run hit: one token whose policy/sampler log ratio passes
    float32's exp range (88), with a positive advantage. The unclamped ratio is inf, the
    clipped branch hides it from the loss, and its backward is 0 * inf = NaN."""
    logp = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    old = torch.tensor([-0.6, -1.0, -120.0])
    adv = torch.tensor([1.0, -1.0, 1.0])

    def naive(lp):  # the formula without the clamp, to show what it guards against
        ratio = torch.exp(lp - old)
        return -torch.minimum(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv).sum()

    bad = naive(logp)
    bad.backward()
    assert torch.isfinite(bad) and torch.isnan(logp.grad).any()

    logp.grad = None
    loss, kl, clipped, worst = pg.pg_loss(logp, old, old - 1.0, adv, clip=0.2, kl_coef=0.02)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(kl)
    assert torch.isfinite(logp.grad).all() and logp.grad[2] == 0  # clamped: no push from it
    assert logp.grad[0] != 0  # the in-range tokens still learn
    assert worst.item() == pytest.approx(118.0) and clipped.item() == 1

    # a negative advantage takes the unclipped branch: beyond the clamp it gets no gradient
    # either, rather than an inf one
    neg = logp.detach().clone().requires_grad_(True)
    loss, *_ = pg.pg_loss(neg, old, old, -adv, clip=0.2, kl_coef=0.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(neg.grad).all() and neg.grad[2] == 0


@pytest.mark.parametrize("with_master", [False, True])
def test_a_step_with_non_finite_gradients_is_skipped_and_the_next_one_moves(with_master):
    from types import SimpleNamespace

    from selfcodealign.train.master import MasterWeights
    from selfcodealign.train.step import Skips, optimizer_step

    lin = torch.nn.Linear(3, 2)
    master = MasterWeights(lin.parameters()) if with_master else None
    opt = torch.optim.SGD(master.master if master else lin.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    acc = SimpleNamespace(clip_grad_norm_=torch.nn.utils.clip_grad_norm_)
    cfg = SimpleNamespace(max_grad_norm=1.0)
    before = [p.detach().clone() for p in lin.parameters()]

    def backward(x):
        lin(x).sum().backward()
        if master:
            master.accumulate()

    backward(torch.tensor([[1.0, float("nan"), 0.0]]))
    skips = Skips()
    norm = optimizer_step(cfg, acc, lin, opt, sched, master)
    assert skips.record(norm, 1) is None and skips.total == 1
    assert all(torch.equal(a, b) for a, b in zip(before, lin.parameters()))
    assert sched.last_epoch == 1  # the schedule advances with the steps

    backward(torch.tensor([[1.0, 2.0, 3.0]]))
    norm = optimizer_step(cfg, acc, lin, opt, sched, master)
    assert skips.record(norm, 2) == pytest.approx(norm) and skips.in_a_row == 0
    assert all(torch.isfinite(p).all() for p in lin.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, lin.parameters()))


def test_skipped_steps_are_counted_and_three_in_a_row_stop_the_run():
    from selfcodealign.train.step import Skips

    skips = Skips()
    assert skips.record(float("nan"), 1) is None and skips.record(0.5, 2) == 0.5
    skips.stop_if_stuck(2)
    for step in (3, 4):
        assert skips.record(float("inf"), step) is None
        skips.stop_if_stuck(step)
    skips.record(float("nan"), 5)
    with pytest.raises(UserError, match="step 5: the gradients were not finite for 3 steps in a row"):
        skips.stop_if_stuck(5)
    assert skips.total == 4


# ---- runs ----------------------------------------------------------------------------

def _cfg(tiny_model_dir, **kw):
    base = dict(model=str(tiny_model_dir), objective="grpo", max_steps=4, grpo_group_size=4,
                grpo_prompts_per_step=2, grpo_max_new_tokens=24, max_len=512, lr=5e-3, warmup_ratio=0.0,
                grpo_pass_rate_min=0.0, grpo_pass_rate_max=1.0, grpo_save_every=100)
    return TrainConfig(**{**base, **kw})


def test_resume_without_a_checkpoint_fails_before_the_model_loads(tiny_model_dir, run_dir, tmp_path, monkeypatch):
    def no_setup(*a, **kw):
        raise AssertionError("set up before the check")

    monkeypatch.setattr(grpo, "_setup", no_setup)
    with pytest.raises(UserError, match="nothing to resume: .*state.pt does not exist"):
        grpo.train(_cfg(tiny_model_dir), run_dir, tmp_path / "empty", resume=True)
    with pytest.raises(UserError, match="resume needs --out"):
        grpo.train(_cfg(tiny_model_dir), run_dir, None, resume=True)


class Recording(HandWritten):
    """``HandWritten``, recording the order of its calls."""

    def __init__(self, model, tok, cfg):
        super().__init__(model, tok, cfg)
        self.calls = []

    def sync(self, model):
        self.calls.append("sync")

    def generate(self, prompts, group, seed):
        self.calls.append("generate")
        return super().generate(prompts, group, seed)


def test_a_resumed_run_continues_where_it_stopped(tiny_model_dir, run_dir, tmp_path):
    cfg = _cfg(tiny_model_dir)
    whole = grpo.train(cfg, run_dir, tmp_path / "whole", source_factory=HandWritten)
    part = grpo.train(cfg, run_dir, tmp_path / "part", stop_after=2, source_factory=HandWritten)
    assert [h["step"] for h in part["history"]] == [1, 2]
    assert not (tmp_path / "part" / "train_config.json").exists()
    with pytest.raises(UserError, match="--resume"):
        grpo.train(cfg, run_dir, tmp_path / "part", source_factory=HandWritten)
    with pytest.raises(UserError, match="other settings"):
        grpo.train(_cfg(tiny_model_dir, lr=1e-3), run_dir, tmp_path / "part", resume=True,
                   source_factory=HandWritten)
    # a checkpoint of an older version, which had no grpo_scale_std setting: resumes, as
    # the setting is at its default
    state_pt = tmp_path / "part" / grpo.CHECKPOINT / "state.pt"
    state = torch.load(state_pt, weights_only=False)
    assert state["config"].pop("grpo_scale_std") is TrainConfig().grpo_scale_std
    torch.save(state, state_pt)
    # a run killed after logging a step past its last checkpoint: that step is done again
    with open(tmp_path / "part" / grpo.STEP_LOG, "a") as f:
        f.write(json.dumps({"step": 3, "killed": True}) + "\n")
    sources = []

    def recording(model, tok, cfg):
        sources.append(Recording(model, tok, cfg))
        return sources[-1]

    done = grpo.train(cfg, run_dir, tmp_path / "part", resume=True, source_factory=recording)
    # the restored weights reach the source before it samples again (a merged LoRA copy would be stale)
    assert sources[0].calls[:2] == ["sync", "generate"]
    assert [h["step"] for h in done["history"]] == [1, 2, 3, 4] == [h["step"] for h in whole["history"]]
    for key in ("tasks", "rewards", "reward_mean", "groups_flat"):
        assert [h[key] for h in done["history"]] == [h[key] for h in whole["history"]], key
    for a, b in zip(done["history"], whole["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    # the answers carried a signal, so the weights moved, and both runs moved them alike
    assert any(h["signal_fraction"] > 0 for h in whole["history"])
    start = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    w = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "whole").state_dict()
    p = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "part").state_dict()
    moved = max((w[k] - start[k]).abs().max().item() for k in w)
    assert moved > 1e-3
    assert all(torch.allclose(w[k], p[k], atol=1e-5) for k in w)
    lines = (tmp_path / "part" / grpo.STEP_LOG).read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    assert not (tmp_path / "part" / grpo.CHECKPOINT).exists()


def test_without_overlap_the_update_takes_its_own_log_probabilities_as_the_old_ones(
        tiny_model_dir, run_dir, tmp_path, monkeypatch):
    """Sampled after the previous update, a batch comes from the weights its update starts
    from: no forward pass is spent on their log-probabilities, and the run is the one that
    computes them first."""
    cfg = _cfg(tiny_model_dir, grpo_overlap=False, grpo_kl_coef=0.0)
    assert not any(grpo.sampled_behind(cfg, step) for step in range(1, 5))
    assert grpo.sampled_behind(_cfg(tiny_model_dir), 2) and not grpo.sampled_behind(_cfg(tiny_model_dir), 1)
    calls = {"no_grad": 0}
    real = pg.sampled_logps

    def counted(*a, **kw):
        calls["no_grad"] += not torch.is_grad_enabled()
        return real(*a, **kw)

    monkeypatch.setattr(grpo, "sampled_logps", counted)
    lean = grpo.train(cfg, run_dir, tmp_path / "lean", source_factory=HandWritten)
    assert calls["no_grad"] == 0
    monkeypatch.setattr(grpo, "sampled_behind", lambda cfg, step: True)  # the forward pass before each update
    full = grpo.train(cfg, run_dir, tmp_path / "full", source_factory=HandWritten)
    assert calls["no_grad"] >= cfg.max_steps
    assert any(h["signal_fraction"] > 0 for h in lean["history"])
    for a, b in zip(lean["history"], full["history"], strict=True):
        assert a["rewards"] == b["rewards"] and a["clip_fraction"] == b["clip_fraction"] == 0
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    w = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "lean").state_dict()
    f = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "full").state_dict()
    assert all(torch.allclose(w[k], f[k], atol=1e-6) for k in w)

def test_steps_with_non_finite_gradients_are_skipped_saved_and_stop_the_run(tiny_model_dir, run_dir, tmp_path,
                                                                          monkeypatch, capsys):
    """A loss whose gradients are NaN, every step: no step moves the adapter, each is
    logged as skipped with its batch and weights saved, and the third stops the run."""
    from selfcodealign.cli import main

    real = grpo.pg_loss
    monkeypatch.setattr(grpo, "pg_loss", lambda *a, **kw: (lambda r: (r[0] * float("nan"), *r[1:]))(real(*a, **kw)))
    out = tmp_path / "out"
    rc = main(["train", "--objective", "grpo", "--data", str(run_dir), "--out", str(out), "--model",
               str(tiny_model_dir), "--method", "lora", "--max-steps", "4", "--grpo-group-size", "2",
               "--grpo-prompts-per-step", "2", "--grpo-max-new-tokens", "8", "--grpo-pass-rate", "0,1",
               "--max-len", "512"])
    assert rc != 0
    assert "step 3: the gradients were not finite for 3 steps in a row" in capsys.readouterr().err
    steps = [json.loads(x) for x in (out / grpo.STEP_LOG).read_text().splitlines()]
    assert [(r["step"], r["skipped"], r["grad_norm"]) for r in steps] == [(1, True, None), (2, True, None),
                                                                         (3, True, None)]
    for n in (1, 2, 3):
        saved = torch.load(out / f"nonfinite_step{n}.pt", weights_only=False)
        assert len(saved["batch"]["rollouts"]) == 4 and len(saved["rewards"]) == 4
        lora_b = [v for k, v in saved["params"].items() if "lora_B" in k]
        assert lora_b and all(not v.any() for v in lora_b)  # LoRA's B starts at 0 and never moved
    assert not (out / "train_config.json").exists()


def test_two_steps_from_a_run_directory_with_the_model_sampling(tiny_model_dir, run_dir, tmp_path, capsys):
    """The command end to end: LoRA (the reference is the adapter switched off), the
    tiny model's own samples scored in the sandbox, the step log and the provenance."""
    from selfcodealign.cli import main

    out = tmp_path / "out"
    rc = main(["train", "--objective", "grpo", "--data", str(run_dir), "--out", str(out), "--model",
               str(tiny_model_dir), "--method", "lora", "--max-steps", "2", "--grpo-group-size", "4",
               "--grpo-prompts-per-step", "2", "--grpo-max-new-tokens", "16", "--grpo-pass-rate", "0,1",
               "--max-len", "512"])
    assert rc == 0
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["objective"] == "grpo" and saved["method"] == "lora" and saved["steps_done"] == 2
    assert saved["steps"] == 2 and saved["epochs_done"] == pytest.approx(2 * 2 / saved["examples"])
    assert saved["data_sha256"] == load_tasks(run_dir, None).sha256 and saved["base_model_sha256"]
    assert saved["rewards"] == REWARDS and (saved["grpo_pass_rate_min"], saved["grpo_pass_rate_max"]) == (0, 1)
    assert saved["first_rollout_s"] > 0 and saved["rollouts"] == "engine"
    for h in saved["history"]:
        assert sum(h["outcomes"].values()) == 8 == h["groups"] * 4
        parts = h["rollout_s"] + h["reward_s"] + h["update_s"]
        assert h["update_s"] > 0 and h["reward_s"] >= 0 and 0.8 * h["step_s"] <= parts <= h["step_s"]
        assert 0 <= h["reward_overlapped_s"] <= h["reward_total_s"]
        assert h["completion_tokens"] > 0 and h["kl"] >= 0
        assert h["skipped"] is False and h["grad_norm"] >= 0 and 0 <= h["max_log_ratio"] < 20
    assert saved["steps_skipped"] == 0 and not list(out.glob("nonfinite_step*"))
    # step 1 sampled step 2's batch while its rewards ran; the last step samples nothing
    first, last = saved["history"]
    assert first["rollout_s"] > 0 and first["rollout_tokens"] > 0 and last["rollout_s"] == 0
    assert len((out / grpo.STEP_LOG).read_text().splitlines()) == 2
    assert (out / "adapter_config.json").exists()
    card = (out / "README.md").read_text()
    assert "GRPO (lora)" in card and "grpo_group_size" in card and saved["data_sha256"] in card
    kept = (run_dir / "dataset.jsonl").read_text().splitlines()
    assert saved["data_lines"] == len(kept) and f"| {len(kept)} |" in card and "None" not in card
    assert saved["peak_lr"] == TrainConfig(objective="grpo", method="lora").peak_lr
    assert f"| peak lr | `{saved['peak_lr']}` |" in card
    # an older summary: no peak_lr recorded, no data_lines, and a setting no longer valid
    from selfcodealign.models.card import model_card

    old = {k: v for k, v in saved.items() if k not in ("peak_lr", "data_lines")}
    (out / "train_config.json").write_text(json.dumps({**old, "grpo_group_size": "many"}))
    text = str(model_card(out))
    assert "peak lr" not in text and "None" not in text and "| lines |" not in text
    assert main(["train", "--objective", "grpo", "--data", str(tmp_path / "missing"), "--out", str(out)]) != 0
    assert "run directory not found" in capsys.readouterr().err


def test_rollouts_ignore_the_models_generation_config(tiny_model_dir, qwen_tokenizer):
    """A checkpoint's repetition penalty, top-k or top-p would make the samples come from
    another distribution than softmax(logits / T) that the loss assumes."""
    from selfcodealign.train.rollouts import GenerateRollouts

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():  # a model that repeats its last token: a repetition penalty changes every sample
        model.lm_head.weight.copy_(model.model.embed_tokens.weight * 1000)
    prompts = [list(_rollout(qwen_tokenizer, "Write add.", "x").prompt_ids)]

    def draw():
        src = GenerateRollouts(model, qwen_tokenizer, temperature=1.0, max_new_tokens=32)
        return [r.ids for r in src.generate(prompts, 8, seed=3)]

    plain = draw()
    assert all(len(set(ids)) < len(ids) for ids in plain)
    model.generation_config.repetition_penalty = 10.0
    model.generation_config.top_k = 2
    model.generation_config.top_p = 0.5
    assert draw() == plain
