"""GPU generation: plain ``model.generate`` vs our continuous-batching engine.

The same prompts (HumanEval+ and MBPP+ tasks in EvalPlus's chat protocol: pre-filled
reply, its stop strings) go through
  (a) ``model.generate`` one prompt at a time (a small subset),
  (b) ``model.generate`` in batches (left padding, prompts sorted by length, stop strings
      through transformers' ``stop_strings``), at each batch size given,
  (c) the engine (``selfcodealign.gpu``), greedy, on the same prompts as (b); the texts
      are compared with (b)'s,
  (d) the engine at scale: every prompt, ``--n`` samples each at temperature 0.7, top-p
      0.95 (the paper's settings), for each slot count given.
Tokens/s counts generated tokens up to each sequence's end (EOS or stop string), no
padding; wall time excludes model loading and includes graph capture. Prints a table
and the ratios against (a) and the best (b); ``--out`` saves everything as JSON.

    python benchmarks/gpu_generation.py --model MODEL [--data DIR] [--save-bf16 DIR]

Measured figures and the exact command: docs/gpu_generation.md.

MODEL is anything ``--model`` takes elsewhere (GGUF file, model directory); with
``--random-weights CONFIG_DIR`` the model is that config with random weights (shapes and
speed only: texts are noise and run to the token limit).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path


def load_tasks(data: Path | None, limit: int) -> list[tuple[str, dict]]:
    tasks = []
    for name, pattern in (("humaneval", "HumanEvalPlus*.jsonl.gz"), ("mbpp", "MbppPlus*.jsonl.gz")):
        for f in sorted(data.glob(pattern)) if data else []:
            with gzip.open(f, "rt") as fh:
                tasks += [(name, json.loads(line)) for line in fh if line.strip()]
    if not tasks:  # no data files: synthetic tasks of similar size
        tasks = [("humaneval", {"prompt": f'def f{i}(xs: list[int]) -> int:\n    """Return the sum of '
                                f'the {i % 7 + 1} largest even numbers in xs."""\n'}) for i in range(600)]
    return tasks[:limit] if limit else tasks


def count_until_end(row: list[int], eos: set[int], tokenizer, stops) -> tuple[int, str]:
    """Tokens up to the end (EOS excluded; through the token completing a stop string)
    and the text before the stop string."""
    n = len(row)
    for j, t in enumerate(row):
        if t in eos:
            n = j
            break
    text = tokenizer.decode(row[:n], skip_special_tokens=True)
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut < 0:
        return n, text

    def has_stop(c: int) -> bool:
        return any(s in tokenizer.decode(row[:c], skip_special_tokens=True) for s in stops)

    lo, hi = 1, n  # the shortest prefix holding a stop string (holding one is monotone)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if has_stop(mid) else (mid + 1, hi)
    return lo, text[:cut]


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_generate(model, tokenizer, texts, stops, max_tokens, batch, eos):
    """Returns the texts, the generated tokens up to each end and the wall time (the
    counting after the timed region)."""
    import torch

    tokenizer.padding_side = "left"
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    rows: list = [None] * len(texts)
    _sync()
    t0 = time.perf_counter()
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, eos_token_id=sorted(eos),
                                 pad_token_id=tokenizer.pad_token_id, stop_strings=list(stops),
                                 tokenizer=tokenizer)
        for i, row in zip(idx, out[:, enc["input_ids"].shape[1] :].tolist()):
            rows[i] = row
    _sync()
    wall = time.perf_counter() - t0
    counted = [count_until_end(r, eos, tokenizer, stops) for r in rows]
    return [t for _, t in counted], sum(n for n, _ in counted), wall


def run_engine(*args, **kw):
    """``_run_engine``, but a failure is printed and the benchmark goes on."""
    try:
        return _run_engine(*args, **kw)
    except Exception:  # noqa: BLE001 - report every variant that works
        import traceback

        traceback.print_exc()
        return [], {"tokens": 0, "wall_s": float("nan"), "error": True}


