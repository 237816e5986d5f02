#!/usr/bin/python3
"""run.py - the make bench runner: starts our ws_echo, the raw TCP echo
ceiling, the protocol's floor (floor_echo) and the peer servers, drives
each with tests/bench/loadgen in alternation (A B C ... per round, so a
noisy machine hits all alike), and prints Markdown tables of medians
(with the range over rounds) and ratios. Then the same over TLS (wss://)
against the TLS ceiling (tls_echo), connection rates included, and
fan-out (pub/sub: one room, many subscribers) against each server's own
fan-out program (peers/ws_fanout.c on the library, uws_fanout.js,
ws_fanout.js, lws_fanout.c). Builds
and installs nothing: the Makefile's bench target does that (the test
certificates excepted: tests/tls/make_certs.sh makes them in the bench
directory). Standard library only.

Environment: BENCH_SECONDS (default 3), BENCH_ROUNDS (default 3),
BENCH_QUICK=1 (1 round of 1 s), BENCH_PIN=0 (no CPU pinning),
BENCH_SHAPES / BENCH_SERVERS (comma-separated name filters),
BENCH_BASE=PATH (another build of ws_echo, run as "base" in the same
alternation: a before/after comparison of a change), BENCH_SYSCALLS=0 (no
system call counts in the load shapes; =1 counts them in the fan-out
shapes too).
"""
import argparse
import collections
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

from fanout import FANOUT_KEYS, FANOUT_SECONDS, FANOUT_SHAPES, fanout_round
from procstat import cpu_us, last_json, memory_kib
from syscalls import perf_start, perf_stop, wanted
from tables import fanout_table, header, idle_table, load_table, rate_table

NCPU = os.cpu_count() or 1

# A load shape: its name, connections, messages in flight on each,
# payload bytes, type; the compression mode (None, "nocontext",
# "context"), TLS or not, and whether it measures the connection rate
# (conns = cycles under way at once, each one echo of size bytes).
Shape = collections.namedtuple(
    "Shape", "name conns inflight size kind deflate tls rate",
    defaults=(None, False, False))

LOAD_SHAPES = [
    Shape("1 conn x 16 B (latency)", 1, 1, 16, "text"),
    Shape("100 conns x 16 B", 100, 8, 16, "text"),
    Shape("100 conns x 512 B", 100, 8, 512, "text"),
    Shape("1000 conns x 16 B", 1000, 1, 16, "text"),
    Shape("10 conns x 64 KiB", 10, 4, 65536, "binary"),
    Shape("1 conn x 1 MiB", 1, 2, 1 << 20, "text"),
]
IDLE_SHAPES = [1000, 10000]
# permessage-deflate (RFC 7692) on both sides: name, conns, in flight,
# bytes, type, and whether neither side keeps a context ("nocontext": our
# default; uWS SHARED_COMPRESSOR; node ws serverNoContextTakeover) or both
# do ("context": ws_echo --deflate-context; uWS DEDICATED_COMPRESSOR).
DEFLATE_SHAPES = [
    Shape("deflate 100 conns x 200 B JSON, no context", 100, 8, 200, "json",
          "nocontext"),
    Shape("deflate 100 conns x 200 B JSON, context", 100, 8, 200, "json",
          "context"),
    Shape("deflate 10 conns x 64 KiB text, no context", 10, 4, 65536,
          "text", "nocontext"),
    Shape("deflate 10 conns x 64 KiB text, context", 10, 4, 65536, "text",
          "context"),
]
DEFLATE_IDLE = [(1000, "nocontext"), (10000, "nocontext"),
                (1000, "context"), (10000, "context")]
