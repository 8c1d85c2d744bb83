"""Dataset cleaning, shared by seed mining, select and merge: benchmark decontamination
(``decontam``: long word n-grams shared with HumanEval/MBPP), near-duplicate removal
(``dedup``: MinHash-LSH, also after renaming identifiers), and ``sanitize``, both on a
final dataset."""

from selfcodealign.cleaning.dedup import NearDupIndex
from selfcodealign.cleaning.sanitize import sanitize

__all__ = ["NearDupIndex", "sanitize"]
