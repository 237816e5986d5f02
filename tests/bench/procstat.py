"""procstat.py - what make bench reads of a process (its CPU time and
memory, from /proc) and of the load generator (its last JSON line).
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
