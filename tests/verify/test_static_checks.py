"""The static checks of verify: requirements read from the instruction, the explanation
against the code, tests that cannot fail, the training target. Pure functions, no sandbox."""

import pytest

from selfcodealign.parsing import parse_response
from selfcodealign.verify import assertions, explanation, requirements, target
from selfcodealign.verify.faithful import solution_example_code

RECURSIVE = "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\n"
ITERATIVE = "def fact(n):\n    r = 1\n    for i in range(2, n + 1):\n        r *= i\n    return r\n"
MEMO = ("def fib(n, memo={}):\n    if n in memo:\n        return memo[n]\n    if n < 2:\n        return n\n"
        "    memo[n] = fib(n - 1) + fib(n - 2)\n    return memo[n]\n")


@pytest.mark.parametrize("instruction, code, unmet", [
    ("Write `fact(n)` using recursion.", RECURSIVE, []),
    ("Write `fact(n)` using recursion.", ITERATIVE, ["recursion"]),
    ("Write `fact(n)` without recursion.", ITERATIVE, []),
    ("Write `fib(n)` recursively with memoization.", MEMO, []),
    ("Write `fact(n)` recursively with memoization.", RECURSIVE, ["memoisation"]),
    ("Write `fact(n)` with memoization.", "from functools import lru_cache\n@lru_cache(None)\n" + RECURSIVE, []),
    # a cache made afresh in each call of the recursive function memoises nothing...
    ("Write `fib(n)` recursively with memoization.",
     "def fib(n):\n    memo = {0: 0, 1: 1}\n    if n not in memo:\n        memo[n] = fib(n - 1) + fib(n - 2)\n"
     "    return memo[n]\n", ["memoisation"]),
    # ...unless it is handed on to the recursive calls
    ("Write `fib(n)` recursively with memoization.",
     "def fib(n, memo=None):\n    if memo is None:\n        memo = {}\n    if n in memo:\n        return memo[n]\n"
     "    memo[n] = n if n < 2 else fib(n - 1, memo) + fib(n - 2, memo)\n    return memo[n]\n", []),
    ("Write a method `Stack.count()` that uses mutual recursion.",
     "def even(n):\n    return n == 0 or odd(n - 1)\ndef odd(n):\n    return n != 0 and even(n - 1)\n", []),
])
def test_recursion_and_memoisation(instruction, code, unmet):
    assert requirements.unmet(instruction, code) == unmet


def test_a_program_that_should_read_standard_input_and_print():
    ins = "Write a Python program that reads a list of numbers from standard input and prints their sum."
    assert requirements.unmet(ins, "print(sum([1, 2]))\n", "program") == ["stdin"]
    assert requirements.unmet(ins, "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", "program") == []
    assert requirements.unmet(ins, "x = input()\n", "program") == ["stdout"]


def test_type_hints_asked_for_must_be_there():
    ins = "Write a function `find(lst, target)` that returns the index of `target`. Use type hints."
    assert requirements.unmet(ins, "def find(lst: list[int], target) -> int:\n    return lst.index(target)\n") == \
        ["annotations"]
    assert requirements.unmet(ins, "def find(lst: list[int], target: int) -> int:\n    return lst.index(target)\n") == []
    # methods count, self and __init__'s return need none, helpers nested inside need none
    cls = ("class Registry:\n    def __init__(self):\n        self.d = {}\n"
           "    def get(self, k: str) -> int:\n        def inner(x):\n            return x\n        return inner(self.d[k])\n")
    assert requirements.unmet("Write a class `Registry` with type annotations.", cls) == []
    # annotations asked for one named function: the others need none
    one = "Write a decorator `log(func)`. Add type annotations to the function `total(xs)` so that it takes ints."
    code = "def log(func):\n    return func\n@log\ndef total(xs: list[int]) -> int:\n    return sum(xs)\n"
    assert requirements.unmet(one, code) == []
    assert requirements.unmet(one, code.replace("xs: list[int]", "xs")) == ["annotations total"]
    assert requirements.unmet("Write `f(x)`; no type hints are needed.", "def f(x):\n    return x\n") == []


