"""Serve a GGUF model (default: the embedded one) over OpenAI-compatible HTTP.

    python -m selfcodealign.serve [--model FILE] [--port 8080] [--n-parallel 4]

llama.cpp's own server, through xllamacpp. Prints the address on one line, then serves
until interrupted. Handy for pointing several pipeline runs (or other tools) at one engine.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from selfcodealign.errors import UserError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m selfcodealign.serve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file (default: the embedded model)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    ap.add_argument("--n-parallel", type=int, default=4, help="parallel slots")
    ap.add_argument("--ctx-per-slot", type=int, default=4096, help="context per slot")
    ap.add_argument("--verbose", action="store_true", help="engine logging")
    args = ap.parse_args(argv)
    from selfcodealign.backends.llamacpp import LlamaCppBackend
    from selfcodealign.models import resolve_gguf

    try:
        path, name, sha = resolve_gguf(args.model)
        backend = LlamaCppBackend(path, model_name=name, model_sha256=sha,
                                  n_parallel=args.n_parallel, ctx_per_slot=args.ctx_per_slot,
                                  verbose=args.verbose, port=args.port, host=args.host)
    except UserError as e:
        print(f"serve: error: {e}", file=sys.stderr)
        return 2
    print(backend.listening_address, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
