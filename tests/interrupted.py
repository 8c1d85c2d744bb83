"""Work stopped part-way, as a Ctrl-C leaves it (for the resume tests)."""

from pathlib import Path

import pytest

from selfcodealign.seeds import SeedsConfig, mine


def mine_interrupted(cfg: SeedsConfig, out: Path, after: int = 2) -> None:
    """Seed mining stopped by Ctrl-C after its ``after``-th batch."""
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mine(cfg, out, progress=interrupt)