def test_named_modules_and_functions_must_be_used():
    ins = "Write a class `Array` with `sum()` that uses NumPy. Handle non-finite values by using `numpy.isfinite`."
    assert requirements.unmet(ins, "class Array:\n    def sum(self):\n        return 0\n") == \
        ["module numpy", "call isfinite"]
    code = "import numpy as np\nclass Array:\n    def sum(self, a):\n        return np.sum(a[np.isfinite(a)])\n"
    assert requirements.unmet(ins, code) == []
    # A method the instruction asks to define is not a function to call.
    assert requirements.unmet("Write a class with `__init__(a, b)` and `area()`.", "class A:\n    pass\n") == []
    assert requirements.unmet("Use `sorted()` to order the keys.", "def f(d):\n    return list(d)\n") == \
        ["call sorted"]


def test_a_builtin_named_as_one_to_use_must_be_used_and_a_type_need_not_be_named():
    loop = "def rev(xs):\n    return [xs[len(xs) - 1 - i] for i in range(len(xs))]\n"
    assert requirements.unmet("Write `rev(xs)`. Use the `enumerate` function to iterate.", loop) == ["call enumerate"]
    assert requirements.unmet("Write `rev(xs)`. Use `zip` to pair the items.", loop) == ["call zip"]
    uses = "def rev(xs):\n    return [x for _, x in sorted(enumerate(xs), reverse=True)]\n"
    assert requirements.unmet("Write `rev(xs)`. Use the `enumerate` function to iterate.", uses) == []
    # "use a `dict`" is met by a {} literal; a name after "not" asks for nothing.
    assert requirements.unmet("Use a `dict` to count.", "def f():\n    return {}\n") == []
    assert requirements.unmet("Do not use `sorted`.", loop) == []


def test_a_call_named_later_in_a_sentence_that_says_use_must_be_used_unless_it_is_one_of_a_choice():
    typed = "def same(a, b):\n    return type(a) == type(b)\n"
    ins = "Write `same(a, b)` that tells whether two values have one type. Use type checking with `isinstance()`."
    assert requirements.unmet(ins, typed) == ["call isinstance"]
    assert requirements.unmet(ins, "def same(a, b):\n    return isinstance(a, type(b))\n") == []
    # either of two will do, and a later sentence without "use" asks for nothing
    assert requirements.unmet("Use methods like `len()` or `ord()` to count.", typed) == []
    assert requirements.unmet("Write `same(a, b)`. It returns what `isinstance()` would.", typed) == []


@pytest.mark.parametrize("phrase, methods, met", [
    ("support for `len()`", ["__len__"], True),
    ("support for `len()`", ["size"], False),
    ("supports the `in` operator", ["__iter__"], True),
    ("supports the `in` operator", ["contains"], False),
    ("supporting `iter()`", ["__getitem__"], True),
    ("no support for `len()`", ["size"], True),
])
def test_a_class_that_must_support_a_builtin_defines_its_special_method(phrase, methods, met):
    code = "class Bag:\n" + "".join(f"    def {m}(self, *a):\n        return 0\n" for m in methods)
    unmet = requirements.unmet(f"Write a class `Bag` with {phrase}.", code, "class")
    assert unmet == ([] if met else [f"protocol {phrase.split('`')[1].strip('()')}"])


def test_errors_to_raise_and_literal_results():
    ins = "Write `div(a, b)`. Raise `ValueError` if b is zero. Return `None` if a is None."
    code = "def div(a, b):\n    if a is None:\n        return None\n    return a / b\n"
    assert requirements.unmet(ins, code) == ["raises ValueError"]
    sub = "class ZeroDivisor(ValueError):\n    pass\n" \
          "def div(a, b):\n    if a is None:\n        return\n    if b == 0:\n        raise ZeroDivisor('b')\n    return a / b\n"
    assert requirements.unmet(ins, sub) == []
    assert requirements.unmet("It does not raise `KeyError`.", "def f():\n    pass\n") == []


