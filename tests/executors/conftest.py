"""A real Ray cluster on loopback: a head node with no CPUs for work (as Ray advises for
big clusters, so every worker lands on a worker node) and worker nodes started with
`ray start`, each a separate set of processes that a test can kill."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
# Fast failure detection: a killed node is noticed in ~2 s instead of ~30 s.
SYSTEM_CONFIG = '{"health_check_period_ms": 500, "health_check_failure_threshold": 3}'


def _free_port() -> int:
    # Outside Ray's default worker port range (10002-19999).
    for port in range(31000 + os.getpid() % 2000, 40000, 7):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.env.pop("RAY_ADDRESS", None)
        self.workers: dict[str, int] = {}  # name -> node manager port
        self._next = self.port + 1

    def _ray(self, *args: str, timeout: float = 120) -> None:
        res = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                             check=False)
        if res.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args[:2])} failed:\n{res.stderr[-3000:]}")

    def start_head(self) -> None:
        self._ray("start", "--head", f"--port={self.port}", "--num-cpus=0", "--num-gpus=0",
                  "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                  f"--ray-client-server-port={self._port()}", f"--temp-dir={self.tmp}",
                  "--disable-usage-stats", f"--system-config={SYSTEM_CONFIG}")

    def _port(self) -> int:
        self._next += 1
        return self._next

    def add_worker(self, name: str, cpus: int = 1) -> None:
        nm = self._port()
        self._ray("start", f"--address={self.address}", f"--num-cpus={cpus}", "--num-gpus=0",
                  "--node-ip-address=127.0.0.1", f"--node-manager-port={nm}",
                  f"--dashboard-agent-listen-port={self._port()}",
                  f"--dashboard-agent-grpc-port={self._port()}")
        self.workers[name] = nm
        self.wait_nodes()

    def wait_nodes(self, timeout: float = 60) -> None:
        """Until the cluster sees exactly the worker nodes we think are alive."""
        import ray

        want = len(self.workers)
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            alive = sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1)
            if alive == want:
                return
            time.sleep(0.3)
        raise RuntimeError(f"cluster did not reach {want} worker nodes (has {alive})")

    def kill_worker(self, name: str) -> int:
        """SIGKILL a worker node's raylet and every process under it (its actors included),
        as a machine failure would. Returns how many processes were killed."""
        import psutil

        nm = self.workers.pop(name)
        victims = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if any(a == f"--node_manager_port={nm}" for a in cmd) and "raylet" in cmd[0]:
                victims = p.children(recursive=True) + [p]
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        return len(victims)

    def stop(self) -> None:
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    # A loopback cluster only this test process talks to: no token to share.
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    mp.delenv("RAY_ADDRESS", raising=False)
    tmp = Path(tempfile.mkdtemp(prefix="sca-ray-"))
    c = Cluster(tmp)
    try:
        c.start_head()
        # This test process is the driver: executors find Ray initialised and use it.
        ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
        c.add_worker("w1")
        c.add_worker("w2")
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        mp.undo()
