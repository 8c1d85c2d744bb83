"""Verification: mutants, faithfulness, agreement, probes and the selection that uses them.
The mutants, sibling runs and probes go through the real sandbox."""

import ast

import pytest

from selfcodealign.config import build_config
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.records import Executed, GenMeta, Instruction, Probes, Response, Verdict
from selfcodealign.sandbox import Program, iter_batch, run_program
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.select import select, training_answer
from selfcodealign.stages.verify import InstructionResponses, VerifyStage, group_by_instruction
from selfcodealign.verify import probes as P
from selfcodealign.verify.faithful import asked_names, missing_names, names_from_examples, solution_test_code
from selfcodealign.verify.mutants import OPERATORS, function_names, mutants

META = GenMeta(model="m", backend="x", prompt_style="chat", temperature=0.7, top_p=1.0,
               max_tokens=64, seed=1, finish_reason="stop")

SOLUTION = '''
LIMIT = 10


def clamp(x):
    """Clamp x to [0, LIMIT]."""
    if x < 0:
        return 0
    return min(x, LIMIT)


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k=1):
        self.n += k
        return self.n and True

    def __repr__(self):
        return f"Counter({self.n})"


print(clamp(5))
if __name__ == "__main__":
    print(clamp(-1) + 2)
'''


def test_every_operator_has_a_site_and_mutants_differ_from_the_original():
    ms = mutants(SOLUTION, cap=None)
    original = ast.unparse(ast.parse(SOLUTION))
    assert {m.operator for m in ms} == set(OPERATORS)
    assert all(m.code != original for m in ms)
    assert len({m.code for m in ms}) == len(ms)
    for m in ms:
        ast.parse(m.code)  # every mutant is valid Python


def test_example_usage_and_main_blocks_are_not_mutated():
    ms = mutants(SOLUTION, cap=None)
    assert not any(m.line >= 24 for m in ms)  # print(clamp(5)) and the main block


def test_raise_mutants_cover_functions_and_methods_but_not_dunders_other_than_init():
    assert function_names(SOLUTION) == ["clamp", "Counter.__init__", "Counter.add"]
    raised = [m for m in mutants(SOLUTION, cap=None) if m.operator == "raise"]
    assert [m.detail for m in raised] == ["clamp", "Counter.__init__", "Counter.add"]
    assert '"""Clamp x to [0, LIMIT]."""' in raised[0].code  # docstring kept


def test_the_cap_keeps_every_raise_mutant_and_is_reproducible():
    few = mutants(SOLUTION, cap=5)
    assert len(few) == 5 and sum(m.operator == "raise" for m in few) == 3
    assert few == mutants(SOLUTION, cap=5)
    assert mutants("def broken(:\n", cap=5) == []


def test_batched_mutants_get_the_same_verdicts_as_mutants_run_alone():
    tests = "assert clamp(-3) == 0\nassert clamp(4) == 4\nassert clamp(99) == 10\nc = Counter()\nassert c.add() == 1\n"
    progs = [Program(id=str(i), code=m.code, tests=tests, timeout=2) for i, m in enumerate(mutants(SOLUTION, cap=None))]
    together = {i: v.status for i, v in iter_batch(progs, workers=2)}
    alone = [run_program(p).status for p in progs]
    assert [together[i] for i in range(len(progs))] == alone
    assert "passed" in alone and "failed" in alone  # some survive, some are killed


def test_asked_names_read_backticked_definitions_not_mentions():
    ins = ("Write a Python function `total(items, tax=0.1)` that sums prices. Use the `sum()` "
           "builtin and `math.fsum()` where needed. Create a class `Cart` with methods "
           "`add(item)` and `clear()`.")
    asked = asked_names(ins)
    assert asked.functions == {"total": 2, "add": 1, "clear": None}
    assert asked.classes == {"Cart"}