@pytest.mark.parametrize("instruction, code, unmet", [
    ("Return a `namedtuple` Point.", "def f():\n    return (1, 2)\n", ["structure namedtuple"]),
    ("Return a `namedtuple` Point.", "from collections import namedtuple\nP = namedtuple('P', 'x y')\n", []),
    ("Write a generator function `evens(n)`.", "def evens(n):\n    return [i for i in range(n) if i % 2 == 0]\n",
     ["structure generator"]),
    ("Write a generator function `evens(n)`.", "def evens(n):\n    yield from range(0, n, 2)\n", []),
    ("Use a random number generator to shuffle.", "import random\ndef f(x):\n    random.shuffle(x)\n", []),
    ("Implement it as a context manager.", "class T:\n    def __enter__(self):\n        return self\n"
     "    def __exit__(self, *a):\n        pass\n", []),
    ("Use a `dataclass`.", "class P:\n    pass\n", ["structure dataclass"]),
    ("Use NumPy for vectorized operations.", "import numpy as np\ndef f(a):\n    return any(np.isfinite(x) for x in a)\n",
     ["structure vectorised"]),
    ("Use NumPy for vectorized operations.", "import numpy as np\ndef f(a):\n    return np.isfinite(a).any()\n", []),
    ("Do not vectorize it.", "def f(a):\n    return [x for x in a]\n", []),
])
def test_named_structures(instruction, code, unmet):
    assert requirements.unmet(instruction, code) == unmet


def test_complexity_claims_are_flagged_and_unparsable_code_is_said():
    assert requirements.unmet("Find it in O(n) time and O(1) space.", "def f(a):\n    return min(a)\n") == \
        ["complexity O(n)"]
    # A space bound in words is the same claim.
    assert requirements.unmet("Check it without using any extra space.", "def f(s):\n    return s == s[::-1]\n") \
        == ["complexity without using any extra space"]
    assert requirements.unmet("Return a new list; extra memory is fine.", "def f(a):\n    return list(a)\n") == []
    assert requirements.unmet("Use recursion.", "def f(:\n") == ["the solution does not parse"]
    assert requirements.unmet("Write `f(x)` that doubles x.", "def f(:\n") == []  # nothing asked


def test_instructions_no_answer_can_meet():
    assert requirements.unanswerable("Use the `numpy.ttest_ind()` function.") == \
        ["names numpy.ttest_ind, which does not exist"]
    assert requirements.unanswerable("Use `numpy.isfinite` and `scipy.integrate.solve_ivp`.") == []
    assert requirements.unanswerable("Write `fact(n)` using recursion in constant time and O(1) space.") == \
        ["asks for recursion in constant time or space"]
    assert requirements.unanswerable("Write `fact(n)` using recursion.") == []


def test_the_explanation_may_name_only_what_the_code_has():
    answer = ("```python\nimport math\ndef area(r):\n    return math.pi * r * r\n```\n"
              "`area` uses `math.pi` and validates `r` with `math.isfinite`, raising `ValueError`.")
    code = "import math\ndef area(r):\n    return math.pi * r * r\n"
    assert explanation.unknown_names(answer, code) == ["math.isfinite", "ValueError"]
    # Quoting the task's own names is not a claim about the code, complexity is not a name.
    quoted = "```python\ndef f(x):\n    return x\n```\nThe task's formula `fib(n)` runs in `O(n)`."
    assert explanation.unknown_names(quoted, "def f(x):\n    return x\n", "Use the formula `fib(n) = ...`") == []


def test_unused_imports():
    assert explanation.unused_imports("import numpy as np\nimport math\nfrom os import path\nx = math.pi\n") == \
        ["numpy", "path"]
    assert explanation.unused_imports("from __future__ import annotations\nimport re\ndef f():\n    return re\n") == []
    # which names a wildcard import brings cannot be told, and no example should teach one
    assert explanation.unused_imports("from typing import *\ndef f(x: List[int]):\n    return x\n") == \
        ["* from typing"]


def test_undefined_names():
    # the 1.5B model's habit: a program reads sys.stdin in its __main__ block, which its
    # tests never run, and never imports sys
    program = "def count(s):\n    return len(s.split())\n\nif __name__ == '__main__':\n    print(count(sys.stdin.read()))\n"
    assert explanation.undefined_names(program) == ["sys"]
    assert explanation.undefined_names("import sys\n" + program) == []
    # every way of binding a name, in any scope, counts; builtins and module globals too
    bound = "import os.path as osp\n" + (
        "def f(x, *args, y=1, **kw):\n    global G\n    G = [v for v in args]\n"
        "    try:\n        return g(x)\n    except ValueError as err:\n        raise TypeError(err) from None\n"
        "def g(x):\n    match x:\n        case {'a': a, **rest}:\n            return rest\n"
        "        case [first, *others]:\n            return others\n"
        "    with open(__file__) as fh:\n        n = len(fh.read())\n"
        "    return (lambda q: q + n + len(G))(x) if (m := osp.sep) else m\n")
    assert explanation.undefined_names(bound) == []
    assert explanation.undefined_names("def f():\n    return helper(1) + total\n") == ["helper", "total"]
    # a wildcard import could bind anything (unused_imports reports it); broken code is not read
    assert explanation.undefined_names("from math import *\ndef f(r):\n    return pi * r\n") == []
    assert explanation.undefined_names("def f(:\n") == []


