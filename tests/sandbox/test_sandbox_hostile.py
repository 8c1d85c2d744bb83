"""Hostile programs: each is contained, gets a clear verdict, leaves the host unharmed and
leaves the pool working."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import host_processes_with, run

from selfcodealign.sandbox import Program, check, run_batch
from selfcodealign.sandbox.launch import _paths_to_rebind, kept_in_tmp

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _strong_only_where_promised():
    # These tests describe the strong modes; the rlimits mode is tested separately.
    assert check().strong, check().summary()


def test_fork_bomb_is_bounded_and_the_pool_keeps_working():
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    bomb_v, after = run_batch(
        [Program(id="bomb", code=bomb, timeout=2), Program(id="after", code="print('fine')")],
        workers=1,
    )
    assert bomb_v.status == "timeout"
    assert after.status == "passed" and after.stdout == "fine\n"


def test_memory_bomb_in_one_process_is_oom():
    v = run("b = bytearray(4 << 30)\n", memory_mb=512)
    assert v.status == "oom"


def test_memory_bomb_across_processes_is_bounded():
    # Each child stays under the address-space limit; together they would not.
    code = (
        "import os, time\n"
        "for _ in range(12):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(200 << 20)\n"
        "        b[::4096] = b'x' * len(b[::4096])\n"
        "        time.sleep(30)\n"
        "time.sleep(30)\n"
    )
    v = run(code, timeout=3, memory_mb=600)
    assert v.status in ("oom", "timeout"), v
    if check().cgroups:
        assert v.status == "oom"


def test_endless_output_is_cut():
    v = run("while True:\n    print('spam' * 1000)\n", timeout=20)
    assert v.status == "crashed" and "exceeded" in v.detail, v
    assert len(v.stdout) < 20_000


def test_huge_file_is_cut():
    v = run(
        "with open('big', 'wb') as f:\n    while True:\n        f.write(b'0' * (1 << 20))\n",
        timeout=20,
    )
    assert v.status == "crashed" and "exceeded" in v.detail, v


def test_deep_recursion():
    plain = run("def f(n):\n    return f(n + 1)\nf(0)\n")
    assert plain.status == "failed" and plain.detail == "RecursionError"
    unlimited = run(
        "import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        timeout=2,
        memory_mb=256,
    )
    # Python 3.11 keeps Python frames off the C stack: this grows until a limit stops it:
    # the sandbox's (crashed, oom, timeout), or the address-space limit, which Python
    # itself reports as an error when an allocation fails (seen once as SystemError).
    assert unlimited.status in ("crashed", "oom", "timeout") or (
        unlimited.status == "failed" and unlimited.detail in ("MemoryError", "SystemError")), unlimited


def test_no_network_even_to_the_hosts_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "print('connected')\n"
    )
    v = run(code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()  # a connection, had there been one, would be waiting here
    server.close()
    assert v.status == "failed" and "connected" not in v.stdout, v
    dns = run("import socket\nsocket.getaddrinfo('pypi.org', 443)\n")
    assert dns.status == "failed"
    ifaces = run("import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n")
    assert ifaces.stdout.strip() in ("['lo']", "[]")


@pytest.mark.parametrize("target", ["home", "repo", "tmp", "etc"])
def test_writes_outside_the_private_temp_dir_fail(target, tmp_path):
    marker = f"sandbox-escape-{uuid.uuid4().hex}"
    paths = {
        "home": os.path.expanduser(f"~/{marker}"),
        "repo": str(REPO / marker),
        "tmp": f"/tmp/{marker}",
        "etc": f"/etc/{marker}",
    }
    path = paths[target]
    v = run(f"open({path!r}, 'w').write('x')\nprint('wrote')\n")
    assert not os.path.exists(path), f"sandbox wrote {path}"
    if target != "tmp":
        assert v.status == "failed" and "wrote" not in v.stdout, v
    # /tmp inside the sandbox is its own tmpfs: writing there is allowed and private.


def test_private_temp_dir_is_writable_and_emptied_between_runs():
    first, second = run_batch(
        [
            Program(
                id="w",
                code=(
                    "import os\nopen('here', 'w').write('x')\n"
                    "open('/tmp/left', 'w').write('y')\nprint(os.getcwd())"
                ),
            ),
            Program(
                id="r", code="import os\nprint(sorted(os.listdir('.')), sorted(os.listdir('/tmp')))"
            ),
        ],
        workers=1,
    )
    assert first.status == "passed"
    assert second.stdout.strip() == f"[] {sorted(['run', *KEPT])}", second


# What the host binds into the private /tmp (a venv under /tmp, as in a clone there).
KEPT = kept_in_tmp(_paths_to_rebind())

_LIST_RUN_DIR = (
    "import os\nhere = os.getcwd()\n"
    "print(sorted(os.listdir(here)), sorted(os.listdir(os.path.dirname(here))),"
    " oct(os.stat(here).st_mode & 0o777))\n"
)


def test_run_dir_replaced_or_locked_is_fresh_for_the_next_run():
    # The server removes an empty run dir with one rmdir; whatever else a run made of
    # it must still be wiped and replaced by a fresh directory.
    swap = "import os\nd = os.getcwd()\nos.chdir('/')\nos.rmdir(d)\n"
    spoilers = {
        "file": swap + "open(d, 'w').write('x')\n",
        "symlink": swap + "os.symlink('/', d)\n",
        "locked": "import os\nos.mkdir('sub')\nos.chmod('sub', 0)\nos.chmod('.', 0o500)\n",
        "nothing": "pass\n",
    }
    programs = []
    for name, code in spoilers.items():
        programs += [Program(id=name, code=code), Program(id=f"after-{name}", code=_LIST_RUN_DIR)]
    verdicts = run_batch(programs, workers=1)
    for spoiler, after in zip(verdicts[::2], verdicts[1::2]):
        assert spoiler.status == "passed", spoiler
        assert after.stdout.strip() == f"[] {sorted(['run', *KEPT])} 0o700", (spoiler.id, after)


def test_a_run_after_a_cgroup_oom_kill_is_not_oom():
    if not check().cgroups:
        pytest.skip("no memory cgroup here")
    # Six processes of 40 MiB each overrun memory_mb (96) + the server's allowance.
    hog = (
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(40 << 20)\n"
        "        for i in range(0, len(b), 4096):\n"
        "            b[i] = 1\n"
        "        time.sleep(30)\n"
        "time.sleep(30)\n"
    )
    hog_v, after, again = run_batch(
        [
            Program(id="hog", code=hog, timeout=3, memory_mb=96),
            Program(id="after", code="print('fine')", memory_mb=96),
            Program(id="again", code="print('fine')", memory_mb=96),
        ],
        workers=1,
    )
    assert hog_v.status == "oom", hog_v
    assert after.status == "passed" and again.status == "passed", (after, again)


def test_parent_environment_is_not_visible(monkeypatch):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("SELFCODEALIGN_TEST_SECRET", secret)
    code = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        print(open(p, 'rb').read())\n"
        "    except OSError:\n"
        "        pass\n"
    )
    v = run(code)
    assert v.status == "passed"
    assert secret not in v.stdout
    assert "SELFCODEALIGN_TEST_SECRET" not in v.stdout


def test_runs_unprivileged_without_capabilities():
    code = (
        "import os\n"
        "status = open('/proc/self/status').read()\n"
        "fields = dict(l.split(':\\t', 1) for l in status.splitlines() if ':\\t' in l)\n"
        "print(os.getuid(), *(fields[k].strip() for k in ('CapEff', 'CapBnd', 'NoNewPrivs')))\n"
    )
    v = run(code)
    uid, cap_eff, cap_bnd, nnp = v.stdout.split()
    assert int(uid) != 0
    assert int(cap_eff, 16) == 0
    assert nnp == "1"
    if os.geteuid() == 0:
        assert int(cap_bnd, 16) == 0


@pytest.mark.parametrize(
    "attack",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.kill(1, signal.SIGKILL)",
        "os.killpg(0, signal.SIGKILL)",
        "os.kill(-1, signal.SIGKILL)",
        "os.kill(os.getppid(), signal.SIGSTOP)",
    ],
)
def test_killing_the_parent_or_process_group(attack):
    code = f"import os, signal\n{attack}\nimport time\ntime.sleep(0.2)\n"
    attacked, after = run_batch(
        [Program(id="attack", code=code, timeout=3), Program(id="after", code="print('alive')")],
        workers=1,
    )
    assert attacked.status in ("passed", "crashed", "failed"), attacked
    assert after.status == "passed" and after.stdout == "alive\n"


def test_children_that_outlive_the_run_are_killed():
    marker = f"outlive-{uuid.uuid4().hex}"
    code = (
        "import os, subprocess, time\n"
        # a daemon: double fork + setsid
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('sleep', ['sleep', '300', {marker!r}])\n"
        "    os._exit(0)\n"
        # a plain background child in its own session
        f"subprocess.Popen(['sleep', '301', {marker!r}], start_new_session=True)\n"
        "time.sleep(0.3)\n"
    )
    listing = (
        "import os\n"
        "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "print(sorted(p for p in pids if p != os.getpid()))\n"
    )
    spawn, look = run_batch(
        [Program(id="spawn", code=code), Program(id="look", code=listing)], workers=1
    )
    assert spawn.status == "passed", spawn
    # The next run sees no process but the server (PID 1) and itself.
    assert look.stdout.strip() == "[1]", look
    assert host_processes_with(marker) == []


def test_threads_that_never_finish_do_not_hold_the_run():
    code = (
        "import threading, time\n"
        "threading.Thread(target=lambda: time.sleep(1000)).start()\n"
        "threading.Thread(target=lambda: [0 for _ in iter(int, 1)], daemon=True).start()\n"
    )
    v = run(code, "assert True", timeout=5)
    assert v.status == "passed" and v.duration < 3, v


def test_signals_to_itself():
    stop = run("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n", timeout=1)
    assert stop.status == "timeout"
    term = run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    assert term.status == "crashed" and "SIGTERM" in term.detail
    ignored = run(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(30)\n",
        timeout=1,
    )
    assert ignored.status == "timeout"


def test_closed_stdio_still_gets_a_verdict():
    code = "import os, sys\nos.close(0)\nos.close(1)\nos.close(2)\nsys.stdout.close()\n"
    assert run(code).status == "passed"
    assert run(code, "assert False").status == "failed"


def test_huge_argv_and_huge_source():
    argv = run("import subprocess\nsubprocess.run(['true', 'x' * (64 << 20)])\n", memory_mb=1024)
    assert argv.status in ("failed", "oom"), argv
    # Over the size compiled in the server: compiled in the run's own child instead.
    huge_src = "x = 0\n" + "x += 1\n" * 50_000 + "print(x)\n"
    v = run(huge_src, timeout=20, memory_mb=1024)
    assert v.status == "passed" and v.stdout == "50000\n", v
