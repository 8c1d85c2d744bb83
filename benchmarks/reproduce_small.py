"""Small-scale reproduction of SelfCodeAlign with the embedded 0.5B model, as resumable steps.

The GPU machine of this workplace runs one command of at most 10 minutes at a time, takes
at most 64 MiB of files per command and keeps its files only while it stays warm, so the
reproduction is a sequence of short steps. Each GPU step packs the whole run directory
into ``$OUT/run.tar.gz`` at its end (the run's JSONL files are small): only the latest
snapshot matters, and a lost machine costs the model's ferry, not the results.

Steps (``benchmarks/reproduce_small.sh STEP``; the .sh sets PYTHONPATH and the Python):

  prepare          CPU: mine seeds, fetch cp312 wheels the GPU image lacks, split the
                   GGUF into carry folders ``.ferry/repro/callN`` (<= 64 MiB with the
                   tree) and print the device calls to make
  sequence         CPU: print those device calls again
  gpu-ferry        GPU: move the carried folder's files into /tmp/w/ferry
  gpu-setup        GPU: join and SHA-256-check the GGUF, install the wheels into
                   /tmp/site, export the bf16 model directory /tmp/w/qwen-bf16
  gpu-eval WHICH   GPU: EvalPlus-protocol samples (greedy) of HumanEval+ and MBPP+ from
                   the bf16 model (before) or the tuned one (after), hf backend, bf16
  gpu-generate     GPU: concepts -> instructions -> responses (hf backend), resumable;
                   prints INCOMPLETE (exit 3) when its time budget ran out: run it again
  gpu-execute      GPU (or --here on the CPU machine): sandboxed execution + selection
                   (decontaminated, near-duplicates removed)
  gpu-train        GPU: full fine-tune of the bf16 model on the dataset, then gpu-eval after
  collect DIR      CPU: take run.tar.gz from a device reply's files_at folder
  score            CPU: sanitise the eval samples (evalplus) and score them
                   (`selfcodealign eval --samples`)
  report           CPU: write the figures into docs/results.md
  tiny             CPU: every step above on a tiny random-weights Qwen2 and 3 seeds, to
                   check that every command line parses and runs (about 2 minutes)

The module imports only the standard library at the top: the GPU steps start before the
carried wheels (pydantic, ...) are installed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The REPRO_* variables exist to rehearse the GPU steps elsewhere (gpu-ferry moves files).
FERRY = Path(os.environ.get("REPRO_FERRY", REPO / ".ferry" / "repro"))
STATE = FERRY / "state"  # the latest run.tar.gz that came back (carried after a lost machine)
GPU_WORK = Path(os.environ.get("REPRO_WORK", "/tmp/w"))
GPU_SITE = Path(os.environ.get("REPRO_SITE", "/tmp/site"))

# Generation settings of the reproduction (the rest are the config defaults: the paper's
# max_tokens 128 / 512 / 1024, temperatures 0 / 0.7 / 0.7, 6 / 6 / 1 few-shot examples).
# n = 10 responses per instruction, as in the paper.
RESPONSES_N = 10
GPU_SLOTS = 1024
EVAL_MAX_TOKENS = 768  # `selfcodealign eval`'s default
SEEDS = 5000
DEVICE_CALL_LIMIT_S = 600
# Work per device call; the rest is start-up, packing and margin.
STEP_BUDGET_S = int(os.environ.get("REPRO_BUDGET", "480"))
TREE_LIMIT = 64 << 20  # what one device call may carry, tree included
# Room left in every call for the tree to grow between prepare and the GPU session.
TREE_MARGIN = 3 << 20
SNAPSHOT_MAX = 15 << 20  # a file the device tool brings back: at most 16 MiB
SNAPSHOT_RAW_TRY = 90 << 20  # JSONL compresses ~6x: larger totals are not even tried

# Wheels the GPU image (Python 3.12, torch, transformers, numpy, scipy) may lack; the
# versions are those installed here. gpu-setup installs only the ones it cannot import.
WHEELS = {  # distribution: import name
    "pydantic": "pydantic",
    "pydantic-core": "pydantic_core",
    "annotated-types": "annotated_types",
    "typing-inspection": "typing_inspection",
    "typing-extensions": "typing_extensions",
    "pyyaml": "yaml",
    "rich": "rich",
    "markdown-it-py": "markdown_it",
    "mdurl": "mdurl",
    "pygments": "pygments",
    "gguf": "gguf",
    "datasketch": "datasketch",
}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def say(msg: str) -> None:
    print(f"[repro {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fail(msg: str, code: int = 2) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "selfcodealign.cli", *map(str, args)]


def gpu_name() -> str:
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20, check=False)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else "none"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "none"


class Running:
    """A command started by ``Ctx.launch``: logged under run/logs, timed in the phases
    file when it ends, stopped (SIGINT, then SIGKILL 30 s later) at its deadline."""

    def __init__(self, ctx: Ctx, phase: str, argv: list[str], limit: float, env: dict | None,
                 log_name: str | None) -> None:
        logs = ctx.run / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.ctx, self.phase, self.argv = ctx, phase, argv
        self.log_path = logs / f"{log_name or phase.rsplit('/', 1)[-1]}.log"
        self.t0, self.end = time.perf_counter(), time.monotonic() + limit
        self.finished, self.rc, self.status = True, None, None
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in result()
        self.log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
        self.log.flush()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True while it still runs (it is stopped at its deadline)."""
        try:
            self.rc = self.p.wait(timeout=max(0.05, min(seconds, self.end - time.monotonic())))
            return False
        except subprocess.TimeoutExpired:
            if time.monotonic() < self.end:
                return True
        self.finished = False
        os.killpg(self.p.pid, signal.SIGINT)
        try:
            self.rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.rc = self.p.wait()
        return False

    def result(self) -> str:
        """Wait for the end; record it once: "ok", "failed" or "out_of_time"."""
        if self.status is not None:
            return self.status
        while self.wait(5.0):
            pass
        self.log.close()
        seconds = time.perf_counter() - self.t0
        with open(self.ctx.phases, "a") as f:
            f.write(json.dumps({"phase": self.phase, "seconds": round(seconds, 2), "rc": self.rc,
                                "finished": self.finished and self.rc == 0, "gpu": gpu_name(),
                                "host": platform.node(), "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                "argv": self.argv}) + "\n")
        say(f"{self.phase}: exit {self.rc} after {seconds:.1f} s"
            + ("" if self.finished else " (stopped: out of time)"))
        if self.rc != 0 or not self.finished:
            tail = self.log_path.read_text(errors="replace").splitlines()[-12:]
            print("\n".join("    " + t for t in tail), flush=True)
        self.status = "out_of_time" if not self.finished else ("ok" if self.rc == 0 else "failed")
        return self.status


class Ctx:
    """Where a run lives. GPU: /tmp/w and $OUT; tiny: under runs/repro-tiny."""

    def __init__(self, work: Path, out: Path | None, *, tiny: bool = False,
                 run: Path | None = None, phases: Path | None = None) -> None:
        self.work = work
        self.run = run or work / "run"
        # a shard's steps are logged in its own folder but timed in the run's phases
        self.phases = phases or self.run / "phases.jsonl"
        self.ferry = work / "ferry"
        self.out = out
        self.tiny = tiny
        self.model = work / ("tiny-model" if tiny else "qwen-bf16")
        self.tuned = work / "tuned"
        self.deadline = time.monotonic() + STEP_BUDGET_S

    @property
    def data_dir(self) -> Path:
        return self.ferry / "data"

    @property
    def seeds(self) -> Path:
        return self.ferry / "seeds.jsonl.gz"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def gen_sets(self) -> list[str]:
        if self.tiny:
            return ["backend.batch_size=8", "responses.n=2", "concepts.max_tokens=8",
                    "instructions.max_tokens=8", "responses.max_tokens=8"]
        return [f"backend.batch_size={GPU_SLOTS}", f"responses.n={RESPONSES_N}"]

    def launch(self, phase: str, argv: list[str], *, budget: float | None = None,
               env: dict | None = None, log_name: str | None = None) -> Running | None:
        """Start one command with a log under run/logs; None if this call has no time left."""
        limit = self.remaining() if budget is None else min(budget, self.remaining())
        if limit < 20:
            say(f"{phase}: no time left in this call; run it again")
            return None
        say(f"{phase}: {shlex.join(argv)}  (up to {limit:.0f} s)")
        return Running(self, phase, argv, limit, env, log_name)

    def step(self, phase: str, argv: list[str], *, budget: float | None = None,
             env: dict | None = None, while_running: Callable[[], None] | None = None,
             log_name: str | None = None) -> str:
        """Run one command to its end: "ok", "failed" or "out_of_time".

        Past its budget the command gets SIGINT (the stage ledgers are crash-safe, so a
        rerun resumes), then SIGKILL 30 s later. ``while_running`` is called every few
        seconds while the command runs; it must not block for long."""
        r = self.launch(phase, argv, budget=budget, env=env, log_name=log_name)
        if r is None:
            return "out_of_time"
        while r.wait(5.0):
            if while_running is not None:
                while_running()
        return r.result()

    def pack(self) -> None:
        """Snapshot the run directory into $OUT/run.tar.gz (the device tool brings it back).

        A device reply takes files of at most 16 MiB, and responses / executed records of a
        few thousand tasks are hundreds of MB. A stage's files (output, drops, ledger,
        state) go into the snapshot together or not at all, so a restored stage is never
        half there; the largest are left out until it fits. `funnel.json` keeps every
        stage's counts, tokens and time either way. A stage left out is redone after a
        lost machine."""
        if self.out is None or not self.run.exists():
            return
        self.out.mkdir(parents=True, exist_ok=True)
        old = self.run / "funnel.json"
        # stages left out of a restored snapshot keep the counts recorded before
        funnel = {**(json.loads(old.read_text()) if old.exists() else {}), **stage_summaries(self.run)}
        groups: dict[str, list[Path]] = {}
        for stem in ("seeds", "concepts", "instructions", "responses", "executed"):
            files = [p for p in self.run.glob(f"{stem}.*") if p.is_file()]
            if files:
                groups[stem] = files
        size = {k: sum(p.stat().st_size for p in v) for k, v in groups.items()}
        # A shard's responses and executed records never travel (hundreds of MB): its
        # dataset and counts do, and a shard cut off by a lost machine starts over.
        shard_big: set[Path] = set()
        for shard in sorted((self.run / "shards").glob("*")) if (self.run / "shards").is_dir() else []:
            old_sf = shard / "funnel.json"
            sf = {**(json.loads(old_sf.read_text()) if old_sf.exists() else {}), **stage_summaries(shard)}
            old_sf.write_text(json.dumps(sf, indent=1))
            shard_big |= {p for stem in SHARD_BIG for p in shard.glob(f"{stem}.*") if p.is_file()}
        left_out: set[str] = set()
        while sum(v for k, v in size.items() if k not in left_out) > SNAPSHOT_RAW_TRY:
            left_out.add(max(set(size) - left_out, key=size.get))
        tmp = self.out / "run.tar.gz.tmp"
        while True:
            funnel["left_out_of_snapshot"] = sorted(left_out)
            (self.run / "funnel.json").write_text(json.dumps(funnel, indent=1))
            skip = {p for k in left_out for p in groups[k]} | shard_big
            with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
                tar.add(self.run, arcname="run", filter=lambda ti, skip=skip: None if (
                    self.run.parent / ti.name) in skip else ti)
            if tmp.stat().st_size <= SNAPSHOT_MAX or not set(groups) - left_out:
                break
            left_out.add(max(set(groups) - left_out, key=size.get))
        os.replace(tmp, self.out / "run.tar.gz")
        status = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "gpu": gpu_name(),
                  "left_out_of_snapshot": sorted(left_out),
                  "files": {p.name: p.stat().st_size for p in sorted(self.run.glob("*.jsonl"))}}
        (self.out / "status.json").write_text(json.dumps(status, indent=1))
        say(f"packed {self.run} -> {self.out / 'run.tar.gz'} "
            f"({(self.out / 'run.tar.gz').stat().st_size / 1e6:.1f} MB"
            + (f"; left out, redone after a lost machine: {', '.join(sorted(left_out))})" if left_out else ")"))

    def restore(self) -> None:
        """After a lost machine: start from the snapshot carried in .ferry/repro/state."""
        snap = STATE / "run.tar.gz"
        # A run dir that already has seeds started generating on this machine: it is at
        # least as new as any snapshot. gpu-setup / gpu-eval alone do not count.
        if (self.run / "seeds.jsonl").exists() or self.tiny or not snap.exists():
            return
        phases = self.run / "phases.jsonl"
        here = phases.read_text() if phases.exists() else ""
        self.work.mkdir(parents=True, exist_ok=True)
        with tarfile.open(snap) as tar:
            tar.extractall(self.work, filter="data")
        if here:  # keep this machine's setup timings beside the snapshot's
            with open(phases, "a") as f:
                f.write(here)
        say(f"restored {self.run} from {snap}")

    def need_model(self, path: Path) -> None:
        if not (path / "config.json").exists():
            fail(f"{path} is missing: run gpu-ferry for every carry folder, then gpu-setup "
                 "(the machine was probably given back since)")


SHARD_BIG = ("responses", "executed")  # file stems a snapshot leaves out of every shard


def stage_summaries(run: Path) -> dict:
    """Counts, drops, tokens and wall time of every stage that has a ledger."""
    try:
        from selfcodealign.ledger import StageFiles, summarize_ledger
    except ImportError:  # before gpu-setup installed the wheels
        return {}
    out: dict = {"seeds": count_lines(run / "seeds.jsonl")} if (run / "seeds.jsonl").exists() else {}
    for name, fname in (("concepts", "concepts.jsonl"), ("instructions", "instructions.jsonl"),
                        ("responses", "responses.jsonl"), ("execute", "executed.jsonl")):
        files = StageFiles(run / fname)
        if not files.done.exists():
            continue
        s = summarize_ledger(files.ledger())
        st = files.state() or {}
        s["wall_s"] = round(st.get("wall_s", 0.0), 1)
        s["complete"] = bool(st.get("complete"))
        if s.get("completion_tokens") and s["wall_s"]:
            s["tokens_per_s"] = round(s["completion_tokens"] / s["wall_s"])
        out[name] = s
    return out


def gpu_ctx() -> Ctx:
    out = os.environ.get("OUT")
    return Ctx(GPU_WORK, Path(out) if out else None)


# --------------------------------------------------------------------------------------
# prepare (CPU machine)
# --------------------------------------------------------------------------------------

def tree_bytes() -> int:
    """Size of what every device call sends besides the carry folders."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, check=True).stdout
    total = 0
    for name in out.split(b"\0"):
        p = REPO / os.fsdecode(name)
        if name and p.is_file():
            total += p.stat().st_size
    return total


def mine_seeds(corpus: str, n: int, out_dir: Path, workers: int | None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = cli("seeds", "--source", corpus, "--out", out_dir / "seeds.jsonl", "--max-seeds", n,
               "--funnel", out_dir / "funnel.json")
    if workers:
        argv += ["--workers", str(workers)]
    say("mining seeds: " + shlex.join(argv))
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=REPO)
    info = {"command": shlex.join(["selfcodealign", *argv[3:]]), "seconds": round(time.perf_counter() - t0, 1),
            "seeds": count_lines(out_dir / "seeds.jsonl")}
    if (out_dir / "funnel.json").exists():
        info["funnel"] = json.loads((out_dir / "funnel.json").read_text())
    return info


def fetch_wheels(dest: Path) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    dest.mkdir(parents=True, exist_ok=True)
    local = [REPO / ".whl", REPO / ".whl5"]  # earlier sessions' downloads
    names = []
    for dist in WHEELS:
        try:
            ver = version(dist)
        except PackageNotFoundError:
            fail(f"{dist} is not installed here: install the project's extras first")
        stem = dist.replace("-", "_").lower()
        have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{ver}-")]
        if not have:
            for d in local:
                for p in d.glob("*.whl") if d.is_dir() else []:
                    if p.name.lower().startswith(f"{stem}-{ver}-") and ("cp312" in p.name or "py3-none" in p.name):
                        shutil.copy2(p, dest / p.name)
                        have = [dest / p.name]
        if not have:
            argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
            for plat in PLATFORMS:
                argv += ["--platform", plat]
            subprocess.run(argv + [f"{dist}=={ver}"], check=True)
            have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{ver}-")]
        names += [p.name for p in have]
    return names


def plan_calls(extras: int, model_size: int, cap: int) -> list[int]:
    """Model bytes per call: the first call also carries ``extras`` bytes."""
    sizes, left, room = [], model_size, cap - extras
    while left > 0:
        take = min(left, room)
        sizes.append(take)
        left -= take
        room = cap
    return sizes


def cmd_prepare(a) -> None:
    from selfcodealign.embedded import MODEL_SHA256, MODEL_SIZE, embedded_model_path

    FERRY.mkdir(parents=True, exist_ok=True)
    info_path = FERRY / "prepare.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}

    # 1. seeds (the seeds command resumes by itself)
    seeds_dir = FERRY / "seeds"
    info["seeds"] = mine_seeds(a.corpus, a.seeds, seeds_dir, a.workers)
    if info["seeds"]["seeds"] < a.min_seeds:
        fail(f"only {info['seeds']['seeds']} seeds from {a.corpus}; add corpus folders (comma-separated)")
    info_path.write_text(json.dumps(info, indent=1))

    # 2. the payload of the first call: wheels, seeds, benchmark data, manifest
    stage = FERRY / "payload"
    for p in stage.iterdir() if stage.exists() else []:
        if p.name != "wheels":  # the wheels are kept as a download cache
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    wheels = fetch_wheels(stage / "wheels")
    with open(seeds_dir / "seeds.jsonl", "rb") as src, gzip.open(stage / "seeds.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (stage / "data").mkdir(exist_ok=True)
    for pat in ("HumanEvalPlus-*.jsonl.gz", "MbppPlus-*.jsonl.gz"):
        found = sorted(Path(a.eval_data).glob(pat))
        if not found:
            fail(f"no {pat} in {a.eval_data} (--eval-data)")
        shutil.copy2(found[-1], stage / "data" / found[-1].name)

    # 3. the model, split to fill each call up to the limit
    gguf = embedded_model_path()
    if gguf.stat().st_size != MODEL_SIZE:
        fail(f"{gguf} has the wrong size")
    if info.get("gguf_checked") != str(gguf):
        if sha256(gguf) != MODEL_SHA256:
            fail(f"{gguf}: SHA-256 mismatch")
        info["gguf_checked"] = str(gguf)
    tree = tree_bytes()
    cap = TREE_LIMIT - tree - TREE_MARGIN - 64 * 1024  # the manifest
    extras = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
    sizes = plan_calls(extras, MODEL_SIZE, cap)
    old = json.loads((FERRY / "manifest.json").read_text()) if (FERRY / "manifest.json").exists() else {}
    old_parts = {p["name"]: p for p in old.get("parts", [])}
    parts, offset = [], 0
    for i, size in enumerate(sizes, 1):
        cdir = FERRY / f"call{i}"
        cdir.mkdir(exist_ok=True)
        name = f"model.part{i:02d}"
        path = cdir / name
        prev = old_parts.get(name)
        if not (path.exists() and path.stat().st_size == size and prev and prev.get("offset") == offset):
            with open(gguf, "rb") as src, open(path, "wb") as dst:
                src.seek(offset)
                dst.write(src.read(size))
            prev = {"sha256": sha256(path)}
        parts.append({"name": name, "call": i, "offset": offset, "size": size, "sha256": prev["sha256"]})
        offset += size
    for stale in sorted(FERRY.glob("call*")):
        if stale.is_dir() and int(stale.name[4:]) > len(sizes):
            shutil.rmtree(stale)
    for i in range(1, len(sizes) + 1):  # leftovers of an earlier layout would travel too
        keep = {f"model.part{i:02d}", "manifest.json"} | ({"wheels", "data", "seeds.jsonl.gz"} if i == 1 else set())
        for p in (FERRY / f"call{i}").iterdir():
            if p.name not in keep:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    c1 = FERRY / "call1"
    for item in ("wheels", "data"):
        if (c1 / item).exists():
            shutil.rmtree(c1 / item)
        shutil.copytree(stage / item, c1 / item)
    shutil.copy2(stage / "seeds.jsonl.gz", c1 / "seeds.jsonl.gz")
    manifest = {"model": "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (embedded)", "model_sha256": MODEL_SHA256,
                "model_size": MODEL_SIZE, "parts": parts, "calls": len(sizes), "wheels": wheels,
                "seeds": info["seeds"]["seeds"], "tree_bytes": tree}
    (FERRY / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for i in range(1, len(sizes) + 1):
        shutil.copy2(FERRY / "manifest.json", FERRY / f"call{i}" / "manifest.json")
        total = sum(p.stat().st_size for p in (FERRY / f"call{i}").rglob("*") if p.is_file())
        if total + tree > TREE_LIMIT:
            fail(f"call{i} would send {(total + tree) / 2**20:.1f} MiB (> 64 MiB)")
    info["calls"] = len(sizes)
    info_path.write_text(json.dumps(info, indent=1))
    say(f"{info['seeds']['seeds']} seeds, {len(wheels)} wheels, model in {len(sizes)} parts; "
        f"tree {tree / 2**20:.1f} MiB")
    print_sequence(len(sizes))


def print_sequence(calls: int | None = None) -> None:
    if calls is None:
        m = FERRY / "manifest.json"
        if not m.exists():
            fail("run prepare first")
        calls = json.loads(m.read_text())["calls"]
    tree = tree_bytes()
    for i in range(1, calls + 1):
        total = sum(p.stat().st_size for p in (FERRY / f"call{i}").rglob("*") if p.is_file())
        if total + tree > TREE_LIMIT:
            fail(f"call{i} would now send {(total + tree) / 2**20:.1f} MiB (> 64 MiB; the tree grew): "
                 "run prepare again, it re-splits the model")
    sh = "bash benchmarks/reproduce_small.sh"
    seq = []
    for i in range(1, calls + 1):
        cmd = f"{sh} gpu-ferry"
        if i == calls:
            cmd += f" && {sh} gpu-setup && {sh} gpu-eval before"
        seq.append((cmd, [f".ferry/repro/call{i}"], "" if i < calls else
                    "joins + checks the model, installs wheels, exports bf16, samples the 'before' eval"))
    seq.append((f"{sh} gpu-generate", [".ferry/repro/state"],
                "repeat while it ends with INCOMPLETE (exit 3); --max-seeds N on the first one if time is short"))
    seq.append((f"{sh} gpu-execute", [".ferry/repro/state"], "repeat while INCOMPLETE"))
    seq.append((f"{sh} gpu-train", [".ferry/repro/state"], "full fine-tune, then the 'after' eval samples"))
    print("\nDevice calls, in order, one right after the other (the machine stays warm only "
          "~30 s after a call;\n it goes back after 30 minutes held: do not pause between calls). "
          "timeout_s=600 for each:")
    for k, (cmd, carry, note) in enumerate(seq, 1):
        print(f"  {k:2d}. run(command={cmd!r}, carry={json.dumps(carry)}, timeout_s={DEVICE_CALL_LIMIT_S})"
              + (f"   # {note}" if note else ""))
    print("\nEach GPU step leaves the whole run in $OUT/run.tar.gz; afterwards, on this machine:\n"
          f"  {sh} collect <files_at of the LAST call that returned run.tar.gz>\n"
          f"  {sh} score      # sanitise + score before/after with evalplus here\n"
          f"  {sh} report     # writes docs/results.md\n"
          "If the machine is lost midway: collect the latest snapshot (it lands in .ferry/repro/state, "
          "which the later calls carry), redo calls 1..N of the ferry, then go on where you were.")


# --------------------------------------------------------------------------------------
# GPU steps
# --------------------------------------------------------------------------------------

def cmd_gpu_ferry(a) -> None:
    ctx = gpu_ctx()
    ctx.ferry.mkdir(parents=True, exist_ok=True)
    moved = 0
    for cdir in sorted(FERRY.glob("call*")):
        for p in cdir.iterdir():
            dst = ctx.ferry / p.name
            if dst.exists() and p.is_dir():
                shutil.rmtree(dst)
            shutil.move(str(p), str(dst))
            moved += 1
    have = sorted(p.name for p in ctx.ferry.glob("model.part*"))
    say(f"moved {moved} items into {ctx.ferry}; model parts here: {', '.join(have) or 'none'}")


def _module_ok(name: str, env: dict | None = None) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                          env=env, check=False).returncode == 0


def cmd_gpu_setup(a) -> None:
    ctx = gpu_ctx()
    ctx.restore()
    ctx.run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mpath = ctx.ferry / "manifest.json"
    if not mpath.exists():
        fail(f"{mpath} missing: run gpu-ferry with the carry folders first")
    man = json.loads(mpath.read_text())
    gguf = ctx.work / "model.gguf"
    if not (gguf.exists() and gguf.stat().st_size == man["model_size"]):
        missing = [p["name"] for p in man["parts"] if not (ctx.ferry / p["name"]).exists()]
        if missing:
            fail(f"model parts missing in {ctx.ferry}: {', '.join(missing)} (calls "
                 f"{', '.join(str(p['call']) for p in man['parts'] if p['name'] in missing)})")
        with open(gguf.with_suffix(".tmp"), "wb") as dst:
            for p in man["parts"]:
                with open(ctx.ferry / p["name"], "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 24)
        got = sha256(gguf.with_suffix(".tmp"))
        if got != man["model_sha256"]:
            fail(f"joined model SHA-256 {got} != {man['model_sha256']}: a part was damaged")
        os.replace(gguf.with_suffix(".tmp"), gguf)
        for p in man["parts"]:
            (ctx.ferry / p["name"]).unlink()
    say(f"model {gguf}: SHA-256 ok")

    # wheels: only those the image cannot import, so its own packages are not shadowed
    missing = [dist for dist, mod in WHEELS.items() if not _module_ok(mod)]
    wheels = [w for w in sorted((ctx.ferry / "wheels").glob("*.whl"))
              if any(w.name.lower().startswith(d.replace("-", "_") + "-") for d in missing)]
    check = "import selfcodealign.config, selfcodealign.records, selfcodealign.ledger, rich"
    env = {**os.environ}
    for attempt in (wheels, sorted((ctx.ferry / "wheels").glob("*.whl"))):
        if attempt:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                            "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(GPU_SITE),
                            *map(str, attempt)], check=True)
        if subprocess.run([sys.executable, "-c", check], env=env, check=False).returncode == 0:
            break
    else:
        fail(f"the project does not import even with every carried wheel in {GPU_SITE}")
    env_info = {"missing_before": missing, "installed": [w.name for w in wheels], "python": sys.version,
                "gpu": gpu_name(), "datasketch": _module_ok("datasketch"),
                "sandbox": shutil.which("bwrap") and "bwrap" or (os.geteuid() == 0 and "unshare")}
    # The sandbox must work before generation spends the budget: a real program, the mode
    # that gpu-execute will force.
    sb = subprocess.run(cli("sandbox", "--check"), capture_output=True, text=True, check=False,
                        env={**os.environ, **sandbox_env()})
    env_info["sandbox_check"] = {"rc": sb.returncode, "output": (sb.stdout + sb.stderr)[-2000:]}
    (ctx.run / "gpu_env.json").write_text(json.dumps(env_info, indent=1))
    say(f"wheels: image lacked {missing or 'nothing'}")
    print(sb.stdout + sb.stderr, flush=True)
    if sb.returncode != 0 or not any(f"sandbox mode: {m}" in sb.stdout for m in ("bwrap", "unshare")):
        fail("no strong sandbox here (output above): model code must not run on this machine")
    if not (ctx.model / "config.json").exists():
        ctx.deadline = time.monotonic() + STEP_BUDGET_S
        if ctx.step("export", [sys.executable, "-m", "selfcodealign.gpu.export", str(gguf),
                               str(ctx.model)]) != "ok":
            fail("export failed (log above)")
    say(f"setup done in {time.perf_counter() - t0:.1f} s")
    ctx.pack()


def load_eval_problems(data_dir: Path, limit: int | None = None) -> list[tuple[str, dict]]:
    """(dataset, problem) pairs straight from the EvalPlus files: generation needs only the
    prompt and entry point, so the GPU machine does not need evalplus (nor `datasets`)."""
    out = []
    for dataset, pat in (("humaneval", "HumanEvalPlus-*.jsonl.gz"), ("mbpp", "MbppPlus-*.jsonl.gz")):
        files = sorted(data_dir.glob(pat))
        if not files:
            fail(f"no {pat} in {data_dir}")
        with gzip.open(files[-1], "rt") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        out += [(dataset, r) for r in (rows[:limit] if limit else rows)]
    return out


def eval_generate(model: Path, out_dir: Path, data_dir: Path, *, slots: int, max_tokens: int,
                  limit: int | None) -> dict:
    """Greedy samples under EvalPlus's protocol, as `selfcodealign eval` makes them (same
    requests, seeds and stop strings), raw: `score` sanitises and scores them."""
    from selfcodealign.backends import make_backend
    from selfcodealign.backends.base import SamplingParams
    from selfcodealign.config import BackendConfig
    from selfcodealign.evaluate import protocol
    from selfcodealign.ids import sampling_seed

    problems = load_eval_problems(data_dir, limit)
    raw_path = out_dir / "samples.raw.jsonl"
    if raw_path.exists() and count_lines(raw_path) == len(problems):
        say(f"{raw_path} is complete")
        return json.loads((out_dir / "meta.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    backend = make_backend(BackendConfig(kind="hf", model=str(model), batch_size=slots))
    load_s = time.perf_counter() - t0
    try:
        chat = backend.has_chat_template
        reqs = [protocol.make_request(p, ds, chat) for ds, p in problems]
        params = [SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=max_tokens, stop=r.stop,
                                 seed=sampling_seed(p["task_id"], "eval", 0, 0), prefill=r.prefill)
                  for r, (_, p) in zip(reqs, problems)]
        t1 = time.perf_counter()
        results = backend.generate([r.prompt for r in reqs], params)
        gen_s = time.perf_counter() - t1
        model_id, model_sha = backend.model_id, backend.model_sha256
    finally:
        backend.close()
    rows, tokens, finish = [], 0, {}
    for (ds, p), req, comps in zip(problems, reqs, results):
        c = comps[0]
        tokens += c.completion_tokens
        finish[c.finish_reason] = finish.get(c.finish_reason, 0) + 1
        rows.append({"task_id": p["task_id"], "dataset": ds, "entry_point": p["entry_point"],
                     "solution": protocol.solution_of(req, c.text), "raw": c.text,
                     "finish_reason": c.finish_reason, "completion_tokens": c.completion_tokens})
    meta = {"model": model_id, "model_dir": str(model), "sha256": model_sha, "backend": "hf",
            "protocol": "chat" if chat else "base", "temperature": 0.0, "max_tokens": max_tokens,
            "slots": slots, "tasks": len(rows), "load_s": round(load_s, 2), "gen_s": round(gen_s, 2),
            "completion_tokens": tokens, "tokens_per_s": round(tokens / gen_s, 1) if gen_s else None,
            "finish": finish, "gpu": gpu_name()}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
    tmp = raw_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, raw_path)
    say(f"eval samples: {len(rows)} tasks, {tokens} tokens in {gen_s:.1f} s "
        f"({meta['tokens_per_s']} tokens/s), load {load_s:.1f} s")
    return meta


def run_eval(ctx: Ctx, which: str) -> None:
    model = ctx.model if which == "before" else ctx.tuned
    ctx.need_model(model)
    t0 = time.perf_counter()
    eval_generate(model, ctx.run / f"eval-{which}", ctx.data_dir,
                  slots=8 if ctx.tiny else GPU_SLOTS, max_tokens=16 if ctx.tiny else EVAL_MAX_TOKENS,
                  limit=2 if ctx.tiny else None)
    with open(ctx.run / "phases.jsonl", "a") as f:
        f.write(json.dumps({"phase": f"eval-{which}", "seconds": round(time.perf_counter() - t0, 2),
                            "rc": 0, "finished": True, "gpu": gpu_name(), "host": platform.node(),
                            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "argv": ["bash", "benchmarks/reproduce_small.sh", "gpu-eval", which]}) + "\n")


def cmd_gpu_eval(a, ctx: Ctx | None = None) -> None:
    ctx = ctx or gpu_ctx()
    ctx.restore()
    run_eval(ctx, a.which)
    ctx.pack()


def stage_complete(path: Path) -> bool:
    st = path.with_name(path.name.replace(".jsonl", ".state.json"))
    try:
        return bool(json.loads(st.read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def must_finish(res: str, what: str, log: str) -> None:
    """Stop the device call after a step that did not finish: a failure (exit 1) or a
    budget run out (exit 3; the same command resumes)."""
    if res == "failed":
        fail(f"{what} failed; see {log} (a rerun resumes)", 1)
    if res == "out_of_time":
        say("INCOMPLETE: run this step again (it resumes)")
        raise SystemExit(3)


GEN_STAGES = (("concepts", "seeds.jsonl", "concepts.jsonl"),
              ("instructions", "concepts.jsonl", "instructions.jsonl"),
              ("responses", "instructions.jsonl", "responses.jsonl"))


def cmd_gpu_generate(a, ctx: Ctx | None = None) -> None:
    ctx = ctx or gpu_ctx()
    ctx.restore()
    ctx.need_model(ctx.model)
    ctx.run.mkdir(parents=True, exist_ok=True)
    if not (ctx.run / "seeds.jsonl").exists():
        # --max-seeds takes the first N (mining order is a seeded random sample); it is
        # fixed once generation has started
        limit = getattr(a, "max_seeds", None)
        with gzip.open(ctx.seeds, "rt") as src:
            lines = [x for x in src if x.strip()][:limit]
        (ctx.run / "seeds.jsonl.tmp").write_text("".join(lines))
        os.replace(ctx.run / "seeds.jsonl.tmp", ctx.run / "seeds.jsonl")
    sets = [x for s in ctx.gen_sets() for x in ("--set", s)]
    try:
        for name, src, dst in GEN_STAGES:
            if stage_complete(ctx.run / dst):
                continue
            limit = ["--limit", str(a.max_instructions)] if name == "responses" and getattr(
                a, "max_instructions", None) else []
            must_finish(ctx.step(name, cli(name, "--in", ctx.run / src, "--out", ctx.run / dst, "--backend", "hf",
                                           "--model", ctx.model, "--quiet", *limit, *sets)),
                        name, f"run/logs/{name}.log")
    finally:
        ctx.pack()
    say("generation complete")


def sandbox_env() -> dict:
    # The GPU image has no bubblewrap; as root, unshare gives the same isolation. Forced,
    # so a failure stops the step instead of falling back to the weaker rlimits mode.
    if os.geteuid() == 0 and not shutil.which("bwrap"):
        return {"SELFCODEALIGN_SANDBOX": "unshare"}
    return {}


def cmd_gpu_execute(a, ctx: Ctx | None = None) -> None:
    ctx = ctx or gpu_ctx()
    ctx.restore()
    src = ctx.run / "responses.jsonl"
    if ctx.tiny and count_lines(src) == 0:
        src = tiny_responses(ctx)
    if not stage_complete(ctx.run / "responses.jsonl") and not ctx.tiny:
        fail("responses are not complete: run gpu-generate first")
    env = sandbox_env()
    try:
        if not stage_complete(ctx.run / "executed.jsonl"):
            must_finish(ctx.step("execute", cli("execute", "--in", src, "--out", ctx.run / "executed.jsonl",
                                                "--quiet"), env=env),
                        "execute", "run/logs/execute.log")
        if ctx.step("select", cli("select", "--in", ctx.run / "executed.jsonl",
                                  "--out", ctx.run / "dataset.jsonl")) != "ok":
            fail("select failed; see run/logs/select.log", 1)
    finally:
        ctx.pack()
    say(f"dataset: {count_lines(ctx.run / 'dataset.jsonl')} examples")


# --------------------------------------------------------------------------------------
# shards: more of a run, each part self-contained, execution following generation
# --------------------------------------------------------------------------------------

FOLLOW_BATCH = 1000  # new responses that start an execute run while generation goes on


class ReadyResponses:
    """Responses whose instruction the responses ledger has committed, appended to
    ``responses.ready.jsonl`` as they land, so that execution follows generation instead
    of waiting for it. Only committed ones: the responses stage removes an interrupted
    instruction's outputs when it resumes."""

    def __init__(self, shard: Path) -> None:
        self.src, self.done = shard / "responses.jsonl", shard / "responses.done.jsonl"
        self.dst = shard / "responses.ready.jsonl"
        self.ino: int | None = None
        self.offset = self.done_offset = self.count = 0
        self.committed: set[str] = set()
        self.pending: list[tuple[str, bytes]] = []
        self.dst.write_bytes(b"")

    @staticmethod
    def _lines(path: Path, offset: int) -> tuple[list[bytes], int]:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next pass
        return [x for x in data[:end].splitlines() if x.strip()], offset + end

    def update(self) -> int:
        """Append the newly committed responses; returns how many."""
        if not (self.src.exists() and self.done.exists()):
            return 0
        st = self.src.stat()
        if st.st_ino != self.ino or st.st_size < self.offset:  # rewritten by a resume
            self.ino, self.offset, self.count, self.pending = st.st_ino, 0, 0, []
            self.dst.write_bytes(b"")
        lines, self.done_offset = self._lines(self.done, self.done_offset)
        self.committed.update(json.loads(x)["id"] for x in lines)
        lines, self.offset = self._lines(self.src, self.offset)
        self.pending += [(json.loads(x)["parent_id"], x) for x in lines]
        ready = [x for parent, x in self.pending if parent in self.committed]
        self.pending = [(parent, x) for parent, x in self.pending if parent not in self.committed]
        if ready:
            with open(self.dst, "ab") as f:
                f.write(b"\n".join(ready) + b"\n")
        self.count += len(ready)
        return len(ready)


def _shard_spec(a) -> dict:
    if bool(a.instructions) == bool(a.seeds):
        fail("give exactly one of --instructions A:B and --seeds FILE")
    if a.instructions:
        try:
            lo, hi = (int(x) for x in a.instructions.split(":"))
        except ValueError:
            fail(f"--instructions {a.instructions!r}: expected A:B (record numbers, from 0)")
        if not 0 <= lo < hi:
            fail(f"--instructions {a.instructions!r}: expected 0 <= A < B")
        return {"instructions": [lo, hi]}
    return {"seeds": a.seeds}


def _shard_inputs(ctx: Ctx, shard: Path, spec: dict) -> list[tuple[str, str, str]]:
    """Write the shard's first input file; return the generation stages it runs."""
    if "instructions" in spec:
        if not (shard / "instructions.jsonl").exists():
            if not stage_complete(ctx.run / "instructions.jsonl"):
                fail("the run's instructions are not complete: run gpu-generate first")
            lo, hi = spec["instructions"]
            path = ctx.run / "instructions.jsonl"
            if ctx.tiny and count_lines(path) == 0:  # random weights write no instruction
                path = ctx.run / "instructions.tiny.jsonl"
            with open(path) as src:
                lines = [x for x in src if x.strip()][lo:hi]
            if not lines:
                fail(f"no instructions in {lo}:{hi} (the run has {count_lines(ctx.run / 'instructions.jsonl')})")
            (shard / "instructions.jsonl.tmp").write_text("".join(lines))
            os.replace(shard / "instructions.jsonl.tmp", shard / "instructions.jsonl")
        return [GEN_STAGES[2]]
    if not (shard / "seeds.jsonl").exists():
        src = Path(spec["seeds"])
        src = src if src.is_absolute() else STATE / src
        if not src.exists():
            fail(f"{src} missing: put the seeds in {STATE} (it travels with every call)")
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rt") as f:
            lines = [x for x in f if x.strip()]
        # a seed the run already has (mined again from another corpus) is not a new seed
        have = set()
        if (ctx.run / "seeds.jsonl").exists():
            with open(ctx.run / "seeds.jsonl") as f:
                have = {json.loads(x)["id"] for x in f if x.strip()}
        fresh = [x for x in lines if json.loads(x)["id"] not in have]
        if len(fresh) < len(lines):
            say(f"{len(lines) - len(fresh)} of the new seeds are already in the run: left out")
        lines = fresh
        (shard / "seeds.jsonl.tmp").write_text("".join(lines))
        os.replace(shard / "seeds.jsonl.tmp", shard / "seeds.jsonl")
    return list(GEN_STAGES)


def cmd_gpu_shard(a, ctx: Ctx | None = None) -> None:
    """One more part of the run in run/shards/NAME: generation, execution following it,
    selection. Only its dataset and counts travel in the snapshot."""
    ctx = ctx or gpu_ctx()
    ctx.restore()
    ctx.need_model(ctx.model)
    shard = ctx.run / "shards" / a.name
    spec = _shard_spec(a)
    shard.mkdir(parents=True, exist_ok=True)
    spec_path = shard / "shard.json"
    old = json.loads(spec_path.read_text()) if spec_path.exists() else None
    if old is not None and old.get("spec") != spec:
        fail(f"shard {a.name} was started with {old.get('spec')}; use another name")
    if old is not None and old.get("complete") and not (shard / "responses.jsonl").exists():
        # done on an earlier machine: its responses did not travel, its dataset did
        say(f"shard {a.name} is complete: {count_lines(shard / 'dataset.jsonl')} examples")
        return
    spec_path.write_text(json.dumps({"spec": spec, "complete": False}, indent=1))
    sctx = Ctx(ctx.work, ctx.out, tiny=ctx.tiny, run=shard, phases=ctx.phases)
    sctx.deadline = ctx.deadline
    sets = [x for s in ctx.gen_sets() for x in ("--set", s)]
    cores = os.cpu_count() or 2
    env = sandbox_env()

    def execute_argv(src: Path, workers: int) -> list[str]:
        return cli("execute", "--in", src, "--out", shard / "executed.jsonl", "--quiet",
                   "--set", f"execute.workers={workers}")

    # At most one overlapped execute at a time, in the background: generation is watched
    # every few seconds, not only between execute runs.
    overlapped: list[Running] = []

    def settle() -> None:
        """Let the overlapped execute end (it must, before the final one or the snapshot)."""
        if overlapped:
            overlapped.pop().result()

    try:
        for name, src, dst in _shard_inputs(ctx, shard, spec):
            if stage_complete(shard / dst):
                continue
            follow = None
            if name == "responses":
                ready, started = ReadyResponses(shard), [0]

                def follow(ready=ready, started=started) -> None:
                    if overlapped and not overlapped[0].wait(0):
                        settle()
                    ready.update()
                    if not overlapped and ready.count - started[0] >= FOLLOW_BATCH and sctx.remaining() > 60:
                        started[0] = ready.count
                        r = sctx.launch(f"{a.name}/execute-overlapped", execute_argv(ready.dst, max(1, cores - 2)),
                                        env=env, budget=sctx.remaining() - 15, log_name="execute")
                        if r is not None:
                            overlapped.append(r)

            res = sctx.step(f"{a.name}/{name}", cli(name, "--in", shard / src, "--out", shard / dst,
                                                    "--backend", "hf", "--model", ctx.model, "--quiet", *sets),
                            while_running=follow)
            settle()
            must_finish(res, name, f"run/shards/{a.name}/logs/{name}.log")
        # Always: the overlapped runs saw only what was ready then (each marks the stage
        # complete), and a resumed execute skips what is done.
        src = shard / "responses.jsonl"
        if ctx.tiny and count_lines(src) == 0:
            src = ctx.run / "responses.tiny.jsonl"
        must_finish(sctx.step(f"{a.name}/execute", execute_argv(src, cores), env=env,
                              budget=sctx.remaining() - 15, log_name="execute"),
                    "execute", f"run/shards/{a.name}/logs/execute.log")
        _execute_stats(shard)
        if sctx.step(f"{a.name}/select", cli("select", "--in", shard / "executed.jsonl",
                                             "--out", shard / "dataset.jsonl")) != "ok":
            fail(f"select failed; see run/shards/{a.name}/logs/select.log", 1)
        spec_path.write_text(json.dumps({"spec": spec, "complete": True}, indent=1))
    finally:
        settle()
        ctx.pack()
    say(f"shard {a.name}: {count_lines(shard / 'dataset.jsonl')} examples")


def _execute_stats(shard: Path) -> None:
    """Verdict counts and the programs' summed run time, per verdict (small: it travels)."""
    stats: dict = {}
    with open(shard / "executed.jsonl") as f:
        for line in f:
            if line.strip():
                v = json.loads(line)["verdict"]
                e = stats.setdefault(v["status"], {"count": 0, "seconds": 0.0})
                e["count"] += 1
                e["seconds"] = round(e["seconds"] + float(v.get("duration") or 0.0), 3)
    (shard / "execute_stats.json").write_text(json.dumps(stats, indent=1))


def merged_dataset(ctx: Ctx) -> Path:
    """The run's dataset and every complete shard's, sanitised again as one: an example
    that duplicates one of an earlier part (or a benchmark) is dropped."""
    parts = [("run", ctx.run / "dataset.jsonl")] if (ctx.run / "dataset.jsonl").exists() else []
    for spec in sorted((ctx.run / "shards").glob("*/shard.json")) if (ctx.run / "shards").is_dir() else []:
        if json.loads(spec.read_text()).get("complete"):
            parts.append((spec.parent.name, spec.parent / "dataset.jsonl"))
    if len(parts) < 2:
        return parts[0][1] if parts else ctx.run / "dataset.jsonl"
    from selfcodealign.config import SelectConfig
    from selfcodealign.seeds import sanitize

    rows, counts, seen, repeated = [], {}, set(), 0
    for name, path in parts:
        got = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        counts[name] = len(got)
        # the same seed mined from two corpora gives the same example id (ids are hashes)
        repeated += sum(1 for r in got if r["id"] in seen)
        rows += [r for r in got if r["id"] not in seen and not seen.add(r["id"])]
    t0 = time.perf_counter()
    kept, dropped = sanitize([(r["id"], r["instruction"] + "\n" + r["response"]) for r in rows],
                             threshold=SelectConfig().dedup_threshold)
    dropped = {**dropped, "same_id": repeated}
    out = ctx.run / "dataset.merged.jsonl"
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] in kept))
    os.replace(tmp, out)
    info = {"parts": counts, "examples": len(kept), "dropped": dropped,
            "seconds": round(time.perf_counter() - t0, 2)}
    (ctx.run / "merge.json").write_text(json.dumps(info, indent=1))
    say(f"merged {counts} -> {len(kept)} examples (dropped {dropped})")
    return out


