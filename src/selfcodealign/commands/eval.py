"""`selfcodealign eval`: EvalPlus (HumanEval+ / MBPP+) scores of a model or a samples file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(subparsers) -> None:
    from selfcodealign.commands.common import add_model_flags
    from selfcodealign.evaluate.runner import EvalSettings

    p = subparsers.add_parser(
        "eval",
        help="score a model on HumanEval+ / MBPP+ with EvalPlus",
        description=(
            "Generate with any backend under EvalPlus's prompting protocol (chat: the "
            "reply pre-filled with EvalPlus's opening and a ```python fence; base: direct "
            "completion), sanitise, and score with evalplus's checker inside an isolated "
            "process. Without --model the embedded model is used. --generate-only writes the "
            "raw samples and stops (it needs neither evalplus nor its dependencies); "
            "--samples then scores that directory elsewhere, or any EvalPlus samples file. "
            "The HumanEval+ and MBPP+ data ship with the package; --data-dir (or "
            "SELFCODEALIGN_EVAL_DATA, or HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH) "
            "names other copies."
        ),
    )
    p.add_argument("--model", help="GGUF file (embedded engine), HF model dir / hub id / train output (hf backend)")
    p.add_argument("--backend", choices=["llamacpp", "openai", "hf", "vllm"],
                   help="default: llamacpp for GGUF / embedded, hf for a model directory, openai with --base-url")
    p.add_argument("--base-url", help="OpenAI-compatible server URL")
    p.add_argument("--model-name", help="model name on the server")
    p.add_argument("--benchmarks", default="humaneval+,mbpp+",
                   help="comma list (default humaneval+,mbpp+); selfval:FILE scores held-out generated tasks "
                   "(the DATASET.heldout.jsonl of select.holdout_seeds)")
    p.add_argument("--out", type=Path, help="output directory (samples, per-sample results, results.json)")
    p.add_argument("--samples", type=Path,
                   help="score these samples instead of generating: an EvalPlus samples file (task_id + "
                   "solution or completion), or an eval --out directory (e.g. of --generate-only)")
    p.add_argument("--generate-only", action="store_true",
                   help="write OUT/<benchmark>/samples.raw.jsonl and stop; score later with --samples OUT")
    p.add_argument("--n-parallel", type=int, default=8, help="llamacpp parallel slots (default 8)")
    p.add_argument("--ctx-per-slot", type=int, default=2048, help="llamacpp context per slot (default 2048)")
    p.add_argument("--batch-size", type=int, default=64, help="hf: sequences per generate batch")
    p.add_argument("--config", metavar="YAML", help="YAML file with the settings below (an `eval:` section "
                   "or top-level keys); flags override it")
    add_model_flags(p.add_argument_group("settings"), EvalSettings)
    p.set_defaults(func=run)


def _backend_kind(args) -> str:
    if args.backend:
        return args.backend
    if args.base_url:
        return "openai"
    if not args.model or args.model == "embedded" or Path(args.model).is_file():
        return "llamacpp"
    return "hf"


def make_backend(args):
    from selfcodealign.backends import make_backend as factory
    from selfcodealign.config import BackendConfig

    kind = _backend_kind(args)
    cfg = BackendConfig(kind=kind, model=args.model, base_url=args.base_url, model_name=args.model_name,
                        n_parallel=args.n_parallel, ctx_per_slot=args.ctx_per_slot, batch_size=args.batch_size)
    return factory(cfg), kind


def run(args: argparse.Namespace) -> int:
    from selfcodealign.config import load_settings, load_yaml
    from selfcodealign.errors import UserError
    from selfcodealign.evaluate.data import default_data_dir, parse_benchmarks
    from selfcodealign.evaluate.runner import EvalSettings, format_line
    from selfcodealign.evaluate.runner import run as run_eval

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.out is None:
        raise UserError("give --out DIR")
    benches = parse_benchmarks(args.benchmarks)
    s = load_settings(EvalSettings, file=load_yaml(args.config, "eval") if args.config else None,
                      flags={k: getattr(args, k) for k in EvalSettings.model_fields}, what="eval setting")
    if s.data_dir is None:
        s = s.model_copy(update={"data_dir": default_data_dir()})
    if args.samples is not None and args.generate_only:
        raise UserError("--samples scores samples; --generate-only makes them: give one")
    if args.samples is not None:
        if not args.samples.exists():
            raise UserError(f"samples not found: {args.samples}")
        info = None if args.samples.is_dir() else {"samples": str(args.samples)}
        report = run_eval(benches, args.out, s, samples_file=args.samples, model_info=info)
    else:
        backend, kind = make_backend(args)
        with backend:
            info = {"name": backend.model_id, "sha256": backend.model_sha256,
                    "sha256_note": backend.model_sha256_note, "backend": kind}
            report = run_eval(benches, args.out, s, backend=backend, model_info=info,
                              generate_only=args.generate_only)
    for b in benches:
        print(format_line(b, report["benchmarks"][b.dataset]))
    print(f"results in {args.out / 'results.json'}")
    if args.model and not args.generate_only:
        from selfcodealign.models.card import add_eval_results

        card = add_eval_results(Path(args.model), report)  # a model `train` wrote: its card gets the scores
        if card:
            print(f"model card: {card} has these scores")
    return 0
