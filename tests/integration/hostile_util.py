"""hostile_util.py - helpers for test_hostile.py on top of wsharness.py.

- Server: BUILD/ws_echo or BUILD/tests/ws_bcast started on 127.0.0.1 (a free
  port), read back through /proc (descriptor count, VmRSS), stopped by PID
  with wsharness' checks (exit 0, no signal, no valgrind/sanitizer report).
- Peer: a raw WebSocket client whose frame reader stays linear on long
  streams (RawClient copies its buffer on every read), with RST, half-close
  and SO_RCVBUF helpers. Every operation has a timeout.
- Prober: a normal client in a thread that keeps asking for an echo and
  records how long each answer took.
"""

import base64
import os
import select
import socket
import struct
import threading
import time

import wsharness as H
from wsharness import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT

VALGRIND = H.VALGRIND
HOST = "127.0.0.1"
# How soon a normal client must be answered while the hostile ones play.
PROMPT = 5.0 if VALGRIND else 1.0
# "A few seconds" for things that are asynchronous by design.
FEW = 15.0 if VALGRIND else 3.0


def scaled(plain, under_valgrind):
    """A count for the plain run and a smaller one under valgrind."""
    return under_valgrind if VALGRIND else plain


def binary(rel):
    """BUILD/rel, also when not run from the repository root."""
    path = os.path.join(os.environ.get("BUILD", "build"), rel)
    if not os.path.isabs(path) and not os.path.exists(path):
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        path = os.path.join(root, path)
    return path


def is_sanitized(path):
    """True when the program was built with AddressSanitizer or
    ThreadSanitizer, whose shadow memory and quarantine make RSS
    meaningless."""
    try:
        with open(path, "rb") as f:
            image = f.read()
            return b"__asan_init" in image or b"__tsan_init" in image
    except OSError:
        return False


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the IPv4 TCP socket local_port ->
    remote_port from /proc/net/tcp, or None when there is none."""
    want = ":%04X" % local_port, ":%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(want[0]) and parts[2].endswith(want[1]):
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def tcp_wmem_max():
    """The most the kernel may autotune a socket's send buffer to."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


