import numpy as np
import pytest

from selfcodealign.cleaning import dedup
from selfcodealign.seeds import SeedsConfig, mine
from selfcodealign.seeds.extract import extract
from seeds_corpus import GOOD, NEAR_COPY

# A realistic function and a copy with every local name, argument and the function's own
# name changed (docstring too): as written, they share too few word 3-grams to be caught.
TOP_WORDS = '''
import re
from collections import Counter


def top_words(text, n):
    """Return the n most common words of text, most frequent first, ties alphabetical."""
    words = re.findall(r"[a-z']+", text.lower())
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, count in ranked[:n]]
'''
TOP_WORDS_RENAMED = '''
import re
from collections import Counter


def most_frequent(doc, k):
    """Return the k most common words of doc, most frequent first, ties alphabetical."""
    tokens = re.findall(r"[a-z']+", doc.lower())
    freq = Counter(tokens)
    order = sorted(freq.items(), key=lambda pair: (-pair[1], pair[0]))
    return [tok for tok, c in order[:k]]
'''

# Same vocabulary (items, key, result, item, for, in, append, return), different functions.
DEDUPE = '''
def dedupe(items, key):
    """Items in order, dropping any whose key was already seen."""
    seen = set()
    result = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            result.append(item)
    return result
'''
GROUP = '''
def group(items, key):
    """Lists of items under each key, in order of first appearance."""
    result = {}
    for item in items:
        result.setdefault(key(item), []).append(item)
    return result
'''
# Two seeds mined from jinja2 (tests.py): tiny, with one docstring template, different
# predicates. Their own names are most of what tells them apart.
TEST_FALSE = '''
import typing as t


def test_false(value: t.Any) -> bool:
    """Return true if the object is False.

    .. versionadded:: 2.11
    """
    return value is False
'''
TEST_BOOLEAN = '''
import typing as t


def test_boolean(value: t.Any) -> bool:
    """Return true if the object is a boolean value.

    .. versionadded:: 2.11
    """
    return value is True or value is False
'''


def jaccard(a, b):
    return len(a & b) / len(a | b)


def raw_j(a, b, markdown=False):
    return jaccard(dedup.shingles(a), dedup.shingles(b))


def norm_j(a, b, markdown=False):
    return jaccard(
        dedup.shingles(dedup.normalize(a, markdown)), dedup.shingles(dedup.normalize(b, markdown))
    )


def test_names_renamed_by_first_appearance_api_kept():
    code = (
        "import numpy as np\n"
        "from os.path import join as pjoin\n"
        "class Box:\n"
        "    def __init__(self, items):\n"
        "        self.items = sorted(items)\n"
        "    def get(self, i):\n"
        "        return self.items[i]\n"
        "def load(path, n=3):\n"
        "    '''Load n rows of path.'''\n"
        "    rows = np.loadtxt(pjoin(path, 'x.csv'))  # a comment\n"
        "    return Box(rows[:n]).get(0) + 1.5e3\n"
    )
    assert dedup.normalize(code).split() == (
        "import numpy as np from os . path import join as pjoin "
        "class Box : def __init__ ( self , v1 ) : self . items = sorted ( v1 ) "
        "def get ( self , v3 ) : return self . items [ v3 ] "
        "def load ( v5 , v6 = 3 ) : '''Load n rows of path.''' "
        "v7 = np . loadtxt ( pjoin ( v5 , 'x.csv' ) ) # a comment "
        "return v0 ( v7 [ : v6 ] ) . v2 ( 0 ) + 1.5e3"
    ).split()


def test_consistent_rename_normalises_identically_and_is_deterministic():
    a, b = dedup.normalize(TOP_WORDS), dedup.normalize(TOP_WORDS_RENAMED)
    assert a == dedup.normalize(TOP_WORDS)
    # Only the docstring's words and the name at the def line differ.
    assert raw_j(TOP_WORDS, TOP_WORDS_RENAMED) < 0.35
    assert norm_j(TOP_WORDS, TOP_WORDS_RENAMED) > 0.65


def test_broken_code_normalises_through_the_fallback_lexer():
    broken = (
        'def f(data, limit):\n    out = [x for x in data if x < limit]\n    return "unterminated\n'
    )
    renamed = broken.replace("data", "rows").replace("limit", "cap").replace("out", "kept")
    renamed = renamed.replace(" x ", " r ").replace("[x ", "[r ")
    assert dedup.normalize(broken) == dedup.normalize(renamed)
    assert '"unterminated' in dedup.normalize(broken)  # the string stays as written
    bad_indent = "def f(a):\n        b = a\n    return b\n"
    assert dedup.normalize(bad_indent).split() == "def f ( v1 ) : v2 = v1 return v2".split()


@pytest.mark.parametrize("use_minhash", [True, False])
def test_renamed_near_copy_is_a_duplicate(use_minhash):
    good = {c.name: c for c in extract(GOOD)}
    (copy,) = extract(NEAR_COPY)
    idx = dedup.NearDupIndex(0.5, use_minhash=use_minhash)
    assert idx.add_if_new(idx.signature(good["entropy"].code))
    assert idx.add_if_new(idx.signature(good["clamp"].code))  # unrelated: kept
    assert not idx.add_if_new(idx.signature(copy.code))
    assert len(idx) == 2


