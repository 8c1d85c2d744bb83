"""Fine-tuning throughput on one GPU: the project's training path against a plain step.

Prints tokens/s (real tokens, no padding) and model FLOPs utilisation
MFU = 6 * N * tokens/s / 989e12, N = parameters that do matrix work (all but the input
embedding table; ~494M for Qwen2.5-Coder-0.5B), for:

- baseline: a plain transformers step (bf16 weights, SDPA, 16 rows x 1024 tokens with
  no padding and no packing boundaries, logits and loss on every position, AdamW);
- ours: ``selfcodealign.train.loop.train`` with packing (varlen flash attention,
  positions restarting per example), the loss only where a label is, fused AdamW.
  A variant is PRECISION[-compile][:setting=value...], e.g.
  ``bf16-master:kernels=liger:token_budget=32768`` (TrainConfig settings on top).

Model: ``--model`` (the embedded GGUF by default; needs ``gguf``) or
``--random-init CONFIG_DIR`` (the same architecture with random weights, from a
config.json + tokenizer folder: identical FLOPs and speed, no weights to ship).
Data: ``--data`` (a dataset.jsonl from the pipeline) or, by default, a synthetic
instruction set built from the standard library's functions and their docstrings
(lengths similar to SelfCodeAlign's: a short instruction, a code reply).

    python benchmarks/train_throughput.py --random-init .ferry/qwen-cfg --steps 8
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEAK = 989e12  # H100 SXM dense bf16, the yardstick


def synthetic_dataset(path: Path, n: int) -> int:
    """Instruction/response pairs from stdlib functions (deterministic)."""
    import importlib

    mods = ["argparse", "ast", "calendar", "collections", "csv", "difflib", "email.utils",
            "fractions", "ftplib", "gettext", "heapq", "inspect", "ipaddress", "json.decoder",
            "locale", "mailbox", "pathlib", "pprint", "shlex", "shutil", "statistics",
            "string", "tarfile", "textwrap", "tokenize", "typing", "urllib.parse", "zipfile"]
    funcs = []
    for name in mods:
        try:
            src = inspect.getsource(importlib.import_module(name))
        except (ImportError, OSError, TypeError):
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef) and ast.get_docstring(node):
                code = ast.get_source_segment(src, node)
                if not code or len(code) > 3500:
                    continue
                doc = ast.get_docstring(node).strip().split("\n\n")[0]
                funcs.append((node.name, name, doc, code))
    # Two functions per example: about 450 tokens, near SelfCodeAlign's replies.
    rows = []
    for (n1, m1, d1, c1), (n2, m2, d2, c2) in zip(funcs[::2], funcs[1::2]):
        rows.append({
            "instruction": f"Write two Python functions: `{n1}` ({m1}): {d1}\nand `{n2}` ({m2}): {d2}",
            "response": f"Here is an implementation:\n\n```python\n{c1}\n\n\n{c2}\n```\n",
        })
    rows = (rows * (n // max(len(rows), 1) + 1))[:n]
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return len(rows)


def n_matrix_params(model) -> int:
    emb = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - emb


def baseline(model_dir: str, steps: int, rows: int = 16, seq: int = 1024) -> tuple[float, int]:
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    model.config.use_cache = False
    n = n_matrix_params(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, model.config.vocab_size - 1000, (rows, seq), generator=g).cuda() for _ in range(4)]
    times = []
    for i in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        x = batches[i % 4]
        loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    del model, opt
    torch.cuda.empty_cache()
    dt = statistics.median(times[2:])
    return rows * seq / dt, n


def ours(model_dir: str, data: Path, steps: int, precision: str, per_step: int, compile_: bool,
         extra: dict | None = None, profile: bool = False):
    import torch

    from selfcodealign.train.config import TrainConfig
    from selfcodealign.train.loop import train

    cfg = TrainConfig(model=model_dir, method="full", max_steps=steps, examples_per_step=per_step,
                      precision=precision, compile=compile_, log_every=1, **(extra or {}))
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            s = train(cfg, data, None)
        # where the GPU's time went, by kernel (stderr: the parent prints it)
        print(p.key_averages().table(sort_by="self_cuda_time_total", row_limit=30), file=sys.stderr)
    else:
        s = train(cfg, data, None)
    hist = s["history"][2:] or s["history"]
    tok_s = sum(h["tokens"] for h in hist) / sum(h["seconds"] for h in hist)
    torch.cuda.empty_cache()
    return tok_s, s


def correctness_check(model_dir: str) -> float:
    """Packed varlen logits against each example alone (bf16): max abs difference."""
    import torch
    import transformers

    from selfcodealign.train import attention
    from selfcodealign.train.format import IGNORE, Encoded
    from selfcodealign.train.packing import pack

    name = attention.register()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation=name).cuda().eval()
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, 150000, (n,), generator=g).tolist() for n in (37, 300, 5, 128)]
    p = pack([Encoded(s, [IGNORE] * len(s)) for s in seqs])
    cu = torch.tensor(p.cu_seq_lens, dtype=torch.int32, device="cuda")
    with torch.no_grad():
        packed = model(input_ids=torch.tensor([p.input_ids], device="cuda"),
                       position_ids=torch.tensor([p.position_ids], device="cuda"), use_cache=False,
                       cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=p.max_len,
                       max_length_k=p.max_len).logits[0].float()
        worst, start = 0.0, 0
        for s in seqs:
            alone = model(input_ids=torch.tensor([s], device="cuda"), use_cache=False).logits[0].float()
            worst = max(worst, (packed[start:start + len(s)] - alone).abs().max().item()
                        / alone.abs().max().item())
            start += len(s)
    del model
    torch.cuda.empty_cache()
    return worst


def child(args) -> int:
    v = args.child
    if v == "baseline":
        tok_s, _ = baseline(args.model_dir, args.steps)
        out = {"tokens_per_s": tok_s}
    else:
        # NAME[:key=value...]: TrainConfig settings on top (it parses the values), e.g.
        # bf16-mixed:kernels=liger:token_budget=32768
        name, *opts = v.split(":")
        extra = {"token_budget": args.token_budget, **dict(o.split("=", 1) for o in opts)}
        base = name.removesuffix("-compile")
        precision = base if base in ("fp32", "bf16", "bf16-mixed", "bf16-master") else "bf16-mixed"
        tok_s, s = ours(args.model_dir, args.data, args.steps, precision,
                        args.examples_per_step, compile_=name.endswith("compile"), extra=extra,
                        profile=v == args.profile)
        out = {"tokens_per_s": tok_s, "final_loss": s["final_loss"], "attention": s["attention"],
               "kernels": s.get("kernels"), "token_budget": s["token_budget_used"], "examples": s["examples"],
               "precision": precision}
    import torch

    out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="GGUF file or HF model dir (default: embedded)")
    ap.add_argument("--random-init", help="config + tokenizer folder: random weights, same architecture")
    ap.add_argument("--data", type=Path, help="dataset.jsonl (default: synthetic from the stdlib)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--examples-per-step", type=int, default=256)
    ap.add_argument("--token-budget", default="auto", help="for variants that do not set one (default: auto)")
    ap.add_argument("--variants", default="baseline,bf16-master",
                    help="comma-separated; a variant named twice runs twice (the first run of a "
                         "Liger variant on a fresh machine also compiles its Triton kernels)")
    ap.add_argument("--json", type=Path, help="write all figures here")
    ap.add_argument("--child-timeout", type=float, default=240, help="seconds per variant")
    ap.add_argument("--profile", help="variant to run under torch.profiler (prints the top kernels)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    import transformers

    if args.child:
        return child(args)

    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    card = torch.cuda.get_device_name()
    work = Path(tempfile.mkdtemp(prefix="sca-bench-"))
    if args.random_init:
        cfg = transformers.AutoConfig.from_pretrained(args.random_init)
        torch.manual_seed(0)
        m = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        model_dir = str(work / "model")
        m.save_pretrained(model_dir)
        transformers.AutoTokenizer.from_pretrained(args.random_init).save_pretrained(model_dir)
        del m
        source = f"random init from {args.random_init}"
    else:
        from selfcodealign.models import load_model, load_tokenizer, resolve_source

        src = resolve_source(args.model)
        m = load_model(src, dtype="bfloat16")
        model_dir = str(work / "model")
        m.save_pretrained(model_dir)
        load_tokenizer(src).save_pretrained(model_dir)
        del m
        source = src.name
    data = args.data
    if data is None:
        data = work / "data.jsonl"
        synthetic_dataset(data, args.examples_per_step * args.steps)
    print(f"card: {card}; torch {torch.__version__}; transformers {transformers.__version__}; model: {source}")

    results = {"card": card, "model": source, "variants": {}}
    try:
        results["varlen_rel_err"] = correctness_check(model_dir)
        print(f"packed varlen vs separate logits, max relative difference: {results['varlen_rel_err']:.2e}")
    except Exception as e:  # keep the timings even if this check breaks
        print(f"correctness check failed: {type(e).__name__}: {e}")
    cfg = transformers.AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        n = n_matrix_params(transformers.AutoModelForCausalLM.from_config(cfg))
    for v in args.variants.split(","):
        # Each variant in a fresh process: clean GPU memory and accelerate state.
        cmd = [sys.executable, __file__, "--child", v, "--model-dir", model_dir, "--data", str(data),
               "--steps", str(args.steps), "--examples-per-step", str(args.examples_per_step),
               "--token-budget", str(args.token_budget)] + (["--profile", args.profile] if args.profile else [])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.child_timeout)
        except subprocess.TimeoutExpired:
            print(f"{v}: gave up after {args.child_timeout} s")
            continue
        if v == args.profile:
            print(proc.stderr[-12000:])
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"{v}: failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
            continue
        r = json.loads(lines[-1])
        r["mfu"] = 6 * n * r["tokens_per_s"] / PEAK
        k = 2
        while v in results["variants"]:  # a repeated variant keeps every run
            v = f"{v.split(' #')[0]} #{k}"
            k += 1
        results["variants"][v] = r
        print(f"{v:>14}: {r['tokens_per_s']:>10,.0f} tokens/s  MFU {100 * r['mfu']:5.1f}%  "
              f"{ {k: x for k, x in r.items() if k not in ('tokens_per_s', 'mfu')} }", flush=True)
    results["n_matrix_params"] = n
    base = results["variants"].get("baseline", {}).get("tokens_per_s")
    print(f"\n{'variant':>14}  {'tokens/s':>10}  {'MFU':>6}  {'x baseline':>10}   ({card}, N={n / 1e6:.0f}M)")
    for v, r in results["variants"].items():
        ratio = f"{r['tokens_per_s'] / base:.2f}" if base else "-"
        print(f"{v:>14}  {r['tokens_per_s']:>10,.0f}  {100 * r['mfu']:5.1f}%  {ratio:>10}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