def cmd_gpu_train(a, ctx: Ctx | None = None) -> None:
    ctx = ctx or gpu_ctx()
    ctx.restore()
    ctx.need_model(ctx.model)
    data = merged_dataset(ctx)
    if count_lines(data) == 0:
        fail("no dataset yet: run gpu-execute first")
    try:
        if not (ctx.tuned / "train_config.json").exists():
            # samples of an earlier tuned model (in a restored snapshot) are not this one's
            stale = ctx.run / "eval-after"
            if stale.exists():
                shutil.rmtree(stale)
            extra = ["--max-steps", "2", "--examples-per-step", "2"] if ctx.tiny else []
            if a.epochs:
                extra += ["--epochs", str(a.epochs)]
            if ctx.step("train", cli("train", "--data", data, "--model", ctx.model, "--out", ctx.tuned,
                                     "--method", "full", "--overwrite", *extra)) != "ok":
                fail("training did not finish in this call; run gpu-train again (it starts over), "
                     "with --epochs 2 if it ran out of time", 1)
            shutil.copy2(ctx.tuned / "train_config.json", ctx.run / "train_config.json")
        run_eval(ctx, "after")
    finally:
        ctx.pack()


# --------------------------------------------------------------------------------------
# back on the CPU machine
# --------------------------------------------------------------------------------------

