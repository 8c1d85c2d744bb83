"""Each isolation mode works, says what it is, and the pool leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from sandbox_helpers import host_processes_of_uids, run

from selfcodealign.sandbox import Program, cgroups, check, iter_batch, run_batch, warmup
from selfcodealign.sandbox.launch import sandbox_uid
from selfcodealign.sandbox.process import SandboxProcess

ROOT = os.geteuid() == 0


def _basic_behaviour():
    verdicts = run_batch(
        [
            Program(id="ok", code="def f():\n    return 1\n", tests="assert f() == 1"),
            Program(id="ko", code="def f():\n    return 2\n", tests="assert f() == 1"),
            Program(id="slow", code="while True:\n    pass\n", timeout=1),
            Program(id="early", code="import os\nos._exit(0)\n", tests="assert False"),
        ],
        workers=2,
    )
    assert [v.status for v in verdicts] == ["passed", "failed", "timeout", "failed"], verdicts


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_bwrap_mode(force_mode):
    force_mode("bwrap")
    _basic_behaviour()
    assert "bwrap" in check().summary()


@pytest.mark.skipif(not ROOT or shutil.which("unshare") is None, reason="unshare mode needs root")
def test_unshare_mode_isolates_like_bwrap(force_mode, tmp_path):
    force_mode("unshare")
    _basic_behaviour()
    probe = run(
        "import os, socket\n"
        "print(os.getuid() != 0, os.getpid())\n"
        "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print('ro', e.errno)\n"
        "try:\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
        "except OSError:\n    print('nonet')\n"
        "print(os.path.exists('/root/.ssh'), sorted(os.listdir('/home')))\n"
    )
    lines = probe.stdout.split("\n")
    assert lines[0].startswith("True ") and lines[1] == "ro 30" and lines[2] == "nonet", probe
    assert lines[3] == "False []"


def test_rlimits_mode_works_and_warns_what_it_lacks(force_mode):
    force_mode("rlimits")
    _basic_behaviour()
    info = check()
    assert not info.strong
    text = info.summary()
    assert "NO network isolation" in text and "install bubblewrap" in text
    env = run("import os\nprint(sorted(os.environ))\n")
    # Only the server's own fixed variables, none of the host's.
    fixed = ["HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "TMPDIR", *warmup.RUN_ENV]
    assert env.stdout.strip() == str(sorted(fixed))


def test_unknown_forced_mode_is_a_clear_error(force_mode, monkeypatch):
    from selfcodealign.errors import UserError
    from selfcodealign.sandbox.detect import detect

    monkeypatch.setenv("SELFCODEALIGN_SANDBOX", "docker")
    detect.cache_clear()
    with pytest.raises(UserError, match="expected one of"):
        check()


def test_no_process_survives_the_pool():
    before = set(_bwrap_and_unshare())
    spawner = (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(300)\n"
    )
    verdicts = list(iter_batch([Program(id=str(i), code=spawner) for i in range(6)], workers=2))
    assert len(verdicts) == 6
    if ROOT:
        lo = sandbox_uid(0)
        assert _eventually(lambda: host_processes_of_uids(lo, lo + 256) == [])
    assert _eventually(lambda: set(_bwrap_and_unshare()) <= before)


def test_closing_the_iterator_early_stops_every_server():
    before = set(_bwrap_and_unshare())
    it = iter_batch(
        (Program(id=str(i), code="import time\ntime.sleep(0.05)") for i in range(1000)), workers=2
    )
    next(it)
    it.close()
    assert _eventually(lambda: set(_bwrap_and_unshare()) <= before)


def test_a_dead_server_is_replaced():
    w = SandboxProcess(check(), 0)
    try:
        w.start()
        assert w.run(Program(id="a", code="pass")).status == "passed"
        os.killpg(w.proc.pid, 9)
        w.proc.wait()
        assert w.run(Program(id="b", code="print(2)")).stdout == "2\n"
    finally:
        w.close()


def test_check_command_prints_the_mode():
    out = subprocess.run(
        [sys.executable, "-m", "selfcodealign.cli", "sandbox", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"sandbox mode: {check().mode}")


def _bwrap_and_unshare() -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and os.path.basename(argv[0]) in (b"bwrap", b"unshare")
            and any(b"sandbox" in a or b"pid_ns_init" in a for a in argv)
        ):
            out.append(int(name))
    return out


def _eventually(cond, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_two_pools_side_by_side_do_not_disturb_each_other():
    slow = [Program(id=f"a{i}", code="import time\ntime.sleep(0.1)\nprint('a')") for i in range(4)]
    fast = [Program(id=f"b{i}", code="print('b')") for i in range(8)]
    first = iter_batch(slow, workers=1)
    got_first = [next(first)]
    second = run_batch(fast, workers=1)
    got_first += list(first)
    assert [v.stdout for v in second] == ["b\n"] * 8
    assert sorted(v.stdout for _, v in got_first) == ["a\n"] * 4


@pytest.mark.skipif(not cgroups.available(), reason="needs root and a writable cgroupfs")
def test_cgroups_left_by_a_dead_pool_are_swept():
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    g = cgroups.create(f"selfcodealign-{int(dead.stdout)}-7", pids_max=8, memory_bytes=64 << 20)
    assert g is not None and g.memory.exists()
    cgroups.sweep_stale()
    assert not g.memory.exists() and not g.pids.exists()


@pytest.mark.parametrize("name", ["bwrap", "unshare", "rlimits"])
def test_programs_import_what_the_virtualenv_has(name, tmp_path):
    """Programs run on the venv's interpreter, not its base one: a task that needs numpy
    passes where the user's venv has numpy, whatever the system Python lacks. A venv
    under /tmp (a clone there, say) too, though the sandbox has a private /tmp."""
    if name == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    if name == "unshare" and (not ROOT or shutil.which("unshare") is None):
        pytest.skip("unshare mode needs root")
    assert str(tmp_path).startswith("/tmp/")
    venv = tmp_path / "clone" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "only_in_this_venv.py").write_text("MARK = 42\n")
    for d in (tmp_path, tmp_path / "clone"):
        d.chmod(0o755)  # the sandbox uid must reach it, as a user's clone would let it
    # The host runs on that venv's interpreter, with our package and its dependencies on
    # its path; the sandbox's servers run in isolated mode and see only the venv's own.
    env = {**os.environ, "SELFCODEALIGN_SANDBOX": name,
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    code = ("from selfcodealign.sandbox import Program, run_program\n"
            "v = run_program(Program(id='v', code='import sys, only_in_this_venv as m\\n"
            "print(sys.prefix, m.MARK)\\n'))\n"
            "print(v.status, v.stdout.strip(), v.stderr[-300:])\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:3] == ["passed", str(venv), "42"], out.stdout


def test_one_mode_vocabulary_with_the_old_eval_name():
    from selfcodealign.errors import UserError
    from selfcodealign.evaluate.runner import EvalSettings
    from selfcodealign.sandbox import MODE_CHOICES, MODES, wrap_command

    assert MODE_CHOICES == ("auto", *MODES, "none")
    # rlimits around one whole process adds no namespaces; `none` is its old name.
    assert wrap_command(["true"], "rlimits") == wrap_command(["true"], "none") == ["true"]
    with pytest.raises(UserError, match="expected one of auto, bwrap, unshare, rlimits"):
        wrap_command(["true"], "docker")
    assert [EvalSettings(isolation=m).isolation for m in ("none", "rlimits")] == ["none", "rlimits"]


def test_forcing_auto_is_the_same_as_not_forcing(force_mode, monkeypatch):
    from selfcodealign.sandbox.detect import detect

    monkeypatch.setenv("SELFCODEALIGN_SANDBOX", "auto")
    detect.cache_clear()
    forced = check()
    monkeypatch.delenv("SELFCODEALIGN_SANDBOX")
    detect.cache_clear()
    assert forced == check()