class Server(H.EchoServer):
    """ws_echo (kind "echo") or tests/ws_bcast (kind "bcast") with flags."""

    def __init__(self, kind="echo", args=(), env=None):
        super().__init__(socket.AF_INET)
        self.env = env
        self.kind = kind
        self.args = [str(a) for a in args]
        self.path = binary("ws_echo" if kind == "echo" else "tests/ws_bcast")
        self.name = self.path
        self.probe = False  # a probe would count against the limits tested

    def command(self):
        if self.kind == "echo":
            return ([self.path, "--host", HOST, "--port", str(self.port)] +
                    H.embed_flags())
        return [self.path, "--port", str(self.port)] + self.args

    def banner(self):
        if self.kind == "echo":
            return "ws_echo listening on %s port %d" % (HOST, self.port)
        return "listening on port %d" % self.port

    # -- /proc ---------------------------------------------------------
    # Under valgrind the PID of the Popen is valgrind, which exec()s the
    # tool in place: it is the server process, its fds and memory.
    @property
    def pid(self):
        return self.proc.pid

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/%d/status" % self.pid)

    def wait_fds(self, want, timeout=None):
        """Poll until the fd count is want; return the last count seen."""
        deadline = time.monotonic() + (FEW if timeout is None else timeout)
        while True:
            n = self.fd_count()
            if n == want or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)

    def stable_fds(self, quiet=0.3, timeout=None):
        """The fd count once it has not changed for quiet seconds."""
        deadline = time.monotonic() + (FEW if timeout is None else timeout)
        last, since = self.fd_count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            n = self.fd_count()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return last

    def wait_line(self, predicate, timeout):
        """The first stdout line for which predicate is true, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.stdout_lines):
                if predicate(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)


class Peer:
    """A raw WebSocket client with a linear-time frame reader."""

    def __init__(self, port, timeout=None, rcvbuf=None, host=HOST):
        self.timeout = H.t(5) if timeout is None else timeout
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(self.timeout)
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.port = port
        self.buf = bytearray()
        self.pos = 0
        self.eof = False

    @property
    def local_peer(self):
        """How the server names this client: "127.0.0.1:PORT"."""
        h, p = self.sock.getsockname()[:2]
        return "%s:%d" % (h, p)

    # -- teardown variants -----------------------------------------------
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def rst(self):
        """Vanish with a TCP reset: SO_LINGER {1, 0}, then close()."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def half_close(self):
        self.sock.shutdown(socket.SHUT_WR)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes -------------------------------------------------------------
    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            self.eof = True
            raise H.Closed("connection closed with %d bytes buffered"
                           % (len(self.buf) - self.pos))
        if self.pos > (1 << 16) and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _need(self, n, deadline):
        while len(self.buf) - self.pos < n:
            self._fill(deadline)

    def _take(self, n):
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    # -- HTTP ----------------------------------------------------------------
    def read_head(self, timeout=None):
        """(status, {lower-case name: value}) of an HTTP response head."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            i = self.buf.find(b"\r\n\r\n", self.pos)
            if i >= 0:
                break
            if len(self.buf) - self.pos > 65536:
                raise AssertionError("no end of HTTP head in 64 KiB")
            self._fill(deadline)
        head = self._take(i + 4 - self.pos).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise AssertionError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
        return int(parts[1]), headers

    def request(self, key=None, path="/", extra=b""):
        key = key or base64.b64encode(os.urandom(16)).decode()
        return key, (
            "GET %s HTTP/1.1\r\n"
            "Host: %s:%d\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n" % (path, HOST, self.port, key)
        ).encode() + extra + b"\r\n"

    def handshake(self, timeout=None):
        key, req = self.request()
        self.send(req)
        status, headers = self.read_head(timeout)
        if status != 101:
            raise AssertionError("handshake status %r" % status)
        if headers.get("sec-websocket-accept") != H.accept_for(key):
            raise AssertionError("bad Sec-WebSocket-Accept %r"
                                 % headers.get("sec-websocket-accept"))
        return self

    # -- frames ----------------------------------------------------------
    def send_frame(self, opcode, payload=b"", **kw):
        self.send(H.build_frame(opcode, payload, **kw))

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload) of the next frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        self._need(2, deadline)
        b0, b1 = self.buf[self.pos], self.buf[self.pos + 1]
        n, hlen = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack_from("!H", self.buf, self.pos + 2)[0]
            hlen = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack_from("!Q", self.buf, self.pos + 2)[0]
            hlen = 10
        if b1 & 0x80:
            raise AssertionError("masked frame from the server")
        self._need(hlen + n, deadline)
        self.pos += hlen
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def recv_close(self, timeout=None):
        """Skip data and pings up to the close frame; return its code (None
        for an empty body)."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            _, op, payload = self.recv_frame(max(0.001, deadline -
                                                 time.monotonic()))
            if op == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if payload else None

    def wait_eof(self, timeout=None):
        """True if TCP ends (EOF or reset) within timeout; data is dropped."""
        deadline = time.monotonic() + (FEW if timeout is None else timeout)
        self.buf, self.pos = bytearray(), 0
        if self.eof:
            return True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 18)
            except socket.timeout:
                return False
            except OSError:
                return True  # reset
            if not chunk:
                self.eof = True
                return True

    def readable_within(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(r)

    def echo(self, payload, timeout=None):
        """Send a text and wait for the same text back (pings are answered,
        other messages skipped). Returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + (self.timeout if timeout is None else timeout)
        self.send_frame(OP_TEXT, payload)
        while True:
            _, op, data = self.recv_frame(max(0.001, deadline -
                                              time.monotonic()))
            if op == OP_PING:
                self.send_frame(OP_PONG, data)
            elif op == OP_CLOSE:
                raise AssertionError("close frame %r instead of the echo"
                                     % data[:2])
            elif op == OP_TEXT and data == payload:
                return time.monotonic() - t0

    def close_handshake(self, code=1000):
        """Send a close, expect the echo of the code and the TCP close."""
        self.send_frame(OP_CLOSE, H.close_payload(code))
        got = self.recv_close()
        if got != code:
            raise AssertionError("close answered with %r, want %d"
                                 % (got, code))
        if not self.wait_eof():
            raise AssertionError("no TCP close after the close handshake")
        self.close()


class Prober(threading.Thread):
    """A normal client: an echo on one connection every period seconds and,
    if fresh_every, a whole new connection (handshake, echo, close) that
    often. Latencies and failures are recorded, not raised."""

    def __init__(self, port, period=0.05, fresh_every=0.5, peer=None):
        super().__init__(daemon=True)
        self.port = port
        self.peer_class = peer or Peer  # a TLS test passes its own
        self.period = period
        self.fresh_every = fresh_every
        self.latencies = []
        self.fresh_latencies = []
        self.errors = []
        self._halt = threading.Event()
        self.peer = None

    def run(self):
        try:
            self.peer = self.peer_class(self.port,
                                        timeout=H.t(10)).handshake()
        except Exception as e:  # noqa: BLE001 - recorded for the test
            self.errors.append("probe connect: %r" % (e,))
            return
        i = 0
        next_fresh = time.monotonic() + (self.fresh_every or 0)
        while not self._halt.is_set():
            i += 1
            try:
                self.latencies.append(
                    self.peer.echo(b"probe %d %d" % (id(self), i)))
            except Exception as e:  # noqa: BLE001
                self.errors.append("probe echo %d: %r" % (i, e))
                return
            if self.fresh_every and time.monotonic() >= next_fresh:
                next_fresh = time.monotonic() + self.fresh_every
                t0 = time.monotonic()
                try:
                    with self.peer_class(self.port, timeout=H.t(10)) as p:
                        p.handshake()
                        p.echo(b"fresh %d" % i)
                        p.close_handshake()
                    self.fresh_latencies.append(time.monotonic() - t0)
                except Exception as e:  # noqa: BLE001
                    self.errors.append("fresh probe %d: %r" % (i, e))
                    return
            self._halt.wait(self.period)

    def finish(self):
        """Stop, close the probe connection, return a problem or None."""
        self._halt.set()
        self.join(H.t(15))
        if self.is_alive():
            return "prober hung"
        if self.peer is not None and not self.errors:
            try:
                self.peer.close_handshake()
            except Exception as e:  # noqa: BLE001
                self.errors.append("probe close: %r" % (e,))
        if self.peer is not None:
            self.peer.close()
        if self.errors:
            return "; ".join(self.errors[:3])
        worst = max(self.latencies + self.fresh_latencies, default=0.0)
        if not self.latencies:
            return "no probe echo at all"
        if worst > PROMPT:
            return ("a normal client waited %.2fs for an echo (limit %.1fs; "
                    "%d probes)" % (worst, PROMPT, len(self.latencies)))
        return None
