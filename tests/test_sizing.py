"""Sizing a run to a time budget (`budget_minutes`): the arithmetic, resuming with the
seeds a run was sized to, and the speed measured on the real engine."""

import argparse

import pytest

from selfcodealign import sizing
from selfcodealign.commands.run import sized
from selfcodealign.config import build_config, config_to_yaml


def speed(prompt_tps=400.0, decode_tps=40.0, probe_s=10.0):
    return sizing.Speed(prompt_tps, decode_tps, probe_s)


def test_seeds_fit_the_budget_and_scale_with_the_machine():
    fast, slow = speed(), speed(prompt_tps=130.0, decode_tps=13.0, probe_s=30.0)
    n_fast, n_slow = sizing.seeds_for(720, fast, 4), sizing.seeds_for(720, slow, 4)
    assert n_fast > n_slow >= sizing.MIN_SEEDS
    for sp, n in ((fast, n_fast), (slow, n_slow)):
        used = sp.probe_s + sizing.FIXED_S + n * sizing.seconds_per_seed(sp, 4)
        assert used <= 720 * sizing.MARGIN < used + sizing.seconds_per_seed(sp, 4)
    # More responses per task: each seed costs more, fewer fit.
    assert sizing.seeds_for(720, fast, 10) < n_fast
    # The clamps: a machine too slow for any seed still does the minimum; a fast one stops at the cap.
    assert sizing.seeds_for(60, speed(prompt_tps=1.0, decode_tps=0.1), 4) == sizing.MIN_SEEDS
    assert sizing.seeds_for(3600, speed(prompt_tps=1e6, decode_tps=1e5, probe_s=0.1), 4) == sizing.MAX_SEEDS


def test_seconds_per_seed_counts_every_generating_stage():
    sp = speed(prompt_tps=100.0, decode_tps=10.0)
    c, i, r = (sizing.COST[s] for s in ("concepts", "instructions", "responses"))
    want = sum(p / 100 + t / 10 for p, t in (c, i)) + 3 * (r[0] / 100 + r[1] / 10) + sizing.SEED_MINING_S
    assert sizing.seconds_per_seed(sp, 3) == pytest.approx(want)


def unreachable(sets=()):
    # A backend that cannot be reached: any attempt to measure fails loudly.
    return build_config(preset="quickstart", sets=["backend.kind=openai", "backend.base_url=http://127.0.0.1:9/v1",
                                                   "backend.model_name=x", "backend.retries=0", *sets])


def test_an_explicit_max_seeds_or_no_budget_measures_nothing(tmp_path):
    cfg = unreachable(["seeds.max_seeds=5"])
    assert sized(cfg, tmp_path, False) is cfg
    cfg = unreachable(["budget_minutes=null"])
    assert sized(cfg, tmp_path, False).seeds.max_seeds is None


def test_a_resumed_run_keeps_the_seeds_it_was_sized_to(tmp_path, capsys):
    cfg = unreachable()
    assert cfg.budget_minutes == 12 and cfg.seeds.max_seeds is None
    (tmp_path / "config.yaml").write_text(config_to_yaml(cfg.model_copy(
        update={"seeds": cfg.seeds.model_copy(update={"max_seeds": 17})})))
    (tmp_path / "seeds.jsonl").write_text("")
    assert sized(cfg, tmp_path, False).seeds.max_seeds == 17
    assert "sized when this run started: 17 seeds" in capsys.readouterr().err
    # Another budget, or no seeds mined yet: measured anew (here: the unreachable server).
    from selfcodealign.errors import UserError

    for other in (unreachable(["budget_minutes=30"]), None):
        if other is None:
            (tmp_path / "seeds.jsonl").unlink()
        with pytest.raises(UserError):
            sized(other or cfg, tmp_path, False)


@pytest.mark.model
def test_measure_times_the_real_engine(model_path):
    from selfcodealign.backends import make_backend

    cfg = build_config(preset="quickstart", sets=["backend.n_parallel=2"])
    with make_backend(cfg.backend) as backend:
        sp = sizing.measure(backend, 2, prompt_lines=10, decode_tokens=16)
    assert sp.prompt_tps > 0 and sp.decode_tps > 0 and sp.probe_s > 0
    # Reading a prompt token is much cheaper than writing one, on any machine.
    assert sp.prompt_tps > 2 * sp.decode_tps
