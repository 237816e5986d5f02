"""procstat.py - what make bench reads of a process (its CPU time and
memory, from /proc), of everyone else (their CPU time) and of the load
generator (its last JSON line).
Standard library only.
"""
import json
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_us(pid, user_only=False):
    """utime + stime (or utime alone) of the whole process, in µs (from
    /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + (0 if user_only else int(fields[12]))
    return ticks * 1e6 / CLK_TCK


def machine_cpu_us():
    """The CPU time every CPU of the machine spent busy (user, nice,
    system, irq, softirq, steal; not idle or iowait), in µs, from
    /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) * 1e6 / CLK_TCK


def others_cpu_us(ours):
    """The CPU time of every other process (not in ours, not a kernel
    thread, not this process or its ancestors), children they reaped
    included, in µs. The difference between two calls is what others took
    in between: a process that ended meanwhile left its time to its
    parent's cutime, one that began is counted whole."""
    skip = set(ours) | ancestors()
    ticks = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in skip:
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[1] == "2" or d == "2":
            continue  # kthreadd's: loopback softirq work, mostly ours
        ticks += sum(int(x) for x in fields[11:15])
    return ticks * 1e6 / CLK_TCK


def ancestors():
    """This process and its ancestors, init excepted."""
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return out


def memory_kib(pid):
    """Private_Dirty and Rss of the process, in KiB (smaps_rollup)."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def last_json(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None
