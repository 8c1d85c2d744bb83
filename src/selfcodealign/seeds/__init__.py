"""Seed mining: functions with docstrings from a corpus, filtered as in SelfCodeAlign.

``mine(cfg, out_path)`` writes ``Seed`` records and returns the funnel of every filter.
Decontamination and near-duplicate removal are ``selfcodealign.cleaning``'s.
"""

from selfcodealign.seeds.config import PERMISSIVE_LICENSES, SeedsConfig
from selfcodealign.seeds.mine import mine

__all__ = ["PERMISSIVE_LICENSES", "SeedsConfig", "mine"]
