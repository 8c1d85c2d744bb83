"""`selfcodealign verify` (see commands/stage.py)."""

from selfcodealign.commands.stage import register_stage


def register(sub) -> None:
    register_stage(sub, "verify")