# TLS 1.3 (wss://), every server with the same certificate (ECDSA P-256)
# and the same cipher (the load generator offers only AES-128-GCM).
# Connection rates: 50 cycles under way, each connect, (TLS handshake,)
# upgrade, one 16 B echo, close handshake, server's FIN.
TLS_SHAPES = [
    Shape("wss 100x16B", 100, 8, 16, "text", tls=True),
    Shape("wss 10x64KiB", 10, 4, 65536, "binary", tls=True),
    Shape("handshakes (no TLS)", 50, 1, 16, "text", rate=True),
    Shape("wss handshakes", 50, 1, 16, "text", tls=True, rate=True),
]
TLS_IDLE = [1000, 10000]
# Memory per TLS connection moves by about 1 % between rounds, and 10 000
# TLS handshakes take the load generator seconds: two rounds are enough.
TLS_IDLE_ROUNDS = 2
# Run only when BENCH_SHAPES names them, to keep make bench short: the
# plain connection rate, the baseline of "wss handshakes".
OPT_IN = {"handshakes (no TLS)"}


class Server:
    """One echo server under test: how to start it and what it speaks."""

    def __init__(self, name, argv_fn, raw=False, why_missing=None,
                 deflate_fn=None, tls_fn=None, rate=True, fan_fn=None):
        self.name = name
        self.argv_fn = argv_fn  # port -> argv; None: TLS only
        self.deflate_fn = deflate_fn  # (port, mode) -> argv; None: no such
        self.tls_fn = tls_fn  # (port, cert, key) -> argv; None: no TLS
        self.rate = rate  # does the close handshake (--connect-rate)
        self.fan_fn = fan_fn  # port -> argv of its fan-out server; None
        self.raw = raw
        self.why_missing = why_missing  # None when it can run
        self.proc = None
        self.port = None
        self.log = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def limits_and_pin(cpu):
    """preexec_fn: raise RLIMIT_NOFILE and pin to one CPU (if asked)."""

    def fn():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        for want in (65536, hard):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE,
                                   (max(soft, want), max(hard, want)))
                break
            except (ValueError, OSError):
                continue
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return fn


def pins():
    """(server cpu, loadgen cpu): one core each when there are two."""
    if os.environ.get("BENCH_PIN", "1") == "0" or NCPU < 2:
        return None, None
    return 0, 1


def runs_shape(srv, shape):
    """Whether srv takes part in shape (it speaks what the shape needs)."""
    if shape.rate and not srv.rate:
        return False
    if shape.tls:
        return srv.tls_fn is not None
    if shape.deflate:
        return srv.deflate_fn is not None
    return srv.argv_fn is not None


def start_server(srv, logdir, deflate=None, tls=None, fan=False):
    """Start srv on a free port (with compression mode deflate, or TLS
    with tls = (cert, key), or its fan-out program, if asked); True when
    it accepts connections."""
    srv.port = free_port()
    srv.log = open(os.path.join(logdir, srv.name + ".log"), "ab")
    if fan:
        argv = srv.fan_fn(srv.port)
    elif tls:
        argv = srv.tls_fn(srv.port, *tls)
    elif deflate:
        argv = srv.deflate_fn(srv.port, deflate)
    else:
        argv = srv.argv_fn(srv.port)
    try:
        srv.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=srv.log, stderr=srv.log,
            preexec_fn=limits_and_pin(pins()[0]))
    except OSError as e:
        srv.why_missing = "failed to start: %s" % e
        return False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            srv.why_missing = "exited at start (see %s.log)" % srv.name
            return False
        try:
            with socket.create_connection(("127.0.0.1", srv.port), 0.5):
                return True
        except OSError:
            time.sleep(0.05)
    srv.why_missing = "did not listen within 15 s"
    stop_server(srv)
    return False


def stop_server(srv):
    """Stop the process we started (by its own pid only)."""
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(5)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
    srv.proc = None
    if srv.log:
        srv.log.close()
        srv.log = None


def loadgen_argv(args, srv, shape, seconds, idle=False):
    """The load generator's command line for shape against srv. Over TLS
    the load shapes check the server's certificate against the test CA;
    the idle and rate ones do not, so that the client's handshakes cost
    less (OpenSSL 3.0's client side costs more than a server's)."""
    argv = [args.loadgen, "--port", str(srv.port), "--conns",
            str(shape.conns), "--inflight", str(shape.inflight), "--size",
            str(shape.size), "--type", shape.kind, "--seconds", str(seconds)]
    if srv.raw:
        argv.append("--raw")
    if idle:
        argv.append("--idle")
    if shape.deflate:
        argv += ["--deflate", shape.deflate]
    if shape.tls:
        argv.append("--tls")
        if not idle and not shape.rate:
            argv += ["--tls-ca", args.certs[2]]
    if shape.rate:
        argv.append("--connect-rate")
    return argv


