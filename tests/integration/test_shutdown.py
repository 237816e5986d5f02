"""test_shutdown.py - the graceful shutdown of BUILD/ws_echo
(ws_server_shutdown()) on SIGTERM and SIGINT, with raw clients.

- Many clients, some with echoes queued that they have not read and one
  blocked on an 8 MiB echo it does not read (a small receive buffer): on
  SIGTERM each gets all its echoes, then a 1001 close frame; new
  connections are refused from then on; every closing handshake completes
  (the client's close answered, the server's FIN, no reset, on_close with
  the client's code); the process exits 0 long before close_timeout.
- Connections still in HTTP: one with half a request gets 503, one that
  sent nothing is closed.
- A client that never answers the close: the server closes it after
  --close-timeout and exits 0, not before.
- A second signal stops at once.
- --workers 2: the supervisor passes the signal on, the workers shut down
  gracefully, and a second signal reaches them too.

Every wait is for an event (a frame, a log line, the end of TCP, the
process's exit), bounded by a timeout; none sleeps for silence.

Run from the repository root:
    /usr/bin/python3 tests/integration/test_shutdown.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402
from wsharness import OP_BINARY, OP_CLOSE, OP_TEXT  # noqa: E402
from hostile_util import HOST, Peer, Server, scaled, tcp_queues  # noqa: E402

BIG = 8 << 20  # the blocked client's echo
SMALL = 100 * 1024  # each pending echo


class EchoServer(Server):
    """ws_echo --verbose with more flags; its log tells which messages
    it has echoed and with which code each connection closed."""

    def __init__(self, *flags):
        super().__init__("echo")
        self.flags = ["--verbose"] + [str(f) for f in flags]

    def command(self):
        return super().command() + self.flags

    def lines(self, prefix):
        return [ln for ln in list(self.stdout_lines) if ln.startswith(prefix)]

    def wait_count(self, prefix, n, timeout=None):
        """Wait until at least n stdout lines start with prefix."""
        deadline = time.monotonic() + (H.t(10) if timeout is None
                                       else timeout)
        while len(self.lines(prefix)) < n:
            if time.monotonic() >= deadline:
                raise AssertionError("%d of %d lines %r; stderr %r" % (
                    len(self.lines(prefix)), n, prefix,
                    self.stderr_lines[-5:]))
            time.sleep(0.01)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """The exit status, asserting that it came within timeout and was
        clean (0, no signal, no sanitizer report)."""
        proc, self.proc = self.proc, None
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("ws_echo still running %.1fs after the "
                                 "signal" % timeout)
        for th in self._threads:
            th.join(timeout=5)
        if any("AddressSanitizer" in ln or "runtime error:" in ln
               for ln in self.stderr_lines):
            raise AssertionError("sanitizer report: %r"
                                 % self.stderr_lines[-20:])
        return rc


def tcp_end(peer, timeout):
    """How the server ended TCP on peer: "fin", "rst", or None when it did
    not within timeout. Data before it is an error: all was read."""
    deadline = time.monotonic() + timeout
    if peer.pos < len(peer.buf):
        raise AssertionError("%d unexpected bytes before the end"
                             % (len(peer.buf) - peer.pos))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        peer.sock.settimeout(left)
        try:
            chunk = peer.sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, ConnectionAbortedError):
            return "rst"
        if not chunk:
            return "fin"
        raise AssertionError("%d unexpected bytes before the end"
                             % len(chunk))


def first_close(peer, timeout=None):
    """The next frame must be a close: its code."""
    _, op, payload = peer.recv_frame(timeout)
    if op != OP_CLOSE:
        raise AssertionError("opcode %d (%d bytes) instead of the close"
                             % (op, len(payload)))
    return int.from_bytes(payload[:2], "big") if payload else None


def answer_close(test, peer, code=1001):
    """Answer the server's close; the server must then end TCP cleanly."""
    peer.send_frame(OP_CLOSE, H.close_payload(code))
    test.assertEqual(tcp_end(peer, H.t(5)), "fin", "no clean TCP close")
    peer.close()


def refused(port):
    """True when a connection to port is refused."""
    try:
        socket.create_connection((HOST, port), timeout=H.t(2)).close()
    except ConnectionRefusedError:
        return True
    return False


class _Case(unittest.TestCase):
    def setUp(self):
        self.server = None
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        if self.server is not None and self.server.proc is not None:
            self.server.proc.kill()
            self.server.proc.wait()

    def start(self, *flags):
        self.server = EchoServer(*flags).start()
        return self.server

    def peer(self, **kw):
        p = Peer(self.server.port, timeout=H.t(10), **kw).handshake()
        self.peers.append(p)
        return p