LOCAL_RUN = REPO / "runs" / "repro"


def cmd_collect(a) -> None:
    src = Path(a.files_at)
    tar = src if src.is_file() else next(iter(sorted(src.rglob("run.tar.gz"))), None)
    if tar is None:
        fail(f"no run.tar.gz under {src}")
    STATE.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tar, STATE / "run.tar.gz")
    if (LOCAL_RUN / "run").exists():
        shutil.rmtree(LOCAL_RUN / "run")
    LOCAL_RUN.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar) as t:
        t.extractall(LOCAL_RUN, filter="data")
    say(f"snapshot {tar} -> {STATE / 'run.tar.gz'} and {LOCAL_RUN / 'run'}")


def score(run: Path, data_dir: Path, limit: int | None = None) -> None:
    from selfcodealign.evaluate import protocol

    for which in ("before", "after"):
        d = run / f"eval-{which}"
        raw = d / "samples.raw.jsonl"
        if not raw.exists():
            say(f"no {raw}: skipped")
            continue
        rows = [json.loads(x) for x in raw.read_text().splitlines() if x.strip()]
        samples = d / "samples.jsonl"
        samples.write_text("".join(json.dumps({"task_id": r["task_id"], "solution": protocol.sanitize(
            r["solution"], r["entry_point"])}) + "\n" for r in rows))
        argv = cli("eval", "--samples", samples, "--benchmarks", "humaneval+,mbpp+", "--out", d / "score",
                   "--data-dir", data_dir)
        if limit:
            argv += ["--limit", str(limit)]
        say(shlex.join(argv))
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, cwd=REPO)
        say(f"scored {which} in {time.perf_counter() - t0:.0f} s")


