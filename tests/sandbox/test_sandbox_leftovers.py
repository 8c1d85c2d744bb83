"""What one run leaves in its server's private namespaces is gone before the next run on
that server starts: files in the private /dev/shm (POSIX shared memory included) and
SysV IPC objects (shared memory segments, semaphore sets, message queues).

Each test forces one worker, so that the two consecutive runs share a server."""

from __future__ import annotations

import os
import shutil

import pytest

from selfcodealign.sandbox import Program, check, run_batch

ROOT = os.geteuid() == 0


def _strong_mode(name: str) -> str:
    if name == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    if name == "unshare" and (not ROOT or shutil.which("unshare") is None):
        pytest.skip("unshare mode needs root")
    return name


STRONG = pytest.mark.parametrize("name", ["bwrap", "unshare"])


def _twice(first: str, second: str):
    a, b = run_batch([Program(id="leave", code=first), Program(id="look", code=second)], workers=1)
    assert a.status == "passed", a
    assert b.status == "passed", b
    return a, b


_SHM_LEAVE = (
    "import os\n"
    "open('/dev/shm/leak', 'w').write('x')\n"
    # a locked directory with a file in it: the wipe must get through it
    "os.mkdir('/dev/shm/locked')\n"
    "open('/dev/shm/locked/inner', 'w').write('y')\n"
    "os.chmod('/dev/shm/locked', 0)\n"
    "from multiprocessing import resource_tracker, shared_memory\n"
    # no tracker process: it would unlink the segment itself when the run ends
    "resource_tracker.register = lambda *a, **k: None\n"
    "try:\n"
    "    s = shared_memory.SharedMemory(create=True, name='sca_leak', size=4096)\n"
    "    s.buf[0] = 42\n"
    "    print('posix-shm made')\n"
    "except OSError as e:\n"
    "    print('posix-shm refused', e)\n"
    "print(sorted(os.listdir('/dev/shm')))\n"
)

_SHM_LOOK = (
    "import os\n"
    "print(sorted(os.listdir('/dev/shm')))\n"
    "from multiprocessing import resource_tracker, shared_memory\n"
    "resource_tracker.register = lambda *a, **k: None\n"
    "try:\n"
    "    shared_memory.SharedMemory(name='sca_leak')\n"
    "    print('posix-shm found')\n"
    "except FileNotFoundError:\n"
    "    print('posix-shm gone')\n"
)


@STRONG
def test_dev_shm_is_emptied_between_runs(force_mode, name):
    force_mode(_strong_mode(name))
    leave, look = _twice(_SHM_LEAVE, _SHM_LOOK)
    made = leave.stdout.splitlines()
    assert "'leak'" in made[-1] and "'locked'" in made[-1], leave
    assert look.stdout.splitlines() == ["[]", "posix-shm gone"], look
    if made[0] == "posix-shm made":
        assert "'sca_leak'" in made[-1], leave


_SYSV_COMMON = (
    "import ctypes, errno\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "IPC_CREAT, IPC_PRIVATE, KEY = 0o1000, 0, 0x5CA1\n"
)

