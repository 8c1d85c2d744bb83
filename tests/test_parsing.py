from selfcodealign.parsing import (
    ParseError, ParsedResponse, fenced_blocks, parse_concepts, parse_instruction, parse_response, solution_code,
)


def test_concepts_comma_line():
    assert parse_concepts("list comprehension, recursion, dictionary lookup") == [
        "list comprehension", "recursion", "dictionary lookup"]


def test_concepts_label_bullets_and_dedup():
    text = "Concepts:\n- Recursion\n- recursion\n* memoization\n1. `functools.lru_cache`\n"
    assert parse_concepts(text) == ["Recursion", "memoization", "functools.lru_cache"]


def test_concepts_stop_at_next_example():
    text = "string slicing, loops\n\n### Snippet\n```python\nx = 1\n```"
    assert parse_concepts(text) == ["string slicing", "loops"]


def test_concepts_empty_or_garbage():
    assert isinstance(parse_concepts("   "), ParseError)
    assert parse_concepts(",,, ;").reason == "no_concepts"


def test_instruction_strips_label_and_solution():
    text = ("Instruction: Write a function `rev(s)` that returns the string reversed, "
            "keeping surrogate pairs intact.\n\n```python\ndef rev(s):\n    return s[::-1]\n```")
    out = parse_instruction(text)
    assert out.startswith("Write a function `rev(s)`")
    assert "def rev" not in out


def test_instruction_cut_at_response_heading():
    text = "Write a class `Bank` with deposit and withdraw methods that reject overdrafts.\n### Response\nsure"
    assert parse_instruction(text) == "Write a class `Bank` with deposit and withdraw methods that reject overdrafts."


def test_instruction_truncated_and_short():
    assert parse_instruction("Write a function that " + "x " * 50, "length").reason == "truncated"
    assert parse_instruction("Do it.").reason == "instruction_too_short"
    assert parse_instruction("").reason == "empty_instruction"


REALISTIC = """Here is the solution:

```python
def add(a, b):
    return a + b
```

It adds two numbers.

### Tests
```python
assert add(1, 2) == 3
assert add(-1, 1) == 0
```

### Instruction
Something else the model started"""


def test_response_realistic():
    r = parse_response(REALISTIC)
    assert isinstance(r, ParsedResponse)
    assert r.code == "def add(a, b):\n    return a + b\n"
    assert r.tests.startswith("assert add(1, 2) == 3")
    assert "Something else" not in r.response
    assert r.response.endswith("```")


def test_response_bare_fence_with_python_on_next_line():
    text = "```\npython\ndef f(x):\n    return x * 2\n```\n\n```\npython\nassert f(2) == 4\n```"
    r = parse_response(text)
    assert r.code.startswith("def f(x):")
    assert r.tests == "assert f(2) == 4\n"


def test_response_without_heading_uses_last_assert_block():
    text = "```python\nimport math\n```\n```python\ndef g():\n    return 1\n```\n```python\nassert g() == 1\n```"
    r = parse_response(text)
    assert "def g" in r.code and "import math" in r.code
    assert r.tests.strip() == "assert g() == 1"


def test_response_malformed():
    assert parse_response("").reason == "empty_output"
    assert parse_response("no code at all").reason == "no_code_block"
    assert parse_response("```python\ndef f():\n    return 1\n```").reason == "no_tests"
    cut = "```python\ndef f():\n    return 1\n```\n### Tests\n```python\nassert f() =="
    assert parse_response(cut, "length").reason == "truncated"


def test_fenced_blocks_unclosed():
    blocks = fenced_blocks("```python\nx = 1\n")
    assert len(blocks) == 1 and not blocks[0].closed and blocks[0].code == "x = 1\n"


def test_response_solution_fence_left_open():
    text = ("```python\nclass A:\n    def f(self):\n        return 1\n\n### Tests\n```python\n"
            "assert A().f() == 1\n```")
    r = parse_response(text)
    assert r.code == "class A:\n    def f(self):\n        return 1\n"  # the heading line ends it
    assert r.tests == "assert A().f() == 1\n"
    # The training target closes the fence the model left open and has no tests heading.
    assert r.answer == "```python\nclass A:\n    def f(self):\n        return 1\n```"


def test_a_test_comment_inside_an_unclosed_solution_stays_code():
    text = ("```python\ndef f():\n    # Test the input\n    return 1\n\n### Tests\n```python\n"
            "assert f() == 1\n```")
    r = parse_response(text)
    assert r.code == "def f():\n    # Test the input\n    return 1\n"
    assert r.answer.endswith("return 1\n```")


def test_a_tests_heading_after_a_closed_solution_with_test_comments_is_cut():
    text = ("```python\ndef f():\n    return 1\n\n# Test f\nassert f() == 1\n```\n\n### Tests\n```python\n"
            "assert f() == 1\n```")
    r = parse_response(text)
    assert r.answer == "```python\ndef f():\n    return 1\n\n# Test f\nassert f() == 1\n```"


def test_an_unclosed_solution_fence_without_a_heading_is_closed_in_the_answer():
    text = "```python\ndef f():\n    return 1\n```python\nassert f() == 1\n```"
    r = parse_response(text)
    assert r.code == "def f():\n    return 1\n" and r.answer == "```python\ndef f():\n    return 1\n```"


def test_solution_code_with_or_without_a_tests_section():
    with_tests = "```python\ndef f(x):\n    return x\n```\n\n### Tests\n```python\nassert f(1) == 1\n```"
    assert solution_code(with_tests) == "def f(x):\n    return x\n"
    # no tests: every Python block is the solution (shell blocks are not)
    two = "```python\nimport math\n```\ntext\n```py\ndef g():\n    return math.pi\n```\n```bash\nls\n```"
    assert solution_code(two) == "import math\n\ndef g():\n    return math.pi\n"
    assert solution_code("```python\ndef h(:\n") == "def h(:\n"  # cut off: still code (it won't parse)
    assert solution_code("No code here.") is None
    assert solution_code("") is None
    assert solution_code("```bash\nls\n```") is None
