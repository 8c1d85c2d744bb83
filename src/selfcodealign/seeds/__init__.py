"""Seed mining: functions with docstrings from a corpus, filtered as in SelfCodeAlign.

``mine(cfg, out_path)`` writes ``Seed`` records and returns the funnel of every filter;
``sanitize(items)`` runs the same decontamination and near-duplicate removal on the
final dataset.
"""

from selfcodealign.seeds.config import PERMISSIVE_LICENSES, SeedsConfig
from selfcodealign.seeds.mine import mine
from selfcodealign.seeds.sanitize import sanitize

__all__ = ["PERMISSIVE_LICENSES", "SeedsConfig", "mine", "sanitize"]
