"""Decode attention alone, on a GPU: the Triton kernels (``gpu.decode_kernels``, with
rotary and cache write included) against FlashAttention-2's varlen kernel and SDPA (the
attention only), at the runner's shapes (Qwen2.5-0.5B: 14 query heads, 2 KV heads, head
size 64), each slot at its own length.

Each variant is captured as a CUDA graph of 24 calls (one per layer) and replayed, as
the engine does; times are per call. Triton launch settings are compared too.

    python benchmarks/decode_attention.py --slots 1024,128,8 --max-len 1536
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def per_call_us(fn, layers: int = 24, reps: int = 20) -> float:
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()  # compile / pick kernels outside the capture
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(layers):
            fn()
    g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        g.replay()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) * 1000 / (reps * layers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", default="1024,128,8")
    ap.add_argument("--max-len", type=int, default=1536)
    ap.add_argument("--min-pos", type=int, default=100)
    ap.add_argument("--max-pos", type=int, default=900)
    ap.add_argument("--heads", type=int, default=14)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--configs", default="32:2:1,32:4:2,64:2:2,64:4:1,64:4:2,64:4:3,64:8:2,128:4:2,128:8:2,128:8:3",
                    help="Triton settings to compare, block:warps:stages")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    from selfcodealign.gpu import attention, decode_kernels as dk

    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    dev, dt = "cuda", torch.bfloat16
    H, kvh, hd, L = args.heads, args.kv_heads, args.head_dim, args.max_len
    gen = torch.Generator(device=dev).manual_seed(0)
    configs = [tuple(int(x) for x in c.split(":")) for c in args.configs.split(",") if c]
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    print(f"{report['device']}; {H} heads, {kvh} KV heads, head size {hd}; cache {L} positions; "
          f"positions uniform in [{args.min_pos}, {args.max_pos}]")
    for B in [int(x) for x in args.slots.split(",") if x]:
        kc = torch.randn(B, L, kvh, hd, device=dev, dtype=dt, generator=gen)
        vc = torch.randn(B, L, kvh, hd, device=dev, dtype=dt, generator=gen)
        y = torch.randn(B, (H + 2 * kvh) * hd, device=dev, dtype=dt, generator=gen)
        ang = torch.randn(L, hd // 2, device=dev, generator=gen)
        cos = torch.cat([ang.cos(), ang.cos()], -1).to(dt)
        sin = torch.cat([ang.sin(), ang.sin()], -1).to(dt)
        pos = torch.randint(args.min_pos, args.max_pos + 1, (B,), device=dev, generator=gen)
        q = y[:, : H * hd].view(B, H, hd).clone()
        span = args.max_pos + 1
        kv_bytes = int(2 * (pos + 1).sum()) * kvh * hd * 2
        base = per_call_us(lambda: attention.decode(q, kc, vc, pos, span, 0.125, True))
        sdpa = per_call_us(lambda: attention.decode(q, kc, vc, pos, span, 0.125, False))
        row = {"slots": B, "kv_mb": kv_bytes / 1e6, "flash_us": base, "sdpa_us": sdpa, "triton": {}}
        print(f"\n{B} slots ({kv_bytes / 1e6:.0f} MB of K/V per call): flash varlen {base:.1f} us "
              f"({kv_bytes / base / 1e6:.2f} TB/s), sdpa {sdpa:.1f} us")
        for block, warps, stages in configs:
            try:
                t = per_call_us(lambda: dk.attend(y, cos, sin, pos, kc, vc, H, 0.125, block=block, warps=warps,
                                                  stages=stages))
            except Exception as e:  # noqa: BLE001 - a setting the compiler refuses
                print(f"  triton block {block} warps {warps} stages {stages}: failed ({type(e).__name__})")
                continue
            k2, v2 = kc.clone(), vc.clone()
            got = dk.attend(y, cos, sin, pos, kc, vc, H, 0.125, block=block, warps=warps, stages=stages)
            err = float((got.float() - dk.reference(y, cos, sin, pos, k2, v2, H, 0.125).float()).abs().max())
            row["triton"][f"{block}:{warps}:{stages}"] = {"us": t, "max_err": err}
            print(f"  triton block {block:>3} warps {warps} stages {stages}: {t:7.1f} us "
                  f"({kv_bytes / t / 1e6:.2f} TB/s), {base / t:.2f}x flash; max error {err:.3g}")
        report["rows"].append(row)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
