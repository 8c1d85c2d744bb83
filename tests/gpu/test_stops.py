from selfcodealign.gpu.stops import End, cut_at_stop, find_end


def dec(ids):
    return "".join(chr(97 + i) for i in ids)


def test_stop_string_across_the_previous_check():
    ids = [0, 1, 2, 3, 4]  # "abcde"; "bcd" began before the last check (old=3)
    assert find_end(dec, ids, 3, eos=frozenset(), stops=("bcd",), max_tokens=10) == End(4, "stop")


def test_eos_and_budget():
    assert find_end(dec, [0, 9, 1], 0, eos=frozenset({9}), stops=(), max_tokens=10) == End(1, "stop")
    assert find_end(dec, [0, 1, 2], 0, eos=frozenset(), stops=(), max_tokens=2) == End(2, "length")
    assert find_end(dec, [0, 1, 2], 0, eos=frozenset(), stops=("zz",), max_tokens=9) is None
    # A stop string after the EOS does not count.
    assert find_end(dec, [0, 9, 1, 2], 0, eos=frozenset({9}), stops=("bc",), max_tokens=9) == End(1, "stop")


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("x = 1\n```\nmore\nif __name__", ("\nif __name__", "\n```\n")) == ("x = 1", True)
    assert cut_at_stop("abc", ("z",)) == ("abc", False)
