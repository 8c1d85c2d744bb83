"""Process figures from /proc that the memory benchmarks share (Linux only)."""

from __future__ import annotations

import os

# The sandbox server's own /proc walk.
from selfcodealign.sandbox import children_by_parent


def rss_kib(pid: int | str = "self") -> int:
    """Resident memory of a process in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and all its descendants, live or reaped: ours from
    os.times (reaped children included), each live descendant's own and reaped
    children's time from /proc (a reaped process is counted once, by its parent)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    tree = children_by_parent()
    stack = list(tree.get(os.getpid(), ()))
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        # utime, stime, cutime, cstime: fields 14-17 of stat(5), here 11-14 after ")"
        total += sum(int(x) for x in fields[11:15]) / tick
        stack += tree.get(pid, ())
    return total