_SYSV_LEAVE = _SYSV_COMMON + (
    "ids = {\n"
    "    'shm key': libc.shmget(KEY, 4096, IPC_CREAT | 0o600),\n"
    "    'shm private': libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o000),\n"
    "    'sem key': libc.semget(KEY, 3, IPC_CREAT | 0o600),\n"
    "    'sem private': libc.semget(IPC_PRIVATE, 1, IPC_CREAT | 0o000),\n"
    "    'msg key': libc.msgget(KEY, IPC_CREAT | 0o600),\n"
    "    'msg private': libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o000),\n"
    "}\n"
    "assert min(ids.values()) >= 0, (ids, errno.errorcode[ctypes.get_errno()])\n"
    # a segment still attached and a queue that holds a message when the run ends
    "libc.shmat.restype = ctypes.c_void_p\n"
    "assert libc.shmat(ids['shm key'], None, 0) not in (None, 2**64 - 1)\n"
    "msg = ctypes.create_string_buffer(b'\\x01\\0\\0\\0\\0\\0\\0\\0hello')\n"
    "assert libc.msgsnd(ids['msg key'], msg, 5, 0) == 0\n"
    # Hand the keyed objects to another owner, with no permissions at all: only their
    # creator (the run's uid, which is the server's) may still remove them.
    "IPC_SET, IPC_STAT = 1, 2\n"
    "def give_away(ctl, ipc_id):\n"
    "    ds = ctypes.create_string_buffer(512)\n"
    "    if ctl(ipc_id, IPC_STAT, ds) != 0:\n"
    "        return False\n"
    "    ctypes.c_uint32.from_buffer(ds, 4).value = 54321\n"  # ipc_perm.uid
    "    ctypes.c_uint32.from_buffer(ds, 8).value = 54321\n"  # ipc_perm.gid
    "    ctypes.c_uint16.from_buffer(ds, 20).value = 0\n"  # ipc_perm.mode
    "    return ctl(ipc_id, IPC_SET, ds) == 0\n"
    "given = [give_away(libc.shmctl, ids['shm key']),\n"
    "         give_away(lambda i, c, b: libc.semctl(i, 0, c, b), ids['sem key']),\n"
    "         give_away(libc.msgctl, ids['msg key'])]\n"
    "for n in ('shm', 'sem', 'msg'):\n"
    "    print(n, len(open(f'/proc/sysvipc/{n}').read().splitlines()) - 1)\n"
    "print('given away', given)\n"
)

_SYSV_LOOK = _SYSV_COMMON + (
    "for n in ('shm', 'sem', 'msg'):\n"
    "    print(n, len(open(f'/proc/sysvipc/{n}').read().splitlines()) - 1)\n"
    "for n in ('shm', 'sem', 'msg'):\n"
    "    rc = getattr(libc, n + 'get')(KEY, 0, 0)\n"
    "    print(n, 'key', 'found' if rc >= 0 else errno.errorcode[ctypes.get_errno()])\n"
)


@STRONG
def test_sysv_ipc_objects_are_removed_between_runs(force_mode, name):
    force_mode(_strong_mode(name))
    leave, look = _twice(_SYSV_LEAVE, _SYSV_LOOK)
    assert leave.stdout.splitlines()[:3] == ["shm 2", "sem 2", "msg 2"], leave
    if ROOT:  # the uid 54321 exists in the namespaces' user namespace (the host's)
        assert leave.stdout.splitlines()[3] == "given away [True, True, True]", leave
    assert look.stdout.splitlines() == [
        "shm 0",
        "sem 0",
        "msg 0",
        "shm key ENOENT",
        "sem key ENOENT",
        "msg key ENOENT",
    ], look


@STRONG
def test_runs_after_the_cleanup_can_use_shm_and_ipc_again(force_mode, name):
    # The same names and key are free again, and the cleanup keeps working run after run.
    force_mode(_strong_mode(name))
    programs = []
    for i in range(3):
        programs += [
            Program(id=f"shm{i}", code=_SHM_LEAVE),
            Program(id=f"ipc{i}", code=_SYSV_LEAVE),
        ]
    programs.append(Program(id="look-shm", code=_SHM_LOOK))
    programs.append(Program(id="look-ipc", code=_SYSV_LOOK))
    verdicts = run_batch(programs, workers=1)
    assert all(v.status == "passed" for v in verdicts), verdicts
    for v in verdicts[:-2:2]:
        assert v.stdout.splitlines()[-1] == "['leak', 'locked'" + (
            ", 'sca_leak']" if "posix-shm made" in v.stdout else "]"
        ), v
    for v in verdicts[1:-2:2]:
        assert v.stdout.splitlines()[:3] == ["shm 2", "sem 2", "msg 2"], v
    assert verdicts[-2].stdout.splitlines() == ["[]", "posix-shm gone"], verdicts[-2]
    assert verdicts[-1].stdout.splitlines()[:3] == ["shm 0", "sem 0", "msg 0"], verdicts[-1]


def test_rlimits_mode_says_it_leaves_shm_and_ipc_alone(force_mode):
    # No private namespaces there: /dev/shm and SysV IPC are the host's, and the server
    # must not empty them (docs/sandbox.md); --check says so.
    force_mode("rlimits")
    assert "host /dev/shm and SysV IPC" in check().summary()
    v = run_batch([Program(id="a", code="print('ok')")], workers=1)[0]
    assert v.status == "passed" and v.stdout == "ok\n", v
