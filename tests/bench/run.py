#!/usr/bin/python3
"""run.py - the make bench runner: starts our ws_echo, the raw TCP echo
ceiling, the protocol's floor (floor_echo) and the peer servers, drives
each with tests/bench/loadgen in alternation (A B C ... per round, so a
noisy machine hits all alike), and prints Markdown tables of medians and
ratios. Builds and installs nothing: the Makefile's bench target does
that. Standard library only.

Environment: BENCH_SECONDS (default 3), BENCH_ROUNDS (default 3),
BENCH_QUICK=1 (1 round of 1 s), BENCH_PIN=0 (no CPU pinning),
BENCH_SHAPES / BENCH_SERVERS (comma-separated name filters),
BENCH_BASE=PATH (another build of ws_echo, run as "base" in the same
alternation: a before/after comparison of a change).
"""
import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

# name, conns, in flight per conn, payload bytes, type
LOAD_SHAPES = [
    ("1 conn x 16 B (latency)", 1, 1, 16, "text"),
    ("100 conns x 16 B", 100, 8, 16, "text"),
    ("100 conns x 512 B", 100, 8, 512, "text"),
    ("1000 conns x 16 B", 1000, 1, 16, "text"),
    ("10 conns x 64 KiB", 10, 4, 65536, "binary"),
    ("1 conn x 1 MiB", 1, 2, 1 << 20, "text"),
]
IDLE_SHAPES = [1000, 10000]
# permessage-deflate (RFC 7692) on both sides: name, conns, in flight,
# bytes, type, and whether neither side keeps a context ("nocontext": our
# default; uWS SHARED_COMPRESSOR; node ws serverNoContextTakeover) or both
# do ("context": ws_echo --deflate-context; uWS DEDICATED_COMPRESSOR).
DEFLATE_SHAPES = [
    ("deflate 100 conns x 200 B JSON, no context", 100, 8, 200, "json",
     "nocontext"),
    ("deflate 100 conns x 200 B JSON, context", 100, 8, 200, "json",
     "context"),
    ("deflate 10 conns x 64 KiB text, no context", 10, 4, 65536, "text",
     "nocontext"),
    ("deflate 10 conns x 64 KiB text, context", 10, 4, 65536, "text",
     "context"),
]
DEFLATE_IDLE = [(1000, "nocontext"), (10000, "nocontext"),
                (1000, "context"), (10000, "context")]


class Server:
    """One echo server under test: how to start it and what it speaks."""

    def __init__(self, name, argv_fn, raw=False, why_missing=None,
                 deflate_fn=None):
        self.name = name
        self.argv_fn = argv_fn  # port -> argv
        self.deflate_fn = deflate_fn  # (port, mode) -> argv; None: no such
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


def start_server(srv, logdir, deflate=None):
    """Start srv on a free port (with compression mode deflate, if any);
    True when it accepts connections."""
    srv.port = free_port()
    srv.log = open(os.path.join(logdir, srv.name + ".log"), "ab")
    argv = (srv.deflate_fn(srv.port, deflate) if deflate
            else srv.argv_fn(srv.port))
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


def cpu_us(pid):
    """utime + stime of the whole process, in µs (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / CLK_TCK


def memory_kib(pid):
    """Private_Dirty and Rss of the process, in KiB (smaps_rollup)."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def loadgen_argv(args, srv, conns, inflight, size, kind, seconds, idle,
                 deflate=None):
    argv = [args.loadgen, "--port", str(srv.port), "--conns", str(conns),
            "--inflight", str(inflight), "--size", str(size),
            "--type", kind, "--seconds", str(seconds)]
    if srv.raw:
        argv.append("--raw")
    if idle:
        argv.append("--idle")
    if deflate:
        argv += ["--deflate", deflate]
    return argv


def shape_deflate(shape):
    """A shape's compression mode, or None."""
    return shape[5] if len(shape) > 5 else None


