"""ThreadedBackend's own logic with a scripted engine (the real engines are in test_engines.py)."""

from selfcodealign.backends.base import Completion, SamplingParams, ThreadedBackend


class Scripted(ThreadedBackend):
    name = "scripted"
    concurrency = 3

    def __init__(self):
        super().__init__()
        self.calls = []

    @property
    def model_id(self):
        return "scripted"

    def _request(self, prompt, sp, sample):
        self.calls.append((prompt, sp.prefill, sp.seed + sample))
        if sp.prefill.endswith("```python\n"):
            return Completion(sp.prefill + "assert f() == 1\n```", "stop", 5, 4, 2)
        return Completion(f"{prompt}#{sample}:```python\ndef f():\n    return 1\n```", "stop", 5, 10, 0)


def test_results_in_input_order_with_n_samples():
    b = Scripted()
    out = b.generate(["a", "b", "c", "d"], SamplingParams(n=2, seed=10))
    assert [[c.text.split(":")[0] for c in comps] for comps in out] == [
        ["a#0", "a#1"], ["b#0", "b#1"], ["c#0", "c#1"], ["d#0", "d#1"]]
    assert sorted(seed for _, _, seed in b.calls) == [10, 10, 10, 10, 11, 11, 11, 11]
    assert b.stats.requests == 8 and b.stats.completion_tokens == 80
    b.close()


def test_missing_section_is_continued_once():
    b = Scripted()
    sp = SamplingParams(seed=1, max_tokens=50, require=("### Tests", "\n\n### Tests\n```python\n"))
    [[c]] = b.generate(["p"], sp)
    assert c.text.endswith("### Tests\n```python\nassert f() == 1\n```")
    assert c.text.startswith("p#0:")
    assert c.completion_tokens == 14 and c.prompt_tokens == 10 and c.cached_tokens == 2
    assert len(b.calls) == 2 and b.calls[1][2] == 1  # same sampling seed
    b.close()