def test_missing_names_and_arities():
    ins = "Write a function `area(width, height)` and a class `Shape` with a method `scale(k)`."
    good = "def area(width, height):\n    return width * height\nclass Shape:\n    def scale(self, k):\n        return k\n"
    assert missing_names(ins, good) == []
    assert missing_names(ins, "def area(w):\n    return w\n") == [
        "class Shape", "function area with 2 argument(s)", "function scale"]
    assert missing_names(ins, good.replace("def scale(self, k)", "def scale(self)")) == [
        "method Shape.scale with 1 argument(s)"]
    assert missing_names("Reverse a string using `s[::-1]`.", "x = 1\n") == []


def test_tests_in_solution_and_tests_that_call_example_code():
    assert solution_test_code("def f(x):\n    assert x > 0\n    return x\n") == []
    assert solution_test_code("def f(x):\n    return x\nassert f(1) == 1\n") == ["assert on line 3"]
    # Tests under a __main__ guard run with the solution too; an input check inside a function does not.
    main = ("def f(x):\n    if x is None:\n        raise AssertionError('x')\n    return x\n"
            "if __name__ == '__main__':\n    try:\n        f(None)\n        raise AssertionError('expected')\n"
            "    except AssertionError:\n        pass\n    for v in [1, 2]:\n        assert f(v) == v\n")
    assert solution_test_code(main) == ["raise AssertionError on line 8", "assert on line 12"]
    blocks = ["def f(x):\n    return x\n", "def demo():\n    return f(2)\nprint(demo())\n"]
    assert names_from_examples(blocks, "assert demo() == 2\n") == ["demo"]
    assert names_from_examples(blocks, "assert f(2) == 2\n") == []


def _group(codes_tests, instruction="Write a function `double(x)` that returns twice x."):
    ins = Instruction(id="ins", parent_id="c", seed_id="s", seed_source="t", seed_path="p",
                      concepts=[], category="function", difficulty="easy", instruction=instruction,
                      raw="", gen=META)
    out = []
    for i, (code, tests) in enumerate(codes_tests):
        text = f"```python\n{code}```\n\n### Tests\n```python\n{tests}```"
        r = Response(id=f"r{i}", parent_id="ins", sample_index=i, instruction=ins, response=text,
                     code=code, tests=tests, raw=text, gen=META)
        out.append(r)
    stage = ExecuteStage(build_config().execute)
    ex = [e for e, (v,) in LocalExecutor(lambda: None).execute(stage, out) for e in stage.parse(e, [v])]
    return sorted(ex, key=lambda e: e.response.sample_index), stage


STRONG = ("def double(x):\n    return 2 * x\n", "assert double(3) == 6\nassert double(-1) == -2\nassert double(0) == 0\n")
WEAK = ("def double(x):\n    if x > 100:\n        return 0\n    return x + x\n", "assert double(0) == 0\n")
WRONG = ("def double(x):\n    return x * x\n", "assert double(2) == 4\n")


def test_verify_scores_mutation_and_agreement_and_select_prefers_the_strong_response():
    executed, ex_stage = _group([STRONG, WEAK, WRONG, STRONG])
    assert [e.verdict.status for e in executed] == ["passed"] * 4
    cfg = build_config()
    stage = VerifyStage(cfg.verify, 10, 1024, ex_stage.counts_as_pass)
    [(rec, verdicts)] = list(LocalExecutor(lambda: None).execute(stage, group_by_instruction(executed)))
    checks = {c.parent_id: c for c in stage.parse(rec, verdicts)}
    assert checks[executed[0].id].faithfulness == ["trivial: 1 function(s), each one return, 6 AST nodes"]
    strong, weak, wrong = (checks[executed[i].id] for i in range(3))
    assert strong.mutation.score == 1.0 and strong.mutation.unexercised == []
    assert weak.mutation.score < 0.8
    assert strong.pass_rate == (4, 4)
    # The strong tests pass the weak code and the other strong one; the wrong code passes
    # the weak tests only.
    assert strong.agreement.pass_my_tests == 2 and strong.agreement.siblings == 3
    assert wrong.agreement.my_code_passes == 1  # the weak tests (double(0) == 0)
    sel = build_config(sets=["select.min_mutation_score=0.6", "select.keep_reasons=[trivial]"]).select
    sel_out = select(executed, sel, ex_stage.counts_as_pass, None, checks)
    examples, drops, stats = sel_out.examples, sel_out.drops, sel_out.stats
    assert [e.parent_id for e in examples] in ([executed[0].id], [executed[3].id])
    assert examples[0].quality.mutation_score == 1.0 and examples[0].quality.pass_rate == (4, 4)
    assert stats["rejected"]["weak_tests"] >= 1