class GracefulTest(_Case):
    def test_graceful_with_blocked_echo(self):
        """RFC 6455 §7.4.1: on SIGTERM every client gets what was queued
        for it, then 1001; the handshakes complete and ws_echo exits 0."""
        timeout_ms = int(H.t(20) * 1000)
        srv = self.start("--close-timeout", timeout_ms)
        quiet = [self.peer() for _ in range(scaled(40, 8))]
        for i, p in enumerate(quiet):
            p.echo(b"quiet %d" % i)
        pending = [self.peer() for _ in range(scaled(5, 2))]
        sent = {}
        for i, p in enumerate(pending):
            sent[p] = [os.urandom(SMALL) for _ in range(3)]
            for m in sent[p]:
                p.send_frame(OP_BINARY, m)
        # Small buffers on both sides: the server's queue backs up at once.
        blocked = self.peer(rcvbuf=4096)
        big = os.urandom(BIG)
        blocked.send_frame(OP_BINARY, big)
        # on_message logs before it queues the echo: once every line is
        # there, every echo is queued ahead of the shutdown.
        for p in pending:
            srv.wait_count("binary %d bytes from %s" % (SMALL, p.local_peer),
                           3)
        srv.wait_count("binary %d bytes from %s" % (BIG, blocked.local_peer),
                       1)
        q = tcp_queues(srv.port, blocked.sock.getsockname()[1])
        self.assertTrue(q is not None and q[0] > 0,
                        "the echo is not backed up: %r" % (q,))

        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(first_close(quiet[0]), 1001)
        # The listeners were closed before the first close was queued.
        self.assertTrue(refused(srv.port), "a new connection was accepted")
        for p in quiet[1:]:
            self.assertEqual(first_close(p), 1001)
        for p in pending:
            for m in sent[p]:
                fin, op, data = p.recv_frame()
                self.assertEqual((fin, op), (True, OP_BINARY))
                self.assertTrue(data == m, "a pending echo differs")
            self.assertEqual(first_close(p), 1001)
        fin, op, data = blocked.recv_frame(H.t(30))
        self.assertEqual((fin, op, len(data)), (True, OP_BINARY, BIG))
        self.assertTrue(data == big, "the 8 MiB echo differs")
        self.assertEqual(first_close(blocked), 1001)
        everyone = quiet + pending + [blocked]
        for p in everyone:
            answer_close(self, p)
        rc = srv.wait_exit(H.t(10))
        took = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLess(took, timeout_ms / 2000.0,
                        "waited for the close timeout")
        closes = srv.lines("close ")
        self.assertEqual(len(closes), len(everyone))
        self.assertTrue(all(ln.split()[2] == "1001" for ln in closes),
                        closes[:5])

    def test_http_phase_ended(self):
        """Before the upgrade: half a request is answered 503 (Connection:
        close), a connection that sent nothing is closed, and an open
        WebSocket gets 1001 beside them."""
        srv = self.start()
        half = Peer(srv.port, timeout=H.t(10))
        idle = Peer(srv.port, timeout=H.t(10))
        self.peers += [half, idle]
        ws = self.peer()  # accepted after both: they are in, too
        _, req = half.request()
        half.send(req[:40])
        ws.echo(b"ready")  # the server has read the half request by now
        srv.signal(signal.SIGTERM)
        status, headers = half.read_head()
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(idle.wait_eof(H.t(5)), True)
        self.assertEqual(first_close(ws), 1001)
        answer_close(self, ws)
        self.assertTrue(half.wait_eof(H.t(5)))
        half.close()
        idle.close()
        self.assertEqual(srv.wait_exit(H.t(10)), 0)


class TimeoutTest(_Case):
    def test_peer_never_answers(self):
        """A client that reads the 1001 and never answers is closed after
        close_timeout_ms; only then does ws_echo exit, with 0."""
        timeout_ms = int(H.t(1.5) * 1000)
        srv = self.start("--close-timeout", timeout_ms)
        mute = self.peer()
        polite = self.peer()
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(first_close(mute), 1001)
        self.assertEqual(first_close(polite), 1001)
        answer_close(self, polite)
        self.assertIn(tcp_end(mute, H.t(10)), ("fin", "rst"))
        rc = srv.wait_exit(H.t(10))
        took = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(took, timeout_ms / 1000.0 * 0.9)
        codes = sorted(ln.split()[2] for ln in srv.lines("close "))
        # The mute one ends with the close it never answered.
        self.assertEqual(codes, ["1001", "1001"])

    def test_second_signal_stops_at_once(self):
        """SIGINT begins the shutdown; a SIGTERM during it stops ws_echo
        at once (exit 0), long before the close timeout."""
        srv = self.start("--close-timeout", 60000)
        mute = self.peer()
        srv.signal(signal.SIGINT)
        self.assertEqual(first_close(mute), 1001)  # it has begun
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(H.t(5))
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, H.t(5))
        self.assertIn(tcp_end(mute, H.t(5)), ("fin", "rst"))

    def test_idle_server(self):
        """With no client, SIGTERM ends ws_echo at once with 0."""
        srv = self.start("--close-timeout", 60000)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(H.t(5)), 0)
        self.assertLess(time.monotonic() - t0, H.t(5))


class WorkersTest(unittest.TestCase):
    def test_workers_shut_down_gracefully(self):
        """ws_echo --workers 2: SIGTERM to the supervisor reaches both
        workers, which send 1001 and wait for the answers (a second
        signal, passed on too, stops them at once); exit 0."""
        port = H.free_port()
        # A session of its own: whatever is left at the end (a worker
        # included) is killed with the group.
        p = subprocess.Popen(
            [H.echo_binary(), "--port", str(port), "--workers", "2",
             "--close-timeout", "60000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        peers = []
        try:
            for _ in range(2):
                self.assertIn("listening", p.stdout.readline())
            peers = [Peer(port, timeout=H.t(10)).handshake()
                     for _ in range(8)]
            for i, peer in enumerate(peers):
                peer.echo(b"w%d" % i)
            p.send_signal(signal.SIGTERM)
            for peer in peers[1:]:
                self.assertEqual(first_close(peer), 1001)
                answer_close(self, peer)
            # peers[0] keeps its worker waiting: a second signal ends it.
            self.assertEqual(first_close(peers[0]), 1001)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=H.t(10))
        finally:
            for peer in peers:
                peer.close()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # all gone, as they should be
            if p.poll() is None:
                p.communicate()
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn("died of signal", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
