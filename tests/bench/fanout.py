"""fanout.py - make bench's fan-out (pub/sub) shapes and one round of
one: the load generator in --fanout --sync mode against a running
fan-out server (peers/ws_fanout.c, uws_fanout.js, ws_fanout.js,
lws_fanout.c), the server's memory with the subscribers idle, its CPU
(and with BENCH_SYSCALLS=1 its system calls, by perf stat) from the
first publish to the last delivery. run.py starts and stops the servers
and alternates them. Standard library only.
"""
import collections
import subprocess
import threading
import time

from procstat import cpu_us, last_json, memory_kib
from syscalls import perf_start, perf_stop, wanted

# Fan-out: conns connections, all subscribed to one room (the server
# subscribes each on open), the first `publishers` of them each sending
# `rate` messages of `size` bytes (text) a second; the server sends every
# message to every connection, the sender included, so deliveries/s =
# conns x publishers x rate. The rates are what this 2-CPU machine's load
# generator (one CPU, reading every socket) takes with room to spare.
FanShape = collections.namedtuple("FanShape",
                                  "name conns publishers rate size")
FANOUT_SHAPES = [
    FanShape("fanout 1000 one publisher", 1000, 1, 50, 64),
    FanShape("fanout 10000 one publisher", 10000, 1, 5, 64),
    FanShape("fanout 1000 busy room", 1000, 100, 2, 64),
    FanShape("fanout 10000 busy room", 10000, 100, 0.2, 64),
    # A chat room at its busiest (the workload: 100 senders in a
    # room of 1 000): more asked than either server delivers here, so it
    # measures what a delivery costs when every wake has many.
    FanShape("fanout 1000 chat burst", 1000, 100, 10, 64),
]
# Seconds of publishing per round: at the rates above that is 200 000
# deliveries or more, and the server's CPU is read to 10 ms.
FANOUT_SECONDS = 2.0
FANOUT_KEYS = ("deliveries_per_s", "published_per_s", "p50_us", "p99_us",
               "p999_us", "cpu_us_per_delivery", "user_us_per_delivery",
               "syscalls_per_delivery", "Rss_per_sub_kib",
               "Private_Dirty_per_sub_kib", "client_cpu_s")


# BENCH_SYSCALLS=1: the fan-out rounds also count the server's system
# calls over the publishing window; the CPU figures then include perf's
# overhead, so compare only the counts.


def fanout_argv(args, srv, shape, seconds):
    return [args.loadgen, "--port", str(srv.port), "--fanout", "--sync",
            "--conns", str(shape.conns), "--publishers",
            str(shape.publishers), "--rate", str(shape.rate), "--size",
            str(shape.size), "--seconds", str(seconds)]


def tell(p, line):
    """Write line to the load generator's stdin (it may have exited)."""
    try:
        p.stdin.write(line)
        p.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass


def fanout_round(args, srv, shape, seconds, preexec):
    """Drive the fan-out load generator against the running srv: the
    memory of the idle subscribers, then the server's CPU from the first
    publish to the last delivery (connects and closes left out). preexec
    pins the load generator."""
    pid = srv.proc.pid
    before = memory_kib(pid)
    p = subprocess.Popen(fanout_argv(args, srv, shape, seconds),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=srv.log, text=True,
                         preexec_fn=preexec)
    # The load generator bounds its own phases; this bounds it.
    watchdog = threading.Timer(seconds + 150, p.kill)
    watchdog.start()
    try:
        first = last_json(p.stdout.readline())
        time.sleep(0.5)  # the server's last opens, the node GC
        held = cpu0 = res = cpu1 = perf = None
        if first and srv.proc.poll() is None:
            held = memory_kib(pid)
            perf = perf_start(pid) if wanted(False) else None
            cpu0, user0 = cpu_us(pid), cpu_us(pid, True)
        tell(p, "go\n")
        res = last_json(p.stdout.readline())
        if res and srv.proc.poll() is None:
            cpu1, user1 = cpu_us(pid), cpu_us(pid, True)
        calls = perf_stop(perf)
        tell(p, "go\n")
        p.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    if res is None or held is None or cpu1 is None:
        return {"failed": "loadgen or server failed"}
    res["server_cpu_us"] = cpu1 - cpu0
    total = res["deliveries_total"]
    res["cpu_us_per_delivery"] = (cpu1 - cpu0) / total if total else None
    res["user_us_per_delivery"] = (user1 - user0) / total if total else None
    res["syscalls"] = calls
    if calls.get("syscalls") and total:
        res["syscalls_per_delivery"] = calls["syscalls"] / total
    est = first["established"]
    for key in ("Private_Dirty", "Rss"):
        res[key + "_per_sub_kib"] = ((held[key] - before[key]) / est
                                     if est else None)
    return res
