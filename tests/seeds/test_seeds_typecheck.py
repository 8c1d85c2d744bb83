from selfcodealign.seeds import typecheck
from seeds_corpus import GOOD

UNDEFINED = '''
def area(r: float) -> float:
    """Area of a circle."""
    return pi * r * r
'''

ANNOTATION = '''
def first(xs: "Sequence[int]") -> int:
    """First item."""
    return xs[0]
'''


def test_undefined_names_dropped_good_code_passes():
    good = "from collections import Counter\nimport math\n\n" + GOOD.split("def _helper")[0].split("\n\n\n", 1)[1]
    errs = typecheck.check([UNDEFINED, good, ANNOTATION])
    assert any("pi" in e and "reportUndefinedVariable" in e for e in errs[0])
    assert errs[1] == []
    assert any("Sequence" in e for e in errs[2])


def test_third_party_imports_unknown_by_default_checked_on_request():
    code = 'import pytest\n\n\ndef f(x):\n    """Doc."""\n    return pytest.florp(x)\n'
    assert typecheck.check([code]) == [[]]
    (errs,) = typecheck.check([code], third_party=True)
    assert any("florp" in e for e in errs)
