import re

from selfcodealign.cleaning import dedup, sanitize

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


# A dataset item (instruction + "\n" + response, markdown) and the same item with every
# identifier renamed consistently: in the instruction's backtick spans, the code, the
# error message and the tests. The prose is the same.
TASK = (
    "Write a Python function `moving_average(values, window)` that returns the mean of "
    "every `window` consecutive items of `values`. Raise `ValueError` if `window` is not "
    "positive.\n"
    "```python\n"
    "def moving_average(values, window):\n"
    "    if window <= 0:\n"
    '        raise ValueError("window must be positive")\n'
    "    averages = []\n"
    "    running = sum(values[:window])\n"
    "    for start in range(len(values) - window + 1):\n"
    "        if start:\n"
    "            running += values[start + window - 1] - values[start - 1]\n"
    "        averages.append(running / window)\n"
    "    return averages\n"
    "```\n\n"
    "The sum is updated in constant time per step.\n\n"
    "### Tests\n"
    "```python\n"
    "assert moving_average([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]\n"
    "assert moving_average([5], 1) == [5.0]\n"
    "```"
)
RENAMES = {"moving_average": "rolling_mean", "values": "xs", "window": "k",
           "averages": "out", "running": "acc", "start": "i"}
TASK_RENAMED = re.sub(r"\b(%s)\b" % "|".join(RENAMES), lambda m: RENAMES[m.group()], TASK)
# Another task with the same code shape (a sliding window sum): kept.
OTHER_TASK = (
    "Write a Python function `window_counts(flags, size)` that returns, for every `size` "
    "consecutive booleans of `flags`, how many are true. Return an empty list for a `size` "
    "larger than the input.\n"
    "```python\n"
    "def window_counts(flags, size):\n"
    "    if size > len(flags):\n"
    "        return []\n"
    "    counts = []\n"
    "    running = sum(flags[:size])\n"
    "    for start in range(len(flags) - size + 1):\n"
    "        if start:\n"
    "            running += flags[start + size - 1] - flags[start - 1]\n"
    "        counts.append(running)\n"
    "    return counts\n"
    "```\n\n"
    "### Tests\n"
    "```python\n"
    "assert window_counts([True, False, True], 2) == [1, 1]\n"
    "assert window_counts([True], 2) == []\n"
    "```"
)


def _jaccard(a, b):
    a, b = dedup.shingles(a), dedup.shingles(b)
    return len(a & b) / len(a | b)


def test_renamed_dataset_item_is_a_near_duplicate():
    assert "rolling_mean(xs, k)" in TASK_RENAMED and "The sum is updated" in TASK_RENAMED
    assert _jaccard(TASK, TASK_RENAMED) < 0.3  # as written: far apart
    kept, dropped = sanitize([("a", TASK), ("b", OTHER_TASK), ("c", TASK_RENAMED)])
    assert kept == {"a", "b"}
    assert dropped["near_duplicate"] == 1


def test_dataset_items_are_normalised_as_markdown_not_as_code():
    # As code, prose words would be renamed as well, and two instructions that share only
    # their sentence shape would look alike.
    a = "Sort the names by length, then alphabetically, and return them."
    b = "Read the file into lines, then deduplicate, and return them."
    assert dedup.normalize(a, markdown=True) == a
    assert dedup.normalize(a) == dedup.normalize(b)
    assert sanitize([("a", a), ("b", b)])[0] == {"a", "b"}
