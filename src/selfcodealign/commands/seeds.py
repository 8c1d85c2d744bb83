"""`selfcodealign seeds`: mine seed functions from a corpus into a JSONL file."""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path

HELP = "mine seed functions (with docstrings, filtered) from a corpus"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(annotation) -> tuple[type, bool]:
    """(scalar type, is a list) of a field annotation such as ``list[str] | None``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def register(subparsers) -> None:
    from selfcodealign.seeds.config import SeedsConfig

    p = subparsers.add_parser(
        "seeds",
        help=HELP,
        description=(
            "Mine Python functions with docstrings from a corpus and keep those that pass "
            "every filter (self-standing, safe imports, length, benchmark decontamination, "
            "near-duplicates, Pyright). Rerun the same command to resume. Lists are "
            "comma-separated."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="output JSONL of seeds")
    p.add_argument("--config", type=Path, help="YAML file with these settings (a `seeds:` section or top-level keys)")
    p.add_argument("--funnel", type=Path, help="also write the funnel (counts per filter) to this JSON file")
    for name, field in SeedsConfig.model_fields.items():
        kind, is_list = _kind(field.annotation)
        help_text = field.description or ""
        if kind is bool:
            p.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif is_list:
            p.add_argument(_flag(name), dest=name, default=None, metavar="A,B,...", help=help_text,
                           type=lambda s: [x.strip() for x in s.split(",") if x.strip()])
        else:
            p.add_argument(_flag(name), dest=name, default=None, type=kind if kind in (int, float) else str,
                           metavar=name.upper(), help=help_text)
    p.set_defaults(func=run)


def _load_config(args) -> "SeedsConfig":  # noqa: F821
    from pydantic import ValidationError

    from selfcodealign.errors import UserError
    from selfcodealign.seeds.config import SeedsConfig

    values: dict = {}
    if args.config:
        import yaml

        try:
            data = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"cannot read config {args.config}: {e}") from None
        if not isinstance(data, dict):
            raise UserError(f"{args.config}: expected a mapping of settings")
        values.update(data.get("seeds", data))
    for name in SeedsConfig.model_fields:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    try:
        return SeedsConfig(**values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UserError(f"bad seeds setting {where}: {first['msg']}") from None


def _backend_for_judge():
    from selfcodealign.errors import UserError

    try:
        from selfcodealign.backends import make_backend
        from selfcodealign.config import BackendConfig  # type: ignore[import-not-found]
    except ImportError:
        raise UserError("--judge needs the model backends, which this install lacks") from None
    return make_backend(BackendConfig())


def run(args) -> int:
    import logging

    from selfcodealign.seeds import mine

    cfg = _load_config(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    backend = _backend_for_judge() if cfg.judge else None
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        label = "seeds" if cfg.max_seeds else "files"
        with Progress(TextColumn(f"mining {label}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), transient=True, console=None) as bar:
            task = bar.add_task("mine", total=None)
            funnel = mine(cfg, args.out, backend=backend,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        if backend is not None:
            backend.close()
    text = json.dumps(funnel, indent=2)
    if args.funnel:
        args.funnel.parent.mkdir(parents=True, exist_ok=True)
        args.funnel.write_text(text + "\n")
    print(text)
    print(f"{funnel['kept']} seeds -> {args.out}", file=sys.stderr)
    return 0
