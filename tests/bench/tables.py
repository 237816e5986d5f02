"""tables.py - the Markdown of make bench's results (run.py): a header
that says how they were measured, and one table per shape, figures as
medians over the rounds with their range, and ratios against ours and
the ceiling from the same alternating run. Standard library only.
"""


def fmt(v, digits=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return "{:.{}f}".format(v, digits)


def fmt_range(m, key, digits=1):
    """The median of key with its range over the rounds, when they
    differ: "12.3 (11.9–13.0)"."""
    v, lo, hi = m.get(key), m.get(key + "_min"), m.get(key + "_max")
    if v is None or lo is None or lo == hi:
        return fmt(v, digits)
    return "%s (%s–%s)" % (fmt(v, digits), fmt(lo, digits), fmt(hi, digits))


def ratio(a, b):
    if a is None or b in (None, 0):
        return "-"
    return "%.2f" % (a / b)


def ceiling_of(shape):
    """The server the CPU column divides by: the raw echo, or over TLS the
    TLS echo."""
    return "tls" if shape.tls else "raw"


def calls_cells(r, top):
    """The system call cells of a row: read and write calls per echo,
    their ratio to the ceiling's, all calls per echo."""
    c, t = r.get("calls") or {}, (top or {}).get("calls") or {}
    return "%s | %s | %s" % (fmt(c.get("rw_per_msg"), 3),
                             ratio(c.get("rw_per_msg"), t.get("rw_per_msg")),
                             fmt(c.get("all_per_msg"), 3))


CALLS_NOTE = ("System calls: counted by perf stat (syscall tracepoints) in "
              "one more run of %.0f s apart from the timed rounds, "
              "connects and closes included; read and write families are "
              "read, readv, recvfrom, recvmsg, write, writev, sendto, "
              "sendmsg.")


def load_table(shape, res, calls_seconds=1):
    name, conns, inflight, size, kind = shape[:5]
    ceil = ceiling_of(shape)
    ours = (res.get("ours") or {}).get("median") or {}
    raw = (res.get(ceil) or {}).get("median") or {}
    lines = ["### %s — %d conn, %d in flight each, %d B %s%s" % (
        name, conns, inflight, size, kind, ", TLS 1.3" if shape.tls else ""),
        "",
        "| server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | "
        "CPU µs/msg | CPU ÷ %s | ours ÷ it, msgs/s | ours ÷ it, CPU/msg "
        "| r/w calls/msg | calls ÷ %s | all calls/msg | wire B/msg "
        "| errors |" % (ceil, ceil),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        "---:|---:|"]
    for srv, r in res.items():
        m = r["median"]
        if m is None:
            lines.append("| %s | skipped: %s ||||||||||||" % (srv, r["note"]))
            continue
        cpu = m["cpu_us_per_msg"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                     "%s | %s | %d |" % (
                         srv, fmt_range(m, "msgs_per_s", 0),
                         fmt(m["mb_per_s"]),
                         fmt(m["p50_us"]), fmt(m["p99_us"]),
                         fmt(m["p999_us"]), fmt_range(m, "cpu_us_per_msg", 2),
                         ratio(cpu, raw.get("cpu_us_per_msg")),
                         ratio(ours.get("msgs_per_s"), m["msgs_per_s"]),
                         ratio(ours.get("cpu_us_per_msg"), cpu),
                         calls_cells(r, res.get(ceil)),
                         fmt(m.get("wire_bytes_per_msg")), m["errors"]))
    notes = ["%s: %s" % (s, r["note"]) for s, r in res.items()
             if r["note"] and r["median"] is not None]
    if any(r.get("calls") for r in res.values()):
        notes.append(CALLS_NOTE % calls_seconds)
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


def rate_table(shape, res, calls_seconds=1):
    """A connection-rate shape: cycles per second and the server's CPU
    per cycle (connect, handshakes, one echo, close)."""
    ceil = ceiling_of(shape)
    ours = (res.get("ours") or {}).get("median") or {}
    top = (res.get(ceil) or {}).get("median") or {}
    lines = ["### %s — %d cycles under way: connect, %supgrade, one %d B "
             "echo, close handshake" % (shape.name, shape.conns,
                                        "TLS 1.3 handshake, " if shape.tls
                                        else "", shape.size), "",
             "| server | handshakes/s | p50 µs | p99 µs | CPU µs/handshake | "
             "CPU ÷ %s | ours ÷ it, handshakes/s | ours ÷ it, CPU | "
             "r/w calls/cycle | calls ÷ %s | all calls/cycle | errors |"
             % (ceil, ceil),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for srv, r in res.items():
        m = r["median"]
        if m is None:
            lines.append("| %s | skipped: %s ||||||||||" % (srv, r["note"]))
            continue
        cpu = m["cpu_us_per_msg"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |"
                     % (srv, fmt_range(m, "handshakes_per_s", 0),
                        fmt(m["p50_us"], 0), fmt(m["p99_us"], 0),
                        fmt_range(m, "cpu_us_per_msg", 1),
                        ratio(cpu, top.get("cpu_us_per_msg")),
                        ratio(ours.get("handshakes_per_s"),
                              m["handshakes_per_s"]),
                        ratio(ours.get("cpu_us_per_msg"), cpu),
                        calls_cells(r, res.get(ceil)), m["errors"]))
    notes = ["%s: %s" % (s, r["note"]) for s, r in res.items()
             if r["note"] and r["median"] is not None]
    if any(r.get("calls") for r in res.values()):
        notes.append(CALLS_NOTE.rstrip(".") % calls_seconds)
    if ceil == "raw":
        notes.append("raw closes with a TCP FIN after its echo, no "
                     "WebSocket")
    else:
        notes.append("tls sends close_notify after its echo, no WebSocket")
    lines += ["", "Notes: " + "; ".join(notes) + ". The load generator's "
              "CPU bounds the rate%s: compare CPU µs/handshake." % (
                  " (its OpenSSL 3.0 client handshake costs more than a "
                  "server's)" if shape.tls else "")]
    return "\n".join(lines) + "\n"


def idle_table(conns, res, deflate=None, tls=False):
    ours = (res.get("ours") or {}).get("median") or {}
    what = (" with permessage-deflate (%s)" % deflate) if deflate else ""
    what += " over TLS 1.3" if tls else ""
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
            srv, fmt(m["established"], 0),
            fmt_range(m, "Private_Dirty_per_conn_kib", 2),
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


def fanout_table(shape, res, seconds):
    """A fan-out shape: deliveries per second, latency from publish to
    delivery, the server's CPU per delivery and memory per subscriber,
    with ratios of ours to each server from the same run."""
    ours = (res.get("ours") or {}).get("median") or {}
    want = shape.conns * shape.publishers * shape.rate
    lines = ["### %s — %d subscribers, %s publishing %s msg/s each "
             "(%s B text), every message to all: %s deliveries/s asked, "
             "%s s per round" % (
                 shape.name, shape.conns,
                 "one of them" if shape.publishers == 1
                 else "%d of them" % shape.publishers,
                 fmt(shape.rate, 1).rstrip("0").rstrip("."), shape.size,
                 fmt(want, 0), fmt(seconds, 0)), "",
             "| server | deliveries/s | p50 µs | p99 µs | CPU µs/delivery | "
             "user µs/delivery | ours ÷ it, CPU | syscalls/delivery | "
             "RSS KiB/sub | Private_Dirty KiB/sub | ours ÷ it, RSS | "
             "loadgen CPU s | late | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             "---:|---:|"]
    for srv, r in res.items():
        m = r["median"]
        if m is None:
            lines.append("| %s | skipped: %s ||||||||||||||" % (
                srv, r["note"]))
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                     "%s | %s | %d | %d |" % (
                         srv, fmt_range(m, "deliveries_per_s", 0),
                         fmt_range(m, "p50_us", 0), fmt_range(m, "p99_us", 0),
                         fmt_range(m, "cpu_us_per_delivery", 3),
                         fmt(m["user_us_per_delivery"], 3),
                         ratio(ours.get("cpu_us_per_delivery"),
                               m["cpu_us_per_delivery"]),
                         fmt(m["syscalls_per_delivery"], 3),
                         fmt_range(m, "Rss_per_sub_kib", 2),
                         fmt(m["Private_Dirty_per_sub_kib"], 2),
                         ratio(ours.get("Rss_per_sub_kib"),
                               m["Rss_per_sub_kib"]),
                         fmt(m["client_cpu_s"], 2), m["undelivered"],
                         m["errors"]))
    notes = ["%s: %s" % (s, r["note"]) for s, r in res.items()
             if r["note"] and r["median"] is not None]
    notes.append("CPU µs/delivery = server CPU (utime+stime; user: utime) "
                 "from the first publish to the last delivery ÷ "
                 "deliveries; syscalls/delivery only with BENCH_SYSCALLS=1 "
                 "(perf stat; its overhead is in the CPU figures then); "
                 "KiB/sub = the server's "
                 "memory with every connection open and subscribed, less "
                 "its memory before, ÷ connections; late = deliveries "
                 "still missing 3 s after the last publish (the server "
                 "fell behind; summed over rounds); errors = lost, "
                 "duplicated or out-of-order deliveries and failed "
                 "connections")
    lines += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def header(m):
    return ("# make bench results (%s)\n\n"
            "Machine: %s CPUs (%s), kernel %s; pinned: %s. Our server (ours): "
            "%s with the **%s** backend (%s in the fan-out shapes). "
            "%d round(s) of %s s per "
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
            "connections established. Figures in brackets: the lowest and "
            "highest round. TLS shapes (wss): TLS 1.3, "
            "TLS_AES_128_GCM_SHA256, an ECDSA P-256 certificate, the "
            "load generator on %s; tls = TLS echo over epoll with no "
            "WebSocket (the ceiling).\n" % (
                m["date"], m["cpus"], (m["cpu_model"] or "?").strip(),
                m["kernel"], m["pinned"], m["ws_echo"], m["backend"],
                m.get("ws_fanout") or "ws_fanout",
                m["rounds"], m["seconds"], m["uws"], m["node"], m["ws"],
                m["libwebsockets"], m["openssl"] or "OpenSSL"))
