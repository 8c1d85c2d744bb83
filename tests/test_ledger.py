import json

from selfcodealign.jsonl import Appender, read_lines
from selfcodealign.ledger import LedgerWriter, StageFiles, summarize_ledger
from selfcodealign.records import Drop, Seed


def seed(i):
    return Seed(id=f"s{i}", code="def f():\n    return 1\n", name="f", source="t", path="p",
                line_start=1, line_end=2)


def test_torn_last_line_tolerated_and_repaired(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert [o for _, o in read_lines(p)] == [{"a": 1}, {"a": 2}]
    with Appender(p) as w:
        w.write({"a": 3})
    assert [o["a"] for _, o in read_lines(p)] == [1, 2, 3]


def test_recover_removes_outputs_of_unfinished_inputs(tmp_path):
    files = StageFiles(tmp_path / "concepts.jsonl")
    w = LedgerWriter(files)
    w.commit("in1", [seed(1).model_copy(update={"id": "o1"})], completion_tokens=5)
    w.commit("in2", [Drop(input_id="in2", stage="t", reason="no_concepts")])
    w.close()
    # Simulate a kill after writing in3's output but before its ledger line.
    with open(files.out, "a") as f:
        f.write(json.dumps({"id": "o3", "parent_id": "in3"}) + "\n")
        f.write('{"id": "o4", "par')
    outs_parent = {"o1": "in1"}
    done = files.recover(lambda o: o.get("parent_id", outs_parent.get(o["id"])))
    assert set(done) == {"in1", "in2"}
    ids = [o["id"] for _, o in read_lines(files.out)]
    assert ids == ["o1"]
    s = summarize_ledger(done)
    assert s["in"] == 2 and s["out"] == 1 and s["drops"] == {"no_concepts": 1}
    assert s["completion_tokens"] == 5
