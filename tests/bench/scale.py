#!/usr/bin/python3
"""scale.py - make bench-scale: scaling out on one machine. Fan-out
through Redis: one room of 1 000 on one ws_fanout against the same room
split over two ws_fanout --redis bridged by a redis-server of our own,
every member publishing at a fixed rate. Workers: ws_echo with 1 and 2
reuse-port workers (--workers N), unpinned and with the load generator
on a CPU of its own. Configurations alternate within each round, every
figure is the median over rounds with the range in brackets; writes
scale.md and scale.json in the bench directory. Builds and installs
nothing (the Makefile's bench-scale target does). Standard library only.

Environment: BENCH_ROUNDS (default 5), BENCH_QUICK=1 (1 round, shorter
windows), BENCH_PIN=0 (no pinning in the Redis half), BENCH_SHAPES
(comma-separated: "redis", "workers"), BENCH_QUIET_WAIT (seconds to wait
for an idle machine before each round, default 30), BENCH_RETRIES (runs
again of a round other work disturbed, default 1). --render JSON prints
the tables of a saved scale.json.
"""
import argparse
import collections
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from procstat import cpu_us, last_json, machine_cpu_us, others_cpu_us
from run import NCPU, command_out, free_port, limits_and_pin, medians
from tables import fmt, fmt_range

# Fan-out: FAN_CONNS members, every one a publisher of `rate` msg/s (64 B
# text), so conns x rate messages a second reach every member: 10^5 or
# 2 x 10^5 deliveries/s. A window of 1/rate s is one period: each member
# publishes exactly once, 1 000 messages and 10^6 deliveries a round. At
# 0.1 msg/s the server side needs half to two thirds of its CPU here and
# the load generator about half of its one, so both configurations keep
# up with room to spare; at 0.2 msg/s both CPUs are over 90 % busy, as
# loaded as this machine takes it with nothing late.
FanShape = collections.namedtuple("FanShape", "name rate seconds")
FAN_SHAPES = [FanShape("redis 0.1 msg/s", 0.1, 10.0),
              FanShape("redis 0.2 msg/s", 0.2, 5.0)]
FAN_CONNS = 1000
FAN_SIZE = 64
ROOM_CHANNEL = "ws:room"  # the bridge's default prefix + the topic
FAN_KEYS = ("deliveries_per_s", "p50_us", "p99_us", "p50_cross_us",
            "p99_cross_us", "p50_local_us", "p99_local_us",
            "server_us_per_delivery", "redis_us_per_delivery",
            "total_us_per_delivery", "redis_us_per_msg", "client_cpu_s",
            "others_cpu_s")
# Workers: the echo shape "100 conns x 16 B" (8 in flight each).
ECHO_CONNS, ECHO_INFLIGHT, ECHO_SIZE = 100, 8, 16
ECHO_SECONDS = 3.0
ECHO_KEYS = ("msgs_per_s", "p50_us", "p99_us", "server_cpu_s",
             "server_us_per_msg", "client_cpu_s", "client_us_per_msg",
             "busy_cpus", "others_cpu_s")


