"""Moving files to and from this workplace's lent GPU machine; everything that computes
there is a product command (the sequence is in docs/results.md).

That machine runs one command of at most 10 minutes at a time, takes at most 64 MiB of
files per command, keeps /tmp only while warm (30 s after a call), returns at most 8
files of 16 MiB, and reaches no network. So:

  CPU  prepare --seeds FILE   split the embedded GGUF into .ferry/callN folders (each call,
                              tree included, under 64 MiB); call 1 also carries the cp312
                              wheels the GPU image lacks and the seeds file; print the calls
  GPU  ferry                  move the carried call folder's files into /tmp/w/ferry
  GPU  setup                  join the model and check its SHA-256, install the wheels into
                              /tmp/site, `selfcodealign export` it to /tmp/w/model, check
                              that a strong sandbox works there
  GPU  pack DIR...            DIRs as tar.gz volumes of at most 15 MiB into $OUT
  CPU  collect FILES_AT DEST  unpack the volumes that came back

`bash benchmarks/reproduce_small.sh cli ARGS` runs `selfcodealign ARGS` with the wheels
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
MAX_VOLUMES = 8

# What the GPU image (Python 3.12, torch, transformers, numpy, ...) may lack; the
# versions are those installed here. setup installs only the ones it cannot import.
WHEELS = {  # distribution: import name
    "pydantic": "pydantic", "pydantic-core": "pydantic_core", "annotated-types": "annotated_types",
    "typing-inspection": "typing_inspection", "typing-extensions": "typing_extensions",
    "pyyaml": "yaml", "rich": "rich", "markdown-it-py": "markdown_it", "mdurl": "mdurl",
    "pygments": "pygments", "gguf": "gguf", "datasketch": "datasketch",
}
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
            subprocess.run(argv + [f"{dist}=={ver}"], check=True)
    return sorted(p.name for p in dest.glob("*.whl"))


def cmd_prepare(a) -> None:
    from selfcodealign.embedded import MODEL_SHA256, MODEL_SIZE, embedded_model_path

    if not a.seeds.is_file():
        fail(f"seeds file not found: {a.seeds} (make one with `selfcodealign seeds`)")
    gguf = embedded_model_path()
    if gguf.stat().st_size != MODEL_SIZE or sha256(gguf) != MODEL_SHA256:
        fail(f"{gguf} is not the embedded model (size or SHA-256)")
    for old in FERRY.glob("call*"):
        shutil.rmtree(old)
    first = FERRY / "call1"
    wheels = fetch_wheels(FERRY / "wheels")  # kept between prepares: a download cache
    shutil.copytree(FERRY / "wheels", first / "wheels")
    with open(a.seeds, "rb") as src, gzip.open(first / "seeds.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    extras = sum(p.stat().st_size for p in first.rglob("*") if p.is_file())
    sizes = plan_calls(extras, MODEL_SIZE, CALL_LIMIT - tree_bytes() - MARGIN)
    parts = []
    with open(gguf, "rb") as src:
        for i, size in enumerate(sizes, 1):
            (FERRY / f"call{i}").mkdir(exist_ok=True)
            name = f"model.part{i:02d}"
            (FERRY / f"call{i}" / name).write_bytes(src.read(size))
            parts.append({"name": name, "size": size})
    manifest = {"model_sha256": MODEL_SHA256, "model_size": MODEL_SIZE, "parts": parts, "wheels": wheels}
    (first / "manifest.json").write_text(json.dumps(manifest, indent=1))
    sh = "bash benchmarks/reproduce_small.sh"
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
    # Only what the image cannot import, so that its own packages are not shadowed.
    missing = [d for d, mod in WHEELS.items() if not _imports(mod)]
    wheels = [w for w in sorted((ferry / "wheels").glob("*.whl"))
              if any(w.name.lower().startswith(d.replace("-", "_") + "-") for d in missing)]
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--no-compile", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
    print(f"wheels installed: {', '.join(w.name for w in wheels) or 'none needed'}", flush=True)
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


def pack(dirs: list[Path], out: Path, volume: int = VOLUME) -> list[str]:
    """Every file under ``dirs`` in tar.gz volumes of at most ``volume`` bytes; returns
    what did not fit (a file larger than a volume, or past the last volume)."""
    files = [(p, p.relative_to(d.parent)) for d in dirs for p in sorted(d.rglob("*")) if p.is_file()]
    left_out, k, tar, raw = [], 0, None, None
    for path, name in files:
        if tar is not None and raw.tell() + path.stat().st_size // 4 > volume:
            tar.close()
            raw.close()
            tar = None
        if tar is None:
            if k == MAX_VOLUMES:
                left_out.append(str(name))
                continue
            k += 1
            raw = open(out / f"results{k}.tar.gz", "wb")
            tar = tarfile.open(fileobj=raw, mode="w:gz")
        tar.add(path, arcname=str(name))
    if tar is not None:
        tar.close()
        raw.close()
    for v in sorted(out.glob("results*.tar.gz")):
        if v.stat().st_size > volume + (1 << 20):
            left_out.append(f"{v.name} ({v.stat().st_size >> 20} MiB: does not come back)")
    return left_out


def cmd_pack(a) -> None:
    out = Path(os.environ.get("OUT") or fail("$OUT is not set: pack runs on the GPU machine"))
    left = pack([Path(d) for d in a.dirs], out)
    print("packed; left out: " + (", ".join(left) or "nothing"), flush=True)


def cmd_collect(a) -> None:
    a.dest.mkdir(parents=True, exist_ok=True)
    for v in sorted(Path(a.files_at).rglob("results*.tar.gz")):
        with tarfile.open(v) as tar:
            tar.extractall(a.dest, filter="data")
        print(f"unpacked {v.name} into {a.dest}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--seeds", type=Path, required=True, help="a seeds.jsonl from `selfcodealign seeds`")
    sub.add_parser("ferry")
    sub.add_parser("setup")
    p = sub.add_parser("pack")
    p.add_argument("dirs", nargs="+")
    p = sub.add_parser("collect")
    p.add_argument("files_at", type=Path)
    p.add_argument("dest", type=Path)
    a = ap.parse_args(argv)
    {"prepare": cmd_prepare, "ferry": cmd_ferry, "setup": cmd_setup, "pack": cmd_pack,
     "collect": cmd_collect}[a.step](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