def cmd_score(a) -> None:
    data = Path(a.eval_data) if a.eval_data else FERRY / "payload" / "data"
    score(LOCAL_RUN / "run", data)


def collect_figures(run: Path) -> dict:
    fig: dict = {"stages": {}, "phases": {}}
    saved = json.loads((run / "funnel.json").read_text()) if (run / "funnel.json").exists() else {}
    here = stage_summaries(run)
    fig["seeds"] = here.get("seeds", saved.get("seeds", 0))
    for name in ("concepts", "instructions", "responses", "execute"):
        # the snapshot may leave a big stage's files out; its counts are in funnel.json
        if name in here or name in saved:
            fig["stages"][name] = here.get(name) or saved[name]
    fig["left_out_of_snapshot"] = saved.get("left_out_of_snapshot", [])
    fig["dataset"] = count_lines(run / "dataset.jsonl")
    drops: dict = {}
    if (run / "dataset.drops.jsonl").exists():
        for line in (run / "dataset.drops.jsonl").read_text().splitlines():
            if line.strip():
                r = json.loads(line)["reason"]
                drops[r] = drops.get(r, 0) + 1
    fig["select_drops"] = drops
    if (run / "phases.jsonl").exists():
        for line in (run / "phases.jsonl").read_text().splitlines():
            if line.strip():
                p = json.loads(line)
                agg = fig["phases"].setdefault(p["phase"], {"seconds": 0.0, "calls": 0, "gpu": p.get("gpu")})
                agg["seconds"] = round(agg["seconds"] + p["seconds"], 1)
                agg["calls"] += 1
                argv = p.get("argv") or []
                if argv[1:3] == ["-m", "selfcodealign.cli"]:
                    argv = ["selfcodealign", *argv[3:]]
                elif argv[1:3] == ["-m", "selfcodealign.gpu.export"]:
                    argv = ["python", *argv[1:]]
                cmd = shlex.join(argv) if argv else f"bash benchmarks/reproduce_small.sh gpu-{p['phase']}"
                if cmd not in fig.setdefault("commands", []):
                    fig["commands"].append(cmd)
    for which in ("before", "after"):
        d = run / f"eval-{which}"
        if (d / "meta.json").exists():
            fig[f"eval_{which}_gen"] = json.loads((d / "meta.json").read_text())
        if (d / "score" / "results.json").exists():
            fig[f"eval_{which}"] = json.loads((d / "score" / "results.json").read_text())
    parts = []
    for spec in sorted((run / "shards").glob("*/shard.json")) if (run / "shards").is_dir() else []:
        d = spec.parent
        part = {"name": d.name, **json.loads(spec.read_text()), "dataset": count_lines(d / "dataset.jsonl"),
                "funnel": {**(json.loads((d / "funnel.json").read_text()) if (d / "funnel.json").exists()
                              else {}), **stage_summaries(d)}}
        if (d / "execute_stats.json").exists():
            part["execute_stats"] = json.loads((d / "execute_stats.json").read_text())
        parts.append(part)
    fig["parts"] = parts
    if (run / "merge.json").exists():
        fig["merge"] = json.loads((run / "merge.json").read_text())
    if (run / "train_config.json").exists():
        fig["train"] = json.loads((run / "train_config.json").read_text())
    if (run / "gpu_env.json").exists():
        fig["gpu_env"] = json.loads((run / "gpu_env.json").read_text())
    return fig


