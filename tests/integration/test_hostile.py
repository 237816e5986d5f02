"""test_hostile.py - hostile peers against BUILD/ws_echo and
BUILD/tests/ws_bcast: slow-loris, oversized headers, absurd lengths, ping
floods, thousands of connect/disconnect cycles, peers that die mid-frame or
vanish with a reset, timeouts, the connection cap and a slow consumer.

Throughout, a normal client (hostile_util.Prober) must get its echo within
PROMPT seconds; after every test the server's descriptor count
(/proc/PID/fd) is back to its baseline, and after the ws_echo rounds its
VmRSS has not grown by more than 8 MiB (glibc's mmap threshold is pinned
for that server so that RSS follows live memory; not checked under
valgrind, whose own heap dominates, nor under AddressSanitizer, whose
quarantine keeps freed memory on purpose). Servers are stopped by PID
and must exit 0 with no valgrind or sanitizer report.

Run from the repository root:
    /usr/bin/python3 tests/integration/test_hostile.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1 (smaller counts).
"""

import os
import random
import select
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402
from wsharness import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG,  # noqa: E402
                       OP_TEXT, build_frame)
from hostile_util import (FEW, PROMPT, VALGRIND, Peer, Prober,  # noqa: E402
                          Server, is_sanitized, scaled, tcp_queues,
                          tcp_wmem_max)

RSS_GROWTH_LIMIT_KIB = 8 * 1024
SEND_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _ServerCase(unittest.TestCase):
    """A server, a prober, the peers of one test and the fd check."""

    server = None
    base_fds = None

    def setUp(self):
        self.peers = []
        self.prober = None
        self.own_server = False

    def start_server(self, kind, *args, warm=20):
        """A server for this test only (stopped in tearDown)."""
        self.server = Server(kind, args).start()
        self.own_server = True
        warm_up(self.server, warm)
        self.base_fds = self.server.stable_fds()

    def peer(self, handshake=False, **kw):
        p = Peer(self.server.port, **kw)
        self.peers.append(p)
        if handshake:
            p.handshake()
        return p

    def probe(self, fresh=True):
        self.prober = Prober(self.server.port,
                             fresh_every=0.5 if fresh else 0)
        self.prober.start()
        deadline = time.monotonic() + H.t(5)
        while (not self.prober.latencies and not self.prober.errors and
               time.monotonic() < deadline):
            time.sleep(0.01)

    def tearDown(self):
        for p in self.peers:
            p.close()
        problem = self.prober.finish() if self.prober else None
        server = self.server
        try:
            self.assertTrue(server.alive(), "the server died: %r"
                            % server.stderr_lines[-10:])
            self.assertIsNone(problem, "normal client: %s" % problem)
            n = server.wait_fds(self.base_fds, FEW)
            self.assertEqual(n, self.base_fds, "server descriptors: %d "
                             "after the test, %d before" % (n, self.base_fds))
        finally:
            if self.own_server:
                server.stop()

    # -- assertions --------------------------------------------------------
    def expect_close(self, c, code, within=None, what=""):
        """A close frame with code arrives within `within` s (data frames
        before it are skipped), then TCP ends."""
        within = PROMPT if within is None else within
        t0 = time.monotonic()
        try:
            got = c.recv_close(timeout=within)
        except H.Closed:
            self.fail("%sTCP closed without a close frame (want %d)"
                      % (what, code))
        except socket.timeout:
            self.fail("%sno close frame within %.1fs (want %d)"
                      % (what, within, code))
        self.assertEqual(got, code, "%sclose code" % what)
        self.assertLessEqual(time.monotonic() - t0, within)
        self.assertTrue(c.wait_eof(), "%sclose %d but TCP stayed open"
                        % (what, code))

    def expect_status(self, c, data, status, what=""):
        """Send data (the server may stop reading it), expect the status,
        then the end of TCP."""
        try:
            c.send(data)
        except SEND_ERRORS:
            pass  # the answer may already be there; read it
        try:
            got, _ = c.read_head(timeout=PROMPT)
        except (H.Closed, ConnectionResetError) as e:
            self.fail("%sno HTTP answer, connection ended: %r" % (what, e))
        self.assertEqual(got, status, what)
        self.assertTrue(c.wait_eof(), "%sconnection left open after %d"
                        % (what, status))