def run_load(args, srv, shape, seconds):
    """One loadgen run against srv; the result with the server's CPU."""
    before = cpu_us(srv.proc.pid)
    try:
        p = subprocess.run(
            loadgen_argv(args, srv, shape, seconds),
            capture_output=True, text=True, timeout=seconds + 60,
            preexec_fn=limits_and_pin(pins()[1]))
    except subprocess.TimeoutExpired:
        return {"failed": "loadgen timed out"}
    if srv.proc.poll() is not None:
        return {"failed": "server died (exit %s)" % srv.proc.returncode}
    res = last_json(p.stdout)
    if res is None:
        return {"failed": "loadgen: %s" % p.stderr.strip()[-200:]}
    cpu = cpu_us(srv.proc.pid) - before
    res["server_cpu_us"] = cpu
    # Per echo, or per connection cycle in the rate shapes.
    total = res["handshakes_total" if shape.rate else "msgs_total"]
    res["cpu_us_per_msg"] = cpu / total if total else None
    return res


# Seconds of the extra run of each load shape in which each server's
# system calls are counted (apart from the timed rounds, whose CPU
# figures perf would touch).
CALLS_SECONDS = 1.0


def count_calls(args, srv, shape):
    """One more run of shape against srv with its system calls counted:
    the counts, and the read and write families and all calls per echo
    (per cycle in the rate shapes), connects and closes included."""
    perf = perf_start(srv.proc.pid)
    if perf is None:
        return None
    res = run_load(args, srv, shape, CALLS_SECONDS)
    calls = perf_stop(perf)
    total = res.get("handshakes_total" if shape.rate else "msgs_total")
    if not calls or not total:
        return None
    return {"counts": calls, "msgs": total, "rw_per_msg": calls["rw"] / total,
            "all_per_msg": calls.get("syscalls", 0) / total}


def run_idle(args, srv, conns, logdir, deflate=None, tls=False):
    """Hold conns idle connections on a fresh srv; memory per connection."""
    if not start_server(srv, logdir, deflate, args.certs[:2] if tls
                        else None):
        return {"failed": srv.why_missing}
    try:
        time.sleep(0.5)
        before = memory_kib(srv.proc.pid)
        p = subprocess.Popen(
            loadgen_argv(args, srv, Shape("idle", conns, 1, 16, "text",
                                          deflate, tls), 120, idle=True),
            stdout=subprocess.PIPE, stderr=srv.log, text=True,
            preexec_fn=limits_and_pin(pins()[1]))
        try:
            first = json.loads(p.stdout.readline() or "null")
            time.sleep(1.0)
            after = None
            if srv.proc.poll() is None:
                after = memory_kib(srv.proc.pid)
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        end = last_json(out) or first
    finally:
        stop_server(srv)
    if first is None or after is None:
        return {"failed": "loadgen or server failed"}
    est = first["established"]
    res = {"established": est, "errors": end["errors"],
           "before_kib": before, "after_kib": after}
    for key in ("Private_Dirty", "Rss"):
        delta = after[key] - before[key]
        res[key + "_per_conn_kib"] = delta / est if est else None
    return res


def run_fanout(args, srv, shape, seconds, logdir):
    """One round of a fan-out shape on a fresh srv (a baseline for its
    memory)."""
    if not start_server(srv, logdir, fan=True):
        return {"failed": srv.why_missing}
    try:
        time.sleep(0.5)
        return fanout_round(args, srv, shape, seconds,
                            limits_and_pin(pins()[1]))
    finally:
        stop_server(srv)


