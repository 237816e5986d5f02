"""wsharness.py - shared helpers for the ws_echo integration tests.

Only the Python standard library is used here. The helpers:

- free_port(): bind port 0 on the loopback address, read the port, close.
- EchoServer: start BUILD/ws_echo (BUILD from the environment, default
  "build") on 127.0.0.1 or ::1 with subprocess.Popen, wait (bounded) until it
  accepts connections, stop it by PID (SIGTERM, then SIGKILL after a timeout)
  and assert that it exited 0 and did not crash. With WS_TEST_VALGRIND=1 the
  server runs under valgrind and every timeout is scaled up.
- RawClient: a tiny raw-socket WebSocket client (RFC 6455) that can send what
  a real client library never would: any opcode, RSV bits, masked or not,
  any length encoding, byte-at-a-time writes.
"""

import base64
import collections
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

VALGRIND = os.environ.get("WS_TEST_VALGRIND", "0") == "1"
# Every timeout in the tests is multiplied by this.
SCALE = 10.0 if VALGRIND else 1.0
VALGRIND_CMD = [
    "valgrind", "-q", "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def t(seconds):
    """A timeout in seconds, scaled for valgrind."""
    return seconds * SCALE


def loopback(family):
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def ipv6_available():
    """True if a socket can be bound to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(family=socket.AF_INET):
    """A port that was free a moment ago: bind port 0, read it, close."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((loopback(family), 0))
        return s.getsockname()[1]


# WS_ECHO_EMBED=epoll: every ws_echo started through EchoServer (or with
# embed_flags() on its command line) runs inside its own epoll loop through
# the per-descriptor embedding (ws_echo --embed epoll) instead of
# ws_server_run(); tests/run_all.sh runs test_echo.py and test_autobahn.py
# a second time so.
EMBED = os.environ.get("WS_ECHO_EMBED", "")


def embed_flags():
    """The ws_echo flags that WS_ECHO_EMBED asks for."""
    return ["--embed", EMBED] if EMBED else []


def echo_binary():
    build = os.environ.get("BUILD", "build")
    path = os.path.join(build, "ws_echo")
    if not os.path.isabs(path) and not os.path.exists(path):
        # Not run from the repository root: try relative to it.
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        path = os.path.join(root, path)
    return path


class EchoServer:
    """One ws_echo process, started and stopped by PID. Other servers
    subclass it and override command(), banner() and the attributes set
    here (name, path, env, probe)."""

    def __init__(self, family=socket.AF_INET):
        self.family = family
        self.host = loopback(family)
        self.port = None
        self.proc = None
        self.stdout_lines = []
        self.stderr_lines = []
        self._threads = []
        self.name = "ws_echo"
        self.path = echo_binary()
        self.env = None
        self.probe = True  # connect once after the banner, to be sure
        self.extra = []  # more command-line flags

    def command(self):
        """The command line for the port chosen in self.port."""
        return [self.path, "--host", self.host, "--port",
                str(self.port)] + self.embed() + self.extra

    def embed(self):
        """embed_flags() for ws_echo itself, not for other servers."""
        return embed_flags() if os.path.basename(self.path) == "ws_echo" \
            else []

    def banner(self):
        """The stdout line that says the server is listening."""
        return "%s listening on %s port %d" % (self.name, self.host,
                                               self.port)

    # -- start -----------------------------------------------------------
    def start(self, attempts=5):
        if not os.access(self.path, os.X_OK):
            raise RuntimeError("%s is missing: run make first" % self.path)
        last = ""
        for _ in range(attempts):
            self.port = free_port(self.family)
            cmd = self.command()
            if VALGRIND:
                cmd = VALGRIND_CMD + cmd
            self.stdout_lines, self.stderr_lines = [], []
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self.env)
            self._threads = [
                self._drain(self.proc.stdout, self.stdout_lines),
                self._drain(self.proc.stderr, self.stderr_lines),
            ]
            if self._wait_ready(t(10)):
                return self
            # The port was taken in between, or the server failed: retry.
            last = self._diag()
            self._kill()
        raise RuntimeError("%s did not start: %s" % (self.name, last))

    @staticmethod
    def _drain(pipe, lines):
        def run():
            for line in iter(pipe.readline, b""):
                lines.append(line.decode("utf-8", "replace").rstrip("\n"))
            pipe.close()
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        banner = self.banner()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if banner in self.stdout_lines:
                if not self.probe:
                    return True
                try:
                    with socket.create_connection((self.host, self.port),
                                                  timeout=1):
                        return True
                except OSError:
                    pass
            time.sleep(0.02)
        return False

    def _diag(self):
        return "rc=%r stdout=%r stderr=%r" % (
            self.proc.returncode if self.proc else None,
            self.stdout_lines[-5:], self.stderr_lines[-20:])

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=t(10))
        for th in self._threads:
            th.join(timeout=5)

    # -- use ---------------------------------------------------------------
    @property
    def uri(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "ws://%s:%d/" % (host, self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- stop ------------------------------------------------------------
    def stop(self, timeout=None):
        """SIGTERM by PID; SIGKILL after timeout. Assert a clean exit 0."""
        if self.proc is None:
            return
        timeout = t(10) if timeout is None else timeout
        proc, self.proc = self.proc, None
        already = proc.poll()
        killed = False
        if already is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=t(10))
                killed = True
        for th in self._threads:
            th.join(timeout=5)
        rc = proc.returncode
        diag = "rc=%r stderr tail=%r" % (rc, self.stderr_lines[-20:])
        if already is not None:
            raise AssertionError("%s exited before it was stopped: %s"
                                 % (self.name, diag))
        if killed:
            raise AssertionError("%s ignored SIGTERM for %.0fs and "
                                 "was killed: %s" % (self.name, timeout, diag))
        if rc < 0:
            raise AssertionError("%s died of signal %d: %s"
                                 % (self.name, -rc, diag))
        if rc == 99 and VALGRIND:
            raise AssertionError("valgrind reported errors or leaks: "
                                 + diag)
        if rc != 0:
            raise AssertionError("%s exit status %d: %s"
                                 % (self.name, rc, diag))
        if any("AddressSanitizer" in l or "runtime error:" in l
               for l in self.stderr_lines):
            raise AssertionError("sanitizer report: " + diag)


# ---------------------------------------------------------------------------
# Frames (RFC 6455 §5.2)

Frame = collections.namedtuple("Frame", "fin rsv opcode masked payload")


class EchoServerAt:
    """Just the address of a server someone else started (for connect())."""

    def __init__(self, port, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.uri = "ws://%s:%d/" % (host, port)


class EchoServerTest(unittest.TestCase):
    """Tests that share one ws_echo, on cls.family, started before the
    first and stopped after the last."""
    family = socket.AF_INET
    server = None

    @classmethod
    def setUpClass(cls):
        if cls.family == socket.AF_INET6 and not ipv6_available():
            raise unittest.SkipTest("IPv6 (::1) is not available here")
        cls.server = EchoServer(cls.family).start()

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            server, cls.server = cls.server, None
            server.stop()


def mask_bytes(data, key):
    if not data:
        return b""
    n = len(data)
    rep = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^
            int.from_bytes(rep, "little")).to_bytes(n, "little")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                mask_key=None, length_form=None, declared_length=None):
    """Encode one frame exactly as asked.

    rsv: the three RSV bits as a number 0-7 (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    length_form: None (the minimal form), 7, 16 or 64 (force that form).
    declared_length: put this in the length field instead of len(payload).
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    length = len(payload) if declared_length is None else declared_length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if length_form is None:
        length_form = 7 if length < 126 else (16 if length < 65536 else 64)
    if length_form == 7:
        head = struct.pack("!BB", b0, mbit | length)
    elif length_form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, length)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, length)
    if mask:
        key = os.urandom(4) if mask_key is None else mask_key
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Closed(Exception):
    """The peer closed TCP before the expected bytes arrived."""


class RawClient:
    """A raw-socket WebSocket client. Every operation has a timeout."""

    def __init__(self, host, port, family=socket.AF_INET, timeout=None):
        self.timeout = t(5) if timeout is None else timeout
        self.sock = socket.create_connection((host, port),
                                             timeout=self.timeout)
        self.host, self.port = host, port
        self.buf = b""
        self.eof = False
        self.last_len7 = None

    @classmethod
    def for_server(cls, server, **kw):
        return cls(server.host, server.port, server.family, **kw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes -----------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def send_bytewise(self, data, delay=0.002):
        """One send() per byte, with Nagle off."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            self.eof = True
            raise Closed("connection closed with %d bytes buffered"
                         % len(self.buf))
        self.buf += chunk

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, marker, deadline, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("no %r in %d bytes" % (marker, limit))
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    # -- handshake (RFC 6455 §4.1) ---------------------------------------
    def request_bytes(self, key=None, path="/", extra=b""):
        key = key or base64.b64encode(os.urandom(16)).decode()
        host = "[%s]" % self.host if ":" in self.host else self.host
        return key, (
            "GET %s HTTP/1.1\r\n"
            "Host: %s:%d\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n" % (path, host, self.port, key)
        ).encode() + extra + b"\r\n"

    def handshake(self, path="/", trailing=b"", extra=b""):
        """Upgrade; trailing bytes go in the same sendall as the request,
        extra header lines (each ending in CRLF) in the request."""
        key, req = self.request_bytes(path=path, extra=extra)
        self.send(req + trailing)
        status, headers, _ = self.read_response()
        if status != 101:
            raise AssertionError("handshake status %r, headers %r"
                                 % (status, headers))
        want = accept_for(key)
        got = headers.get("sec-websocket-accept")
        if got != want:
            raise AssertionError("Sec-WebSocket-Accept %r, want %r"
                                 % (got, want))
        return headers

    def read_response(self, timeout=None, body=False):
        """(status, {lower-case name: value}, status line) of an HTTP
        response. With body=True, also read Content-Length bytes."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        head = self.read_until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise AssertionError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if body and "content-length" in headers:
            self.body = self.read_exact(int(headers["content-length"]),
                                        deadline)
        return int(parts[1]), headers, lines[0]

    # -- frames ----------------------------------------------------------
    def send_frame(self, opcode, payload=b"", **kw):
        self.send(build_frame(opcode, payload, **kw))

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        b0, b1 = self.read_exact(2, deadline)
        n = self.last_len7 = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, deadline))[0]
        key = self.read_exact(4, deadline) if b1 & 0x80 else None
        payload = self.read_exact(n, deadline)
        if key:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F,
                     bool(b1 & 0x80), payload)

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next data message; control frames in
        between are returned as they come if they are not pongs."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        opcode, parts = None, []
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if f.opcode >= 8:
                return f.opcode, f.payload
            if opcode is None:
                opcode = f.opcode
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def recv_close(self, timeout=None):
        """The next frame must be a close; returns (code, reason bytes);
        code is None for an empty close payload."""
        f = self.recv_frame(timeout)
        if f.opcode != OP_CLOSE:
            raise AssertionError("expected a close frame, got %r"
                                 % (f._replace(payload=f.payload[:64]),))
        if f.masked or f.rsv or not f.fin:
            raise AssertionError("malformed server close frame %r" % (f,))
        if not f.payload:
            return None, b""
        if len(f.payload) == 1:
            raise AssertionError("server close with 1-byte payload")
        return struct.unpack("!H", f.payload[:2])[0], f.payload[2:]

    def wait_tcp_close(self, timeout=None):
        """True if the server closes TCP (recv returns b"" or the
        connection is reset) within timeout; any data is discarded."""
        deadline = time.monotonic() + (t(3) if timeout is None else timeout)
        self.buf = b""
        if self.eof:
            return True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, ConnectionAbortedError):
                return True
            if not chunk:
                self.eof = True
                return True


def accept_for(key):
    """Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 step 5.4)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def log(*args):
    print(*args, file=sys.stderr, flush=True)
