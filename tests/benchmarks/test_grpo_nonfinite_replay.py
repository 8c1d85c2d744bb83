"""benchmarks/grpo_nonfinite_replay.py on the CPU: a saved step replays micro-batch by
micro-batch, with the trainable weights it saved."""

import pytest
from repo_scripts import load_script

torch = pytest.importorskip("torch")

from selfcodealign.train.grpo import Batch
from selfcodealign.train.rollouts import Rollout


def test_a_saved_step_replays_with_its_widths_and_finite_gradients(tiny_model_dir, tmp_path, capsys):
    rollouts = [Rollout(i // 2, (1, 2, 3), tuple(range(5, 5 + n)), "x", "stop") for i, n in enumerate([4, 9, 2, 7])]
    batch = Batch(3, [0, 1], rollouts, None, 0.1, 22)
    path = tmp_path / "nonfinite_step3.pt"
    torch.save({"batch": batch.state(), "rewards": [1.0, 0.0, 0.0, 1.0], "masked": [False] * 4}, path)
    mod = load_script("benchmarks/grpo_nonfinite_replay.py")
    # rows of 7, 12, 5 and 10 tokens; 24 padded tokens a micro-batch: two of two rows
    assert mod.main(["--model", str(tiny_model_dir), "--method", "lora", "--token-budget", "24",
                     "--group", "2", str(path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["12", "10"] and all(r[2:] == ["finite", "finite"] for r in rows)
    assert "nonfinite_step3.pt:" in out