def test_tests_that_cannot_fail_for_the_right_reason():
    own = "import pytest\nwith pytest.raises(ValueError):\n    raise ValueError('x')\n"
    assert assertions.self_raised(own) == ["line 2 raises the ValueError it expects"]
    assert assertions.self_raised("import pytest\nwith pytest.raises(ValueError):\n    f(-1)\n") == []
    swallow = "try:\n    assert f(1) == 2\nexcept AssertionError:\n    print('failed')\n"
    assert assertions.swallowed(swallow) == ["line 1 catches a failing assert"]
    assert assertions.swallowed("try:\n    assert f(1) == 2\nexcept Exception:\n    raise\n") == []
    loose = "try:\n    f(-1)\nexcept ValueError:\n    pass\n"
    assert assertions.no_fail_expectation(loose) == ["line 1 passes whether or not ValueError is raised"]
    strict = "try:\n    f(-1)\n    assert False, 'no error'\nexcept ValueError:\n    pass\n"
    assert assertions.no_fail_expectation(strict) == []


def test_a_solution_that_special_cases_the_example():
    ins = "Write `is_woodall(n)`. Example:\n```python\nassert is_woodall(383) == True\n```"
    assert assertions.special_cases(ins, "def is_woodall(n):\n    return n == 383 or n == 7\n") == \
        ["compares with the example's 383"]
    assert assertions.special_cases(ins, "def is_woodall(n):\n    return n in (1, 7, 23)\n") == []


def test_example_usage_in_a_function_solution():
    code = "def f(x):\n    return x\n\nprint(f(2))\nif __name__ == '__main__':\n    f(3)\n"
    assert solution_example_code(code, "function") == ["call on line 4", "__main__ block on line 5"]
    assert solution_example_code(code, "program") == []


def test_the_training_target_must_be_well_formed():
    code = "def f():\n    return 1\n"
    good = "```python\ndef f():\n    return 1\n```\nReturns one."
    assert target.problems(good, code) == []
    assert target.problems("```python\ndef f():\n    return 1\n", code) == ["unclosed code fence"]
    assert target.problems(good + "\n\n### Tests", code) == ["tests heading in the answer"]
    assert target.problems("```python\ndef f():\n    return 1\n\n### Tests\n```", code) == \
        ["tests heading in the answer", "its code is not the executed code"]
    assert target.problems(good, "def f():\n    return 2\n") == ["its code is not the executed code"]


def test_a_tests_heading_inside_an_unclosed_solution_makes_a_well_formed_target():
    text = "```python\ndef f():\n    return 1\n\n### Tests\n```python\nassert f() == 1\n```"
    parsed = parse_response(text)
    assert target.problems(parsed.answer, parsed.code) == []


def test_tests_that_only_restate_the_instructions_example():
    ins = "Split on spaces.\n```python\nassert split_words('a b') == ['a', 'b']\n```"
    assert assertions.only_the_example(ins, "assert split_words('a b') == ['a', 'b']\n") == \
        ["its 1 assert(s) restate the instruction's example"]
    assert assertions.only_the_example(ins, "assert split_words('a b')==['a','b']\nassert split_words('') == []\n") == []
    assert assertions.only_the_example("Split on spaces.", "assert split_words('a b') == ['a', 'b']\n") == []


