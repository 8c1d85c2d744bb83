import ast

import pytest

from selfcodealign.seeds.extract import FileSkip, decode, extract
from seeds_corpus import GOOD


def by_name(text):
    return {c.name: c for c in extract(text)}


def test_imports_added_and_module_dependencies_dropped():
    c = by_name(GOOD)
    assert c["entropy"].drop is None
    assert c["entropy"].code.startswith("from collections import Counter\nimport math\n")
    assert c["entropy"].imports == ["collections", "math"]
    ast.parse(c["entropy"].code)
    assert c["uses_helper"].drop == "module_dependency"
    assert "_helper" not in c  # no docstring: not a candidate


def test_methods_with_state_dropped_without_state_made_plain():
    c = by_name(GOOD)
    assert c["size"].drop == "uses_self"
    clamp = c["clamp"]
    assert clamp.drop is None
    assert clamp.code.startswith("def clamp(value, low, high):")
    ns: dict = {}
    exec(compile(clamp.code, "<seed>", "exec"), ns)
    assert ns["clamp"](5, 0, 3) == 3


def test_method_self_marker_forms():
    src = '''
class A:
    def f(self, /, x):
        """Doc."""
        return x

    def g(self, *, key):
        """Doc."""
        return key

    @staticmethod
    def h(x):
        """Doc."""
        return x

    def k(self):
        """Doc."""
        return super().k()

    @property
    def p(self):
        """Doc."""
        return 1
'''
    c = by_name(src)
    assert c["f"].code.startswith("def f(x):")
    assert c["g"].code.startswith("def g(*, key):")
    assert c["h"].code.startswith("def h(x):") and c["h"].drop is None
    assert c["k"].drop == "uses_self"
    assert c["p"].drop == "decorated"


def test_unresolved_and_relative_imports():
    src = '''
from . import sibling
from os.path import *


def a(x):
    """Doc."""
    return sibling.f(x)


def b(x):
    """Doc."""
    return join(x, "y")


async def c(x):
    """Doc."""
    return x
'''
    c = by_name(src)
    assert c["a"].drop == "unresolved_name"
    assert c["b"].drop == "unresolved_name"
    assert c["c"].drop == "async"


def test_dotted_import_keeps_submodule():
    src = '''
import xml.etree.ElementTree


def tag_of(text):
    """Tag of the root element of an XML string."""
    return xml.etree.ElementTree.fromstring(text).tag
'''
    c = by_name(src)["tag_of"]
    assert c.code.startswith("import xml.etree.ElementTree\n")
    ns: dict = {}
    exec(compile(c.code, "<seed>", "exec"), ns)
    assert ns["tag_of"]("<a/>") == "a"


@pytest.mark.parametrize(
    "data,reason",
    [
        ("# caf\xe9\n".encode("latin-1"), "not_utf8"),
        (b'def f(x):\n    """Doc."""\n    return x +\n', "syntax_error"),
        (b'def f(x):\n    """Doc."""\n    print "python 2"\n', "syntax_error"),
        (b'def f(x):\n    """Doc."""\x00\n', "syntax_error"),
        (b"def f(x):\n    # no docstring anywhere: not even parsed\n    return x +\n", "no_docstrings"),
    ],
)
def test_unusable_files_raise_counted_reason(data, reason):
    with pytest.raises(FileSkip) as e:
        extract(decode(data))
    assert e.value.args[0] == reason


def test_nested_indentation_in_strings_survives():
    src = '''
class K:
    def fmt(self, x):
        """Doc."""
        s = """
no indent here
"""
        return s + x
'''
    c = by_name(src)["fmt"]
    assert c.drop is None
    ast.parse(c.code)


def test_names_in_annotations_and_defaults_are_imported():
    src = '''
from typing import Optional
from torch import Tensor
import math
DEFAULT = 3


def f(x: Tensor, eps: float = math.pi) -> Optional[Tensor]:
    """Doc."""
    return x


def g(x, n=DEFAULT):
    """Doc."""
    return x * n
'''
    c = by_name(src)
    assert c["f"].drop is None
    assert c["f"].code.startswith("from torch import Tensor\nfrom typing import Optional\nimport math\n")
    assert c["g"].drop == "module_dependency"


def test_form_feeds_do_not_shift_lines():
    src = 'import math\n\x0c\n\ndef f(x):\n    """Doc."""\n    return math.sqrt(x)\n'
    (c,) = extract(src)
    assert c.line_start == 4 and c.code.endswith("def f(x):\n    \"\"\"Doc.\"\"\"\n    return math.sqrt(x)\n")