def bench_fanout(args, servers, shape, rounds, seconds, logdir):
    """All rounds of one fan-out shape, servers in alternation, each
    round on a fresh server."""
    servers = [s for s in servers if s.fan_fn is not None]
    runs = {s.name: [] for s in servers}
    for r in range(rounds):
        for srv in servers:
            if srv.why_missing is not None:
                continue
            res = run_fanout(args, srv, shape, seconds, logdir)
            res["round"] = r
            runs[srv.name].append(res)
            progress(shape.name, r, srv.name, res)
            if "failed" in res:
                srv.why_missing = None  # retry it in the next round
    out = {}
    for s in servers:
        ok = [x for x in runs[s.name] if "failed" not in x]
        med = None
        if ok:
            med = medians(ok, FANOUT_KEYS)
            med["errors"] = sum(x["errors"] for x in ok)
            med["undelivered"] = sum(x["undelivered"] for x in ok)
            med["established"] = min(x["established"] for x in ok)
            med["runs"] = len(ok)
        fails = [x["failed"] for x in runs[s.name] if "failed" in x]
        out[s.name] = {"runs": runs[s.name], "median": med,
                       "note": s.why_missing or (fails[0] if fails else None)}
    return out


def median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def medians(ok, keys):
    """The median of each key over the rounds, and its min and max (as
    key_min, key_max)."""
    med = {}
    for k in keys:
        vals = [r[k] for r in ok if r.get(k) is not None]
        med[k] = statistics.median(vals) if vals else None
        med[k + "_min"] = min(vals) if vals else None
        med[k + "_max"] = max(vals) if vals else None
    return med


def summarize(runs):
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return None
    keys = ("msgs_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us",
            "cpu_us_per_msg", "wire_bytes_per_msg", "handshakes_per_s")
    med = medians(ok, keys)
    med["errors"] = sum(r["errors"] for r in ok)
    med["runs"] = len(ok)
    return med


def bench_shape(args, servers, shape, rounds, seconds, logdir):
    """All rounds of one load shape, servers in alternation."""
    servers = [s for s in servers if runs_shape(s, shape)]
    live = [s for s in servers if s.why_missing is None]
    tls = args.certs[:2] if shape.tls else None
    started = [s for s in live if start_server(s, logdir, shape.deflate,
                                               tls)]
    runs = {s.name: [] for s in servers}
    try:
        for r in range(rounds):
            for srv in started:
                if srv.proc is None or srv.proc.poll() is not None:
                    continue
                res = run_load(args, srv, shape, seconds)
                res["round"] = r
                runs[srv.name].append(res)
                progress(shape[0], r, srv.name, res)
        calls = {}
        for srv in started if wanted(True) else []:
            if srv.proc is not None and srv.proc.poll() is None:
                calls[srv.name] = count_calls(args, srv, shape)
                progress_calls(shape[0], srv.name, calls[srv.name])
    finally:
        for s in started:
            stop_server(s)
    out = {}
    for s in servers:
        fails = [r["failed"] for r in runs[s.name] if "failed" in r]
        note = s.why_missing or (fails[0] if fails else None)
        out[s.name] = {"runs": runs[s.name], "median": summarize(runs[s.name]),
                       "calls": calls.get(s.name), "note": note}
        if s.why_missing and s.why_missing.startswith(("exited", "did not",
                                                       "failed to")):
            s.why_missing = None  # retry it on the next shape
    return out


def progress_calls(name, server, calls):
    if calls is None:
        msg = "system calls not counted (no perf, or the run failed)"
    else:
        msg = "%.3f read/write calls per %s, %.3f calls in all %s" % (
            calls["rw_per_msg"], "cycle" if "handshake" in name else "echo",
            calls["all_per_msg"], calls["counts"])
    print("  [%s] counted %-5s %s" % (name, server, msg), flush=True)


