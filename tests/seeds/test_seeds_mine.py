import json
import logging

import pytest

from selfcodealign import jsonl
from selfcodealign.records import Seed
from selfcodealign.seeds import SeedsConfig, mine

from interrupted import mine_interrupted
from seeds_corpus import GOOD

EXPECTED_DROPS = {
    "module_dependency": 1,
    "uses_self": 1,
    "unresolved_name": 1,
    "no_args": 1,
    "no_return": 1,
    "too_short": 1,
    "unwanted_words": 1,
    "unsafe_import": 1,
    "unsafe_call": 1,
    "benchmark_contamination": 1,
    "near_duplicate": 1,
    "typecheck": 1,
}


def seeds_of(path):
    return list(jsonl.read_records(path, Seed))


def without_seconds(funnel):
    return {k: v for k, v in funnel.items() if k != "seconds"}


def test_funnel_of_hand_written_corpus(corpus, tmp_path):
    out = tmp_path / "seeds.jsonl"
    funnel = mine(SeedsConfig(source=str(corpus), workers=1), out)
    assert funnel["files"] == 9
    assert funnel["files_skipped"] == {"not_utf8": 1, "syntax_error": 2, "no_docstrings": 1}
    assert funnel["candidates"] == 14
    assert {k: v for k, v in funnel["dropped"].items() if v} == EXPECTED_DROPS
    assert funnel["kept"] == 2
    assert funnel["candidates"] == funnel["kept"] + sum(funnel["dropped"].values())
    assert {"extract_filter_cpu", "typecheck", "total"} <= set(funnel["seconds"])
    seeds = seeds_of(out)
    names = sorted(s.name for s in seeds)
    assert names[0] == "clamp" and names[1] in {"entropy", "shannon_bits"}
    s = next(s for s in seeds if s.name == "clamp")
    assert s.source == f"dir:{corpus}" and s.path == "pkg/good.py"
    start = GOOD.splitlines().index("    def clamp(self, value, low, high):") + 1
    assert (s.line_start, s.line_end) == (start, start + 6)
    assert s.license is None


def test_same_config_same_output_any_worker_count(corpus, tmp_path):
    a = mine(SeedsConfig(source=str(corpus), workers=1, sample_seed=7), tmp_path / "a.jsonl")
    b = mine(SeedsConfig(source=str(corpus), workers=2, sample_seed=7), tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert without_seconds(a) == without_seconds(b)
    ids = [s.id for s in seeds_of(tmp_path / "a.jsonl")]
    assert len(set(ids)) == len(ids)


def test_resume_after_interrupt_gives_the_same_result(corpus, tmp_path):
    cfg = SeedsConfig(source=str(corpus), workers=1, typecheck_batch=1, dedup=False, typecheck=False)
    full = mine(cfg, tmp_path / "full.jsonl")
    out = tmp_path / "resumed.jsonl"
    mine_interrupted(cfg, out)
    state = json.loads((tmp_path / "resumed.state.json").read_text())["mining"]
    assert not state["done"] and 0 < state["docs_done"] < 9
    # A torn line from a kill mid-write is cut on resume.
    with open(out, "a") as f:
        f.write('{"id": "torn')
    resumed = mine(cfg, out)
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert without_seconds(resumed) == without_seconds(full)

    # A finished run returns its saved funnel without doing any work.
    again = mine(cfg, out, progress=lambda d, t: pytest.fail("redid work"))
    assert again == resumed


def test_changed_config_mines_again(corpus, tmp_path, caplog):
    out = tmp_path / "s.jsonl"
    cfg = SeedsConfig(source=str(corpus), workers=1, typecheck=False)
    first = mine(cfg, out)
    assert json.loads((tmp_path / "s.state.json").read_text())["mining"]["config"]["dedup"] is True
    # Workers and batch size change only the speed: the same settings, nothing mined again.
    faster = cfg.model_copy(update={"workers": 2, "typecheck_batch": 3})
    assert mine(faster, out, progress=lambda d, t: pytest.fail("redid work")) == first
    assert "settings changed" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="selfcodealign.seeds"):
        f = mine(cfg.model_copy(update={"dedup": False}), out)
    assert f["kept"] == 4 and len(seeds_of(out)) == 4  # entropy + copy + typed + clamp
    assert "seed settings changed" in caplog.text and "(dedup)" in caplog.text