def warm_up(server, cycles, big=0):
    """connect / handshake / echo / close cycles (and one big echo)."""
    for i in range(cycles):
        with Peer(server.port) as p:
            p.handshake()
            p.echo(b"warm-up %d" % i)
            p.close_handshake()
    if big:
        with Peer(server.port, timeout=H.t(20)) as p:
            p.handshake()
            data = os.urandom(big)
            p.send_frame(OP_BINARY, data)
            _, op, got = p.recv_frame()
            assert (op, got) == (OP_BINARY, data), "big warm-up echo"
            p.close_handshake()


# ---------------------------------------------------------------------------
class HostileEchoTest(_ServerCase):
    """Hostile rounds against one ws_echo process, numbered in run order;
    test_99 checks its descriptors and memory after all of them."""

    BIG = 4 << 20  # the message left unread by vanishing peers

    @classmethod
    def setUpClass(cls):
        # A fixed mmap threshold keeps glibc from moving multi-MiB buffers
        # onto the heap, where freed space (up to its adaptive trim
        # threshold, 2x the largest buffer) stays resident: VmRSS then
        # tracks live memory rather than the allocator's high-water mark.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
        cls.server = Server("echo", env=env).start()
        try:
            warm_up(cls.server, scaled(200, 50), big=cls.BIG)
            cls.base_fds = cls.server.stable_fds()
            cls.base_rss = cls.server.rss_kib()
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        super().setUp()
        self.probe()

    # -- slow-loris ----------------------------------------------------------
    def test_01_slowloris_requests(self):
        """Many requests trickled a byte at a time for 2 s are neither
        answered nor dropped; the server keeps serving; completed, they
        upgrade and echo."""
        n = scaled(100, 30)
        conns = [self.peer() for _ in range(n)]
        reqs = []
        for c in conns:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reqs.append(c.request())
        steps = 40
        for i in range(steps):
            for c, (_, req) in zip(conns, reqs):
                c.send(req[i:i + 1])
            time.sleep(0.05)
        for j, c in enumerate(conns):
            self.assertFalse(c.readable_within(0),
                             "server answered or closed a half request %d" % j)
        for j, (c, (key, req)) in enumerate(zip(conns, reqs)):
            if j % 3 == 0:
                c.rst()
            elif j % 3 == 1:
                c.close()
            else:
                c.send(req[steps:])
                status, h = c.read_head()
                self.assertEqual(status, 101)
                self.assertEqual(h.get("sec-websocket-accept"),
                                 H.accept_for(key))
                c.echo(b"after slow-loris %d" % j)

    def test_02_slowloris_frames(self):
        """Frames trickled in 50-byte slices over 2 s arrive whole."""
        n = scaled(50, 15)
        conns = [self.peer(handshake=True) for _ in range(n)]
        payloads = [os.urandom(2000) for _ in conns]
        frames = [build_frame(OP_BINARY, p) for p in payloads]
        for c in conns:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, 2008, 50):
            for c, f in zip(conns, frames):
                c.send(f[i:i + 50])
            time.sleep(0.05)
        for c, p in zip(conns, payloads):
            fin, op, data = c.recv_frame()
            self.assertEqual((fin, op, data), (True, OP_BINARY, p))

    # -- oversized headers ---------------------------------------------------
    def test_03_headers_64k(self):
        """64 KiB of headers (64 lines of 1 KiB, under max_headers): 431."""
        c = self.peer()
        pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * 1010)
                       for i in range(64))
        _, req = c.request(extra=pad)
        self.assertGreater(len(req), 65536)
        self.expect_status(c, req, 431)

    def test_04_header_line_20k(self):
        """One 20 KiB header line: 431."""
        c = self.peer()
        _, req = c.request(extra=b"X-Big: " + b"b" * 20480 + b"\r\n")
        self.expect_status(c, req, 431)

    def test_05_too_many_headers(self):
        """101 small headers (max_headers is 100): 431."""
        c = self.peer()
        _, req = c.request(extra=b"".join(b"X-H%d: v\r\n" % i
                                          for i in range(101)))
        self.expect_status(c, req, 431)

    def test_06_endless_headers(self):
        """A header stream that never ends: 431 long before 4 MiB."""
        c = self.peer()
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        chunk = b"".join(b"X-E%d: %s\r\n" % (i, b"e" * 500)
                         for i in range(32))
        sent = 0
        while sent < (4 << 20) and not c.readable_within(0):
            try:
                c.send(chunk)
            except SEND_ERRORS:
                break
            sent += len(chunk)
        self.assertLess(sent, 4 << 20, "no answer to 4 MiB of headers")
        self.expect_status(c, b"", 431)

    # -- absurd lengths ------------------------------------------------------
    def test_07_length_with_top_bit(self):
        """A 64-bit length with the top bit set (2^63, 2^64-1): 1002 at
        once, no payload awaited."""
        for op in (OP_BINARY, OP_TEXT):
            for n in (1 << 63, (1 << 64) - 1):
                c = self.peer(handshake=True)
                c.send(build_frame(op, b"", length_form=64,
                                   declared_length=n))
                self.expect_close(c, 1002, what="op %d len %d: " % (op, n))

    def test_08_ten_gib_declared(self):
        """A 10 GiB message declared in a 64-bit header with no payload
        (also as a first fragment, and 2^63-1): 1009 at once."""
        cases = ((OP_BINARY, True, 10 << 30), (OP_TEXT, True, 10 << 30),
                 (OP_BINARY, False, 10 << 30),
                 (OP_BINARY, True, (1 << 63) - 1))
        for op, fin, n in cases:
            c = self.peer(handshake=True)
            c.send(build_frame(op, b"", fin=fin, length_form=64,
                               declared_length=n))
            self.expect_close(c, 1009, what="op %d fin %d len %d: "
                              % (op, fin, n))

    # -- ping flood ----------------------------------------------------------
    def test_09_ping_flood(self):
        """10000 pipelined pings while reading: every pong, in order, with
        its payload; the connection then still echoes."""
        count = scaled(10000, 2000)
        c = self.peer(handshake=True, timeout=H.t(10))
        pongs, errors = [], []

        def reader():
            try:
                while len(pongs) < count:
                    _, op, data = c.recv_frame(H.t(10))
                    if op != OP_PONG:
                        errors.append("opcode %d after %d pongs (%r)"
                                      % (op, len(pongs), data[:16]))
                        return
                    pongs.append(data)
            except Exception as e:  # noqa: BLE001
                errors.append("after %d pongs: %r" % (len(pongs), e))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        w = c.sock.dup()
        try:
            w.settimeout(H.t(10))
            frames = [build_frame(OP_PING, struct.pack("!I", i))
                      for i in range(count)]
            for i in range(0, count, 100):
                w.sendall(b"".join(frames[i:i + 100]))
        finally:
            w.close()
        th.join(H.t(30))
        self.assertFalse(th.is_alive(), "pong reader hung")
        self.assertEqual(errors, [])
        self.assertEqual(len(pongs), count)
        self.assertEqual(pongs, [struct.pack("!I", i) for i in range(count)])
        c.echo(b"after the ping flood")

    def test_09b_ping_flood_unread(self):
        """Pings sent for 2 s by a client that never reads its pongs: the
        server stops reading it (TCP backpressure) or closes it with 1008;
        it never queues without bound and others are still served."""
        c = self.peer(handshake=True, rcvbuf=4096)
        batch = build_frame(OP_PING, b"p" * 125) * 512
        c.sock.setblocking(False)
        sent, off, end = 0, 0, time.monotonic() + 2.0
        while time.monotonic() < end:
            try:
                # Go on where a partial send stopped: the stream stays a
                # sequence of whole frames.
                n = c.sock.send(batch[off:])
                sent += n
                off = (off + n) % len(batch)
            except BlockingIOError:
                select.select([], [c.sock], [], 0.1)
            except SEND_ERRORS:
                break
        c.sock.setblocking(True)
        # Backpressure: the server has stopped reading; the pings wait in
        # its socket's receive queue, which no longer shrinks.
        me = c.sock.getsockname()[1]
        time.sleep(H.t(0.3))
        q1 = tcp_queues(self.server.port, me)
        time.sleep(0.5)
        q2 = tcp_queues(self.server.port, me)
        H.log("unread ping flood: %d KiB sent; server Recv-Q %s then %s"
              % (sent >> 10, q1 and q1[1], q2 and q2[1]))
        if q2 is None:  # closed: then it must have been 1008
            self.expect_close(c, 1008)
            return
        self.assertGreater(q2[1], 0, "the server read every ping")
        self.assertEqual(q1[1], q2[1], "the server still reads pings "
                         "whose pongs nobody reads")
        c.rst()

    # -- connect / disconnect cycles ---------------------------------------
    def test_10_connect_cycles(self):
        """3000 connect/disconnect cycles from 4 threads, six ways: bare
        close, reset, half a request, full echo with close handshake,
        reset after the upgrade, TCP close without a close frame."""
        total, nthreads = scaled(3000, 300), 4
        errors = []
        port = self.server.port

        def cycle(i):
            kind = i % 6
            with Peer(port) as p:
                if kind == 0:
                    return
                if kind == 1:
                    p.rst()
                    return
                if kind == 2:
                    p.send(p.request()[1][:40])
                    return
                p.handshake()
                if kind == 3:
                    p.echo(b"cycle %d" % i)
                    p.close_handshake()
                elif kind == 4:
                    p.rst()

        def worker(k):
            for i in range(k, total, nthreads):
                try:
                    cycle(i)
                except Exception as e:  # noqa: BLE001
                    errors.append("cycle %d: %r" % (i, e))
                    if len(errors) > 5:
                        return

        threads = [threading.Thread(target=worker, args=(k,), daemon=True)
                   for k in range(nthreads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(H.t(60))
        self.assertFalse(any(th.is_alive() for th in threads), "hung")
        self.assertEqual(errors, [])

    # -- peers that die ------------------------------------------------------
    def test_11_die_mid_frame(self):
        """Clients that die in the middle of a frame (cut in the header,
        after the header, mid-payload) by close, reset or half-close; the
        half-closed ones see the server close."""
        n = scaled(300, 60)
        frame = build_frame(OP_BINARY, os.urandom(3000))
        cuts = (1, 3, 8, 500)  # 2+2+4 = 8 bytes of header
        for i in range(n):
            c = self.peer(handshake=True)
            c.send(frame[:cuts[i % len(cuts)]])
            how = (i // len(cuts)) % 3
            if how == 0:
                c.close()
            elif how == 1:
                c.rst()
            else:
                c.half_close()
                self.assertTrue(c.wait_eof(), "half-closed mid-frame "
                                "(cut %d): the server kept the connection"
                                % cuts[i % len(cuts)])
                c.close()
            self.peers.remove(c)

    def test_12_vanish_mid_handshake(self):
        """Peers that vanish during the handshake: close, reset or
        half-close after half a request; reset right after a whole request
        (the 101 meets a dead socket), or after request + frame."""
        n = scaled(120, 30)
        for i in range(n):
            c = self.peer()
            _, req = c.request()
            kind = i % 5
            if kind < 3:
                c.send(req[:len(req) // 2])
                if kind == 0:
                    c.close()
                elif kind == 1:
                    c.rst()
                else:
                    c.half_close()
                    self.assertTrue(c.wait_eof(), "half-closed mid-request:"
                                    " the server kept the connection")
                    c.close()
            elif kind == 3:
                c.send(req)
                c.rst()
            else:
                c.send(req + build_frame(OP_TEXT, b"hello"))
                c.rst()
            self.peers.remove(c)

    def test_13_vanish_with_output_queued(self):
        """A 4 MiB echo left unread in the server's queue, then the peer
        resets, closes with unread data, or half-closes."""
        for how in range(3):
            c = self.peer(handshake=True, rcvbuf=4096, timeout=H.t(20))
            c.send_frame(OP_BINARY, os.urandom(self.BIG))
            time.sleep(H.t(0.2))  # let the server read it and queue the echo
            if how == 0:
                c.rst()
            elif how == 1:
                c.close()
            else:
                c.half_close()
                self.assertTrue(c.wait_eof(H.t(20)), "half-closed with "
                                "output queued: connection kept")

    # -- the result ----------------------------------------------------------
    def test_99_descriptors_and_memory(self):
        """After every round: the same fd count as after the warm-up, and
        VmRSS within 8 MiB of it."""
        warm_up(self.server, scaled(200, 50))
        self.prober.finish()
        self.prober = None
        fds = self.server.wait_fds(self.base_fds, FEW)
        rss = self.server.rss_kib()
        H.log("ws_echo: fds %d -> %d, VmRSS %d -> %d KiB"
              % (self.base_fds, fds, self.base_rss, rss))
        self.assertEqual(fds, self.base_fds)
        if VALGRIND:
            return
        if is_sanitized(self.server.path):
            self.skipTest("RSS not meaningful under a sanitizer: "
                          "%d -> %d KiB" % (self.base_rss, rss))
        self.assertLessEqual(rss - self.base_rss, RSS_GROWTH_LIMIT_KIB,
                             "VmRSS grew from %d to %d KiB"
                             % (self.base_rss, rss))


# ---------------------------------------------------------------------------
class LimitsTest(_ServerCase):
    """ws_bcast with one limit at a time, one server per test."""

    def test_handshake_timeout(self):
        """--handshake-ms 1000: clients sending their request one byte per
        second are cut off after about 1 s; an upgraded client is not."""
        hs = 1.0
        self.start_server("bcast", "--handshake-ms", int(hs * 1000))
        self.probe()
        upgraded = self.peer(handshake=True)
        n = scaled(20, 10)
        conns = [self.peer() for _ in range(n)]
        for c in conns:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = conns[0].request()[1]
        t0 = time.monotonic()
        state = {c: {"sent": 0, "next": t0, "end": None} for c in conns}
        deadline = t0 + hs + FEW
        while time.monotonic() < deadline:
            now = time.monotonic()
            live = [c for c in conns if state[c]["end"] is None]
            if not live:
                break
            for c in live:
                st = state[c]
                if now >= st["next"]:
                    try:
                        c.send(req[st["sent"]:st["sent"] + 1])
                        st["sent"] += 1
                    except SEND_ERRORS:
                        st["end"] = now
                    st["next"] += 1.0
            r, _, _ = select.select([c.sock for c in live], [], [], 0.02)
            for c in live:
                if c.sock in r and c.wait_eof(0.2):
                    state[c]["end"] = time.monotonic()
        for i, c in enumerate(conns):
            st = state[c]
            self.assertIsNotNone(st["end"], "client %d (%d bytes sent) still"
                                 " connected after %.1fs" % (i, st["sent"],
                                                             hs + FEW))
            took = st["end"] - t0
            self.assertGreaterEqual(took, hs - 0.1, "cut off too early")
            self.assertLessEqual(took, hs + PROMPT, "cut off too late")
            self.assertLessEqual(st["sent"], 3)
        time.sleep(max(0.0, t0 + 2 * hs - time.monotonic()))
        upgraded.echo(b"still here after %.1fs" % (2 * hs))

    def test_max_connections(self):
        """--max-connections 20: beyond it every connection gets "503" and
        is closed; a burst of 300 more changes nothing; a freed slot is
        usable again."""
        limit = 20
        self.start_server("bcast", "--max-connections", limit)
        self.probe(fresh=False)  # one slot
        conns = [self.peer(handshake=True) for _ in range(limit - 1)]
        for i in range(10):
            c = self.peer()
            req = c.request()[1] if i % 2 else b""
            self.expect_status(c, req, 503, "connection %d over the limit "
                               "(request %s): " % (i, "sent" if req
                                                   else "not sent"))
            self.peers.remove(c)
            c.close()
        for i in range(scaled(300, 60)):
            c = Peer(self.server.port)
            if i % 2:
                c.rst()
            else:
                c.close()
        conns[0].close_handshake()
        deadline = time.monotonic() + FEW
        while True:
            c = self.peer()
            try:
                c.handshake()
                break
            except (AssertionError, H.Closed, OSError) as e:
                c.close()
                if time.monotonic() > deadline:
                    self.fail("the freed slot was not reused: %r" % (e,))
                time.sleep(0.05)
        c.echo(b"in the freed slot")

    def test_idle_timeout(self):
        """--idle-ms 1000: a silent client gets close 1001 after about 1 s
        (answering it ends TCP; not answering it, --close-ms later); a
        client that keeps talking stays."""
        idle, close_ms = 1.0, 0.5
        self.start_server("bcast", "--idle-ms", int(idle * 1000),
                          "--close-ms", int(close_ms * 1000))
        self.probe()
        results = {}

        def silent(name, answer):
            try:
                c = self.peer(handshake=True)
                t0 = time.monotonic()
                code = c.recv_close(timeout=idle + FEW)
                took = time.monotonic() - t0
                if answer:
                    c.send_frame(OP_CLOSE, H.close_payload(1001))
                t1 = time.monotonic()
                eof = c.wait_eof(close_ms + FEW)
                results[name] = (code, took, eof, time.monotonic() - t1,
                                 c.local_peer)
            except Exception as e:  # noqa: BLE001
                results[name] = e

        ths = [threading.Thread(target=silent, args=a, daemon=True)
               for a in (("answers", True), ("mute", False))]
        for th in ths:
            th.start()
        chatty = self.peer(handshake=True)
        end = time.monotonic() + 2.5 * idle
        while time.monotonic() < end:
            chatty.echo(b"chatty")
            time.sleep(0.25)
        for th in ths:
            th.join(idle + 2 * FEW)
        for name in ("answers", "mute"):
            r = results.get(name)
            self.assertIsInstance(r, tuple, "%s: %r" % (name, r))
            code, took, eof, eof_after, who = r
            self.assertEqual(code, 1001, name)
            self.assertGreaterEqual(took, idle - 0.1, name)
            self.assertLessEqual(took, idle + PROMPT, name)
            self.assertTrue(eof, "%s: TCP stayed open" % name)
            limit = PROMPT if name == "answers" else close_ms + PROMPT
            self.assertLessEqual(eof_after, limit, name)
            # on_close: the peer's answer, or (mute) the close it never
            # answered, 1001 "idle timeout", not a bare 1006.
            line = self.server.wait_line(
                lambda l, w=who: l.startswith("close %s " % w), FEW)
            self.assertIsNotNone(line, "%s: no on_close" % name)
            self.assertEqual(line.split()[2], "1001", line)
            if name == "mute":
                self.assertTrue(line.endswith(" idle timeout"), line)

    def test_keepalive_pings(self):
        """--ping-ms 300 --idle-ms 1000: a client answering pings, and one
        ignoring them but sending messages, both stay 3 s; one reading the
        pings without answering gets 1001 at 1 s."""
        ping, idle = 0.3, 1.0
        self.start_server("bcast", "--ping-ms", int(ping * 1000),
                          "--idle-ms", int(idle * 1000), "--close-ms", 500)
        self.probe()
        stay = 3.0
        results = {}

        def client(name):
            try:
                c = self.peer(handshake=True)
                t0 = time.monotonic()
                end = t0 + (idle + FEW if name == "mute" else stay)
                pings, next_send, closed = 0, t0 + 0.4, None
                while time.monotonic() < end and closed is None:
                    if name == "talker" and time.monotonic() >= next_send:
                        c.send_frame(OP_TEXT, b"talk")
                        next_send += 0.4
                    try:
                        _, op, data = c.recv_frame(0.05)
                    except socket.timeout:
                        continue
                    if op == OP_PING:
                        pings += 1
                        if name == "ponger":
                            c.send_frame(OP_PONG, data)
                    elif op == OP_CLOSE:
                        closed = (struct.unpack("!H", data[:2])[0]
                                  if data else None,
                                  time.monotonic() - t0)
                if closed is None:
                    c.echo(b"%s after %.1fs" % (name.encode(), stay))
                results[name] = (pings, closed)
            except Exception as e:  # noqa: BLE001
                results[name] = e

        ths = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in ("ponger", "talker", "mute")]
        for th in ths:
            th.start()
        for th in ths:
            th.join(stay + 2 * FEW)
        for name in ("ponger", "talker", "mute"):
            self.assertIsInstance(results.get(name), tuple,
                                  "%s: %r" % (name, results.get(name)))
        pings, closed = results["ponger"]
        self.assertIsNone(closed, "ponger closed")
        self.assertGreaterEqual(pings, 3, "ponger got too few pings")
        self.assertIsNone(results["talker"][1], "talker closed")
        pings, closed = results["mute"]
        self.assertGreaterEqual(pings, 1, "mute got no ping before close")
        self.assertIsNotNone(closed, "mute was never closed")
        self.assertEqual(closed[0], 1001)
        self.assertGreaterEqual(closed[1], idle - 0.1)
        self.assertLessEqual(closed[1], idle + PROMPT)

    def test_slow_consumer(self):
        """One client that never reads (SO_RCVBUF 4096) while 50 others
        chat (--max-output 1 MiB): every chatter gets every message,
        intact and in order; the slow one is closed with 1008 soon after
        its queue passes 1 MiB."""
        cap = 1 << 20
        self.start_server("bcast", "--max-output", cap, "--max-message",
                          65536, "--close-ms", 500)
        nclients, size = 50, 1024
        # The kernel autotunes the server's send buffer (up to tcp_wmem's
        # maximum, ~2.7 MiB seen on loopback) before the library queues
        # anything: send enough to pass the cap on top of that.
        nmsg = -(-(cap + tcp_wmem_max() + (512 << 10)) // (nclients * size))
        slow = self.peer(rcvbuf=4096, timeout=H.t(10)).handshake()
        slow_name = slow.local_peer
        slow_port = slow.sock.getsockname()[1]
        chatters = [self.peer(handshake=True, timeout=H.t(10))
                    for _ in range(nclients)]
        rnd = random.Random(6455)
        block = bytes(rnd.getrandbits(8) for _ in range(4096))

        def message(ci, seq):
            head = b"%02d:%06d:" % (ci, seq)
            off = (ci * nmsg + seq) % 3000
            return head + block[off:off + size - len(head)]

        expected = {(ci, s): message(ci, s)
                    for ci in range(nclients) for s in range(nmsg)}
        # The library's queue for the slow client is what the server
        # broadcast (chatter 0 sees the same stream, a little later) minus
        # what the kernel holds: the server's Send-Q and the slow client's
        # Recv-Q. The cap is passed when that exceeds it.
        marks = {"cap": None, "close": None, "kernel": 0}
        halt = threading.Event()

        def kernel_held():
            while not halt.is_set() and marks["close"] is None:
                tx = tcp_queues(self.server.port, slow_port)
                rx = tcp_queues(slow_port, self.server.port)
                if tx and rx:
                    marks["kernel"] = tx[0] + rx[1]
                halt.wait(0.02)

        results = [None] * nclients
        start = threading.Barrier(nclients + 1)

        def chat(ci):
            c = chatters[ci]
            nexts = [0] * nclients
            bad = []
            count = {"total": 0, "bytes": 0}

            def read_one():
                _, op, data = c.recv_frame(H.t(10))
                if op != OP_BINARY:
                    raise AssertionError("opcode %d %r" % (op, data[:20]))
                sender, s = int(data[:2]), int(data[3:9])
                if s != nexts[sender] or data != expected.get((sender, s)):
                    bad.append("from %d: seq %d, want %d"
                               % (sender, s, nexts[sender]))
                nexts[sender] = s + 1
                count["total"] += 1
                count["bytes"] += len(data)
                if ci == 0 and marks["cap"] is None and \
                        count["bytes"] >= cap + marks["kernel"] + 16384:
                    marks["cap"] = time.monotonic()

            try:
                start.wait(H.t(10))
                # Lockstep: the next message once our own came back, so
                # a chatter never has more than ~50 messages in flight.
                for seq in range(nmsg):
                    c.send_frame(OP_BINARY, expected[(ci, seq)])
                    while nexts[ci] <= seq and not bad:
                        read_one()
                while count["total"] < nclients * nmsg and not bad:
                    read_one()
                results[ci] = (count["total"], nexts, bad[:3])
            except Exception as e:  # noqa: BLE001
                results[ci] = "%r after %d messages" % (e, count["total"])

        def watch():
            line = self.server.wait_line(
                lambda l: l.startswith("close %s " % slow_name), H.t(60))
            marks["close"] = (time.monotonic(), line)

        threads = [threading.Thread(target=chat, args=(i,), daemon=True)
                   for i in range(nclients)]
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        monitor = threading.Thread(target=kernel_held, daemon=True)
        monitor.start()
        for th in threads:
            th.start()
        t0 = time.monotonic()
        start.wait(H.t(10))
        for th in threads:
            th.join(max(0.1, t0 + H.t(30) - time.monotonic()))
        halt.set()
        self.assertFalse(any(th.is_alive() for th in threads),
                         "chatters still running after %.0fs" % H.t(30))
        for ci, r in enumerate(results):
            self.assertIsInstance(r, tuple, "chatter %d: %r" % (ci, r))
            got, nexts, bad = r
            self.assertEqual(bad, [], "chatter %d" % ci)
            self.assertEqual(nexts, [nmsg] * nclients, "chatter %d" % ci)
            self.assertEqual(got, nclients * nmsg, "chatter %d" % ci)
        self.assertIsNotNone(marks["cap"], "cap mark never reached")
        watcher.join(max(0.1, marks["cap"] + FEW - time.monotonic()))
        closed = marks["close"]
        self.assertIsNotNone(closed, "the slow client %s was not closed "
                             "within %.0fs of passing the cap"
                             % (slow_name, FEW))
        self.assertIsNotNone(closed[1], "no on_close for the slow client")
        self.assertEqual(closed[1].split()[2], "1008", closed[1])
        H.log("slow consumer: %d messages each in %.2fs; kernel held %d "
              "bytes; %s closed %.2fs after the cap was passed"
              % (nclients * nmsg, time.monotonic() - t0, marks["kernel"],
                 slow_name, closed[0] - marks["cap"]))
        self.assertLessEqual(closed[0] - marks["cap"], FEW)
        self.assertTrue(slow.wait_eof(FEW), "slow client's TCP left open")
        for c in chatters:
            c.close_handshake()
        self.assertFalse(any(l.split()[2] == "1008" for l in
                             self.server.stdout_lines
                             if l.startswith("close ")
                             and not l.startswith("close %s " % slow_name)),
                         "a chatter was closed with 1008")


if __name__ == "__main__":
    unittest.main(verbosity=2)