def progress(name, rnd, server, res):
    if "failed" in res:
        msg = "FAILED: " + res["failed"]
    elif "deliveries_per_s" in res:
        msg = ("%.0f deliveries/s, p50 %.0f us, p99 %.0f us, cpu %.3f "
               "us/delivery, %.2f KiB/sub, late %d, errors %d" % (
                   res["deliveries_per_s"], res["p50_us"], res["p99_us"],
                   res["cpu_us_per_delivery"] or 0,
                   res["Rss_per_sub_kib"] or 0, res["undelivered"],
                   res["errors"]))
        if res.get("syscalls_per_delivery") is not None:
            msg += ", %.3f syscalls/delivery %s" % (
                res["syscalls_per_delivery"], res["syscalls"])
    elif "handshakes_per_s" in res:
        msg = "%.0f cycles/s, p50 %.0f us, cpu %.1f us/cycle, errors %d" % (
            res["handshakes_per_s"], res["p50_us"],
            res["cpu_us_per_msg"] or 0, res["errors"])
    elif "msgs_per_s" in res:
        msg = "%.0f msg/s, p50 %.1f us, cpu %.2f us/msg, errors %d" % (
            res["msgs_per_s"], res["p50_us"], res["cpu_us_per_msg"] or 0,
            res["errors"])
    else:
        msg = "%s established, %.2f KiB/conn private dirty, errors %d" % (
            res["established"], res["Private_Dirty_per_conn_kib"] or 0,
            res["errors"])
    print("  [%s] round %d %-5s %s" % (name, rnd + 1, server, msg),
          flush=True)


def bench_idle(args, servers, conns, rounds, logdir, deflate=None,
               tls=False):
    servers = [s for s in servers if runs_shape(
        s, Shape("idle", conns, 1, 16, "text", deflate, tls))]
    runs = {s.name: [] for s in servers}
    for r in range(rounds):
        for srv in servers:
            if srv.why_missing is not None:
                continue
            res = run_idle(args, srv, conns, logdir, deflate, tls)
            res["round"] = r
            runs[srv.name].append(res)
            progress("%sidle %d" % ("wss " if tls else "", conns), r,
                     srv.name, res)
            if "failed" in res:
                srv.why_missing = None
    out = {}
    for s in servers:
        ok = [x for x in runs[s.name] if "failed" not in x]
        med = None
        if ok:
            med = medians(ok, ("established", "Private_Dirty_per_conn_kib",
                               "Rss_per_conn_kib"))
            med["errors"] = sum(x["errors"] for x in ok)
        fails = [x["failed"] for x in runs[s.name] if "failed" in x]
        out[s.name] = {"runs": runs[s.name], "median": med,
                       "note": s.why_missing or (fails[0] if fails else None)}
    return out


