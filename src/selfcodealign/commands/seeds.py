"""`selfcodealign seeds`: mine seed functions from a corpus into a JSONL file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from selfcodealign.commands.common import add_model_flags


def register(subparsers) -> None:
    from selfcodealign.seeds.config import SeedsConfig
    from selfcodealign.stages import BY_NAME

    p = subparsers.add_parser(
        "seeds",
        help=BY_NAME["seeds"].help,
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
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_model_flags(p, SeedsConfig)
    p.set_defaults(func=run)


def _load_config(args):
    from selfcodealign.config import load_settings, load_yaml
    from selfcodealign.seeds.config import SeedsConfig

    return load_settings(SeedsConfig, file=load_yaml(args.config, "seeds") if args.config else None,
                         flags={n: getattr(args, n) for n in SeedsConfig.model_fields}, what="seeds setting")


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

    from selfcodealign.stages.seeds import mine_with_progress

    cfg = _load_config(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    backend = _backend_for_judge() if cfg.judge else None
    try:
        funnel = mine_with_progress(cfg, args.out, args.quiet, backend=backend)
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