def last_json(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def run_load(args, srv, shape, seconds):
    """One loadgen run against srv; the result with the server's CPU."""
    _, conns, inflight, size, kind = shape[:5]
    before = cpu_us(srv.proc.pid)
    try:
        p = subprocess.run(
            loadgen_argv(args, srv, conns, inflight, size, kind, seconds,
                         False, shape_deflate(shape)),
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
    total = res["msgs_total"]
    res["cpu_us_per_msg"] = cpu / total if total else None
    return res


def run_idle(args, srv, conns, logdir, deflate=None):
    """Hold conns idle connections on a fresh srv; memory per connection."""
    if not start_server(srv, logdir, deflate):
        return {"failed": srv.why_missing}
    try:
        time.sleep(0.5)
        before = memory_kib(srv.proc.pid)
        p = subprocess.Popen(
            loadgen_argv(args, srv, conns, 1, 16, "text", 120, True,
                         deflate),
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


def median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(runs):
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return None
    keys = ("msgs_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us",
            "cpu_us_per_msg", "wire_bytes_per_msg")
    med = {k: median(ok, k) for k in keys}
    med["errors"] = sum(r["errors"] for r in ok)
    med["runs"] = len(ok)
    return med


def bench_shape(args, servers, shape, rounds, seconds, logdir):
    """All rounds of one load shape, servers in alternation."""
    deflate = shape_deflate(shape)
    if deflate:
        servers = [s for s in servers if s.deflate_fn]
    live = [s for s in servers if s.why_missing is None]
    started = [s for s in live if start_server(s, logdir, deflate)]
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
    finally:
        for s in started:
            stop_server(s)
    out = {}
    for s in servers:
        fails = [r["failed"] for r in runs[s.name] if "failed" in r]
        note = s.why_missing or (fails[0] if fails else None)
        out[s.name] = {"runs": runs[s.name], "median": summarize(runs[s.name]),
                       "note": note}
        if s.why_missing and s.why_missing.startswith(("exited", "did not",
                                                       "failed to")):
            s.why_missing = None  # retry it on the next shape
    return out


def progress(name, rnd, server, res):
    if "failed" in res:
        msg = "FAILED: " + res["failed"]
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


def bench_idle(args, servers, conns, rounds, logdir, deflate=None):
    if deflate:
        servers = [s for s in servers if s.deflate_fn]
    runs = {s.name: [] for s in servers}
    for r in range(rounds):
        for srv in servers:
            if srv.why_missing is not None:
                continue
            res = run_idle(args, srv, conns, logdir, deflate)
            res["round"] = r
            runs[srv.name].append(res)
            progress("idle %d" % conns, r, srv.name, res)
            if "failed" in res:
                srv.why_missing = None
    out = {}
    for s in servers:
        ok = [x for x in runs[s.name] if "failed" not in x]
        med = None
        if ok:
            med = {k: median(ok, k) for k in
                   ("established", "Private_Dirty_per_conn_kib",
                    "Rss_per_conn_kib")}
            med["errors"] = sum(x["errors"] for x in ok)
        fails = [x["failed"] for x in runs[s.name] if "failed" in x]
        out[s.name] = {"runs": runs[s.name], "median": med,
                       "note": s.why_missing or (fails[0] if fails else None)}
    return out


def fmt(v, digits=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return "{:.{}f}".format(v, digits)


def ratio(a, b):
    if a is None or b in (None, 0):
        return "-"
    return "%.2f" % (a / b)


def load_table(shape, res):
    name, conns, inflight, size, kind = shape[:5]
    ours = (res.get("ours") or {}).get("median") or {}
    raw = (res.get("raw") or {}).get("median") or {}
    lines = ["### %s — %d conn, %d in flight each, %d B %s" % (
        name, conns, inflight, size, kind), "",
        "| server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | "
        "CPU µs/msg | CPU ÷ raw | ours ÷ it, msgs/s | ours ÷ it, CPU/msg "
        "| wire B/msg | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for srv, r in res.items():
        m = r["median"]
        if m is None:
            lines.append("| %s | skipped: %s |||||||||" % (srv, r["note"]))
            continue
        cpu = m["cpu_us_per_msg"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                     "%s | %d |" % (
                         srv, fmt(m["msgs_per_s"], 0), fmt(m["mb_per_s"]),
                         fmt(m["p50_us"]), fmt(m["p99_us"]),
                         fmt(m["p999_us"]), fmt(cpu, 2),
                         ratio(cpu, raw.get("cpu_us_per_msg")),
                         ratio(ours.get("msgs_per_s"), m["msgs_per_s"]),
                         ratio(ours.get("cpu_us_per_msg"), cpu),
                         fmt(m.get("wire_bytes_per_msg")), m["errors"]))
    notes = ["%s: %s" % (s, r["note"]) for s, r in res.items()
             if r["note"] and r["median"] is not None]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


def idle_table(conns, res, deflate=None):
    ours = (res.get("ours") or {}).get("median") or {}
    what = (" with permessage-deflate (%s)" % deflate) if deflate else ""
    lines = ["### %d idle connections%s — user-space memory per connection"
             % (conns, what), "",
             "| server | established | Private_Dirty KiB/conn | "
             "RSS KiB/conn | ours ÷ it (Private_Dirty) | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    for srv, r in res.items():
        m = r["median"]
        if m is None:
            lines.append("| %s | skipped: %s ||||" % (srv, r["note"]))
            continue
        pd = m["Private_Dirty_per_conn_kib"]
        lines.append("| %s | %s | %s | %s | %s | %d |" % (
            srv, fmt(m["established"], 0), fmt(pd, 2),
            fmt(m["Rss_per_conn_kib"], 2),
            ratio(ours.get("Private_Dirty_per_conn_kib"), pd), m["errors"]))
    short = ["%s held only %s of %d" % (s, fmt(r["median"]["established"], 0),
                                        conns)
             for s, r in res.items()
             if r["median"] and r["median"]["established"] < conns]
    if short:
        lines += ["", "Notes: " + "; ".join(short) + " (the rest were "
                  "refused: errors)."]
    return "\n".join(lines) + "\n"


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

    def node_peer(name, script, pkg, modes):
        why = None
        if node is None:
            why = "node not installed"
        elif node_version(nd, pkg) is None:
            why = "npm package %s not installed" % pkg
        return Server(name, lambda p: [node, os.path.join(nd, script),
                                       str(p), "127.0.0.1"], why_missing=why,
                      deflate_fn=lambda p, mode: [
                          node, os.path.join(nd, script), str(p),
                          "127.0.0.1", modes[mode]])

    lws = os.path.join(args.bench_dir, "lws_echo")
    floor = os.path.join(args.bench_dir, "floor_echo")
    servers = [
        Server("ours", lambda p: [args.ws_echo, "--host", "127.0.0.1",
                                  "--port", str(p)],
               why_missing=None if os.access(args.ws_echo, os.X_OK)
               else "ws_echo not built",
               deflate_fn=lambda p, mode: [
                   args.ws_echo, "--host", "127.0.0.1", "--port", str(p)] +
               (["--deflate-context"] if mode == "context" else [])),
        Server("raw", lambda p: [os.path.join(args.bench_dir, "raw_echo"),
                                 "--host", "127.0.0.1", "--port", str(p)],
               raw=True),
        Server("floor", lambda p: [floor, "--host", "127.0.0.1", "--port",
                                   str(p)],
               why_missing=None if os.access(floor, os.X_OK)
               else "floor_echo not built"),
        node_peer("uws", "uws_echo.js", "@trufflesuite/uws-js-unofficial",
                  {"nocontext": "shared", "context": "dedicated"}),
        node_peer("ws", "ws_echo.js", "ws",
                  {"nocontext": "nocontext", "context": "context"}),
        Server("lws", lambda p: [lws, "--host", "127.0.0.1", "--port",
                                 str(p)],
               why_missing=None if os.access(lws, os.X_OK)
               else "libwebsockets-dev not installed (lws_echo not built)"),
    ]
    base = os.environ.get("BENCH_BASE")
    if base:
        servers.insert(1, Server("base", lambda p: [base, "--host",
                                                    "127.0.0.1", "--port",
                                                    str(p)],
                                 why_missing=None if os.access(base, os.X_OK)
                                 else "BENCH_BASE is not an executable"))
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
    }


def header(m):
    return ("# make bench results (%s)\n\n"
            "Machine: %s CPUs (%s), kernel %s; pinned: %s. Our server (ours): "
            "%s with the **%s** backend. %d round(s) of %s s per "
            "server and shape, servers in alternation; every figure is the "
            "median over rounds. Peers: uWebSockets.js %s (node %s), node "
            "ws %s, libwebsockets %s. raw = plain TCP echo over epoll (the "
            "ceiling); floor = the same loop doing only what RFC 6455 "
            "requires of an echo, with our codecs (handshake, frame parse, "
            "unmask, UTF-8 check, framing; no API). Text payloads are "
            "UTF-8 with 10%% of the characters 2-4 bytes long. MB/s "
            "counts payload bytes one way. CPU µs/msg = "
            "server utime+stime (/proc/PID/stat) ÷ echoed messages. "
            "Memory: smaps_rollup delta after the connections are open ÷ "
            "connections established.\n" % (
                m["date"], m["cpus"], (m["cpu_model"] or "?").strip(),
                m["kernel"], m["pinned"], m["ws_echo"], m["backend"],
                m["rounds"], m["seconds"], m["uws"], m["node"], m["ws"],
                m["libwebsockets"]))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-dir", default="build/bench",
                    help="loadgen, raw_echo, lws_echo; results go here")
    ap.add_argument("--ws-echo", default="build/ws_echo")
    ap.add_argument("--backend", default="select")
    ap.add_argument("--node-dir", default="tests/bench/peers/node")
    return ap.parse_args()


def selected(name):
    only = os.environ.get("BENCH_SHAPES")
    return not only or any(w in name for w in only.split(","))


def on_term(sig, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, on_term)
    args = parse_args()
    args.loadgen = os.path.join(args.bench_dir, "loadgen")
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
    results = {"meta": m, "load": [], "idle": []}
    md = [header(m)]
    print(md[0], flush=True)
    def load(shape):
        res = bench_shape(args, servers, shape, rounds, seconds, logdir)
        entry = {"shape": shape[0], "conns": shape[1], "inflight": shape[2],
                 "size": shape[3], "type": shape[4]}
        if shape_deflate(shape):
            entry["deflate"] = shape_deflate(shape)
        entry["servers"] = res
        results["load"].append(entry)
        md.append(load_table(shape, res))
        print(md[-1], flush=True)

    def idle(conns, mode):
        res = bench_idle(args, servers, conns, rounds, logdir, mode)
        entry = {"conns": conns}
        if mode:
            entry["deflate"] = mode
        entry["servers"] = res
        results["idle"].append(entry)
        md.append(idle_table(conns, res, mode))
        print(md[-1], flush=True)

    for shape in LOAD_SHAPES:
        if selected(shape[0]):
            load(shape)
    for conns in IDLE_SHAPES:
        if selected("idle %d" % conns):
            idle(conns, None)
    for shape in DEFLATE_SHAPES:
        if selected(shape[0]):
            load(shape)
    for conns, mode in DEFLATE_IDLE:
        if selected("deflate idle %d %s" % (conns, mode)):
            idle(conns, mode)
    with open(os.path.join(args.bench_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.bench_dir, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("Results: %s/results.md and results.json" % args.bench_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
