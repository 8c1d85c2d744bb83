import pytest

from selfcodealign.seeds.config import SeedsConfig
from selfcodealign.seeds.extract import extract
from selfcodealign.seeds.filters import make_cheap_filter
from seeds_corpus import FILTERED, GOOD


@pytest.fixture
def check():
    cfg = SeedsConfig()
    return make_cheap_filter(
        min_lines=cfg.min_lines,
        max_lines=cfg.max_lines,
        unwanted_words=cfg.unwanted_words,
        unsafe_imports=cfg.unsafe_imports,
    )


def test_each_filter_names_its_reason(check):
    reasons = {c.name: check(c) for c in extract(FILTERED)}
    assert reasons == {
        "no_arguments": "no_args",
        "no_return": "no_return",
        "short": "too_short",
        "with_todo": "unwanted_words",
        "runs_a_process": "unsafe_import",
        "reads_a_file": "unsafe_call",
        "undefined_global": "unresolved_name",
    }


def test_good_function_passes(check):
    c = {c.name: c for c in extract(GOOD)}
    assert check(c["entropy"]) is None
    assert check(c["clamp"]) is None


def test_too_long_and_local_unsafe_import():
    body = "\n".join(f"    x{i} = x + {i}" for i in range(20))
    src = f'def long(x):\n    """Doc."""\n{body}\n    return x\n'
    src += '\n\ndef local(x):\n    """Doc."""\n    import socket\n    y = socket.gethostname()\n    return x + y\n'
    check = make_cheap_filter(min_lines=2, max_lines=10, unwanted_words=[], unsafe_imports=["socket"])
    reasons = {c.name: check(c) for c in extract(src)}
    assert reasons == {"long": "too_long", "local": "unsafe_import"}
