"""The default install has no extras: mining must still work, and say what it skips."""

import logging

from selfcodealign.backends.base import Backend, Completion
from selfcodealign.cleaning import dedup
from selfcodealign.seeds import SeedsConfig, mine, typecheck


def test_without_basedpyright_typecheck_is_skipped_with_a_warning(corpus, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(typecheck, "available", lambda: False)
    monkeypatch.setattr(typecheck, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="selfcodealign.seeds"):
        funnel = mine(SeedsConfig(source=str(corpus), workers=1), tmp_path / "s.jsonl")
    assert "pip install 'selfcodealign[seeds]'" in caplog.text
    assert funnel["notes"] == ["typecheck skipped: basedpyright not installed"]
    assert funnel["dropped"]["typecheck"] == 0 and funnel["kept"] == 3  # scaled_florp stays


def test_without_datasketch_exact_dedup_gives_the_same_seeds(corpus, tmp_path, monkeypatch, caplog):
    cfg = SeedsConfig(source=str(corpus), workers=1, typecheck=False)
    with_lsh = mine(cfg, tmp_path / "a.jsonl")
    monkeypatch.setattr(dedup, "have_datasketch", lambda: False)
    monkeypatch.setattr(dedup, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="selfcodealign.seeds"):
        exact = mine(cfg, tmp_path / "b.jsonl")
    assert "datasketch is not installed" in caplog.text
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert exact["dropped"] == with_lsh["dropped"]


class ScriptedJudge(Backend):
    """Answers by rule, to test how mining uses the judge's answers."""

    name = "scripted"

    @property
    def model_id(self) -> str:
        return "scripted"

    def iter_generate(self, prompts, params):
        for i, p in enumerate(prompts):
            code = p[-1]["content"]
            text = "YES" if "def clamp" in code else ("maybe" if "entropy" in code else "NO")
            yield i, [Completion(text=text, finish_reason="stop")]


def test_judge_drops_what_the_model_rejects(corpus, tmp_path):
    cfg = SeedsConfig(source=str(corpus), workers=1, judge=True, typecheck=False)
    funnel = mine(cfg, tmp_path / "s.jsonl", backend=ScriptedJudge())
    assert funnel["kept"] == 1
    assert funnel["dropped"]["judge"] == 1  # scaled_florp
    # entropy and its renamed copy: the first was not kept, so the copy is no duplicate.
    assert funnel["dropped"]["judge_no_answer"] == 2
    assert "def clamp" in (tmp_path / "s.jsonl").read_text()
