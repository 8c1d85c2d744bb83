"""Ray executor vs local executor on one machine: what does Ray's machinery cost?

Both sides run the same work through the same executor interface the pipeline uses
(``execute`` / ``generate`` streams), with the same batch settings:

- sandbox: HumanEval+ canonical solutions with their base tests (shipped in the package; a
  synthetic mix if the file is missing), ``--workers`` sandbox servers on each side;
  rounds alternate local / Ray so that load from other work hits both alike.
- generation: the responses (or concepts) step over ``--prompts`` inputs, one embedded llama.cpp engine
  with ``--n-parallel`` slots on each side (cold prompt cache both), through the stage and
  the ledger as in a real run.

Ray runs as a one-node cluster started in this process (``ray.init``); its start-up and
the actors' start (model load) are reported apart and not counted in the rates.
Prints executions/s and generated tokens/s for both and the ratios (Ray / local).

    python benchmarks/scale_executor.py [--workers 2] [--repeat 3] [--rounds 2] [--step responses] [--prompts 4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "src/selfcodealign/data/HumanEvalPlus-v0.1.10.jsonl.gz"


class ProgramsStage:
    """The execute stage's interface over ready-made sandbox Programs."""

    def programs(self, rec):
        return [rec]


def programs(path: Path, repeat: int):
    from selfcodealign.sandbox import Program

    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            tasks = [json.loads(line) for line in f if line.strip()]
        return [Program(id=f"{t['task_id']}#{r}", code=t["prompt"] + t["canonical_solution"],
                        tests=t["test"] + f"\ncheck({t['entry_point']})\n", timeout=10.0)
                for r in range(repeat) for t in tasks]
    return [Program(id=f"p{i}", code=f"def f(x):\n    return x * {i % 7}\n",
                    tests=f"assert f(3) == {3 * (i % 7)}\n") for i in range(164 * repeat)]


def time_execute(executor, progs) -> tuple[float, dict]:
    t = time.perf_counter()
    statuses: dict[str, int] = {}
    n = 0
    for _, (v,) in executor.execute(ProgramsStage(), progs):
        statuses[v.status] = statuses.get(v.status, 0) + 1
        n += 1
    assert n == len(progs)
    return time.perf_counter() - t, statuses


def make_inputs(step: str, count: int):
    """Seeds (concepts step) or instructions (responses step) built from the few-shot
    examples, varied by index so no two prompts are the same past the shared prefix."""
    from selfcodealign.prompts import load_examples
    from selfcodealign.records import GenMeta, Instruction, Seed

    exs = load_examples()
    meta = GenMeta(model="-", backend="-", prompt_style="chat", temperature=0, top_p=1,
                   max_tokens=1, seed=0, finish_reason="stop")
    out = []
    for i in range(count):
        ex = exs[i % len(exs)]
        if step == "concepts":
            out.append(Seed(id=f"bench{i}", code=ex.seed.replace('"""', f'"""(variant {i}) ', 1),
                            name=ex.name, source="bench", path="bench", line_start=1, line_end=1))
        else:
            out.append(Instruction(
                id=f"i{i}", parent_id=f"c{i}", seed_id=f"bench{i}", seed_source="bench",
                seed_path="bench", concepts=ex.concepts, category=ex.category,
                difficulty=ex.difficulty, raw="", gen=meta,
                instruction=ex.instruction.strip() + f" (Variant {i}: also handle empty input.)"))
    return out


