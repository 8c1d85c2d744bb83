"""Moving files to and from this workplace's lent GPU machine; everything that computes
there is a product command (the sequence is in docs/results.md).

That machine runs one command of at most 10 minutes at a time, takes at most 64 MiB of
files per command, keeps /tmp only while warm (30 s after a call), returns at most 8
files of 16 MiB, and reaches no network. So:

  CPU  prepare --seeds FILE [--model GGUF]
                              split the embedded GGUF (or another) into .ferry/callN folders (each call,
                              tree included, under 64 MiB); call 1 also carries the cp312
                              wheels the GPU image lacks and the seeds file; print the calls
  GPU  ferry                  move the carried call folder's files into /tmp/w/ferry
  GPU  setup                  join the model and check its SHA-256, install the wheels into
                              /tmp/site, `selfcodealign export` it to /tmp/w/model, check
                              that a strong sandbox works there
  GPU  wheels FOLDER          only the wheels part of setup, from a carried folder (for a
                              job that needs no model: one call)
  GPU  start 'COMMANDS'       run COMMANDS as a background job (it outlives the call while
                              the machine is warm), log in /tmp/w/job
  GPU  wait SECONDS           wait up to SECONDS for the job; print its log's tail
  GPU  pack PATH...           PATHs as one tar.gz cut into volumes of 15 MiB in $OUT
  CPU  collect FILES_AT DEST  join the volumes that came back and unpack them

`bash tools/reproduce_small.sh cli ARGS` runs `selfcodealign ARGS` with the wheels
that setup installed (on the GPU machine) or with the venv (here).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FERRY = REPO / ".ferry"  # git-ignored; each callN folder is one call's `carry`
WORK = Path("/tmp/w")  # on the GPU machine
SITE = Path("/tmp/site")
CALL_LIMIT = 64 << 20  # what one call may carry, tree included
MARGIN = 2 << 20  # room for the tree to grow between prepare and the calls
VOLUME = 15 << 20  # a file the device tool brings back: at most 16 MiB
MAX_VOLUMES = 4  # and 64 MiB together

# What the GPU image (Python 3.12, torch, transformers, numpy, ...) may lack; the
# versions are those installed here. setup installs only the ones it cannot import.
WHEELS = {  # distribution: import name
    "pydantic": "pydantic", "pydantic-core": "pydantic_core", "annotated-types": "annotated_types",
    "typing-inspection": "typing_inspection", "typing-extensions": "typing_extensions",
    "pyyaml": "yaml", "rich": "rich", "markdown-it-py": "markdown_it", "mdurl": "mdurl",
    "pygments": "pygments", "gguf": "gguf", "datasketch": "datasketch",
    # evalplus's checker, so that `eval` scores on the GPU machine's 16 cores
    "evalplus": "evalplus", "tempdir": "tempdir", "wget": "wget", "appdirs": "appdirs",
    "termcolor": "termcolor", "tree-sitter": "tree_sitter", "tree-sitter-python": "tree_sitter_python",
    "psutil": "psutil", "multipledispatch": "multipledispatch", "fire": "fire",
}
# evalplus.data imports `datasets` for loaders that scoring never calls; the image has no
# `datasets`, and its wheel pins pyarrow and huggingface_hub versions that would shadow the
# image's own. Where it cannot be imported, setup puts this stand-in on the path instead.
DATASETS_STANDIN = (
    '"""Stand-in written by tools/reproduce_small.py setup: not the datasets library."""\n'
    "def load_dataset(*args, **kwargs):\n"
    "    raise RuntimeError('datasets is not installed on this machine')\n"
)
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def plan_calls(extras: int, model_size: int, cap: int) -> list[int]:
    """Model bytes per call: the first call also carries ``extras`` bytes."""
    sizes, left, room = [], model_size, cap - extras
    while left > 0:
        take = min(left, room)
        sizes.append(take)
        left -= take
        room = cap
    return sizes


def tree_bytes() -> int:
    """What every call sends besides its carry: tracked and untracked-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    return sum((REPO / n.decode()).stat().st_size for n in names if n and (REPO / n.decode()).is_file())


