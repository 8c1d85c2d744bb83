import os
import subprocess
import sys
import time

import pytest


@pytest.fixture(scope="session")
def model_path():
    """The real embedded model (assembled from its PyPI parts, hash-checked)."""
    from selfcodealign.embedded import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def llama_server(model_path):
    """A real llama.cpp HTTP server process on loopback serving the embedded model."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfcodealign.serve", "--model", str(model_path), "--port", "0",
         "--n-parallel", "2", "--ctx-per-slot", "2048"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    addr = proc.stdout.readline().strip()
    if not addr.startswith("http"):
        proc.kill()
        pytest.fail(f"server did not start: {addr!r}")
    yield addr
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