def _pct(res: dict | None, bench: str, kind: str) -> str:
    try:
        return f"{100 * res['benchmarks'][bench][kind]['pass@1']:.1f}"
    except (KeyError, TypeError):
        return "n/a"


def _parts_table(fig: dict, st: dict) -> list[str]:
    """The run and its shards: what each part generated, passed and kept."""
    lines = ["### Parts (the run, then its shards; `gpu-shard`)", "",
             "| part | input | instructions | responses | passed (rate) | examples |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    rows = [("run", f"instructions 0:{st.get('responses', {}).get('in', 0)} of the run",
             st.get("responses", {}), st.get("execute", {}), fig["dataset"])]
    for x in fig["parts"]:
        spec = x.get("spec", {})
        src = (f"instructions {spec['instructions'][0]}:{spec['instructions'][1]} of the run"
               if "instructions" in spec else f"{x['funnel'].get('seeds', '?')} new seeds ({spec.get('seeds')})")
        rows.append((x["name"], src + ("" if x.get("complete") else " (incomplete)"),
                     x["funnel"].get("responses", {}), x["funnel"].get("execute", {}), x["dataset"]))
    tot = [0, 0, 0, 0]
    for name, src, r, e, n in rows:
        vals = (r.get("in", 0), e.get("out", 0), e.get("passed", 0), n)
        tot = [a + b for a, b in zip(tot, vals)]
        rate = f"{100 * vals[2] / vals[1]:.1f}%" if vals[1] else "n/a"
        lines.append(f"| {name} | {src} | {vals[0]} | {vals[1]} | {vals[2]} ({rate}) | {n} |")
    rate = f"{100 * tot[2] / tot[1]:.1f}%" if tot[1] else "n/a"
    lines.append(f"| **all** | | {tot[0]} | {tot[1]} | {tot[2]} ({rate}) | {tot[3]} |")
    m = fig.get("merge")
    if m:
        d = ", ".join(f"{k} {v}" for k, v in sorted(m.get("dropped", {}).items()))
        lines += ["", (f"Merged and sanitised again as one dataset (an example that duplicates one of an "
                      f"earlier part or a benchmark is dropped): **{m['examples']} examples** ({d}).")]
    stats = [(x["name"], x["execute_stats"]) for x in fig["parts"] if x.get("execute_stats")]
    if stats:
        lines += ["", "Sandbox verdicts of the shards (count, and the programs' summed run time):", ""]
        for name, es in stats:
            lines.append(f"- {name}: " + ", ".join(f"{k} {v['count']} ({v['seconds']:.0f} s)"
                                                   for k, v in sorted(es.items())))
    return lines + [""]