def fetch_wheels(dest: Path) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    dest.mkdir(parents=True, exist_ok=True)
    for dist in WHEELS:
        try:
            ver = version(dist)
        except PackageNotFoundError:
            fail(f"{dist} is not installed here: install the project's extras first")
        stem = dist.replace("-", "_").lower()
        if not any(p.name.lower().startswith(f"{stem}-{ver}-") for p in dest.glob("*.whl")):
            argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
            for plat in PLATFORMS:
                argv += ["--platform", plat]
            got = subprocess.run(argv + [f"{dist}=={ver}"], capture_output=True, text=True)
            if got.returncode != 0:  # an sdist only (tempdir, wget): build its pure wheel here
                built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest),
                                        f"{dist}=={ver}"], capture_output=True, text=True)
                if built.returncode != 0 or not any(p.name.lower().startswith(f"{stem}-{ver}-") and
                                                    p.name.endswith("-none-any.whl") for p in dest.glob("*.whl")):
                    fail(f"no wheel for {dist}=={ver} on Python 3.12: {(got.stderr or built.stderr).strip()[-300:]}")
    return sorted(p.name for p in dest.glob("*.whl"))


def cmd_prepare(a) -> None:
    from selfcodealign.models.embedded import MODEL_SHA256, MODEL_SIZE, embedded_model_path

    if not a.seeds.is_file():
        fail(f"seeds file not found: {a.seeds} (make one with `selfcodealign seeds`)")
    gguf = a.model or embedded_model_path()
    if not gguf.is_file():
        fail(f"model file not found: {gguf}")
    model_sha256, model_size = sha256(gguf), gguf.stat().st_size
    if a.model is None and (model_size, model_sha256) != (MODEL_SIZE, MODEL_SHA256):
        fail(f"{gguf} is not the embedded model (size or SHA-256)")
    for old in FERRY.glob("call*"):
        shutil.rmtree(old)
    first = FERRY / "call1"
    wheels = fetch_wheels(FERRY / "wheels")  # kept between prepares: a download cache
    shutil.copytree(FERRY / "wheels", first / "wheels")
    with open(a.seeds, "rb") as src, gzip.open(first / "seeds.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    extras = sum(p.stat().st_size for p in first.rglob("*") if p.is_file())
    sizes = plan_calls(extras, model_size, CALL_LIMIT - tree_bytes() - MARGIN)
    parts = []
    with open(gguf, "rb") as src:
        for i, size in enumerate(sizes, 1):
            (FERRY / f"call{i}").mkdir(exist_ok=True)
            name = f"model.part{i:02d}"
            (FERRY / f"call{i}" / name).write_bytes(src.read(size))
            parts.append({"name": name, "size": size})
    manifest = {"model_sha256": model_sha256, "model_size": model_size, "parts": parts, "wheels": wheels}
    (first / "manifest.json").write_text(json.dumps(manifest, indent=1))
    sh = "bash tools/reproduce_small.sh"
    print(f"{len(sizes)} calls, back to back (the machine stays warm ~30 s after each):")
    for i in range(1, len(sizes) + 1):
        cmd = f"{sh} ferry" + (f" && {sh} setup" if i == len(sizes) else "")
        print(f"  run(command={cmd!r}, carry=[\".ferry/call{i}\"], timeout_s=600)")
    print("then the product commands of docs/results.md, each as "
          f"`{sh} cli ...`, and `{sh} pack DIR...` to bring results back")


def cmd_ferry(a) -> None:
    dest = WORK / "ferry"
    dest.mkdir(parents=True, exist_ok=True)
    for cdir in sorted(FERRY.glob("call*")):
        for p in cdir.iterdir():
            if (dest / p.name).is_dir():
                shutil.rmtree(dest / p.name)
            shutil.move(str(p), str(dest / p.name))
    print("in /tmp/w/ferry: " + ", ".join(sorted(p.name for p in dest.iterdir())), flush=True)


def _imports(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def install_wheels(folder: Path) -> None:
    """Into /tmp/site, the wheels of ``folder`` that the image cannot import (so that its
    own packages are not shadowed), and the ``datasets`` stand-in where needed."""
    missing = [d for d, mod in WHEELS.items() if not _imports(mod)]
    wheels = [w for w in sorted(folder.glob("*.whl"))
              if any(w.name.lower().startswith(d.replace("-", "_") + "-") for d in missing)]
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--no-compile", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
    print(f"wheels installed: {', '.join(w.name for w in wheels) or 'none needed'}", flush=True)
    if not _imports("datasets"):
        (SITE / "datasets").mkdir(parents=True, exist_ok=True)
        (SITE / "datasets" / "__init__.py").write_text(DATASETS_STANDIN)
        print("datasets: stand-in for evalplus's import (scoring never calls it)", flush=True)


def cmd_wheels(a) -> None:
    install_wheels(a.folder)


def cmd_setup(a) -> None:
    ferry = WORK / "ferry"
    if not (ferry / "manifest.json").is_file():
        fail("no manifest in /tmp/w/ferry: make the ferry calls first (call 1 carries it)")
    man = json.loads((ferry / "manifest.json").read_text())
    gguf = WORK / "model.gguf"
    if not (gguf.is_file() and gguf.stat().st_size == man["model_size"]):
        missing = [p["name"] for p in man["parts"] if not (ferry / p["name"]).is_file()]
        if missing:
            fail(f"model parts missing: {', '.join(missing)}")
        with open(gguf.with_suffix(".tmp"), "wb") as dst:
            for p in man["parts"]:
                with open(ferry / p["name"], "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 24)
        if sha256(gguf.with_suffix(".tmp")) != man["model_sha256"]:
            fail("the joined model's SHA-256 is wrong: a part was damaged; redo the ferry calls")
        os.replace(gguf.with_suffix(".tmp"), gguf)
    print(f"{gguf}: SHA-256 ok", flush=True)
    install_wheels(ferry / "wheels")
    if (ferry / "seeds.jsonl.gz").is_file():
        with gzip.open(ferry / "seeds.jsonl.gz", "rb") as src, open(WORK / "seeds.jsonl", "wb") as dst:
            shutil.copyfileobj(src, dst)
    cli = [sys.executable, "-m", "selfcodealign.cli"]
    check = subprocess.run(cli + ["sandbox", "--check"], capture_output=True, text=True)
    print(check.stdout + check.stderr, flush=True)
    if not any(f"sandbox mode: {m}" in check.stdout for m in ("bwrap", "unshare")):
        fail("no strong sandbox here: model code must not run on this machine")
    if not (WORK / "model" / "config.json").is_file():
        if subprocess.run(cli + ["export", str(gguf), str(WORK / "model")]).returncode != 0:
            fail("export failed (output above)")


class _Volumes:
    """A write-only stream cut into files ``results.tar.gz.NN`` of ``volume`` bytes."""

    def __init__(self, out: Path, volume: int) -> None:
        self.out, self.volume, self.k, self.f = out, volume, 0, None
        self.overflow = False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view and not self.overflow:
            if self.f is None or self.f.tell() >= self.volume:
                if self.f is not None:
                    self.f.close()
                    self.f = None
                if self.k == MAX_VOLUMES:
                    self.overflow = True
                    break
                self.f = open(self.out / f"results.tar.gz.{self.k:02d}", "wb")
                self.k += 1
            n = min(len(view), self.volume - self.f.tell())
            self.f.write(view[:n])
            view = view[n:]
        return len(data)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


def pack(paths: list[Path], out: Path, volume: int = VOLUME) -> int:
    """Every file under ``paths`` (folders or files, named from their parents' common
    folder, so that two files of one name in different folders both come back) as one
    tar.gz stream cut into at most MAX_VOLUMES files of ``volume`` bytes, so that a large
    file comes back too; returns the volumes written. Too much for them: an error, and
    nothing written."""
    root = os.path.commonpath([str(Path(p).absolute().parent) for p in paths])
    vols = _Volumes(out, volume)
    with tarfile.open(fileobj=vols, mode="w|gz") as tar:
        for p in paths:
            tar.add(p, arcname=os.path.relpath(Path(p).absolute(), root))
            if vols.overflow:
                break
    vols.close()
    if vols.overflow:
        for v in out.glob("results.tar.gz.*"):
            v.unlink()
        fail(f"{', '.join(map(str, paths))}: more than {MAX_VOLUMES} volumes of {volume >> 20} MiB compressed; "
             "pack fewer paths per call")
    return vols.k


def cmd_pack(a) -> None:
    out = Path(os.environ.get("OUT") or fail("$OUT is not set: pack runs on the GPU machine"))
    missing = [p for p in a.paths if not Path(p).exists()]
    if missing:
        fail(f"not found: {', '.join(missing)}")
    k = pack([Path(p) for p in a.paths], out)
    print(f"packed into {k} volume(s) of at most {VOLUME >> 20} MiB", flush=True)


class _Joined:
    """The volumes read back as one stream."""

    def __init__(self, volumes: list[Path]) -> None:
        self.files = [open(v, "rb") for v in volumes]

    def read(self, n: int = -1) -> bytes:
        chunks = []
        while self.files and (n < 0 or n > 0):
            data = self.files[0].read(n)
            if not data:
                self.files.pop(0).close()
                continue
            chunks.append(data)
            n -= len(data) if n > 0 else 0
        return b"".join(chunks)


def cmd_collect(a) -> None:
    volumes = sorted(Path(a.files_at).rglob("results.tar.gz.*"))
    if not volumes:
        fail(f"no results.tar.gz.NN volumes under {a.files_at}")
    a.dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=_Joined(volumes), mode="r|gz") as tar:
        tar.extractall(a.dest, filter="data")
    print(f"unpacked {len(volumes)} volume(s) into {a.dest}")


JOB = WORK / "job"  # on the GPU machine: the background job's log and exit status


def cmd_start(a) -> None:
    """Start ``a.command`` as a job of its own session: the device tool ends a command's
    processes when the call returns, not those of another session."""
    JOB.mkdir(parents=True, exist_ok=True)
    if (JOB / "pid").exists() and not (JOB / "rc").exists():
        fail("a job is running already (wait for it)")
    for name in ("rc", "log"):
        (JOB / name).unlink(missing_ok=True)
    script = f"({a.command}) >{JOB / 'log'} 2>&1; echo $? >{JOB / 'rc'}"
    proc = subprocess.Popen(["bash", "-c", script], start_new_session=True, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (JOB / "pid").write_text(str(proc.pid))
    print(f"started job {proc.pid}: {a.command}", flush=True)


def cmd_wait(a) -> None:
    """Wait up to ``a.seconds`` for the job, then print its log's tail and status."""
    import time

    t0 = time.monotonic()
    while not (JOB / "rc").exists() and time.monotonic() - t0 < a.seconds:
        time.sleep(2)
    log = (JOB / "log").read_text(errors="replace") if (JOB / "log").exists() else ""
    print("\n".join(log.splitlines()[-a.lines:]))
    rc = (JOB / "rc").read_text().strip() if (JOB / "rc").exists() else None
    print(f"job: {'running' if rc is None else 'exit ' + rc} after {time.monotonic() - t0:.0f} s of waiting",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--seeds", type=Path, required=True, help="a seeds.jsonl from `selfcodealign seeds`")
    p.add_argument("--model", type=Path, help="another GGUF to carry (default: the embedded model)")
    sub.add_parser("ferry")
    sub.add_parser("setup")
    p = sub.add_parser("wheels")
    p.add_argument("folder", type=Path)
    p = sub.add_parser("pack")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("collect")
    p.add_argument("files_at", type=Path)
    p.add_argument("dest", type=Path)
    p = sub.add_parser("start")
    p.add_argument("command")
    p = sub.add_parser("wait")
    p.add_argument("seconds", type=float)
    p.add_argument("--lines", type=int, default=40)
    a = ap.parse_args(argv)
    {"prepare": cmd_prepare, "ferry": cmd_ferry, "setup": cmd_setup, "pack": cmd_pack,
     "collect": cmd_collect, "start": cmd_start, "wait": cmd_wait, "wheels": cmd_wheels}[a.step](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