@pytest.mark.parametrize("use_minhash", [True, False])
def test_thoroughly_renamed_seed_is_a_duplicate(use_minhash):
    idx = dedup.NearDupIndex(0.5, use_minhash=use_minhash)
    assert idx.add_if_new(idx.signature(TOP_WORDS))
    assert not idx.add_if_new(idx.signature(TOP_WORDS_RENAMED))


@pytest.mark.parametrize("use_minhash", [True, False])
def test_different_functions_are_not_merged(use_minhash):
    for a, b in [(DEDUPE, GROUP), (TEST_FALSE, TEST_BOOLEAN)]:
        assert norm_j(a, b) < 0.5
        idx = dedup.NearDupIndex(0.5, use_minhash=use_minhash)
        assert idx.add_if_new(idx.signature(a))
        assert idx.add_if_new(idx.signature(b))


def test_own_name_kept_where_defined_keeps_tiny_predicates_apart():
    # Renamed at its def line too, test_false would be a near-duplicate of test_boolean.
    a = dedup.normalize(TEST_FALSE).replace("def test_false", "def F")
    b = dedup.normalize(TEST_BOOLEAN).replace("def test_boolean", "def F")
    assert jaccard(dedup.shingles(a), dedup.shingles(b)) >= 0.5


@pytest.mark.parametrize("use_minhash", [True, False])
def test_a_copy_that_is_edited_not_renamed_is_still_caught(use_minhash):
    # One extra name early on shifts every later number, so the normalised test alone
    # would miss this copy; the test on the text as written still catches it.
    extra = TOP_WORDS.replace("    words =", "    lowered = text.lower()\n    words =").replace(
        "text.lower())", "lowered)"
    )
    assert norm_j(TOP_WORDS, extra) < 0.5 <= raw_j(TOP_WORDS, extra)
    idx = dedup.NearDupIndex(0.5, use_minhash=use_minhash)
    assert idx.add_if_new(idx.signature(TOP_WORDS))
    assert not idx.add_if_new(idx.signature(extra))


def test_lsh_candidates_are_confirmed_by_estimated_jaccard():
    idx = dedup.NearDupIndex(0.5, use_minhash=True)
    kept = idx.signature(TOP_WORDS)
    idx.add(kept)
    other = idx.signature(DEDUPE)
    # Forge a collision in LSH's first band only: a candidate at estimated Jaccard ~0.
    forged = (other[0].copy(), other[1])
    lo, hi = idx._lsh[0].hashranges[0]
    forged[0][lo:hi] = kept[0][lo:hi]
    assert idx._lsh[0].query(dedup._minhash(forged[0])) == [0]
    assert (forged[0] == kept[0]).mean() < 0.5
    assert not idx.is_dup(forged)


def test_minhash_agrees_with_exact_jaccard():
    from datasketch import MinHash

    ex_a, ex_b = dedup.signature(GOOD, False), dedup.signature(NEAR_COPY, False)
    mh_a, mh_b = dedup.signature(GOOD, True), dedup.signature(NEAR_COPY, True)
    assert ex_a[0] == frozenset(dedup.shingles(GOOD))
    assert ex_a[1] == frozenset(dedup.shingles(dedup.normalize(GOOD)))
    for side in (0, 1):
        ma, mb = dedup._minhash(mh_a[side]), dedup._minhash(mh_b[side])
        assert isinstance(ma, MinHash)
        assert abs(ma.jaccard(mb) - jaccard(ex_a[side], ex_b[side])) < 0.15
        assert np.array_equal(mh_a[side], dedup.signature(GOOD, True)[side])  # deterministic


def test_markdown_renames_code_and_spans_with_one_mapping_and_leaves_prose():
    text = (
        "Write a function `count_vowels(word)` that counts the vowels in word.\n"
        "```python\n"
        "def count_vowels(word):\n"
        "    total = sum(ch in 'aeiou' for ch in word)\n"
        "    return total\n"
        "```\n"
        "The `total` is returned. Example output:\n"
        "```text\n"
        "count_vowels total\n"
        "```\n"
        "### Tests\n"
        "```python\n"
        "assert count_vowels('banana') == 3\n"
    )  # the last fence is unclosed, as in a truncated answer
    out = dedup.normalize(text, markdown=True)
    assert out.startswith("Write a function `v0 ( v1 )` that counts the vowels in word.\n")
    assert "def count_vowels ( v1 ) :\nv2 = sum ( v3 in 'aeiou' for v3 in v1 )\nreturn v2" in out
    assert "The `v2` is returned. Example output:\n```text\ncount_vowels total\n```\n" in out
    assert "### Tests\n```python\nassert v0 ( 'banana' ) == 3" in out
    # The same text as code: the prose words would be renamed, backticks or not.
    assert "v0" in dedup.normalize("the count of vowels")
    assert dedup.normalize("the count of vowels", markdown=True) == "the count of vowels"


def test_mining_drops_a_renamed_copy(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text(TOP_WORDS)
    (tmp_path / "src" / "b.py").write_text(TOP_WORDS_RENAMED)
    funnel = mine(SeedsConfig(source=str(tmp_path / "src"), workers=1, typecheck=False),
                  tmp_path / "seeds.jsonl")
    assert funnel["dropped"]["near_duplicate"] == 1
    assert funnel["kept"] == 1