def _run_engine(model, tokenizer, ids, stops, max_tokens, slots, eos, n=1, temperature=0.0, top_p=1.0,
                sync_every=16, cuda_graphs=None, fused=None, attention="triton"):
    import torch

    from selfcodealign.gpu.engine import Engine, Request

    max_len = -(-max(len(p) + max_tokens for p in ids) // 256) * 256
    _sync()
    t0 = time.perf_counter()
    engine = Engine(model, tokenizer, slots=slots, max_len=max_len, eos_ids=eos, sync_every=sync_every,
                    cuda_graphs=cuda_graphs, fused=fused, flash=attention != "sdpa", triton=attention == "triton")
    reqs = [Request(p, max_tokens, temperature, top_p, seed=1000 * i + s, stop=tuple(stops), tag=(i, s))
            for i, p in enumerate(ids) for s in range(n)]
    res = engine.generate(reqs)
    _sync()
    wall = time.perf_counter() - t0
    st = engine.stats
    info = {"slots": slots, "max_len": max_len, "requests": len(reqs), "wall_s": wall,
            "tokens": sum(r.completion_tokens for r in res),
            "finish": {k: sum(r.finish_reason == k for r in res) for k in ("stop", "length", "error")},
            "prefill_tokens": st.prefill_tokens, "prefill_s": st.prefill_s, "decode_steps": st.decode_steps,
            "decode_s": st.decode_s, "host_s": st.host_s, "graphs": st.graphs,
            "graph_capture_s": st.graph_capture_s, "wasted_slot_steps": st.wasted_slot_steps,
            "prefill_gpu_s": st.prefill_gpu_s, "decode_gpu_s": st.decode_gpu_s, "flash": engine.runner.flash,
            "triton": engine.runner.triton, "reused_tokens": st.reused_tokens}
    del engine
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return res, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file or model directory (default: the embedded model)")
    ap.add_argument("--random-weights", metavar="CONFIG_DIR", help="random model of this config + tokenizer")
    ap.add_argument("--save-bf16", metavar="DIR", help="save the loaded bf16 model + tokenizer here")
    ap.add_argument("--data", type=Path, help="folder with HumanEvalPlus/MbppPlus .jsonl.gz files")
    ap.add_argument("--prompts", type=int, default=0, help="tasks to use (0: all)")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--batch1", type=int, default=3, help="prompts for (a), batch size 1")
    ap.add_argument("--plain-prompts", type=int, default=256, help="prompts for (b) and (c)")
    ap.add_argument("--plain-batch", default="128,256", help="batch sizes for (b), comma-separated")
    ap.add_argument("--n", type=int, default=4, help="samples per prompt for (d)")
    ap.add_argument("--slots", default="256,512,1024", help="engine slot counts for (d), comma-separated")
    ap.add_argument("--sync-every", type=int, default=16)
    ap.add_argument("--variants", default="fused",
                    help="engine decode paths for (c) and (d): fused, plain or both (fused,plain)")
    ap.add_argument("--attention", default="triton",
                    help="engine attention for (c) and (d), comma-separated: triton (the Triton decode "
                    "kernels, FlashAttention prefill: the default), flash (FlashAttention varlen for "
                    "decode too) and sdpa (masked over a common span)")
    ap.add_argument("--stage-only", action="store_true", help="run only the stage comparison (--stage N)")
    ap.add_argument("--stage", type=int, default=0, metavar="N",
                    help="also run the product's responses stage (selfcodealign responses, --model "
                    "must be a model directory) on N instructions of the repo's real sample, and the "
                    "bare engine on the same prompts and settings; print the stage's tokens/s over the engine's")
    ap.add_argument("--device", help="default: cuda if available (cpu only to smoke-test this script)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--out", type=Path, help="write all figures here as JSON")
    args = ap.parse_args()

    import torch
    import transformers

    from selfcodealign.evaluate.protocol import make_request
    from selfcodealign.models.chat import render_prompt
    from selfcodealign.models import load_model, load_tokenizer, resolve_source

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    if args.random_weights:
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.random_weights)
        cfg = transformers.AutoConfig.from_pretrained(args.random_weights)
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, args.dtype))
        name = f"random {cfg.model_type}"
    else:
        src = resolve_source(args.model)
        tokenizer = load_tokenizer(src)
        model = load_model(src, dtype=args.dtype)
        name = src.name
    model = model.to(device).eval()
    load_s = time.perf_counter() - t0
    eos = set()
    for e in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        eos.update([e] if isinstance(e, int) else (e or []))

    tasks = load_tasks(args.data, args.prompts)
    reqs = [make_request(p, ds, chat=True) for ds, p in tasks]
    texts = [render_prompt(tokenizer, r.prompt, r.prefill) for r in reqs]
    stops = reqs[0].stop
    ids = [tuple(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    dev = torch.cuda.get_device_name() if device == "cuda" else device
    print(f"{dev}; torch {torch.__version__}; transformers {transformers.__version__}; model {name} "
          f"(load {load_s:.1f} s); {len(ids)} prompts, mean {sum(map(len, ids)) / len(ids):.0f} tokens; "
          f"max_tokens {args.max_tokens}", flush=True)
    rows: list[dict] = []
    report = {"device": dev, "torch": torch.__version__, "transformers": transformers.__version__,
              "model": name, "load_s": load_s, "max_tokens": args.max_tokens, "rows": rows}

    def add(label, tokens, wall, **extra):
        if extra.get("error"):
            print(f"{label:<40} FAILED", flush=True)
            return
        rows.append({**extra, "run": label, "tokens": tokens, "wall_s": wall, "tok_s": tokens / wall})
        print(f"{label:<40} {tokens:>9} tokens {wall:8.1f} s {tokens / wall:10.0f} tok/s", flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))

    attns = [a for a in args.attention.split(",") if a]
    if args.stage_only:
        # The bare engine is measured warm, as after the runs above: one short run first.
        run_engine(model, tokenizer, ids[:64], stops, 64, 64, eos)
        stage_vs_engine(model, tokenizer, args.model, args.stage, max(int(x) for x in args.slots.split(",") if x),
                        eos, report, add)
        return 0
    if device == "cuda":  # graph replay must compute what eager steps compute
        k = min(32, len(ids))
        eager, _ = run_engine(model, tokenizer, ids[:k], stops, 64, 32, eos, cuda_graphs=False, fused=False,
                              attention="sdpa")
        for a in attns:
            graph, info = run_engine(model, tokenizer, ids[:k], stops, 64, 32, eos, cuda_graphs=True,
                                     attention=a)
            same = sum(x.token_ids == y.token_ids for x, y in zip(eager, graph))
            report[f"graph_{a}_vs_eager_sdpa_identical"] = f"{same}/{k}"
            print(f"engine (CUDA graphs, fused, {a}: flash {info.get('flash')}, triton {info.get('triton')}) "
                  f"vs eager unfused sdpa, "
                  f"greedy, 64 tokens: {same}/{k} identical", flush=True)

    # (a) batch 1; the first call also warms up CUDA kernels, so time from the second.
    sub = texts[: args.batch1 + 1]
    plain_generate(model, tokenizer, sub[:1], stops, 16, 1, eos)
    _, tok, wall = plain_generate(model, tokenizer, sub[1:], stops, args.max_tokens, 1, eos)
    add(f"(a) generate, batch 1 ({len(sub) - 1} prompts)", tok, wall)
    base_a = tok / wall

    m = min(args.plain_prompts, len(texts))
    best_b, best_text = 0.0, None
    for b in [int(x) for x in args.plain_batch.split(",") if x]:
        outs, tok, wall = plain_generate(model, tokenizer, texts[:m], stops, args.max_tokens, b, eos)
        add(f"(b) generate, batch {b} ({m} prompts)", tok, wall, batch=b)
        if tok / wall > best_b:
            best_b, best_text = tok / wall, outs

    slot_list = [int(x) for x in args.slots.split(",") if x]
    variants = [v for v in args.variants.split(",") if v]
    combos = [(v, a) for v in variants for a in attns]
    for v, a in combos:
        res, info = run_engine(model, tokenizer, ids[:m], stops, args.max_tokens, slot_list[0], eos,
                               sync_every=args.sync_every, fused=v == "fused", attention=a)
        same = sum(r.text == t for r, t in zip(res, best_text or []))
        add(f"(c) engine {v} {a} greedy, {slot_list[0]} slots ({m} prompts)", info.pop("tokens"),
            info.pop("wall_s"), same_text_as_b=same, **info)
        print(f"    greedy texts identical to (b): {same}/{m} (bf16: batch shape changes rounding)")
    for v, a in combos:
        for s in slot_list:
            _, info = run_engine(model, tokenizer, ids, stops, args.max_tokens, s, eos, n=args.n,
                                 temperature=0.7, top_p=0.95, sync_every=args.sync_every, fused=v == "fused",
                                 attention=a)
            add(f"(d) engine {v} {a} T=0.7 n={args.n}, {s} slots ({len(ids) * args.n} req)",
                info.pop("tokens"), info.pop("wall_s"), **info)
    if args.stage:
        stage_vs_engine(model, tokenizer, args.model, args.stage, max(slot_list), eos, report, add)

    print("\nrun                                        tok/s   vs (a)   vs best (b)")
    for r in rows:
        print(f"{r['run']:<40} {r['tok_s']:9.0f} {r['tok_s'] / base_a:8.1f}x {r['tok_s'] / best_b:8.2f}x")
    for r in rows:
        if "decode_s" in r:
            print(f"{r['run'][:40]:<40} device: prefill {r['prefill_gpu_s']:.2f} s ({r['prefill_tokens']} tok), "
                  f"decode {r['decode_gpu_s']:.2f} s ({r['decode_steps']} steps, "
                  f"{1000 * r['decode_gpu_s'] / max(1, r['decode_steps']):.2f} ms each); host: checks "
                  f"{r['host_s']:.2f} s, launching prefill {r['prefill_s']:.2f} s and decode {r['decode_s']:.2f} s; "
                  f"{r['graphs']} graphs in {r['graph_capture_s']:.1f} s; finish {r['finish']}")
    if args.save_bf16 and not args.random_weights:
        save_and_check(model, tokenizer, args.save_bf16, reqs[:8], report)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    return 0


def stage_vs_engine(model, tokenizer, model_dir, n_ins, slots, eos, report, add) -> None:
    """The product's responses stage (`selfcodealign responses --backend hf`, its own
    process, model load excluded by the stage's wall time) against the bare engine on the
    same rendered prompts, samples, temperature, token budget and stop strings."""
    import subprocess
    import tempfile

    from selfcodealign.config import build_config
    from selfcodealign.gpu.engine import Engine, Request
    from selfcodealign.stages.base import model_info_and_prompts
    from selfcodealign.records import Instruction
    from selfcodealign.stages.responses import ResponsesStage
    from selfcodealign.models.chat import render_prompt

    sample = Path(__file__).resolve().parents[1] / "data" / "responses-real-sample.jsonl.gz"
    seen, instructions = set(), []
    with gzip.open(sample, "rt") as f:
        for line in f:
            ins = json.loads(line)["response"]["instruction"]
            if ins["id"] not in seen and len(instructions) < n_ins:
                seen.add(ins["id"])
                instructions.append(Instruction.model_validate(ins))
    cfg = build_config(sets=[f"backend.batch_size={slots}"])

    class _Chat:  # what model_info_and_prompts reads of a backend
        has_chat_template, model_id, model_sha256, model_sha256_note, name = True, "m", None, None, "hf"

    info, prompts = model_info_and_prompts(cfg, _Chat())
    stage = ResponsesStage(cfg.responses, prompts, info, cfg.seed)
    reqs, stage_prompts, stage_params = [], [], []
    for k, ins in enumerate(instructions):
        p, sp = stage.request(ins)
        stage_prompts.append(p)
        stage_params.append(sp)
        ids = tuple(tokenizer(render_prompt(tokenizer, p, sp.prefill), add_special_tokens=False)["input_ids"])
        reqs += [Request(ids, sp.max_tokens, sp.temperature, sp.top_p, sp.seed + s, tuple(sp.stop), tag=(k, s))
                 for s in range(sp.n)]
    max_len = -(-max(len(r.prompt_ids) + r.max_tokens for r in reqs) // 256) * 256
    _sync()
    t0 = time.perf_counter()
    engine = Engine(model, tokenizer, slots=slots, max_len=max_len, eos_ids=eos)
    res = engine.generate(reqs)
    _sync()
    wall = time.perf_counter() - t0
    tokens = sum(r.completion_tokens for r in res)
    add(f"(e) bare engine, stage prompts ({len(reqs)} req)", tokens, wall, slots=slots, max_len=max_len)
    del engine
    import torch

    torch.cuda.empty_cache()
    in_process_backend(model_dir, slots, stage_prompts, stage_params, add)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "instructions.jsonl"
        inp.write_text("".join(i.model_dump_json() + "\n" for i in instructions))
        cmd = [sys.executable, "-m", "selfcodealign", "responses", "--in", str(inp), "--out",
               str(Path(tmp) / "responses.jsonl"), "--backend", "hf", "--model", str(model_dir),
               "--set", f"backend.batch_size={slots}", "--quiet"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        total = time.perf_counter() - t0
    line = next((x for x in done.stderr.splitlines() if x.startswith("responses: {")), None)
    if done.returncode or line is None:
        print(f"(f) the responses stage failed ({done.returncode}):\n{done.stderr[-3000:]}", flush=True)
        return
    summary = json.loads(line.split(": ", 1)[1])
    st_tokens, st_wall = summary["completion_tokens"], summary["wall_s"]
    add(f"(f) selfcodealign responses ({summary['in']} instructions)", st_tokens, st_wall,
        command_wall_s=total, summary=summary)
    ratio = (st_tokens / st_wall) / (tokens / wall)
    report["stage_over_engine"] = ratio
    print(f"responses stage {st_tokens / st_wall:,.0f} tok/s over the bare engine's {tokens / wall:,.0f}: "
          f"{ratio:.2f} (goal >= 0.8); the command took {total:.1f} s with model load", flush=True)


def in_process_backend(model_dir, slots, prompts, params, add) -> None:
    """The hf backend's generation for the stage (continuations included, no parsing or
    writing), in this process."""
    import torch

    from selfcodealign.backends.hf import HFBackend

    backend = HFBackend(str(model_dir), engine="continuous", batch_size=slots)
    _sync()
    t0 = time.perf_counter()
    tokens = cached = n = 0
    for _, comps in backend.iter_generate(prompts, params):
        tokens += sum(c.completion_tokens for c in comps)
        cached += sum(c.cached_tokens for c in comps)
        n += len(comps)
    _sync()
    wall = time.perf_counter() - t0
    st = backend._engine.stats
    add("(g) hf backend in this process", tokens, wall, samples=n, cached_tokens=cached,
        prefill_tokens=st.prefill_tokens, reused_tokens=st.reused_tokens, decode_steps=st.decode_steps,
        decode_gpu_s=st.decode_gpu_s, prefill_gpu_s=st.prefill_gpu_s, host_s=st.host_s)
    print(f"    prefill {st.prefill_tokens} tokens computed, {st.reused_tokens} from the cache; "
          f"{st.decode_steps} decode steps ({st.decode_gpu_s:.2f} s device), prefill {st.prefill_gpu_s:.2f} s "
          f"device; host checks {st.host_s:.2f} s", flush=True)
    backend.close()
    del backend
    torch.cuda.empty_cache()


def save_and_check(model, tokenizer, path, reqs, report) -> None:
    """Save the bf16 model (later runs load it in seconds instead of dequantising the
    GGUF) and generate from the saved copy through the pipeline's backend class."""
    from selfcodealign.backends.base import SamplingParams
    from selfcodealign.backends.hf import HFBackend

    t0 = time.perf_counter()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    print(f"saved bf16 model to {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    backend = HFBackend(str(path), engine="continuous", batch_size=64)
    load = time.perf_counter() - t0
    params = [SamplingParams(n=2, temperature=0.7, top_p=0.95, max_tokens=384, stop=r.stop, seed=i,
                             prefill=r.prefill) for i, r in enumerate(reqs)]
    t0 = time.perf_counter()
    out = backend.generate([r.prompt for r in reqs], params)
    wall = time.perf_counter() - t0
    report["backend_check"] = {"load_s": load, "wall_s": wall,
                               "completions": [[c.__dict__ for c in cs] for cs in out]}
    print(f"HFBackend (continuous engine) from {path}: load {load:.1f} s, {len(reqs)} prompts x 2 in {wall:.1f} s")
    for cs in out[:2]:
        for c in cs:
            print(f"--- {c.finish_reason} {c.completion_tokens} tokens\n{c.text}")


if __name__ == "__main__":
    sys.exit(main())