def test_an_unexercised_function_and_an_unfaithful_response_are_rejected():
    helper = ("def helper(x):\n    return x\n\ndef double(x):\n    return 2 * x\n",
              "assert double(3) == 6\nassert double(0) == 0\n")
    misnamed = ("def twice(x):\n    return 2 * x\n", "assert twice(3) == 6\nassert twice(5) == 10\n")
    executed, ex_stage = _group([helper, misnamed])
    # Each response fails the other's tests: agreement alone would reject both first.
    cfg = build_config(sets=["select.require_agreement=false", "select.keep_reasons=[trivial]"])
    stage = VerifyStage(cfg.verify, 10, 1024, ex_stage.counts_as_pass)
    [(rec, verdicts)] = list(LocalExecutor(lambda: None).execute(stage, group_by_instruction(executed)))
    checks = {c.parent_id: c for c in stage.parse(rec, verdicts)}
    assert checks[executed[0].id].mutation.unexercised == ["helper"]
    assert checks[executed[1].id].faithfulness[0] == "missing: function double"
    sel_out = select(executed, cfg.select, ex_stage.counts_as_pass, None, checks)
    examples, drops, stats = sel_out.examples, sel_out.drops, sel_out.stats
    assert examples == [] and stats["rejected"] == {"unexercised_function": 1, "missing": 1}
    assert drops[0].reason.startswith("rejected_")


def test_the_training_target_leaves_the_tests_out_unless_asked():
    text = "Here:\n```python\ndef f():\n    return 1\n```\n\n### Tests\n```python\nassert f() == 1\n```"
    assert training_answer(text) == "Here:\n```python\ndef f():\n    return 1\n```"
    executed, ex_stage = _group([STRONG])
    cfg = build_config(sets=["verify.mutation=false", "verify.agreement=false", "verify.faithfulness=false"])
    [ex] = select(executed, cfg.select, ex_stage.counts_as_pass).examples
    assert "### Tests" not in ex.messages[-1].content and ex.tests == STRONG[1]
    cfg = build_config(sets=["select.tests_in_response=true"])
    [ex] = select(executed, cfg.select, ex_stage.counts_as_pass).examples
    assert "### Tests" in ex.messages[-1].content


@pytest.mark.parametrize("band, kept", [((0.0, 1.0), 1), ((0.1, 0.6), 1), ((0.6, 1.0), 0)])
def test_pass_rate_band(band, kept):
    executed, ex_stage = _group([STRONG, WRONG[:1] + ("assert double(2) == 5\n",)])
    assert [e.verdict.status for e in executed] == ["passed", "failed"]
    cfg = build_config(sets=[f"select.pass_rate=[{band[0]}, {band[1]}]"])
    sel_out = select(executed, cfg.select, ex_stage.counts_as_pass)
    examples, drops = sel_out.examples, sel_out.drops
    assert len(examples) == kept
    assert kept or drops[0].reason == "pass_rate_outside_band"


# ---- probes: new inputs from the tests' literal calls, beside the siblings' ----------------

TESTS = "assert last([1, 2, 3], 1) == 0\nassert last([4, 5], 5) == 1\nassert len([last(q, 1) for q in qs]) == 2\n"