def test_state_of_an_older_version_mines_again(corpus, tmp_path, caplog):
    out = tmp_path / "s.jsonl"
    cfg = SeedsConfig(source=str(corpus), workers=1, typecheck=False)
    first = mine(cfg, out)
    state_path = tmp_path / "s.state.json"
    state = json.loads(state_path.read_text())["mining"]
    del state["config"]
    state_path.write_text(json.dumps({"mining": {**state, "key": "0123abcd"}}))  # a hash, as older versions saved
    seen = []
    with caplog.at_level(logging.WARNING, logger="selfcodealign.seeds"):
        f = mine(cfg, out, progress=lambda d, t: seen.append(d))
    assert seen and without_seconds(f) == without_seconds(first) and len(seeds_of(out)) == f["kept"]
    assert "seed settings changed" in caplog.text and "older version" in caplog.text
    assert "config" in json.loads(state_path.read_text())["mining"]


def test_max_seeds_stops_early_on_stdlib(tmp_path):
    out = tmp_path / "s.jsonl"
    seen = []
    funnel = mine(SeedsConfig(max_seeds=5, workers=1), out, progress=lambda d, t: seen.append((d, t)))
    assert funnel["kept"] == 5 and len(seeds_of(out)) == 5
    assert funnel["files"] < 200  # the stdlib has ~700 files: it stopped early
    assert seen[-1] == (5, 5)
    assert all(s.source == "stdlib" and s.license == "PSF-2.0" for s in seeds_of(out))
    again = tmp_path / "t.jsonl"
    mine(SeedsConfig(max_seeds=5, workers=2), again)
    assert out.read_bytes() == again.read_bytes()


def test_judge_needs_backend(tmp_path):
    from selfcodealign.errors import UserError

    with pytest.raises(UserError, match="judge"):
        mine(SeedsConfig(judge=True), tmp_path / "s.jsonl")


def test_pathological_file_is_counted_not_fatal(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    # Deep enough nesting to exhaust the parser or symtable on any CPython.
    deep = "(" * 5000 + "1" + ")" * 5000
    (root / "deep.py").write_text(f'def f(x):\n    """Doc."""\n    y = {deep}\n    return x + y\n')
    (root / "ok.py").write_text('def g(x, y):\n    """Add."""\n    s = x + y\n    t = s * 2\n    return t - s\n')
    funnel = mine(SeedsConfig(source=str(root), workers=1, typecheck=False), tmp_path / "s.jsonl")
    assert funnel["files"] == 2 and funnel["kept"] == 1
    assert sum(funnel["files_skipped"].values()) == 1


def test_progress_in_the_state_file_of_an_older_version_resumes_in_the_one_state_file(corpus, tmp_path):
    # Versions before one state file per stage kept mining progress in <out>.state.json.
    cfg = SeedsConfig(source=str(corpus), workers=1, typecheck_batch=1, dedup=False, typecheck=False)
    full = mine(cfg, tmp_path / "full.jsonl")
    out = tmp_path / "seeds.jsonl"
    mine_interrupted(cfg, out)
    state = tmp_path / "seeds.state.json"
    progress = json.loads(state.read_text())["mining"]
    legacy = tmp_path / "seeds.jsonl.state.json"
    legacy.write_text(json.dumps(progress))
    state.write_text(json.dumps({"config": {"source": str(corpus)}, "complete": False}))  # the stage's own

    seen = []
    resumed = mine(cfg, out, progress=lambda d, t: seen.append(d))
    assert seen and min(seen) > progress["docs_done"]  # went on, did not start over
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert without_seconds(resumed) == without_seconds(full)
    assert not legacy.exists()
    kept = json.loads(state.read_text())
    assert kept["mining"]["done"] and kept["config"] == {"source": str(corpus)} and kept["complete"] is False
