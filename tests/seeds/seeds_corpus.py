"""A small hand-written corpus: each file exercises one filter or one way to fail."""


GOOD = '''
import math
from collections import Counter


def entropy(values):
    """Return the Shannon entropy (in bits) of the items in ``values``."""
    counts = Counter(values)
    total = sum(counts.values())
    result = 0.0
    for n in counts.values():
        p = n / total
        result -= p * math.log2(p)
    return result


def _helper(x):
    return x * 2


def uses_helper(x):
    """Double x with a helper that lives in this module."""
    doubled = _helper(x)
    total = doubled + 1
    return total


class Stack:
    def __init__(self):
        self.items = []

    def size(self):
        """Number of items on the stack."""
        count = len(self.items)
        extra = 0
        return count + extra

    def clamp(self, value, low, high):
        """Limit value to the closed range [low, high]."""
        if value < low:
            return low
        if value > high:
            return high
        return value
'''

# The same function as `entropy`, renamed (function, argument and a local).
NEAR_COPY = '''
import math
from collections import Counter


def shannon_bits(items):
    """Return the Shannon entropy (in bits) of the items in ``values``."""
    counts = Counter(items)
    total = sum(counts.values())
    result = 0.0
    for n in counts.values():
        p = n / total
        result -= p * math.log2(p)
    return result
'''

# HumanEval/0's prompt pasted into an ordinary-looking module, with a solution.
CONTAMINATED = '''
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
    True
    """
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
'''

# Passes every cheap filter; only Pyright sees that `math.florp` does not exist.
TYPE_ERROR = '''
import math


def scaled_florp(x, factor):
    """Scale x by factor and apply the florp transform."""
    y = x * factor
    z = math.florp(y)
    return z + 1
'''

FILTERED = '''
import subprocess


def no_arguments():
    """Return a constant."""
    a = 1
    b = 2
    return a + b


def no_return(x):
    """Print x."""
    y = x + 1
    z = y * 2
    print(z)


def short(x):
    """Tiny."""
    return x


def with_todo(x):
    """Add one. TODO: handle strings."""
    y = x + 1
    z = y
    return z


def runs_a_process(cmd):
    """Run cmd and return its output."""
    out = subprocess.run(cmd, capture_output=True)
    text = out.stdout
    return text


def reads_a_file(path):
    """Return the text of a file."""
    with open(path) as f:
        data = f.read()
    return data


def undefined_global(x):
    """Uses a name defined nowhere."""
    y = x + nowhere_defined
    z = y
    return z


def no_docstring(x):
    y = x + 1
    z = y
    return z
'''