def render_report(fig: dict, prep: dict) -> str:
    st = fig["stages"]
    ex = st.get("execute", {})
    passed, executed = ex.get("passed", 0), ex.get("out", 0)
    lines = ["## Figures (filled in by `benchmarks/reproduce_small.sh report`)", ""]
    gpu = next((p.get("gpu") for p in fig["phases"].values() if p.get("gpu") not in (None, "none")), "none")
    lines += [f"Card: {gpu}. Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    lines += ["### Funnel", "", "| stage | in | out | drops (by reason) |", "| --- | ---: | ---: | --- |"]
    lines.append(f"| seeds (mined on the CPU) | {prep.get('seeds', {}).get('funnel', {}).get('candidates', 'n/a')} "
                 f"candidates | {fig['seeds']} | see prepare.json funnel |")
    for name in ("concepts", "instructions", "responses", "execute"):
        s = st.get(name)
        if s:
            d = ", ".join(f"{k} {v}" for k, v in sorted(s.get("drops", {}).items())) or "-"
            lines.append(f"| {name} | {s['in']} | {s['out']} | {d} |")
    sd = ", ".join(f"{k} {v}" for k, v in sorted(fig["select_drops"].items())) or "-"
    # every instruction is either kept, without a passing response, or sanitised away
    n_ins = fig["dataset"] + sum(fig["select_drops"].values())
    lines.append(f"| select (+ decontamination, dedup) | {n_ins} instructions | {fig['dataset']} | {sd} |")
    rate = f"{100 * passed / executed:.1f}%" if executed else "n/a"
    lines += ["", f"Responses passing their own tests in the sandbox: {passed} of {executed} ({rate}).", ""]
    if fig.get("parts"):
        lines += _parts_table(fig, st)
    lines += ["### Time and throughput", "", "| phase | wall (s, all calls) | calls | tokens | tokens/s |",
              "| --- | ---: | ---: | ---: | ---: |"]
    part_funnels = {x["name"]: x["funnel"] for x in fig.get("parts", [])}
    for name, p in fig["phases"].items():
        part, _, stage = name.rpartition("/")
        s = part_funnels.get(part, {}).get(stage, {}) if part else st.get(name, {})
        tok = s.get("completion_tokens", "")
        tps = s.get("tokens_per_s", "")
        if name.startswith("eval-"):
            g = fig.get(f"eval_{name[5:]}_gen", {})
            tok, tps = g.get("completion_tokens", ""), g.get("tokens_per_s", "")
        lines.append(f"| {name} | {p['seconds']} | {p['calls']} | {tok} | {tps} |")
    lines += ["", ("Tokens/s of a generation stage: generated tokens (to each sequence's end) over the "
                   "stage's own wall time (from the model loaded to the last result, CUDA-graph capture included); eval rows: over generation time only."), ""]
    t = fig.get("train")
    if t:
        keep = {k: t.get(k) for k in ("base_model", "method", "examples", "dropped", "steps", "epochs",
                                      "epochs_done", "examples_per_step", "lr", "precision", "saved_dtype",
                                      "final_loss", "seconds") if k in t}
        keep["lr"] = keep.get("lr") or "default (1e-5 full, 2e-4 LoRA)"
        hist = t.get("history") or []
        if hist:
            tok, sec = sum(h.get("tokens", 0) for h in hist), sum(h.get("seconds", 0) for h in hist)
            keep["first_loss"] = hist[0].get("loss")
            keep["trained_tokens"] = tok
            keep["tokens_per_s"] = round(tok / sec) if sec else None
        lines += ["### Training", "", "```json", json.dumps(keep, indent=1), "```", ""]
    lines += ["### Before and after (greedy pass@1, EvalPlus 0.3.1 checker, same hf backend, bf16)", "",
              "| model | HumanEval | HumanEval+ | MBPP | MBPP+ |", "| --- | ---: | ---: | ---: | ---: |"]
    for which, label in (("before", "Qwen2.5-Coder-0.5B-Instruct (GGUF -> bf16)"),
                         ("after", "same, fine-tuned on the dataset above")):
        r = fig.get(f"eval_{which}")
        lines.append(f"| {label} | {_pct(r, 'humaneval', 'base')} | {_pct(r, 'humaneval', 'plus')} | "
                     f"{_pct(r, 'mbpp', 'base')} | {_pct(r, 'mbpp', 'plus')} |")
    lines += ["", "### Exact commands", "", "```bash"]
    if prep.get("seeds", {}).get("command"):
        lines.append(f"# CPU machine ({prep['seeds'].get('seconds', '?')} s)")
        lines.append(prep["seeds"]["command"])
    lines.append("# GPU machine, as run (first time each; reruns resumed them)")
    for argv in fig.get("commands", []):
        lines.append(argv)
    lines += ["```", "", "Raw figures: `runs/repro/figures.json` (from the snapshot in `.ferry/repro/state`).", ""]
    return "\n".join(lines)


BEGIN, END = "<!-- repro-figures:begin -->", "<!-- repro-figures:end -->"


def write_report(run: Path, target: Path, prep_path: Path = FERRY / "prepare.json") -> None:
    prep = json.loads(prep_path.read_text()) if prep_path.exists() else {}
    fig = collect_figures(run)
    (run.parent / "figures.json").write_text(json.dumps({"figures": fig, "prepare": prep}, indent=1))
    block = f"{BEGIN}\n{render_report(fig, prep)}\n{END}"
    text = target.read_text() if target.exists() else f"# Results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    target.write_text(text)
    say(f"wrote {target}")


def cmd_report(a) -> None:
    if not (LOCAL_RUN / "run" / "phases.jsonl").exists():
        fail(f"no run in {LOCAL_RUN / 'run'}: collect a snapshot first")
    write_report(LOCAL_RUN / "run", REPO / "docs" / "results.md")


# --------------------------------------------------------------------------------------
# tiny: the whole chain on CPU with a random-weights model
# --------------------------------------------------------------------------------------

def make_tiny_model(dest: Path, tokenizer_dir: Path | None) -> None:
    if (dest / "config.json").exists():
        return
    import torch
    import transformers

    if tokenizer_dir and (tokenizer_dir / "tokenizer.json").exists():
        tok = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    else:  # the embedded GGUF's tokenizer (parses the GGUF header only)
        from selfcodealign.train.modelio import load_tokenizer, resolve_source

        tok = load_tokenizer(resolve_source(None))
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=8192, tie_word_embeddings=True,
                                   eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)


