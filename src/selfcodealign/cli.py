"""The `selfcodealign` command.

Each subcommand lives in its own module under ``selfcodealign.commands`` and exposes
``register(subparsers)``, which adds its parser (a module ``export_dataset`` adds the
command ``export-dataset``) and sets ``func`` (called with the parsed
args, returning an exit code); a stage without such a module gets the generic
single-stage command (commands/stage.py). Modules must import heavy packages lazily
inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from selfcodealign import __version__
from selfcodealign.errors import UserError


def command_names() -> list[str]:
    from selfcodealign.stages import STAGES

    return ["run", *(s.name for s in STAGES), "sandbox", "merge", "audit", "export", "export_dataset", "train", "eval",
            "compare", "report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfcodealign",
        description=(
            "SelfCodeAlign: a code model generates, verifies and collects its own "
            "instruction-tuning data. `selfcodealign run` does every stage; each stage "
            "is also a subcommand of its own."
        ),
    )
    parser.add_argument("--version", action="version", version=f"selfcodealign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from selfcodealign.commands.stage import register_stage
    from selfcodealign.stages import BY_NAME

    for name in command_names():
        try:
            module = importlib.import_module(f"selfcodealign.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"selfcodealign.commands.{name}":
                raise
            register_stage(sub, BY_NAME[name])  # a stage without a command of its own
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"selfcodealign {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"selfcodealign {args.command}: interrupted; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
