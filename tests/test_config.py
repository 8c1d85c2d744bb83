import pytest

from selfcodealign.config import build_config, changed_keys, config_to_yaml
from selfcodealign.errors import UserError


def test_layers_defaults_preset_yaml_flags(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("responses:\n  n: 3\n  temperature: 0.2\nbackend:\n  n_parallel: 2\n")
    cfg = build_config(preset="quickstart", yaml_path=y, overrides={"backend": {"n_parallel": 6}},
                       sets=["responses.max_tokens=100", "seeds.source=/tmp/x"])
    assert cfg.seeds.max_seeds == 28         # preset
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
