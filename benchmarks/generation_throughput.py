"""Pipeline stage vs bare engine: does our stage machinery cost generation speed?

The same prompts (the concepts or responses step of the pipeline, chat style, the same
per-request seeds) go (a) through a pipeline stage (LocalExecutor -> LlamaCppBackend ->
ledger writes) and (b) straight into xllamacpp's ``handle_chat_completions`` from the same
number of threads. Each side gets a fresh engine (cold cache both), so prompt caching works
the same way for both. Prints generated tokens/s (completion tokens only), prompt tokens
evaluated vs served from the engine's cache, and the ratio of generated tokens/s.

    python benchmarks/generation_throughput.py [--step responses] [--prompts 16] [--n-parallel 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from selfcodealign.backends.llamacpp import LlamaCppBackend
from selfcodealign.config import build_config
from selfcodealign.models.embedded import MODEL_NAME, MODEL_SHA256, embedded_model_path
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.ledger import StageFiles
from selfcodealign.pipeline import run_stage
from selfcodealign.stages import BY_NAME
from selfcodealign.stages.base import StageEnv

# The same benchmark inputs as the executor benchmark (this folder is on sys.path when
# either script runs).
from scale_executor import make_inputs  # noqa: E402


def through_stage(cfg, step, inputs, n_parallel):
    path = embedded_model_path()
    backend = LlamaCppBackend(path, model_name=MODEL_NAME, model_sha256=MODEL_SHA256,
                              n_parallel=n_parallel, ctx_per_slot=cfg.backend.ctx_per_slot)
    executor = LocalExecutor(lambda: backend)
    spec = BY_NAME[step]
    env = StageEnv(cfg, lambda: executor)
    stage = spec.cls.from_config(cfg, env)  # the one the run makes (and its prompts, read once)
    with tempfile.TemporaryDirectory() as d:
        files = StageFiles(Path(d) / spec.file)
        t = time.perf_counter()
        run_stage(spec, cfg, env, {spec.cls.reads[0]: inputs}, files, quiet=True)
        wall = time.perf_counter() - t
        s = spec.cls.summarize(files, None)
    requests = [stage.request(r) for r in inputs]
    executor.close()
    return {"wall_s": wall, "completion_tokens": s["completion_tokens"],
            "prompt_tokens": s["prompt_tokens"], "cached_tokens": s["cached_tokens"]}, requests


def run_bare(cfg, requests, n_parallel):
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(embedded_model_path())
    p.n_parallel = n_parallel
    p.n_ctx = cfg.backend.ctx_per_slot * n_parallel
    p.cache_prompt = True
    p.verbosity = -1
    server = xllamacpp.Server(p)
    jobs = [(prompt, sp, s) for prompt, sp in requests for s in range(sp.n)]

    def one(job):
        prompt, sp, s = job
        body = {"messages": prompt, "max_tokens": sp.max_tokens, "temperature": sp.temperature,
                "top_p": sp.top_p, "seed": (sp.seed + s) % (2**31 - 1), "stop": list(sp.stop)}
        return server.handle_chat_completions(body)

    t = time.perf_counter()
    with ThreadPoolExecutor(n_parallel) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t
    tot = {"completion_tokens": 0, "prompt_tokens": 0, "cached_tokens": 0}
    for r in results:
        u = r.get("usage", {})
        tot["completion_tokens"] += u.get("completion_tokens", 0)
        tot["prompt_tokens"] += u.get("prompt_tokens", 0)
        tot["cached_tokens"] += (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    del server
    return {"wall_s": wall, **tot}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", choices=["concepts", "responses"], default="concepts")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n-parallel", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    sets = ["prompts.style=chat", f"backend.n_parallel={args.n_parallel}", "responses.n=1"]
    if args.max_tokens:
        sets.append(f"{args.step}.max_tokens={args.max_tokens}")
    cfg = build_config(preset="quickstart", sets=sets)
    inputs = make_inputs(args.step, args.prompts)
    stage_fig, requests = through_stage(cfg, args.step, inputs, args.n_parallel)
    bare_fig = run_bare(cfg, requests, args.n_parallel)
    rows = {"pipeline stage": stage_fig, "bare engine": bare_fig}
    print(f"step={args.step} prompts={args.prompts} n_parallel={args.n_parallel} (cold cache both)")
    print(f"{'':16} {'gen tok/s':>10} {'completion':>11} {'prompt tok':>11} {'evaluated':>10} {'from cache':>11} {'cached %':>9} {'wall s':>8}")
    for name, f in rows.items():
        f["tokens_per_s"] = f["completion_tokens"] / f["wall_s"]
        f["evaluated"] = f["prompt_tokens"] - f["cached_tokens"]
        f["cached_pct"] = 100 * f["cached_tokens"] / max(1, f["prompt_tokens"])
        print(f"{name:16} {f['tokens_per_s']:10.1f} {f['completion_tokens']:11d} {f['prompt_tokens']:11d} "
              f"{f['evaluated']:10d} {f['cached_tokens']:11d} {f['cached_pct']:8.1f}% {f['wall_s']:8.1f}")
    ratio = stage_fig["tokens_per_s"] / max(1e-9, bare_fig["tokens_per_s"])
    print(f"ratio (stage / bare) of generated tokens/s: {ratio:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