def time_generation(cfg, step, executor, inputs) -> dict:
    from selfcodealign.ledger import StageFiles
    from selfcodealign.pipeline import run_stage
    from selfcodealign.stages import BY_NAME
    from selfcodealign.stages.base import StageEnv

    spec = BY_NAME[step]
    env = StageEnv(cfg, lambda: executor)
    t = time.perf_counter()
    env.model()  # loads the model(s)
    load = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        files = StageFiles(Path(d) / spec.file)
        t = time.perf_counter()
        run_stage(spec, cfg, env, {spec.cls.reads[0]: inputs}, files, quiet=True)
        wall = time.perf_counter() - t
        s = spec.cls.summarize(files, None)
    return {"load_s": load, "wall_s": wall, "completion_tokens": s["completion_tokens"],
            "tokens_per_s": s["completion_tokens"] / wall, "inputs": s["in"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="sandbox servers, each side")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the 164 programs per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating local/Ray rounds")
    ap.add_argument("--step", choices=["concepts", "responses"], default="responses",
                    help="generation step (responses: decoding-bound; concepts: prompt-bound)")
    ap.add_argument("--prompts", type=int, default=4, help="generation prompts (0: skip generation)")
    ap.add_argument("--n-parallel", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    import ray

    from selfcodealign.backends import make_backend
    from selfcodealign.config import build_config
    from selfcodealign.executors.local import LocalExecutor
    from selfcodealign.executors.ray_executor import RayExecutor
    from selfcodealign.sandbox import check

    cfg = build_config(preset="quickstart", sets=[
        f"execute.workers={args.workers}", f"backend.n_parallel={args.n_parallel}",
        f"backend.threads={os.cpu_count() or 2}", f"{args.step}.max_tokens={args.max_tokens}",
        f"{args.step}.n=1", "prompts.style=chat"])
    progs = programs(args.data, args.repeat)
    print(f"machine: {os.cpu_count()} cores (shared with other work: figures are under load); "
          f"sandbox mode {check().mode}; {len(progs)} programs per round, {args.workers} workers")

    t = time.perf_counter()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray_start = time.perf_counter() - t
    ray_ex = RayExecutor(cfg)
    t = time.perf_counter()
    time_execute(ray_ex, progs[:8])  # starts the sandbox actor
    actor_start = time.perf_counter() - t
    local_ex = LocalExecutor(lambda: make_backend(cfg.backend), sandbox_workers=args.workers)

    figs: dict = {"ray_init_s": ray_start, "sandbox_actor_start_s": actor_start, "rounds": []}
    for r in range(args.rounds):
        row = {}
        for name, ex in (("local", local_ex), ("ray", ray_ex)) if r % 2 == 0 else (("ray", ray_ex), ("local", local_ex)):
            wall, statuses = time_execute(ex, progs)
            row[name] = {"wall_s": wall, "per_s": len(progs) / wall, "statuses": statuses}
        figs["rounds"].append(row)
        print(f"round {r + 1}: local {row['local']['per_s']:7.1f} exec/s   ray {row['ray']['per_s']:7.1f} "
              f"exec/s   ratio ray/local {row['ray']['per_s'] / row['local']['per_s']:.3f}   "
              f"statuses equal: {row['local']['statuses'] == row['ray']['statuses']}")
    loc = sum(len(progs) for _ in figs["rounds"]) / sum(r["local"]["wall_s"] for r in figs["rounds"])
    ray_rate = sum(len(progs) for _ in figs["rounds"]) / sum(r["ray"]["wall_s"] for r in figs["rounds"])
    figs["sandbox"] = {"local_per_s": loc, "ray_per_s": ray_rate, "ratio": ray_rate / loc}
    print(f"sandbox executions/s over all rounds: local {loc:.1f}, ray {ray_rate:.1f}, "
          f"ratio ray/local {ray_rate / loc:.3f} (goal >= 0.8)")
    print(f"ray start-up (not counted): ray.init {ray_start:.1f} s, sandbox actor {actor_start:.1f} s")

    if args.prompts:
        inputs = make_inputs(args.step, args.prompts)
        g_local = time_generation(cfg, args.step, local_ex, inputs)
        local_ex.close()
        g_ray = time_generation(cfg, args.step, ray_ex, inputs)
        figs["generation"] = {"local": g_local, "ray": g_ray,
                              "ratio": g_ray["tokens_per_s"] / g_local["tokens_per_s"]}
        for name, g in (("local", g_local), ("ray", g_ray)):
            print(f"generation ({args.step}) {name:5}: {g['tokens_per_s']:6.1f} tokens/s ({g['completion_tokens']} tokens "
                  f"in {g['wall_s']:.1f} s, {g['inputs']} prompts; model load {g['load_s']:.1f} s)")
        print(f"generation tokens/s ratio ray/local {figs['generation']['ratio']:.3f}")
    ray_ex.close()
    local_ex.close()
    ray.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(figs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