def test_the_entry_point_is_the_function_the_tests_call_with_literals_that_two_answers_define():
    codes = ["def last(a, k):\n    return 0\n\ndef helper():\n    pass\n", "def last(a, k):\n    return 1\n"]
    assert P.entry_point(codes, [TESTS, "assert helper() is None\n"]) == "last"
    assert P.entry_point(codes[:1], [TESTS]) is None  # one answer defines it: nothing to compare
    calls = list(P.literal_calls(TESTS, {"last"}))
    # last(q, 1) has a non-literal argument: not a seed
    assert calls == [("last", P.Probe(([1, 2, 3], 1))), ("last", P.Probe(([4, 5], 5)))]


def test_probes_mutate_one_argument_by_type_are_new_and_reproducible():
    seeds = [P.Probe(([1, 2, 3], 1)), P.Probe(("ab cd",), (("sep", " "),))]
    made = P.make_probes(seeds, limit=1000)
    shown = {repr((p.args, p.kwargs)) for p in made}
    assert repr((([1, 2, 3, 1], 1), ())) in shown  # a repeated element
    assert repr((([], 1), ())) in shown and repr((([1, 2, 3], -1), ())) in shown
    assert repr((("AB CD",), (("sep", " "),))) in shown and repr((("ab cd",), (("sep", ""),))) in shown
    assert not shown & {repr((s.args, s.kwargs)) for s in seeds}
    # inf and nan do not read back as literals: no probe carries them
    assert P.make_probes([P.Probe((float("inf"),))], limit=10) == [P.Probe((0.0,))]
    few = P.make_probes(seeds, limit=5)
    assert len(few) == 5 and few == P.make_probes(seeds, limit=5) and set(map(repr, few)) <= set(map(repr, made))


def test_the_harness_in_the_sandbox_copies_arguments_bounds_each_call_and_reads_values():
    code = '''
import itertools
def f(xs, k):
    print("no newline", end="")
    if k < 0:
        while True:
            pass
    if k == 0:
        raise ValueError("zero")
    xs.append(k)
    if k == 2:
        return (x for x in xs)
    if k == 3:
        return object()
    return [len(xs), 0.1 + 0.2]
print("noise before the results")
'''
    probes = [P.Probe(([1], 1)), P.Probe(([1], 1)), P.Probe(([1], -1)), P.Probe(([1], 0)),
              P.Probe(([1], 2)), P.Probe(([1], 3))]
    v = run_program(Program(id="h", code=code, tests=P.harness("f", probes), timeout=5))
    out = P.read_outputs(v.stdout, len(probes))
    # the second call sees a fresh copy of its list; a looping call is stopped alone
    assert out == ["list[2,0.3]", "list[2,0.3]", "!Timeout", "!ValueError", "iter[1,2]", "<object object>"]
    assert P.disagreements(out, ["list[2,0.3]", "list[3,0.3]", "1", "0", "iter[1,2]", "!KeyError"]) == [1]
    crashed = run_program(Program(id="c", code="raise SystemExit(3)\n", tests=P.harness("f", probes), timeout=5))
    assert P.read_outputs(crashed.stdout, len(probes)) is None


LAST = "def last(a, k):\n    return len(a) - 1 - a[::-1].index(k)\n"
LAST_LOOP = "def last(a, k):\n    pos = -1\n    for i, x in enumerate(a):\n        if x == k:\n            pos = i\n    return pos if pos >= 0 else a.index(k)\n"
FIRST = "def last(a, k):\n    return a.index(k)\n"  # the first position: no test has a repeat
OWN = "assert last([1, 2, 3], 1) == 0\nassert last([1, 2, 3], 3) == 2\nassert last([7, 8], 8) == 1\n"