def tiny_responses(ctx: Ctx) -> Path:
    """A random-weights model writes nothing parseable, so the tiny run hands execute two
    made-up responses per seed (one right, one wrong) to exercise execute/select/train."""
    from selfcodealign.ids import make_id
    from selfcodealign.records import GenMeta, Instruction, Response, Seed

    gen = GenMeta(model="tiny", backend="hf", prompt_style="chat", temperature=0.7, top_p=1.0,
                  max_tokens=8, seed=0, finish_reason="stop")
    out = []
    seeds = [Seed.model_validate_json(x) for x in (ctx.run / "seeds.jsonl").read_text().splitlines() if x.strip()]
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    for k, s in enumerate(seeds):
        w = words[k % len(words)]
        ins = Instruction(id=make_id(s.id, "tiny-ins"), parent_id=make_id(s.id, "tiny-c"), seed_id=s.id,
                          seed_source=s.source, seed_path=s.path, concepts=["strings"], category="function",
                          difficulty="easy", instruction=f"Write `{w}_{k}(x)` returning x * {k + 2} plus "
                          f"the length of the word {w!r}; the helper seed was {s.name}.", raw="", gen=gen)
        for i, body in enumerate((f"x * {k + 2} + {len(w)}", "0")):
            code = f"def {w}_{k}(x):\n    return {body}\n"
            tests = f"assert {w}_{k}(3) == {3 * (k + 2) + len(w)}\n"
            out.append(Response(id=make_id(ins.id, "tiny-r", i), parent_id=ins.id, sample_index=i,
                                instruction=ins, response=f"```python\n{code}```\n\n```python\n{tests}```",
                                code=code, tests=tests, raw="", gen=gen))
    path = ctx.run / "responses.tiny.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in out))
    (ctx.run / "instructions.tiny.jsonl").write_text(
        "".join(r.instruction.model_dump_json() + "\n" for r in out if r.sample_index == 0))
    say(f"tiny: {len(out)} made-up responses in {path}")
    return path


