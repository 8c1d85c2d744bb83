from selfcodealign.seeds import sanitize

from seeds_corpus import CONTAMINATED, GOOD, NEAR_COPY

ENTROPY = GOOD.split("def _helper")[0]  # imports + entropy()
INSTR = "Write a function that computes the Shannon entropy of a list of values.\n\n"


def test_sanitize_drops_contamination_and_near_duplicates_keeping_first():
    items = [
        ("a", INSTR + ENTROPY),
        ("b", "Implement has_close_elements.\n\n" + CONTAMINATED),
        ("c", INSTR + NEAR_COPY),
        ("d", "Reverse a string.\n\ndef rev(s):\n    return s[::-1]\n"),
    ]
    kept, dropped = sanitize(items)
    assert kept == {"a", "d"}
    assert dropped == {"benchmark_contamination": 1, "near_duplicate": 1}
    # Order decides which copy survives.
    kept2, _ = sanitize([items[2], items[0]])
    assert kept2 == {"c"}


def test_sanitize_threshold():
    a = "alpha beta gamma delta epsilon zeta eta theta"
    b = "alpha beta gamma delta epsilon zeta iota kappa"
    assert sanitize([("a", a), ("b", b)], threshold=0.9)[0] == {"a", "b"}
    assert sanitize([("a", a), ("b", b)], threshold=0.3)[0] == {"a"}