class Proc:
    """A process we started, its log, and how to stop it (by its pid)."""

    def __init__(self, name, argv, logdir, cpu=None):
        self.name = name
        self.log_path = os.path.join(logdir, "scale-%s.log" % name)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     preexec_fn=limits_and_pin(cpu))
        self.pid = self.proc.pid

    def wait_for(self, text, count=1, timeout=15):
        """Whether text appears count times in the log within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with open(self.log_path, errors="replace") as f:
                if f.read().count(text) >= count:
                    return True
            time.sleep(0.05)
        return False

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s; the log's text."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            return f.read()


def snapshot(ours):
    """(monotonic s, other processes' CPU µs), for others()."""
    return time.monotonic(), others_cpu_us(ours)


def others(res, s0, s1):
    """Record in res the window's wall time and what other processes took
    meanwhile."""
    res["wall_s"] = s1[0] - s0[0]
    res["others_cpu_s"] = (s1[1] - s0[1]) / 1e6


def disturbed(res):
    """Whether other processes took more than a tenth of a CPU on average
    during the round's window."""
    return res.get("others_cpu_s", 0) > 0.1 * res.get("wall_s", 1)


def run_round(fn, *a):
    """fn(*a), run again up to BENCH_RETRIES times (default 1) while other
    work disturbed it; the last result, with its attempts."""
    retries = int(os.environ.get("BENCH_RETRIES", "1"))
    for attempt in range(retries + 1):
        res = fn(*a)
        if "failed" in res or not disturbed(res):
            break
    res["attempts"] = attempt + 1
    res["disturbed"] = "failed" not in res and disturbed(res)
    return res


def wait_quiet():
    """Before a round: wait up to BENCH_QUIET_WAIT s (default 30; 0: do
    not) for the machine to be nearly idle (under 0.15 of a CPU busy over
    half a second), so that a round does not start in the middle of
    someone else's build or tests; the seconds waited, negative when it
    never was."""
    limit = float(os.environ.get("BENCH_QUIET_WAIT", "30"))
    t0 = time.monotonic()
    while limit > 0:
        a = machine_cpu_us()
        time.sleep(0.5)
        if machine_cpu_us() - a < 0.15 * 0.5e6:
            return time.monotonic() - t0
        if time.monotonic() - t0 >= limit:
            return -(time.monotonic() - t0)
    return 0.0


def lg_log(logdir):
    """The load generator's stderr: appended to one log."""
    return open(os.path.join(logdir, "scale-loadgen.log"), "ab")


def stop_all(procs):
    return [p.stop() for p in reversed(procs)]


def redis_call(port, *words):
    """One command to the redis-server on port (RESP), its raw reply."""
    req = "*%d\r\n" % len(words) + "".join(
        "$%d\r\n%s\r\n" % (len(w), w) for w in words)
    with socket.create_connection(("127.0.0.1", port), 1) as s:
        s.sendall(req.encode())
        return s.recv(4096).decode(errors="replace")


def redis_ready(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "PONG" in redis_call(port, "PING"):
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wait_subscribers(port, want, timeout=5):
    """Whether want instances subscribe to the room's channel: a message
    published before an instance's SUBSCRIBE is confirmed never reaches
    it (ws/redis.h)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = redis_call(port, "PUBSUB", "NUMSUB", ROOM_CHANNEL)
        if reply.rstrip().endswith(":%d" % want):
            return True
        time.sleep(0.05)
    return False


def tell(p, line):
    try:
        p.stdin.write(line)
        p.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass


def bridge_counts(log):
    """The counters ws_fanout --redis prints when it stops."""
    for line in log.splitlines():
        if line.startswith("redis forwarded "):
            w = line.split()
            return {"forwarded": int(w[2]), "received": int(w[4]),
                    "dropped": int(w[6])}
    return None


def start_fanout_side(args, two, logdir, cpu):
    """The servers of one configuration: one ws_fanout, or a
    redis-server and two ws_fanout --redis; (procs, ports, redis proc or
    None), or a failure message."""
    procs, redis, ports = [], None, []
    n = 2 if two else 1
    if two:
        rport = free_port()
        redis = Proc("redis", [args.redis_server, "--port", str(rport),
                               "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--logfile", ""],
                     logdir, cpu)
        procs.append(redis)
        if not redis_ready(rport):
            stop_all(procs)
            return "redis-server did not answer PING"
        redis.port = rport
    for i in range(n):
        port = free_port()
        argv = [args.ws_fanout, "--host", "127.0.0.1", "--port", str(port)]
        if two:
            argv += ["--redis", "127.0.0.1:%d" % redis.port]
        procs.append(Proc("fanout-%d" % i, argv, logdir, cpu))
        ports.append(port)
    for p in procs[1 if two else 0:]:
        if not p.wait_for("listening") or (two and not p.wait_for(
                "redis up")):
            stop_all(procs)
            return "%s did not start (see %s)" % (p.name, p.log_path)
    return procs, ports, redis


def fanout_round(args, two, logdir, shape, seconds):
    """One round of one configuration on fresh servers: the load
    generator's results with the CPU of the instances, of redis-server
    and of the load generator itself from the first publish to the last
    delivery."""
    cpu_srv, cpu_lg = fan_pins()
    waited = wait_quiet()
    started = start_fanout_side(args, two, logdir, cpu_srv)
    if isinstance(started, str):
        return {"failed": started}
    procs, ports, redis = started
    servers = [p for p in procs if p is not redis]
    argv = [args.loadgen, "--fanout", "--sync", "--conns", str(FAN_CONNS),
            "--publishers", str(FAN_CONNS), "--rate", str(shape.rate),
            "--size", str(FAN_SIZE), "--seconds", str(seconds)]
    for port in ports:
        argv += ["--port", str(port)]
    res = None
    lg = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=lg_log(logdir), text=True,
                          preexec_fn=limits_and_pin(cpu_lg))
    watchdog = threading.Timer(seconds + 120, lg.kill)
    watchdog.start()
    try:
        first = last_json(lg.stdout.readline())
        ok = first is not None and (redis is None or wait_subscribers(
            redis.port, len(servers)))
        time.sleep(0.5)  # the last opens settle
        if ok and all(p.proc.poll() is None for p in procs):
            before = [cpu_us(p.pid) for p in procs] + [cpu_us(lg.pid)]
            ours = [p.pid for p in procs] + [lg.pid]
            snap0 = snapshot(ours)
            tell(lg, "go\n")
            res = last_json(lg.stdout.readline())
            if res and all(p.proc.poll() is None for p in procs):
                snap1 = snapshot(ours)
                after = [cpu_us(p.pid) for p in procs] + [cpu_us(lg.pid)]
            else:
                res = None
        tell(lg, "go\n")
        lg.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if lg.poll() is None:
            lg.kill()
            lg.wait()
        logs = stop_all(procs)
    if res is None:
        return {"failed": "loadgen or a server failed (logs in %s)" % logdir}
    used = [(a - b) for a, b in zip(after, before)]
    total = res["deliveries_total"]
    srv = sum(u for p, u in zip(procs, used) if p is not redis)
    rds = used[0] if redis else 0.0
    res["server_us_per_delivery"] = srv / total if total else None
    res["redis_us_per_delivery"] = rds / total if redis and total else None
    res["total_us_per_delivery"] = (srv + rds) / total if total else None
    res["redis_us_per_msg"] = (rds / res["published"] if redis and
                               res["published"] else None)
    res["quiet_wait_s"] = waited
    res["client_cpu_s"] = used[-1] / 1e6  # the window only
    others(res, snap0, snap1)
    res["instance_cpu_s"] = [u / 1e6 for p, u in zip(procs, used)
                             if p is not redis]
    counts = [bridge_counts(log) for log in logs[:len(servers)]] if two \
        else []
    res["bridge"] = counts
    res["dropped"] = sum(c["dropped"] for c in counts if c)
    if not two:
        for k in ("p50_cross_us", "p99_cross_us"):
            res[k] = None  # no delivery crossed
    return res


def fan_pins():
    """(server cpu, loadgen cpu) of the Redis half: instances and
    redis-server on CPU 0, the load generator on CPU 1, as in make bench;
    BENCH_PIN=0 or one CPU: no pinning."""
    if os.environ.get("BENCH_PIN", "1") == "0" or NCPU < 2:
        return None, None
    return 0, 1


# The workers configurations: name, workers, and what is pinned: nothing
# ("free"), the server on CPU 0 and the load generator on CPU 1 ("split":
# one CPU for the server however many workers), or worker i on CPU i and
# the load generator free ("each": one worker per core).
WORKER_CONFIGS = [
    ("1 worker, unpinned", 1, "free"),
    ("2 workers, unpinned", 2, "free"),
    ("2 workers, one on each CPU, loadgen unpinned", 2, "each"),
    ("1 worker on CPU 0, loadgen on CPU 1", 1, "split"),
    ("2 workers on CPU 0, loadgen on CPU 1", 2, "split"),
]
# The ratios reported: (label, 1-worker config, 2-worker config).
WORKER_RATIOS = [
    ("both unpinned", WORKER_CONFIGS[0][0], WORKER_CONFIGS[1][0]),
    ("2 one on each CPU ÷ 1 unpinned", WORKER_CONFIGS[0][0],
     WORKER_CONFIGS[2][0]),
    ("server on CPU 0, loadgen on CPU 1", WORKER_CONFIGS[3][0],
     WORKER_CONFIGS[4][0]),
]


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def sockets(pid):
    """How many sockets pid holds open."""
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                    "socket:")
            except OSError:
                pass
    except OSError:
        pass
    return n


def workers_round(args, nworkers, pin, logdir, seconds):
    """One run of the echo shape against a fresh ws_echo --workers N,
    pinned as pin says (WORKER_CONFIGS): its rate, the CPU of every worker
    and of the load generator, and how the kernel spread the connections
    over the workers."""
    port = free_port()
    waited = wait_quiet()
    srv = Proc("echo-w%d" % nworkers,
               [args.ws_echo, "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(nworkers)], logdir,
               0 if pin == "split" else None)
    try:
        if not srv.wait_for("listening", nworkers):
            return {"failed": "ws_echo did not start (see %s)" % srv.log_path}
        time.sleep(0.2)
        pids = children(srv.pid) if nworkers > 1 else [srv.pid]
        if pin == "each":
            for i, p in enumerate(pids):
                os.sched_setaffinity(p, {i % NCPU})
        # The supervisor's own CPU (it only waits) is counted too.
        counted = pids + ([srv.pid] if nworkers > 1 else [])
        base = {p: sockets(p) for p in pids}
        before = sum(cpu_us(p) for p in counted)
        snap0 = snapshot(counted + [srv.pid])
        argv = [args.loadgen, "--port", str(port), "--conns",
                str(ECHO_CONNS), "--inflight", str(ECHO_INFLIGHT), "--size",
                str(ECHO_SIZE), "--type", "text", "--seconds", str(seconds)]
        lg = subprocess.Popen(argv, stdout=subprocess.PIPE,
                              stderr=lg_log(logdir), text=True,
                              preexec_fn=limits_and_pin(
                                  1 if pin == "split" else None))
        time.sleep(min(1.0, seconds / 2))
        spread = [sockets(p) - base[p] for p in pids]
        try:
            out = lg.communicate(timeout=seconds + 60)[0]
        except subprocess.TimeoutExpired:
            lg.kill()
            lg.wait()
            return {"failed": "loadgen timed out"}
        if srv.proc.poll() is not None:
            return {"failed": "ws_echo died"}
        snap1 = snapshot(counted + [srv.pid])
        after = sum(cpu_us(p) for p in counted)
    finally:
        srv.stop()
    res = last_json(out)
    if res is None:
        return {"failed": "loadgen printed no result"}
    used = after - before
    res["server_cpu_s"] = used / 1e6
    res["server_us_per_msg"] = (used / res["msgs_total"]
                                if res["msgs_total"] else None)
    res["client_us_per_msg"] = (res["client_cpu_s"] * 1e6 /
                                res["msgs_total"] if res["msgs_total"]
                                else None)
    res["spread"] = spread
    res["quiet_wait_s"] = waited
    # CPUs kept busy by the server and the load generator together, and
    # what other processes took meanwhile (the loadgen's whole run).
    res["busy_cpus"] = (used / 1e6 + res["client_cpu_s"]) / res["seconds"]
    others(res, snap0, snap1)
    return res


def progress(what, rnd, name, res):
    if "failed" in res:
        msg = "FAILED: " + res["failed"]
    elif "deliveries_per_s" in res:
        msg = ("%.0f deliveries/s, p50 %.0f us (cross %s), p99 %.0f us, "
               "cpu %.3f us/delivery (redis %s), others %.2f CPU s, late %d, "
               "errors %d" % (
                   res["deliveries_per_s"], res["p50_us"],
                   fmt(res["p50_cross_us"], 0), res["p99_us"],
                   res["server_us_per_delivery"],
                   fmt(res["redis_us_per_delivery"], 3),
                   res["others_cpu_s"], res["undelivered"],
                   res["errors"]))
    else:
        msg = ("%.0f msg/s, p50 %.0f us, server %.2f CPU s (%.2f us/msg), "
               "loadgen %.2f CPU s, others %.2f CPU s, conns per worker %s, "
               "errors %d" % (
                   res["msgs_per_s"], res["p50_us"], res["server_cpu_s"],
                   res["server_us_per_msg"] or 0, res["client_cpu_s"],
                   res["others_cpu_s"],
                   "/".join(map(str, res["spread"])), res["errors"]))
    if res.get("quiet_wait_s", 0) < 0:
        msg += " (the machine was not quiet)"
    if res.get("attempts", 1) > 1:
        msg += " (attempt %d)" % res["attempts"]
    if res.get("disturbed"):
        msg += " DISTURBED"
    print("  [%s] round %d %s: %s" % (what, rnd + 1, name, msg), flush=True)


def summarize(runs, keys):
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return None
    med = medians(ok, keys)
    med["errors"] = sum(r["errors"] for r in ok)
    med["late"] = sum(r.get("undelivered", 0) for r in ok)
    med["dropped"] = sum(r.get("dropped", 0) for r in ok)
    med["runs"] = len(ok)
    med["not_quiet"] = sum(r.get("quiet_wait_s", 0) < 0 for r in ok)
    med["disturbed"] = sum(r.get("disturbed", False) for r in ok)
    med["retried"] = sum(r.get("attempts", 1) > 1 for r in ok)
    return med


def paired_ratio(a_runs, b_runs, key, clean=False):
    """The median, min and max over rounds of b[key] / a[key], round by
    round (the two ran next to each other), and how many pairs; clean:
    only the pairs of which neither round was disturbed."""
    vals = [b[key] / a[key] for a, b in zip(a_runs, b_runs)
            if "failed" not in a and "failed" not in b and a.get(key)
            and b.get(key) is not None and not (
                clean and (a.get("disturbed") or b.get("disturbed")))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def ratios(a_runs, b_runs, keys):
    """paired_ratio of each key, over all pairs and (as key + "_clean")
    over the undisturbed ones."""
    out = {}
    for k in keys:
        out[k] = paired_ratio(a_runs, b_runs, k)
        out[k + "_clean"] = paired_ratio(a_runs, b_runs, k, clean=True)
    return out


def fmt_ratio(r, digits=2):
    if r is None:
        return "-"
    if r["min"] == r["max"]:
        return fmt(r["median"], digits)
    return "%s (%s–%s)" % (fmt(r["median"], digits), fmt(r["min"], digits),
                           fmt(r["max"], digits))


FAN_NAMES = ["1 instance, 1 000 members",
             "2 instances + redis, 500 + 500 members"]


def bench_redis(args, shape, rounds, seconds, logdir):
    runs = {n: [] for n in FAN_NAMES}
    for r in range(rounds):
        for two, name in enumerate(FAN_NAMES):
            res = run_round(fanout_round, args, bool(two), logdir, shape,
                            seconds)
            res["round"] = r
            runs[name].append(res)
            progress(shape.name, r, name, res)
    return redis_summary({"shape": shape.name, "rate": shape.rate,
                          "seconds": seconds, "runs": runs})


def redis_summary(res):
    """res (shape, rate, seconds, runs) with the medians and ratios."""
    runs = res["runs"]
    res["median"] = {n: summarize(runs[n], FAN_KEYS) for n in FAN_NAMES}
    res["ratio"] = ratios(runs[FAN_NAMES[0]], runs[FAN_NAMES[1]],
                          ("server_us_per_delivery", "total_us_per_delivery",
                           "p50_us", "p99_us", "p50_cross_us",
                           "deliveries_per_s"))
    return res


def bench_workers(args, rounds, seconds, logdir):
    runs = {c[0]: [] for c in WORKER_CONFIGS}
    for r in range(rounds):
        for name, n, pin in WORKER_CONFIGS:
            res = run_round(workers_round, args, n, pin, logdir, seconds)
            res["round"] = r
            runs[name].append(res)
            progress("workers", r, name, res)
    return workers_summary({"runs": runs})


def workers_summary(res):
    """res (runs) with the medians and ratios."""
    runs = res["runs"]
    res["median"] = {c[0]: summarize(runs[c[0]], ECHO_KEYS)
                     for c in WORKER_CONFIGS}
    res["ratio"] = {label: ratios(runs[a], runs[b],
                                  ("msgs_per_s", "server_us_per_msg"))
                    for label, a, b in WORKER_RATIOS}
    return res


def redis_table(res):
    rate, seconds = res["rate"], res["seconds"]
    want = FAN_CONNS * FAN_CONNS * rate
    lines = ["### Fan-out through Redis (%s) — a room of %d, every member "
             "publishing %s msg/s (%d B text): %s msg/s, %s deliveries/s "
             "asked, %s s per round" % (
                 res["shape"], FAN_CONNS, fmt(rate, 1), FAN_SIZE,
                 fmt(FAN_CONNS * rate, 0), fmt(want, 0),
                 fmt(seconds, 1)), "",
             "| configuration | deliveries/s | p50 µs | p99 µs | "
             "cross-instance p50 µs | cross-instance p99 µs | "
             "same-instance p50 µs | same-instance p99 µs | "
             "instances' CPU µs/delivery | redis-server CPU µs/delivery | "
             "redis-server CPU µs/msg | all servers' CPU µs/delivery | "
             "loadgen CPU s | others' CPU s | late | dropped | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             "---:|---:|---:|---:|---:|"]
    for name in FAN_NAMES:
        m = res["median"][name]
        if m is None:
            fails = [r["failed"] for r in res["runs"][name] if "failed" in r]
            lines.append("| %s | failed: %s ||||||||||||||||" % (
                name, fails[0] if fails else "?"))
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                     "%s | %s | %s | %s | %d | %d | %d |" % (
                         name, fmt_range(m, "deliveries_per_s", 0),
                         fmt_range(m, "p50_us", 0), fmt_range(m, "p99_us", 0),
                         fmt_range(m, "p50_cross_us", 0),
                         fmt_range(m, "p99_cross_us", 0),
                         fmt_range(m, "p50_local_us", 0),
                         fmt_range(m, "p99_local_us", 0),
                         fmt_range(m, "server_us_per_delivery", 3),
                         fmt_range(m, "redis_us_per_delivery", 3),
                         fmt_range(m, "redis_us_per_msg", 1),
                         fmt_range(m, "total_us_per_delivery", 3),
                         fmt_range(m, "client_cpu_s", 2),
                         fmt_range(m, "others_cpu_s", 2), m["late"],
                         m["dropped"], m["errors"]))
    rt = res["ratio"]
    lines += ["", "| two ÷ one, round by round | instances' CPU/delivery | "
              "with redis-server's | p50 | p99 | deliveries/s |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, suffix in (("all pairs", ""),
                          ("undisturbed pairs", "_clean")):
        keys = ("server_us_per_delivery", "total_us_per_delivery", "p50_us",
                "p99_us", "deliveries_per_s")
        n = (rt[keys[0] + suffix] or {}).get("n", 0)
        lines.append("| %s (%d) | %s |" % (label, n, " | ".join(
            fmt_ratio(rt[k + suffix]) for k in keys)))
    lines += ["",
              "Notes: connection i goes to instance i %% 2 and publishes as "
              "member i, so half the deliveries cross (publisher on one "
              "instance, subscriber on the other: ws_server_publish → "
              "PUBLISH → redis-server → the other instance's SUBSCRIBE → its "
              "500 members); cross-/same-instance latencies split them "
              "(one instance: all are same-instance). CPU = utime+stime "
              "(/proc/PID/stat) from the first publish to the last "
              "delivery ÷ deliveries (10⁶ a round; half with "
              "BENCH_QUICK=1); redis µs/msg ÷ messages published. %s "
              "Fresh servers each round; late = "
              "deliveries missing 3 s after the last publish, dropped = "
              "publishes the bridges did not forward (both summed over "
              "rounds). %s" % (pin_note(), noise_note(res, FAN_NAMES))]
    return "\n".join(lines) + "\n"


def noise_note(res, names):
    """What the others' CPU column means, and how many rounds were
    disturbed."""
    def count(key):
        return sum((res["median"][k] or {}).get(key, 0) for k in names)

    return ("Others' CPU s = the CPU time of every other process "
            "(/proc/PID/stat, with the children they reaped) in the "
            "window: other work on this shared machine, which slows a "
            "round down. Each round first waited up to %s s "
            "(BENCH_QUIET_WAIT) for an idle machine, and one that others "
            "took more than 0.1 CPU from was run again, up to %s times "
            "(BENCH_RETRIES). Rounds started on a busy machine: %d; run "
            "again: %d; kept although disturbed: %d." % (
                os.environ.get("BENCH_QUIET_WAIT", "30"),
                os.environ.get("BENCH_RETRIES", "1"), count("not_quiet"),
                count("retried"), count("disturbed")))


def pin_note():
    srv, lg = fan_pins()
    if srv is None:
        return "Nothing pinned."
    return ("Pinned: the instances and redis-server on CPU %d, the load "
            "generator on CPU %d, so both configurations have one CPU for "
            "the server side." % (srv, lg))


def workers_table(res, seconds):
    lines = ["### Workers — ws_echo --workers N (SO_REUSEPORT), "
             "%d connections × %d B text, %d in flight each, %s s per "
             "round" % (ECHO_CONNS, ECHO_SIZE, ECHO_INFLIGHT,
                        fmt(seconds, 1)), "",
             "| configuration | msgs/s | p50 µs | p99 µs | server CPU s "
             "(all workers) | server CPU µs/msg | loadgen CPU s (its run) | "
             "loadgen CPU µs/msg | "
             "CPUs busy (server + loadgen) | others' CPU s | "
             "connections per worker | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, _, _ in WORKER_CONFIGS:
        m = res["median"][name]
        if m is None:
            fails = [r["failed"] for r in res["runs"][name] if "failed" in r]
            lines.append("| %s | failed: %s |||||||||||" % (
                name, fails[0] if fails else "?"))
            continue
        spread = ", ".join("/".join(map(str, r["spread"]))
                           for r in res["runs"][name] if "failed" not in r)
        lines.append(("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                      "%s | %d |") % (
            name, fmt_range(m, "msgs_per_s", 0), fmt_range(m, "p50_us", 0),
            fmt_range(m, "p99_us", 0), fmt_range(m, "server_cpu_s", 2),
            fmt_range(m, "server_us_per_msg", 2),
            fmt_range(m, "client_cpu_s", 2),
            fmt_range(m, "client_us_per_msg", 2), fmt_range(m, "busy_cpus", 2),
            fmt_range(m, "others_cpu_s", 2), spread, m["errors"]))
    lines += ["", "| 2 workers ÷ 1, round by round | msgs/s | server CPU "
              "µs/msg | undisturbed pairs | their msgs/s | their CPU µs/msg |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, _, _ in WORKER_RATIOS:
        rt = res["ratio"][label]
        lines.append("| %s | %s | %s | %d | %s | %s |" % (
            label, fmt_ratio(rt["msgs_per_s"]),
            fmt_ratio(rt["server_us_per_msg"]),
            (rt["msgs_per_s_clean"] or {}).get("n", 0),
            fmt_ratio(rt["msgs_per_s_clean"]),
            fmt_ratio(rt["server_us_per_msg_clean"])))
    lines += ["", ceiling_note(res), "",
              "Notes: the load generator is one process on one thread and "
              "shares the machine's %d CPUs; CPUs busy = (server CPU s + "
              "loadgen CPU s) ÷ the window, at most %d (both CPU figures "
              "count the connects and closes too). Connections per "
              "worker: sockets each worker held during the run, per round "
              "(the kernel's reuse-port hash picks the worker). %s" % (
                  NCPU, NCPU, noise_note(res, [c[0] for c in
                                               WORKER_CONFIGS]))]
    return "\n".join(lines) + "\n"


def ceiling_note(res):
    """What the CPU per message allows on this machine: with s server and
    l loadgen CPU µs a message, N workers can echo at most min(N / s,
    1 / l, NCPU / (s + l)) messages a second (the workers' CPUs, the
    loadgen's one thread, the machine)."""
    m = res["median"][WORKER_CONFIGS[3][0]]  # pinned: the steadiest
    if not m or not m["server_us_per_msg"] or not m["client_us_per_msg"]:
        return ""
    s, l = m["server_us_per_msg"], m["client_us_per_msg"]

    def cap(n):
        return min(n / s, 1 / l, NCPU / (s + l)) * 1e6

    return ("What the CPU costs allow here: at %.2f server and %.2f "
            "loadgen CPU µs per message (the pinned 1-worker medians), "
            "1 worker echoes at most %s msgs/s (its CPU) and 2 at most %s "
            "(the loadgen's one thread, %s, and the machine's %d CPUs "
            "shared by both, %s): a ceiling of %.2f for the ratio on this "
            "machine. With the load generator on cores of its own it would "
            "be %.2f, its one thread then the bound: the 2.00 that two "
            "workers' CPUs allow needs a load generator of several "
            "threads or processes on other cores." % (
                s, l, fmt(cap(1), 0), fmt(cap(2), 0), fmt(1e6 / l, 0), NCPU,
                fmt(NCPU / (s + l) * 1e6, 0), cap(2) / cap(1),
                min(2 / s, 1 / l) / (1 / s)))


def header(args, rounds):
    return ("# make bench-scale results (%s)\n\n"
            "Machine: %d CPUs (%s), kernel %s; %s; ws_fanout %s, ws_echo %s. "
            "%d round(s), configurations in alternation within each round; "
            "figures are medians with the lowest and highest round in "
            "brackets.\n" % (
                time.strftime("%Y-%m-%d %H:%M:%S"), NCPU,
                (command_out(["sh", "-c", "grep -m1 'model name' "
                              "/proc/cpuinfo | cut -d: -f2"]) or "?").strip(),
                os.uname().release,
                command_out([args.redis_server, "--version"]) or
                "no redis-server", args.ws_fanout, args.ws_echo, rounds))


def selected(name):
    only = os.environ.get("BENCH_SHAPES")
    return not only or any(w in name for w in only.split(","))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-dir", default="build/bench",
                    help="the loadgen; results go here")
    ap.add_argument("--ws-echo", default="build/bench-epoll/ws_echo")
    ap.add_argument("--ws-fanout", default="build/bench-epoll/ws_fanout")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--render", metavar="JSON",
                    help="run nothing: print the tables of a scale.json")
    return ap.parse_args()


def render(path):
    """The Markdown of a scale.json, medians and ratios computed again."""
    with open(path) as f:
        results = json.load(f)
    md = []
    for res in results.get("redis", []):
        md.append(redis_table(redis_summary(res)))
    if "workers" in results:
        md.append(workers_table(workers_summary(results["workers"]),
                                results["workers"].get("seconds",
                                                       ECHO_SECONDS)))
    print("\n".join(md))
    return 0


def on_term(sig, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, on_term)
    args = parse_args()
    if args.render:
        return render(args.render)
    args.loadgen = os.path.join(args.bench_dir, "loadgen")
    quick = os.environ.get("BENCH_QUICK") == "1"
    rounds = 1 if quick else int(os.environ.get("BENCH_ROUNDS", "5"))
    echo_s = 1.0 if quick else ECHO_SECONDS
    logdir = os.path.join(args.bench_dir, "logs")
    os.makedirs(logdir, exist_ok=True)
    results = {"rounds": rounds, "redis": []}
    md = [header(args, rounds)]
    print(md[0], flush=True)
    try:
        have_redis = command_out(["sh", "-c", "command -v " +
                                  args.redis_server]) is not None
        for shape in FAN_SHAPES:
            if not selected(shape.name):
                continue
            if not have_redis:
                md.append("### Fan-out through Redis (%s): skipped, no "
                          "redis-server\n" % shape.name)
            else:
                res = bench_redis(args, shape, rounds, shape.seconds /
                                  (2 if quick else 1), logdir)
                results["redis"].append(res)
                md.append(redis_table(res))
            print(md[-1], flush=True)
        if selected("workers"):
            results["workers"] = bench_workers(args, rounds, echo_s, logdir)
            results["workers"]["seconds"] = echo_s
            md.append(workers_table(results["workers"], echo_s))
            print(md[-1], flush=True)
    except KeyboardInterrupt:
        print("scale.py: interrupted", file=sys.stderr)
        return 1
    with open(os.path.join(args.bench_dir, "scale.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.bench_dir, "scale.md"), "w") as f:
        f.write("\n".join(md))
    print("Results: %s/scale.md and scale.json" % args.bench_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