def test_an_answer_its_siblings_contradict_on_a_probe_is_dropped_and_the_majority_kept():
    executed, ex_stage = _group([(FIRST, OWN), (LAST, OWN), (LAST_LOOP, OWN), (LAST, OWN)],
                                instruction="Write a function `last(a, k)` that returns the last position of k in a.")
    assert [e.verdict.status for e in executed] == ["passed"] * 4
    cfg = build_config(sets=["select.keep_reasons=[trivial]"])
    stage = VerifyStage(cfg.verify, 10, 1024, ex_stage.counts_as_pass)
    [(rec, verdicts)] = list(LocalExecutor(lambda: None).execute(stage, group_by_instruction(executed)))
    checks = {c.parent_id: c for c in stage.parse(rec, verdicts)}
    first, *right = (checks[e.id].probes for e in executed)
    assert first.function == "last" and first.made == cfg.verify.probes and first.compared == 3
    assert first.disagreeing == 3 and first.unsettled and " != " in first.example
    assert all(p.disagreeing == 1 and not p.unsettled for p in right)
    sel = select(executed, cfg.select, ex_stage.counts_as_pass, None, checks)
    assert sel.stats["rejected"].get("probe_disagreement") == 1
    assert [e.parent_id for e in sel.examples] != [executed[0].id] and len(sel.examples) == 1
    off = build_config(sets=["verify.probes=0"])
    stage = VerifyStage(off.verify, 10, 1024, ex_stage.counts_as_pass)
    [(rec, verdicts)] = list(LocalExecutor(lambda: None).execute(stage, group_by_instruction(executed)))
    assert all(c.probes is None for c in stage.parse(rec, verdicts))


def test_half_the_siblings_differing_leaves_an_answer_unsettled():
    p = Probes(function="f", made=4, answered=4, compared=2, disagreeing=1)
    assert p.unsettled and not p.model_copy(update={"compared": 3}).unsettled
    assert not p.model_copy(update={"disagreeing": 0}).unsettled


def test_the_harness_survives_rebound_builtins_swallowed_timeouts_and_long_text():
    code = '''
map = {"I": 1}
dict = None
sorted = None
def print(*a, **k):
    pass
def f(s):
    try:
        if s == "loop":
            while True:
                pass
    except Exception:
        return -1
    if s == "long":
        return "漢" * 500
    return {"map": map["I"], "float": 6.0, "bool": True, "neg": -1e-9}
'''
    probes = [P.Probe(("x",)), P.Probe(("loop",))] + [P.Probe(("long",))] * 38
    v = run_program(Program(id="g", code=code, tests=P.harness("f", probes), timeout=20))
    out = P.read_outputs(v.stdout, len(probes))
    assert out is not None, v.stdout[-300:]
    # values as == compares them: 6.0 is 6, True is 1, -1e-9 rounds to 0
    assert out[0] == "dict{'bool':1,'float':6,'map':1,'neg':0}"
    assert out[1] == "!Timeout"  # `except Exception` cannot turn the alarm into a value
    assert out[2].startswith("'漢漢") and len(out[2]) < 60


def test_strings_in_another_order_agree_numbers_in_another_order_do_not():
    def run(ret):
        v = run_program(Program(id="o", code=f"def f(x):\n    return {ret}\n",
                                tests=P.harness("f", [P.Probe((1,))]), timeout=5))
        return P.read_outputs(v.stdout, 1)

    ab, ba, ac = run("['a', 'b']"), run("['b', 'a']"), run("['a', 'c']")
    assert P.disagreements(ab, ba) == [] and P.disagreements(ab, ac) == [0]
    assert P.shown(ab[0]) == "list['a','b']"
    assert P.disagreements(run("[1, 2]"), run("[2, 1]")) == [0]


def test_probes_never_carry_inf_nor_grow_with_nesting_and_async_functions_are_not_probed():
    import time

    # only the variant that replaces the inf is written: the others would carry it
    assert P.make_probes([P.Probe((float("inf"), 3))], limit=10) == [P.Probe((0.0, 3))]
    deep = [1]
    for _ in range(40):
        deep = [deep, 2]
    t = time.perf_counter()
    assert P.make_probes([P.Probe((deep,))], limit=10)
    assert time.perf_counter() - t < 1.0
    assert P.entry_point(["async def f(x):\n    return x\n"] * 2, ["assert f(1)\n"]) is None
