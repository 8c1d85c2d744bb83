import gzip
import json

import pytest

from selfcodealign import jsonl
from selfcodealign.errors import UserError
from selfcodealign.records import Seed
from selfcodealign.seeds import SeedsConfig, mine
from selfcodealign.seeds.sources import open_source

from seeds_corpus import CONTAMINATED, GOOD, TYPE_ERROR

ROWS = [
    {"content": GOOD, "path": "a/good.py", "license": "MIT"},
    {"content": TYPE_ERROR, "path": "b/typed.py", "license": "GPL-3.0"},
    {"content": CONTAMINATED, "path": "c/cont.py", "license": ["MIT", "Apache-2.0"]},
    {"content": 'def broken(x):\n    """Doc."""\n    return (\n', "path": "d/broken.py"},
    {"content": None, "path": "e/empty.py"},
]


def write_jsonl(path, rows):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def check_rows_funnel(funnel, out, source):
    assert funnel["files"] == 5
    assert funnel["files_skipped"] == {"license": 1, "syntax_error": 1, "no_content": 1}
    assert funnel["candidates"] == 5  # GOOD's 4 + the contaminated one
    assert funnel["dropped"]["benchmark_contamination"] == 1
    seeds = list(jsonl.read_records(out, Seed))
    assert sorted(s.name for s in seeds) == ["clamp", "entropy"]
    assert all(s.license == "MIT" and s.source == source for s in seeds)
    assert all(s.path.endswith(":a/good.py") for s in seeds)


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz"])
def test_jsonl_source_with_license_allowlist(tmp_path, name):
    write_jsonl(tmp_path / name, ROWS)
    out = tmp_path / "seeds.jsonl"
    src = str(tmp_path / "rows.jsonl*")
    funnel = mine(SeedsConfig(source=src, workers=1, license_allowlist=["MIT", "Apache-2.0"]), out)
    check_rows_funnel(funnel, out, src)


def test_parquet_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "code": [r["content"] for r in ROWS],
        "max_stars_repo_path": [r["path"] for r in ROWS],
        "max_stars_repo_licenses": [
            r.get("license") if isinstance(r.get("license"), list) else ([r["license"]] if r.get("license") else None)
            for r in ROWS
        ],
    })
    pq.write_table(table, tmp_path / "part-0.parquet", row_group_size=2)
    out = tmp_path / "seeds.jsonl"
    src = str(tmp_path / "*.parquet")
    funnel = mine(SeedsConfig(source=src, workers=2, license_allowlist=["MIT", "Apache-2.0"]), out)
    check_rows_funnel(funnel, out, src)


def test_row_order_is_seeded_shuffle(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [{"text": str(i)} for i in range(50)])
    order = lambda seed: [d.text for d in open_source(str(tmp_path / "r.jsonl"), sample_seed=seed, shuffle_buffer=10).docs]
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1), key=int) == [str(i) for i in range(50)]


def test_bad_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        open_source(str(tmp_path / "nothing*.jsonl"))
    write_jsonl(tmp_path / "r.jsonl", [{"body": "x"}])
    with pytest.raises(UserError, match="content_column"):
        list(open_source(str(tmp_path / "r.jsonl")).docs)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unsupported"):
        open_source(str(tmp_path / "x.csv"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="Parquet"):
        list(open_source(str(tmp_path / "bad.parquet")).docs)


def test_hf_source_from_local_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = tmp_path / "ds"
    d.mkdir()
    write_jsonl(d / "train.jsonl", ROWS[:3])
    out = tmp_path / "seeds.jsonl"
    funnel = mine(SeedsConfig(source=f"hf:{d}", workers=1), out)
    assert funnel["files"] == 3 and funnel["kept"] == 2
    assert datasets is not None