def node_version(path, pkg):
    try:
        with open(os.path.join(path, "node_modules", pkg,
                               "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


def command_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def make_servers(args):
    """Ours, the raw ceiling, then the peers; missing ones say why."""
    node = command_out(["sh", "-c", "command -v node"])
    nd = args.node_dir

    def node_peer(name, script, pkg, modes, fan_script):
        why = None
        if node is None:
            why = "node not installed"
        elif node_version(nd, pkg) is None:
            why = "npm package %s not installed" % pkg
        return Server(name, lambda p: [node, os.path.join(nd, script),
                                       str(p), "127.0.0.1"], why_missing=why,
                      deflate_fn=lambda p, mode: [
                          node, os.path.join(nd, script), str(p),
                          "127.0.0.1", modes[mode]],
                      tls_fn=lambda p, cert, key: [
                          node, os.path.join(nd, script), str(p),
                          "127.0.0.1", "--tls-cert", cert, "--tls-key", key],
                      fan_fn=lambda p: [node, os.path.join(nd, fan_script),
                                        str(p), "127.0.0.1"])

    def c_server(name, path, why, **kw):
        """One of our C programs, taking --host, --port and, over TLS,
        --tls-cert and --tls-key."""
        def argv(p):
            return [path, "--host", "127.0.0.1", "--port", str(p)]
        return Server(name, argv,
                      why_missing=None if os.access(path, os.X_OK) else why,
                      tls_fn=lambda p, cert, key: argv(p) + [
                          "--tls-cert", cert, "--tls-key", key], **kw)

    def c_fan(path):
        """A C fan-out server (--host, --port); one not built fails to
        start, and its table row says so."""
        return lambda p: [path, "--host", "127.0.0.1", "--port", str(p)]

    def ws_echo_deflate(path):
        """A ws_echo build in a compressed shape: context or none."""
        return lambda p, mode: [path, "--host", "127.0.0.1", "--port",
                                str(p)] + (["--deflate-context"]
                                           if mode == "context" else [])

    bd = args.bench_dir
    ours = c_server("ours", args.ws_echo, "ws_echo not built",
                    fan_fn=c_fan(args.ws_fanout),
                    deflate_fn=ws_echo_deflate(args.ws_echo))
    tls = c_server("tls", os.path.join(bd, "tls_echo"),
                   "tls_echo not built", raw=True)
    tls.argv_fn = None  # TLS only
    servers = [
        ours,
        Server("raw", lambda p: [os.path.join(bd, "raw_echo"),
                                 "--host", "127.0.0.1", "--port", str(p)],
               raw=True),
        tls,
        # A close or a ping ends the floor's connection: no rate shapes.
        Server("floor", lambda p: [os.path.join(bd, "floor_echo"), "--host",
                                   "127.0.0.1", "--port", str(p)],
               why_missing=None if os.access(os.path.join(bd, "floor_echo"),
                                             os.X_OK)
               else "floor_echo not built", rate=False),
        node_peer("uws", "uws_echo.js", "@trufflesuite/uws-js-unofficial",
                  {"nocontext": "shared", "context": "dedicated"},
                  "uws_fanout.js"),
        node_peer("ws", "ws_echo.js", "ws",
                  {"nocontext": "nocontext", "context": "context"},
                  "ws_fanout.js"),
        c_server("lws", os.path.join(bd, "lws_echo"),
                 "libwebsockets-dev not installed (lws_echo not built)",
                 fan_fn=c_fan(os.path.join(bd, "lws_fanout"))),
    ]
    base = os.environ.get("BENCH_BASE")
    if base:
        servers.insert(1, c_server("base", base,
                                   "BENCH_BASE is not an executable",
                                   deflate_fn=ws_echo_deflate(base)))
    only = os.environ.get("BENCH_SERVERS")
    if only:
        keep = only.split(",")
        servers = [s for s in servers if s.name in keep]
    return servers


def meta(args, rounds, seconds):
    nd = args.node_dir
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": NCPU,
        "pinned": "server cpu 0, loadgen cpu 1" if pins()[0] is not None
        else "no",
        "backend": args.backend,
        "rounds": rounds,
        "seconds": seconds,
        "cpu_model": command_out(["sh", "-c", "grep -m1 'model name' "
                                  "/proc/cpuinfo | cut -d: -f2"]),
        "kernel": os.uname().release,
        "node": command_out(["node", "--version"]),
        "uws": node_version(nd, "@trufflesuite/uws-js-unofficial"),
        "ws": node_version(nd, "ws"),
        "libwebsockets": (command_out(["pkg-config", "--modversion",
                                       "libwebsockets"]) or "").rstrip("-"),
        "ws_echo": args.ws_echo,
        "ws_fanout": args.ws_fanout,
        "openssl": command_out(["openssl", "version"]),
    }


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-dir", default="build/bench",
                    help="loadgen, raw_echo, lws_echo; results go here")
    ap.add_argument("--ws-echo", default="build/ws_echo")
    ap.add_argument("--ws-fanout", default=None,
                    help="our fan-out server; default: ws_fanout beside "
                    "--ws-echo")
    ap.add_argument("--backend", default="select")
    ap.add_argument("--node-dir", default="tests/bench/peers/node")
    return ap.parse_args()


def selected(name, opt_in=False):
    """Whether BENCH_SHAPES asks for the shape name (an opt_in shape runs
    only when it is named)."""
    only = os.environ.get("BENCH_SHAPES")
    if not only:
        return not opt_in
    return any(w in name for w in only.split(","))