def test_a_one_return_answer_that_the_instruction_spells_out_is_trivial():
    from selfcodealign.verify.trivial import spelled_out

    code = "def evens(xs):\n    return list(filter(lambda x: x % 2 == 0, xs))\n"
    told = "Write `evens(xs)` that filters out odd numbers. Use `filter` with a lambda and return a list."
    assert spelled_out(told, code) == ["one return the instruction spells out: filter, lambda, list"]
    # the task left the way open, or the answer does more than return
    assert spelled_out("Write `evens(xs)` that returns the even numbers of `xs`.", code) == []
    loop = "def evens(xs):\n    out = []\n    for x in xs:\n        if x % 2 == 0:\n            out.append(x)\n    return out\n"
    assert spelled_out(told + " Use append.", loop) == []
    assert spelled_out(told, "def f(x):\n    return x\n") == []  # nothing called: one_liner's to judge


def test_an_error_the_instruction_requires_must_be_expected_by_a_test():
    ins = "Write a function `root(x)` that returns the square root of `x` and raises `ValueError` if `x` is negative."
    assert assertions.untested_errors(ins, "function", "assert root(4) == 2\n") == \
        ["ValueError is required, no test expects it"]
    expected = "assert root(4) == 2\ntry:\n    root(-1)\n    assert False\nexcept ValueError:\n    pass\n"
    assert assertions.untested_errors(ins, "function", expected) == []
    assert assertions.untested_errors(ins, "function", "import pytest\nwith pytest.raises(ValueError):\n    root(-1)\n") == []
    # no error asked for, or tests that do not parse: nothing to say
    assert assertions.untested_errors("Write `f(x)` that returns x.", "function", "assert f(1) == 1\n") == []
    assert assertions.untested_errors(ins, "function", "assert root(4 ==\n") == []


def test_a_solution_of_small_one_line_functions_is_trivial():
    from selfcodealign.verify.trivial import one_liner

    assert one_liner("def add(a, b):\n    '''Sum.'''\n    return a + b\n") == \
        ["1 function(s), each one return, 7 AST nodes"]
    assert one_liner("def f(n):\n    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)\n") == []
    assert one_liner("class A:\n    def f(self):\n        return 1\n") == []
    # a value named only to be returned is the same one line
    assert one_liner("def merge(a, b):\n    merged = {**a, **b}\n    return merged\n") != []
    assert one_liner("def merge(a, b):\n    merged = {**a, **b}\n    return a\n") == []
    big = "def f(xs):\n    return sorted({x * x for x in xs if x % 2 == 0 and x > 0}, key=lambda v: -v)[:3]\n"
    assert one_liner(big) == []
    # validation guards and a try around the one return leave it one line
    guarded = "def same(a, b):\n    if not isinstance(a, str):\n        raise TypeError('a')\n    return a == b\n"
    assert one_liner(guarded) == ["1 function(s), each one return, 7 AST nodes"]
    wrapped = "def to_float(x):\n    try:\n        return float(x)\n    except ValueError:\n        return 0\n"
    assert one_liner(wrapped) != []
    handled = "def to_float(x):\n    try:\n        return float(x)\n    except ValueError:\n        log(x)\n        return 0\n"
    assert one_liner(handled) == []
    assert one_liner("def f(x):\n    if x:\n        print(x)\n    return x\n") == []


def test_the_judge_asks_about_requirement_sentences_and_reads_yes_or_no():
    from selfcodealign.verify.judge import judge_prompt, parse_verdict, requirement_sentences

    ins = ("Write a function `f(xs)` that returns the sorted list. It is useful. Raise `ValueError` on None. "
           "Your function must pass this example:\n```python\nassert f([2, 1]) == [1, 2]\n```")
    assert requirement_sentences(ins) == ["Write a function `f(xs)` that returns the sorted list.",
                                          "Raise `ValueError` on None."]
    msgs = judge_prompt(ins, "def f(xs):\n    return sorted(xs)", "Raise `ValueError` on None.")
    assert msgs[0]["role"] == "system" and "Requirement: Raise `ValueError` on None." in msgs[1]["content"]
    assert judge_prompt(ins, "x = 1\n", "r", "completion").endswith("Answer:")
    assert [parse_verdict(t) for t in ("Yes.", " no", "**No**", "maybe", "")] == [True, False, False, None, None]


def test_a_stated_truth_value_may_be_computed():
    ins = "Return `True` if the number is even."
    assert requirements.unmet(ins, "def even(n):\n    return n % 2 == 0\n") == []
    assert requirements.unmet(ins, "def even(n):\n    return 1 if n % 2 == 0 else 0\n") == []
    assert requirements.unmet(ins, "def even(n):\n    return 0\n") == ["returns True"]
