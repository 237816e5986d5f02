"""syscalls.py - a server's system calls counted while make bench drives
it: perf stat attached to the process (by pid) on the kernel's syscall
tracepoints, so the count is exact and costs the server little, unlike
strace, whose stops would slow it enough that more data waits at each
read and fewer calls are made. Standard library only.
"""
import os
import signal
import subprocess
import time

READS = ("read", "readv", "recvfrom", "recvmsg")
WRITES = ("write", "writev", "sendto", "sendmsg")
NAMES = READS + WRITES + ("epoll_wait", "epoll_pwait")


def wanted(default):
    """Whether BENCH_SYSCALLS asks for counts ("1" yes, "0" no; unset:
    default)."""
    v = os.environ.get("BENCH_SYSCALLS")
    return default if v is None else v == "1"


def perf_start(pid):
    """perf stat counting pid's system calls, or None (no perf)."""
    events = ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n
                                           for n in NAMES]
    try:
        p = subprocess.Popen(["perf", "stat", "-x", ",", "-e",
                              ",".join(events), "-p", str(pid)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    except OSError:
        return None
    time.sleep(0.3)  # attached before the load begins
    if p.poll() is not None:
        return None  # no such events here (no tracefs, not root)
    return p


def perf_stop(p):
    """Stop perf stat; {name: count} of the calls it counted ("syscalls"
    for all of them, "rw" for the read and write families)."""
    if p is None:
        return {}
    p.send_signal(signal.SIGINT)
    try:
        err = p.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        return {}
    counts = {}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].isdigit():
            name = f[2].split(":")[-1].replace("sys_enter_", "")
            counts["syscalls" if name == "sys_enter" else name] = int(f[0])
    if counts:
        counts["rw"] = sum(counts.get(n, 0) for n in READS + WRITES)
    return counts