def make_certs(args):
    """The test certificates in the bench directory (tests/tls/
    make_certs.sh), as (cert, key, ca); None when they cannot be made."""
    d = os.path.join(args.bench_dir, "certs")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "tls", "make_certs.sh")
    try:
        subprocess.run(["sh", script, d], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        print("run.py: no test certificates (%s): TLS shapes skipped" % e,
              file=sys.stderr)
        return None
    return tuple(os.path.join(d, f) for f in
                 ("server.pem", "server.key", "ca.pem"))


def on_term(sig, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, on_term)
    args = parse_args()
    args.loadgen = os.path.join(args.bench_dir, "loadgen")
    if args.ws_fanout is None:
        args.ws_fanout = os.path.join(os.path.dirname(args.ws_echo),
                                      "ws_fanout")
    args.certs = None  # (cert, key, ca), made before the first TLS shape
    quick = os.environ.get("BENCH_QUICK") == "1"
    rounds = 1 if quick else int(os.environ.get("BENCH_ROUNDS", "3"))
    seconds = 1.0 if quick else float(os.environ.get("BENCH_SECONDS", "3"))
    logdir = os.path.join(args.bench_dir, "logs")
    os.makedirs(logdir, exist_ok=True)
    servers = make_servers(args)
    try:
        return run_all(args, servers, rounds, seconds, logdir)
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return 1
    finally:
        for s in servers:
            stop_server(s)


def run_all(args, servers, rounds, seconds, logdir):
    m = meta(args, rounds, seconds)
    results = {"meta": m, "load": [], "idle": [], "fanout": []}
    md = [header(m)]
    print(md[0], flush=True)
    def load(shape):
        res = bench_shape(args, servers, shape, rounds, seconds, logdir)
        entry = {"shape": shape.name, "conns": shape.conns,
                 "inflight": shape.inflight, "size": shape.size,
                 "type": shape.kind}
        if shape.deflate:
            entry["deflate"] = shape.deflate
        if shape.tls:
            entry["tls"] = True
        if shape.rate:
            entry["rate"] = True
        entry["servers"] = res
        results["load"].append(entry)
        md.append((rate_table if shape.rate else load_table)(shape, res,
                                                         CALLS_SECONDS))
        print(md[-1], flush=True)

    def idle(conns, mode, tls=False, rounds=rounds):
        res = bench_idle(args, servers, conns, rounds, logdir, mode, tls)
        entry = {"conns": conns}
        if mode:
            entry["deflate"] = mode
        if tls:
            entry["tls"] = True
        entry["servers"] = res
        results["idle"].append(entry)
        md.append(idle_table(conns, res, mode, tls))
        print(md[-1], flush=True)

    for shape in LOAD_SHAPES:
        if selected(shape[0]):
            load(shape)
    for conns in IDLE_SHAPES:
        if selected("idle %d" % conns):
            idle(conns, None)
    fan_seconds = min(seconds, FANOUT_SECONDS)
    for shape in FANOUT_SHAPES:
        if selected(shape.name):
            res = bench_fanout(args, servers, shape, rounds, fan_seconds,
                               logdir)
            results["fanout"].append({"shape": shape.name,
                                      "conns": shape.conns,
                                      "publishers": shape.publishers,
                                      "rate": shape.rate,
                                      "size": shape.size, "servers": res})
            md.append(fanout_table(shape, res, fan_seconds))
            print(md[-1], flush=True)
    for shape in DEFLATE_SHAPES:
        if selected(shape[0]):
            load(shape)
    for conns, mode in DEFLATE_IDLE:
        if selected("deflate idle %d %s" % (conns, mode)):
            idle(conns, mode)
    want = [s for s in TLS_SHAPES if selected(s.name, s.name in OPT_IN)]
    want_idle = [n for n in TLS_IDLE if selected("wss idle %d" % n)]
    if any(s.tls for s in want) or want_idle:
        args.certs = make_certs(args)
    for shape in want:
        if args.certs or not shape.tls:
            load(shape)
    for conns in want_idle:
        if args.certs:
            idle(conns, None, tls=True,
                 rounds=min(rounds, TLS_IDLE_ROUNDS))
    with open(os.path.join(args.bench_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.bench_dir, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("Results: %s/results.md and results.json" % args.bench_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
