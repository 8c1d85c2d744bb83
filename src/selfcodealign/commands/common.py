"""Options shared by the pipeline commands: config file, preset, flags, --set."""

from __future__ import annotations

import argparse
import logging
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel


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


def add_model_flags(p: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """A flag per field of a settings model (``max_tokens`` -> ``--max-tokens``; lists are
    comma-separated), each None unless given, so that flags override a config file only
    where given (``config.load_settings``)."""
    for name, field in model.model_fields.items():
        kind, is_list = _kind(field.annotation)
        default = field.get_default(call_default_factory=True)
        help_text = field.description or ""
        if default is not None and "default" not in help_text:
            help_text = f"{help_text} (default: {default})".lstrip()
        if kind is bool:
            p.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        elif is_list:
            p.add_argument(_flag(name), dest=name, default=None, metavar="A,B,...", help=help_text,
                           type=lambda s: [x.strip() for x in s.split(",") if x.strip()])
        else:
            p.add_argument(_flag(name), dest=name, default=None, type=kind if kind in (int, float) else str,
                           metavar=name.upper(), help=help_text)


def _describe(model: type[BaseModel], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        key = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines += _describe(ann, key + ".")
            continue
        default = field.get_default(call_default_factory=True)
        lines.append(f"  {key} = {default!r}: {field.description or ''}")
    return lines


def config_epilog() -> str:
    from selfcodealign.config import PRESETS, RunConfig
    from selfcodealign.settings_diff import flatten

    quick = ", ".join(f"{k}={v}" for k, v in flatten(PRESETS["quickstart"]).items())
    return (
        "Every config key (set in a YAML file given with --config, or with --set KEY=VALUE; "
        "flags override the file, which overrides the preset):\n"
        + "\n".join(_describe(RunConfig))
        + f"\n\nPresets: {', '.join(PRESETS)}."
        f"\nThe quickstart preset overrides: {quick}."
    )


def add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="YAML", help="YAML config file (sections as listed below)")
    g.add_argument("--preset", help="named preset: default (the paper's settings) or quickstart")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, e.g. --set responses.n=4 (repeatable)")
    g.add_argument("--backend", choices=["llamacpp", "openai", "hf", "vllm"],
                   help="generation engine (config backend.kind)")
    g.add_argument("--model", help="GGUF file for llamacpp (default: the embedded model); "
                   "model dir or hub id for hf/vllm (config backend.model)")
    g.add_argument("--base-url", help="OpenAI-compatible server URL (config backend.base_url)")
    g.add_argument("--model-name", help="model name on the server (config backend.model_name)")
    g.add_argument("--api-key-env", help="environment variable holding the API key; the key "
                   "itself is never written anywhere (config backend.api_key_env)")
    g.add_argument("--n-parallel", type=int, help="llamacpp parallel slots (config backend.n_parallel)")
    g.add_argument("--prompt-style", choices=["auto", "chat", "completion"],
                   help="prompt style (config prompts.style)")
    g.add_argument("--seed", type=int, help="base sampling seed (config seed)")
    o = p.add_argument_group("run control")
    o.add_argument("--force", action="store_true",
                   help="redo a stage whose settings changed, and the stages after it")
    o.add_argument("--verbose", "-v", action="store_true",
                   help="show the engine's own logging and every dropped record")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    backend = {k: v for k, v in {
        "kind": args.backend, "model": args.model, "base_url": args.base_url,
        "model_name": args.model_name, "api_key_env": args.api_key_env,
        "n_parallel": args.n_parallel,
    }.items() if v is not None}
    if backend:
        out["backend"] = backend
    if args.prompt_style:
        out["prompts"] = {"style": args.prompt_style}
    if args.seed is not None:
        out["seed"] = args.seed
    return out


def resolve_config(args: argparse.Namespace, default_preset: str | None = None):
    from selfcodealign.config import build_config

    return build_config(
        preset=args.preset or default_preset,
        yaml_path=args.config,
        overrides=flag_overrides(args),
        sets=args.sets,
    )


def setup_logging(log_file: Path | None, verbose: bool) -> None:
    root = logging.getLogger("selfcodealign")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(log_file)
        except OSError:
            return  # the unwritable-directory error is reported by the caller
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(fh)


def local_executor(cfg, verbose: bool):
    from selfcodealign.backends import make_backend
    from selfcodealign.executors.local import LocalExecutor

    return LocalExecutor(lambda: make_backend(cfg.backend, verbose=verbose),
                         sandbox_workers=cfg.execute.workers)
