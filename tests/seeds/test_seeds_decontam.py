import gzip
import json

from selfcodealign.cleaning import decontam
from selfcodealign.seeds.extract import extract
from seeds_corpus import CONTAMINATED, GOOD


def test_shipped_index_catches_pasted_humaneval_prompt():
    index = decontam.load_index()
    assert index.n == decontam.NGRAM and len(index.hashes) > 10_000
    (cand,) = extract(CONTAMINATED)
    assert index.contaminated(cand.code)


def test_every_humaneval_task_is_caught_reformatted(test_data):
    # HumanEvalPlus holds HumanEval's 164 prompts (its solutions are EvalPlus's).
    index = decontam.load_index()
    problems = test_data.read_jsonl_gz(test_data.humaneval_plus)
    assert len(problems) == 164
    for task in problems:
        # Layout and case changes do not hide a copy.
        text = (task["prompt"] + task["canonical_solution"]).upper().replace("    ", "\t")
        assert index.contaminated(text), task["task_id"]


def test_mbpp_text_caught_and_ordinary_code_not():
    index = decontam.load_index()
    mbpp = "Write a function to find the shared elements from the given two lists."
    assert index.contaminated(f'def f(a, b):\n    """{mbpp}"""\n    return set(a) & set(b)\n')
    for c in extract(GOOD):
        assert not index.contaminated(c.code)
    assert not index.contaminated("print(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)")


def test_benchmark_data_from_env(tmp_path, monkeypatch):
    path = tmp_path / "bench.jsonl.gz"
    task = {"prompt": "def frobnicate(widget):\n    \"\"\"Turn the widget inside out and count its sprockets carefully please.\"\"\"\n",
            "canonical_solution": "    return 1\n"}
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(task) + "\n")
    monkeypatch.setenv(decontam.ENV_VAR, str(tmp_path))
    index = decontam.load_index()
    assert index.sources == ["bench.jsonl.gz"]
    assert index.contaminated("Turn the widget inside out and count its sprockets carefully please")
    (cand,) = extract(CONTAMINATED)
    assert not index.contaminated(cand.code)  # the shipped index is not in use


def test_index_roundtrip(tmp_path):
    idx = decontam.BenchmarkIndex.from_texts(["one two three four five six seven eight nine ten eleven"], ["x"])
    idx.save(tmp_path / "i.bin")
    again = decontam.BenchmarkIndex.load(tmp_path / "i.bin")
    assert again.hashes == idx.hashes and again.n == idx.n
