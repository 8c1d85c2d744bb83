import pytest

from selfcodealign.config import build_config, config_to_yaml
from selfcodealign.settings_diff import changed_keys
from selfcodealign.errors import UserError


def test_layers_defaults_preset_yaml_flags(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("responses:\n  n: 3\n  temperature: 0.2\nbackend:\n  n_parallel: 2\n")
    cfg = build_config(preset="quickstart", yaml_path=y, overrides={"backend": {"n_parallel": 6}},
                       sets=["responses.max_tokens=100", "seeds.source=/tmp/x"])
    assert cfg.budget_minutes == 12          # preset
    assert cfg.responses.n == 3              # yaml over preset
    assert cfg.responses.temperature == 0.2  # yaml
    assert cfg.backend.n_parallel == 6       # flag over yaml
    assert cfg.responses.max_tokens == 100   # --set
    assert cfg.seeds.source == "/tmp/x"
    assert build_config().responses.n == 10  # the paper's default


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown config key: responses.nn"):
        build_config(sets=["responses.nn=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("responses: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        build_config(yaml_path=bad)
    with pytest.raises(UserError, match="not found"):
        build_config(yaml_path=tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="unknown preset"):
        build_config(preset="nope")
    with pytest.raises(UserError, match="responses.n"):
        build_config(sets=["responses.n=0"])


def test_no_secrets_in_saved_config(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    cfg = build_config(overrides={"backend": {"kind": "openai", "base_url": "http://x"}})
    text = config_to_yaml(cfg)
    assert "sk-secret-value" not in text and "OPENAI_API_KEY" in text


def test_changed_keys():
    a = build_config().model_dump()
    b = build_config(sets=["responses.n=2", "seed=3"]).model_dump()
    assert changed_keys(a, b) == ["responses.n", "seed"]


def test_a_files_preset_applies_under_the_file_and_a_preset_flag_replaces_it(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("preset: quickstart\nresponses:\n  n: 2\n")
    cfg = build_config(yaml_path=y)
    assert cfg.budget_minutes == 12 and cfg.responses.n == 2 and cfg.responses.max_tokens == 640
    cfg = build_config(preset="default", yaml_path=y)
    assert cfg.budget_minutes is None and cfg.responses.n == 2


def test_train_seeds_and_eval_settings_load_the_same_way(tmp_path):
    """Defaults -> the file's section (or the whole file) -> flags given (None: not given)."""
    import pytest

    from selfcodealign.config import load_settings, load_yaml
    from selfcodealign.errors import UserError
    from selfcodealign.evaluate.runner import EvalSettings
    from selfcodealign.seeds import SeedsConfig
    from selfcodealign.train.config import load_config

    y = tmp_path / "all.yaml"
    y.write_text("train:\n  lr: 0.001\n  epochs: 2\nseeds:\n  max_seeds: 5\neval:\n  n: 4\n  temperature: 0.8\n")
    t = load_config(y, {"epochs": 3, "method": None})
    assert (t.lr, t.epochs, t.method) == (0.001, 3, "full")
    s = load_settings(SeedsConfig, file=load_yaml(y, "seeds"), flags={"dedup": False})
    assert (s.max_seeds, s.dedup, s.typecheck) == (5, False, True)
    assert build_config(yaml_path=y).seeds.max_seeds == 5  # one file for every command
    e = load_settings(EvalSettings, file=load_yaml(y, "eval"), flags={"seed": 7})
    assert (e.n, e.temperature, e.seed, e.max_tokens) == (4, 0.8, 7, 768)
    with pytest.raises(UserError, match="unknown eval setting key: nn"):
        load_settings(EvalSettings, file={"nn": 1}, what="eval setting")
    with pytest.raises(UserError, match="n > 1 needs temperature > 0"):
        load_settings(EvalSettings, flags={"n": 2}, what="eval setting")