def cmd_tiny(a) -> None:
    """Each GPU step's code path, on CPU, small: concepts/instructions/responses/eval
    generate with the hf backend (our engine, no CUDA graphs) from a random 2-layer Qwen2."""
    root = REPO / "runs" / "repro-tiny"
    if root.exists() and not a.keep:
        shutil.rmtree(root)
    ctx = Ctx(root / "w", root / "out", tiny=True)
    ctx.ferry.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # prepare's pieces, small: 3 seeds from the standard library, the benchmark data
    mined = mine_seeds(a.corpus or "stdlib", 3, ctx.ferry / "seeds-mined", None)
    (root / "prepare.json").write_text(json.dumps({"seeds": mined}, indent=1))
    with open(ctx.ferry / "seeds-mined" / "seeds.jsonl", "rb") as src, gzip.open(ctx.seeds, "wb") as dst:
        shutil.copyfileobj(src, dst)
    (ctx.data_dir).mkdir(exist_ok=True)
    for p in Path(a.eval_data).glob("*.jsonl.gz"):
        shutil.copy2(p, ctx.data_dir / p.name)
    plan = plan_calls(8 << 20, 491_400_064, TREE_LIMIT - tree_bytes() - TREE_MARGIN)
    say(f"ferry plan for the real model: {len(plan)} calls, first part {plan[0] / 2**20:.1f} MiB")
    make_tiny_model(ctx.model, Path(a.tokenizer) if a.tokenizer else None)
    ns = argparse.Namespace(which="before", epochs=None)
    cmd_gpu_eval(ns, ctx)
    cmd_gpu_generate(ns, ctx)
    cmd_gpu_execute(ns, ctx)
    # one shard of each kind: the run's instructions again, and the carried seeds as "new" ones
    cmd_gpu_shard(argparse.Namespace(name="part-i", instructions="0:2", seeds=None), ctx)
    cmd_gpu_shard(argparse.Namespace(name="part-s", instructions=None, seeds=str(ctx.seeds)), ctx)
    cmd_gpu_train(ns, ctx)
    score(ctx.run, ctx.data_dir, limit=2)
    write_report(ctx.run, root / "results.md", root / "prepare.json")
    say(f"tiny run done in {time.perf_counter() - t0:.0f} s: {root / 'results.md'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    default_data = os.environ.get("SELFCODEALIGN_EVAL_DATA", str(REPO.parent / "shared" / "data"))
    p = sub.add_parser("prepare", help="CPU: seeds, wheels, carry folders; prints the device calls")
    p.add_argument("--corpus", default=str(REPO / ".venv" / "lib" / "python3.11" / "site-packages"),
                   help="seed corpus (folders, comma-separated); default: this venv's site-packages")
    p.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds to mine (default {SEEDS})")
    p.add_argument("--min-seeds", type=int, default=3000)
    p.add_argument("--workers", type=int, help="mining processes (default: all cores)")
    p.add_argument("--eval-data", default=default_data, help="folder with the EvalPlus .jsonl.gz files")
    p.set_defaults(func=cmd_prepare)
    sub.add_parser("sequence", help="print the device calls again").set_defaults(func=lambda a: print_sequence())
    sub.add_parser("gpu-ferry").set_defaults(func=cmd_gpu_ferry)
    sub.add_parser("gpu-setup").set_defaults(func=cmd_gpu_setup)
    p = sub.add_parser("gpu-eval")
    p.add_argument("which", choices=["before", "after"])
    p.set_defaults(func=cmd_gpu_eval)
    p = sub.add_parser("gpu-generate")
    p.add_argument("--max-seeds", type=int, help="use only the first N carried seeds (first call only)")
    p.add_argument("--max-instructions", type=int,
                   help="responses for the first N instructions only (the same N on every call)")
    p.set_defaults(func=cmd_gpu_generate)
    p = sub.add_parser("gpu-execute")
    p.add_argument("--here", action="store_true", help="on this (CPU) machine, in runs/repro/run")
    p.set_defaults(func=lambda a: cmd_gpu_execute(a, Ctx(LOCAL_RUN, None) if a.here else None))
    p = sub.add_parser("gpu-shard", help="GPU: one more part of the run (run/shards/NAME)")
    p.add_argument("name")
    p.add_argument("--instructions", metavar="A:B", help="the run's instructions A..B-1 (from 0)")
    p.add_argument("--seeds", metavar="FILE", help="new seeds (JSONL[.gz], relative to .ferry/repro/state)")
    p.set_defaults(func=cmd_gpu_shard)
    p = sub.add_parser("gpu-train")
    p.add_argument("--epochs", type=float, help="default: the paper's recipe (4)")
    p.set_defaults(func=cmd_gpu_train)
    p = sub.add_parser("collect", help="CPU: take run.tar.gz from a device reply")
    p.add_argument("files_at")
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("score", help="CPU: sanitise and score the eval samples")
    p.add_argument("--eval-data", help="default: the folder prepare copied")
    p.set_defaults(func=cmd_score)
    sub.add_parser("report", help="CPU: write docs/results.md").set_defaults(func=cmd_report)
    p = sub.add_parser("tiny", help="CPU: all steps on a tiny random model, 3 seeds")
    p.add_argument("--corpus", help="seed source (default: the standard library)")
    p.add_argument("--tokenizer", default=str(REPO / ".ferry" / "qwen-cfg"),
                   help="a Qwen2.5 tokenizer folder (default .ferry/qwen-cfg; else the GGUF's)")
    p.add_argument("--eval-data", default=default_data)
    p.add_argument("--keep", action="store_true", help="resume the previous tiny run")
    p.set_defaults(func=cmd_tiny)
    a = ap.parse_args(argv)
    a.func(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
