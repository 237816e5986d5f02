"""test_tls.py - wss:// end to end: Debian's python3-websockets over TLS
with a test CA (echo of 0 B to 16 MiB, fragments, close codes, 100
clients, IPv6, compression on and off), https for the chat page, client
certificates, SNI, ALPN, the minimum version, certificate reload without a
restart, and hostile TLS peers (plain HTTP, random bytes, a ClientHello
one byte at a time, vanishing mid-handshake, renegotiation, 2 000
connect/disconnect cycles, a client that never reads), after which the
server's descriptors and memory are back where they were.

The certificates come from tests/tls/make_certs.sh, made into a temporary
directory for this run.
"""

import asyncio
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_util as U  # noqa: E402
import wsharness as H  # noqa: E402

import websockets.client  # noqa: E402
import websockets.exceptions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CERTS = None  # the directory setUpModule fills


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="ws-tls-")
    subprocess.run(["sh", os.path.join(ROOT, "tests/tls/make_certs.sh"),
                    CERTS], check=True, stdout=subprocess.DEVNULL)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def client_ctx(cert_name=None, alpn=None, max_version=None):
    """A client context that trusts the test CA (and checks the name)."""
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    if cert_name:
        ctx.load_cert_chain(cert(cert_name + ".pem"), cert(cert_name + ".key"))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, H.t(timeout)))


class EchoTls(H.EchoServer):
    """build/ws_echo with --tls-cert/--tls-key."""

    def __init__(self, family=socket.AF_INET, deflate=True):
        super().__init__(family)
        self.extra = ["--tls-cert", cert("server.pem"),
                      "--tls-key", cert("server.key")]
        if not deflate:
            self.extra.append("--no-deflate")

    def banner(self):
        return super().banner() + " (TLS)"

    def _wait_ready(self, timeout):
        # The harness probes with a plain TCP connect; that is fine (the
        # server sees a TLS peer that vanished).
        return super()._wait_ready(timeout)

    @property
    def uri(self):
        return super().uri.replace("ws://", "wss://", 1)


class TlsServer(U.Server):
    """tests/tls_server with flags; stdout lines are kept for waiting."""

    def __init__(self, args=(), cert_file=None, key_file=None):
        super().__init__("bcast")
        self.path = U.binary("tests/tls_server")
        self.name = "tls_server"
        self.cert_file = cert_file or cert("server.pem")
        self.key_file = key_file or cert("server.key")
        self.args = [str(a) for a in args]

    def command(self):
        return [self.path, "--port", str(self.port), "--cert",
                self.cert_file, "--key", self.key_file] + self.args

    def banner(self):
        return "tls_server listening on 127.0.0.1 port %d" % self.port

    @property
    def uri(self):
        return "wss://127.0.0.1:%d/" % self.port

    def errors(self):
        return [l for l in self.stdout_lines if l.startswith("error ")]

    def wait_error(self, text, timeout=None):
        return self.wait_line(lambda l: l.startswith("error ") and text in l,
                              H.t(5) if timeout is None else timeout)


class TlsPeer(U.Peer):
    """The raw WebSocket client of the hostile tests, over TLS."""

    def __init__(self, port, timeout=None, ctx=None, **kw):
        super().__init__(port, timeout=timeout, **kw)
        ctx = ctx or client_ctx()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")


def recv_all(sock):
    """Everything sock receives until the peer closes."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def payload(n):
    """n bytes with a pattern that a shifted or dropped chunk would show."""
    block = bytes((i * 31 + 7) & 0xFF for i in range(4093))  # prime length
    return (block * (n // len(block) + 1))[:n]


class EchoOverTls(unittest.TestCase):
    """ws_echo over wss, with and without compression."""
    deflate = True
    family = socket.AF_INET

    @classmethod
    def setUpClass(cls):
        if cls.family == socket.AF_INET6 and not H.ipv6_available():
            raise unittest.SkipTest("no IPv6 loopback")
        cls.server = EchoTls(cls.family, cls.deflate).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def connect(self, **kw):
        kw.setdefault("ssl", client_ctx())
        kw.setdefault("max_size", None)
        kw.setdefault("compression", "deflate" if self.deflate else None)
        if self.family == socket.AF_INET6:
            kw.setdefault("server_hostname", "localhost")
        return websockets.client.connect(self.server.uri, **kw)

    def test_sizes(self):
        async def go():
            async with self.connect() as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions")
                self.assertEqual(ext is not None, self.deflate)
                for n in (0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20):
                    m = payload(n)
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m, n)
                await ws.send("héllo wörld €")
                self.assertEqual(await ws.recv(), "héllo wörld €")
                tls = ws.transport.get_extra_info("ssl_object")
                self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
        run(go(), 120)

    def test_fragmented(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(["frag", "ment", "ed ✓"])
                self.assertEqual(await ws.recv(), "fragmented ✓")
                await ws.send([b"\x00" * 70000, b"\x01" * 3])
                self.assertEqual(await ws.recv(), b"\x00" * 70000 + b"\x01" * 3)
        run(go())

    def test_close_codes(self):
        async def go():
            for code, reason in ((1000, ""), (4000, "bye"), (1001, "away")):
                ws = await self.connect()
                await ws.close(code, reason)
                # RFC 6455 §5.5.1: the server echoes the code.
                self.assertEqual(ws.close_code, code)
        run(go())

    def test_burst_of_small_messages(self):
        """Thousands of records at once: OpenSSL reads ahead more than one
        wake's budget, and what it holds must still be read (no stall)."""
        async def go():
            async with self.connect() as ws:
                msgs = ["m%05d" % i for i in range(3000)]
                for m in msgs:
                    await ws.send(m)
                got = [await ws.recv() for _ in msgs]
                self.assertEqual(got, msgs)
        run(go())

    def test_hundred_clients(self):
        async def one(i):
            async with self.connect(open_timeout=H.t(30)) as ws:
                for j in range(5):
                    m = "client %d message %d " % (i, j) * (1 + i % 7)
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)

        async def go():
            await asyncio.gather(*(one(i) for i in range(100)))
        run(go(), 120)


class EchoOverTlsPlain(EchoOverTls):
    deflate = False


class EchoOverTlsIPv6(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not H.ipv6_available():
            raise unittest.SkipTest("no IPv6 loopback")
        cls.server = EchoTls(socket.AF_INET6).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_roundtrip_ipv6(self):
        """The test certificate names ::1 as an IP address."""
        async def go():
            async with websockets.client.connect(
                    self.server.uri, ssl=client_ctx()) as ws:
                await ws.send("over ::1")
                self.assertEqual(await ws.recv(), "over ::1")
        run(go())


class ChatOverHttps(unittest.TestCase):
    """ws_chat with a certificate: the page over https, the chat over wss."""

    def test_page_and_chat(self):
        srv = H.EchoServer()
        srv.name = "ws_chat"
        srv.path = U.binary("ws_chat")
        srv.extra = ["--www", os.path.join(ROOT, "www"), "--tls-cert",
                     cert("server.pem"), "--tls-key", cert("server.key")]
        srv.start()
        try:
            url = "https://127.0.0.1:%d/" % srv.port
            with urllib.request.urlopen(url, context=client_ctx(),
                                        timeout=H.t(5)) as r:
                self.assertEqual(r.status, 200)
                self.assertIn(b"<html", r.read().lower())

            async def go():
                async with websockets.client.connect(
                        "wss://127.0.0.1:%d/chat" % srv.port,
                        ssl=client_ctx()) as ws:
                    self.assertIn("permessage-deflate",
                                  ws.response_headers.get(
                                      "Sec-WebSocket-Extensions", ""))
            run(go())
        finally:
            srv.stop()


class TlsFeatures(unittest.TestCase):
    """Client certificates, SNI, ALPN, versions, reload (tests/tls_server)."""

    def start(self, *args, **kw):
        srv = TlsServer(args, **kw).start()
        self.addCleanup(srv.stop)
        return srv

    def whoami(self, srv, ctx, server_hostname=None):
        async def go():
            async with websockets.client.connect(
                    "wss://127.0.0.1:%d/whoami" % srv.port, ssl=ctx,
                    server_hostname=server_hostname) as ws:
                import json
                return json.loads(await ws.recv())
        return run(go())

    def refused(self, srv, ctx):
        """The handshake or the upgrade fails; never a 101 and a message."""
        async def go():
            async with websockets.client.connect(
                    "wss://127.0.0.1:%d/whoami" % srv.port, ssl=ctx,
                    open_timeout=H.t(5)) as ws:
                return await ws.recv()
        with self.assertRaises((ssl.SSLError, OSError, EOFError,
                                websockets.exceptions.WebSocketException)):
            run(go())

    def test_client_cert_required(self):
        srv = self.start("--ca", cert("ca.pem"), "--client", "required")
        self.refused(srv, client_ctx())
        self.assertIsNotNone(
            srv.wait_error("did not return a certificate"), srv.errors())
        self.refused(srv, client_ctx("rogue"))
        self.assertIsNotNone(srv.wait_error("certificate verify failed"),
                             srv.errors())
        info = self.whoami(srv, client_ctx("client"))
        self.assertEqual(info["verified"], 1)
        self.assertIn("CN=test-client", info["subject"])
        self.assertIn("O=ws tests", info["subject"])
        self.assertTrue(all("127.0.0.1:" in e for e in srv.errors()),
                        srv.errors())

    def test_client_cert_optional(self):
        srv = self.start("--ca", cert("ca.pem"), "--client", "optional")
        info = self.whoami(srv, client_ctx())
        self.assertEqual((info["verified"], info["subject"]), (0, ""))
        info = self.whoami(srv, client_ctx("client"))
        self.assertEqual(info["verified"], 1)
        self.refused(srv, client_ctx("rogue"))

    def test_sni_picks_the_certificate(self):
        srv = self.start("--sni", "other.test", cert("other.pem"),
                         cert("other.key"))
        info = self.whoami(srv, client_ctx(), server_hostname="other.test")
        self.assertEqual(info["sni"], "other.test")
        info = self.whoami(srv, client_ctx(), server_hostname="localhost")
        self.assertEqual(info["sni"], "localhost")
        # An IP address is no server name: the default certificate.
        info = self.whoami(srv, client_ctx())
        self.assertEqual(info["sni"], "")

    def test_alpn_and_versions(self):
        srv = self.start("--min", "1.3")
        raw = socket.create_connection(("127.0.0.1", srv.port), H.t(5))
        with client_ctx(alpn=["h2", "http/1.1"]).wrap_socket(
                raw, server_hostname="localhost") as s:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
            self.assertEqual(s.version(), "TLSv1.3")
        # A client that speaks only other protocols still gets TLS.
        raw = socket.create_connection(("127.0.0.1", srv.port), H.t(5))
        with client_ctx(alpn=["h2"]).wrap_socket(
                raw, server_hostname="localhost") as s:
            self.assertIsNone(s.selected_alpn_protocol())
        self.refused(srv, client_ctx(max_version=ssl.TLSVersion.TLSv1_2))
        self.assertIsNotNone(srv.wait_error("unsupported protocol"),
                             srv.errors())

    def test_reload_without_restart(self):
        d = tempfile.mkdtemp(prefix="ws-reload-", dir=CERTS)
        crt, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
        shutil.copy(cert("server.pem"), crt)
        shutil.copy(cert("server.key"), key)
        srv = self.start(cert_file=crt, key_file=key)

        async def open_one():
            return await websockets.client.connect(
                srv.uri, ssl=client_ctx(), server_hostname="localhost")

        async def go():
            old = await open_one()
            # Rotate to the other.test certificate in place.
            shutil.copy(cert("other.pem"), crt)
            shutil.copy(cert("other.key"), key)
            os.kill(srv.pid, signal.SIGHUP)
            self.assertIsNotNone(srv.wait_line(lambda l: l == "reload ok",
                                               H.t(5)))
            # New connections get the new certificate...
            async with websockets.client.connect(
                    srv.uri, ssl=client_ctx(),
                    server_hostname="other.test") as ws:
                await ws.send("new")
                self.assertEqual(await ws.recv(), "new")
            with self.assertRaises(ssl.SSLCertVerificationError):
                await open_one()
            # ...the one opened before keeps going.
            await old.send("old")
            self.assertEqual(await old.recv(), "old")
            # A bad file leaves the context that works in place.
            with open(crt, "w") as f:
                f.write("not a certificate\n")
            os.kill(srv.pid, signal.SIGHUP)
            line = srv.wait_line(lambda l: l.startswith("reload failed"),
                                 H.t(5))
            self.assertIsNotNone(line)
            self.assertIn(crt, line)
            self.assertIn("cert_file", line)
            async with websockets.client.connect(
                    srv.uri, ssl=client_ctx(),
                    server_hostname="other.test") as ws:
                await ws.send("still")
                self.assertEqual(await ws.recv(), "still")
            await old.close()
        run(go())

    def test_resumption_by_ticket(self):
        """A client that comes back resumes with the ticket it was given
        (stateless: the server keeps no session cache)."""
        srv = self.start()
        ctx = client_ctx()
        session = None
        for attempt in range(2):
            p = TlsPeer.__new__(TlsPeer)
            U.Peer.__init__(p, srv.port)
            p.sock = ctx.wrap_socket(p.sock, server_hostname="localhost",
                                     session=session)
            p.handshake()
            # The ticket comes after the handshake: an echo brings it in.
            p.echo(b"ticket?")
            self.assertEqual(p.sock.session_reused, attempt == 1)
            session = p.sock.session
            p.close_handshake()

    def test_bad_files_at_listen(self):
        for args, want in (
                (["--cert", "/nonexistent.pem"], "No such file"),
                (["--key", cert("other.key")], "key_file"),
                (["--client", "required"], "ca_file")):
            argv = [U.binary("tests/tls_server"), "--port", "0", "--cert",
                    cert("server.pem"), "--key", cert("server.key")] + args
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=H.t(10))
            self.assertEqual(p.returncode, 1, p)
            self.assertIn(want, p.stderr)
            self.assertIn("tls:", p.stderr)


class TlsUnchanged(unittest.TestCase):
    """What works without TLS works with it: streaming receive, posts from
    another thread, and the application's own select() loop driving the
    server (fd_set embedding)."""
    embed = False

    @classmethod
    def setUpClass(cls):
        cls.server = TlsServer(["--embed"] if cls.embed else []).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def connect(self, path="/"):
        return websockets.client.connect(
            "wss://127.0.0.1:%d%s" % (self.server.port, path),
            ssl=client_ctx(), max_size=None)

    def test_echo(self):
        async def go():
            async with self.connect() as ws:
                for n in (0, 5, 70000, 3 << 20):
                    await ws.send(payload(n))
                    self.assertEqual(await ws.recv(), payload(n))
        run(go())

    def test_streaming(self):
        async def go():
            async with self.connect("/stream") as ws:
                pieces = [payload(100000), b"", payload(3 << 20), b"end"]
                await ws.send(pieces)
                self.assertEqual(await ws.recv(), b"".join(pieces))
                await ws.send("whole ✓")
                self.assertEqual(await ws.recv(), "whole ✓")
        run(go())

    def test_posts_from_another_thread(self):
        async def go():
            async with self.connect("/post") as ws:
                got = [await ws.recv() for _ in range(100)]
                self.assertEqual(got, ["post %d" % i for i in range(100)])
        run(go())


class TlsUnchangedEmbedded(TlsUnchanged):
    embed = True


class AuditRegressions(unittest.TestCase):
    """Findings of an independent audit, each a regression test."""

    def start(self, *args):
        srv = TlsServer(args).start()
        self.addCleanup(srv.stop)
        return srv

    def test_stale_error_queue_kills_nobody(self):
        """An error the application leaves on the thread's OpenSSL queue
        ("poison") does not turn another connection's partial record into
        a fatal error."""
        srv = self.start()
        a = TlsPeer(srv.port).handshake()
        b = TlsPeer(srv.port).handshake()
        a.echo(b"poison")
        frame = H.build_frame(H.OP_TEXT, b"split across two writes")
        b.sock.sendall(frame[:5])  # one record, the frame unfinished
        time.sleep(0.2)
        b.sock.sendall(frame[5:])
        _, op, payload = b.recv_frame()
        self.assertEqual(payload, b"split across two writes")
        self.assertEqual(srv.errors(), [])
        for p in (a, b):
            p.close_handshake()

    def test_pipelined_500_keeps_earlier_answers(self):
        """An answer past max_output_bytes becomes a 500 after the ones
        pipelined before it, which arrive whole (over TLS a half-written
        record must stay as it is, or OpenSSL refuses the retry)."""
        srv = self.start("--max-output", 4 << 20, "--max-message", 1 << 20)
        p = TlsPeer(srv.port, rcvbuf=4096)
        reqs = b"".join(b"GET /200000 HTTP/1.1\r\nHost: x\r\n\r\n"
                        for _ in range(40))
        p.send(reqs)
        time.sleep(0.5)  # the server writes what it can and waits
        p.send(b"GET /4300000 HTTP/1.1\r\nHost: x\r\n\r\n")
        # Every answer up to the one that passes the limit is whole and
        # in order; that one is a 500, and the last.
        answers = 0
        while True:
            status, headers = p.read_head(H.t(10))
            if status == 500:
                break
            self.assertEqual(status, 200, answers)
            n = int(headers["content-length"])
            self.assertEqual(n, 200000)
            p._need(n, time.monotonic() + H.t(10))
            self.assertEqual(p._take(n), b"x" * n, answers)
            answers += 1
        self.assertGreater(answers, 0)
        self.assertTrue(p.wait_eof(H.t(10)))
        self.assertEqual(srv.errors(), [])
        p.close()

    def test_error_after_the_handshake_is_not_a_handshake_error(self):
        """A corrupted record after the upgrade is reported as what it is,
        not as a handshake failure."""
        srv = self.start()
        raw = socket.create_connection(("127.0.0.1", srv.port), H.t(5))
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_ctx().wrap_bio(inc, out, server_hostname="localhost")

        def pump():
            data = out.read()
            if data:
                raw.sendall(data)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                inc.write(raw.recv(65536))
        pump()
        # The upgrade, then a record with one bit flipped.
        tls.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        pump()
        reply = b""
        while b"\r\n\r\n" not in reply:
            try:
                reply += tls.read(65536)
            except ssl.SSLWantReadError:
                inc.write(raw.recv(65536))
        self.assertTrue(reply.startswith(b"HTTP/1.1 101"), reply)
        tls.write(H.build_frame(H.OP_TEXT, b"x" * 30))
        record = bytearray(out.read())
        record[-1] ^= 0x01  # the tag no longer matches
        raw.sendall(bytes(record))
        line = srv.wait_error("127.0.0.1:")
        self.assertIsNotNone(line, srv.errors())
        self.assertNotIn("handshake:", line)
        self.assertIn("bad record mac", line)
        raw.close()

    def test_any_plain_method_gets_400(self):
        srv = self.start()
        for method in (b"OPTIONS", b"DELETE", b"PATCH"):
            with socket.create_connection(("127.0.0.1", srv.port),
                                          H.t(5)) as s:
                s.sendall(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = recv_all(s)
            self.assertTrue(data.startswith(b"HTTP/1.1 400 "), (method, data))


def client_hello():
    """The bytes of a real ClientHello, from an in-memory handshake."""
    ctx = client_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class HostileTls(unittest.TestCase):
    """Bad TLS peers; the server stays up and serves others throughout."""

    @classmethod
    def setUpClass(cls):
        cls.server = TlsServer(["--handshake-ms", int(H.t(2000))]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.base_fds = self.server.stable_fds()
        self.prober = U.Prober(self.server.port, peer=TlsPeer)
        self.prober.start()
        deadline = time.monotonic() + H.t(10)
        while not self.prober.latencies and not self.prober.errors and \
                time.monotonic() < deadline:
            time.sleep(0.01)

    def tearDown(self):
        problem = self.prober.finish()
        self.assertIsNone(problem)
        self.assertTrue(self.server.alive())
        self.assertEqual(self.server.wait_fds(self.base_fds, H.t(10)),
                         self.base_fds, "descriptors leaked")

    def raw(self):
        return socket.create_connection(("127.0.0.1", self.server.port),
                                        H.t(5))

    def test_plain_http_gets_400(self):
        with self.raw() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = recv_all(s)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)
        self.assertIn(b"TLS", data)
        self.assertIsNotNone(self.server.wait_error("http request"))

    def test_random_bytes(self):
        rnd = random.Random(17)
        for _ in range(20):
            with self.raw() as s:
                s.sendall(bytes(rnd.randrange(256) for _ in range(600)))
                s.settimeout(H.t(5))
                try:
                    while s.recv(4096):  # an alert at most, then the end
                        pass
                except ConnectionResetError:
                    pass

    def test_slow_client_hello_is_cut(self):
        hello = client_hello()
        t0 = time.monotonic()
        with self.raw() as s:
            closed = False
            for b in hello:
                try:
                    s.sendall(bytes([b]))
                except OSError:
                    closed = True
                    break
                s.settimeout(0.25)
                try:
                    if s.recv(4096) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
                if time.monotonic() - t0 > H.t(10):
                    break
        took = time.monotonic() - t0
        self.assertTrue(closed, "never cut")
        self.assertGreater(took, H.t(1.5))
        self.assertLess(took, H.t(5))

    def test_vanish_mid_handshake(self):
        hello = client_hello()
        for i in range(50):
            with self.raw() as s:
                s.sendall(hello[:len(hello) // 2] if i % 2 else hello)
                if i % 3 == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def test_renegotiation_refused(self):
        """TLS 1.2 renegotiation (openssl s_client's R command): refused;
        the server and everyone else go on."""
        p = subprocess.Popen(
            ["openssl", "s_client", "-tls1_2", "-connect",
             "127.0.0.1:%d" % self.server.port, "-CAfile", cert("ca.pem")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        out = b""
        try:
            # s_client reads its commands only once the handshake is done.
            deadline = time.monotonic() + H.t(10)
            while b"Verify return code" not in out:
                line = p.stdout.readline()
                if not line or time.monotonic() > deadline:
                    break
                out += line
            p.stdin.write(b"R\n")
            p.stdin.flush()
            rest, _ = p.communicate(timeout=H.t(10))
            out += rest
        except subprocess.TimeoutExpired:
            p.kill()
            out += p.communicate()[0]
        self.assertIn(b"RENEGOTIATING", out)
        self.assertIn(b"no renegotiation", out)  # our refusal, an alert
        self.assertTrue(self.server.alive())

    def test_connect_disconnect_cycles(self):
        rss0 = self.server.rss_kib()
        hello = client_hello()
        for i in range(2000):
            with self.raw() as s:
                if i % 4 == 0:
                    s.sendall(hello)  # and vanish
                elif i % 4 == 1:
                    pass  # TCP only
                else:
                    with client_ctx().wrap_socket(
                            s, server_hostname="localhost") as t:
                        if i % 4 == 3:
                            t.unwrap()
        # (tearDown checks the descriptors, once the prober's is closed.)
        grown = self.server.rss_kib() - rss0
        # Sanitizers and valgrind keep freed memory on purpose.
        if not U.is_sanitized(self.server.path) and not H.VALGRIND:
            self.assertLess(grown, 4 * 1024, "RSS grew %d KiB" % grown)

    def test_client_that_never_reads(self):
        """Its echoes pile up until the server stops reading it (output
        backpressure): its sends stall, the server's memory stays bounded,
        and the prober is served all along."""
        rss0 = self.server.rss_kib()
        with TlsPeer(self.server.port, rcvbuf=4096) as p:
            p.handshake()
            chunk = b"x" * 65536
            p.timeout = H.t(2)
            sent = 0
            with self.assertRaises((socket.timeout, OSError)):
                while sent < (256 << 20):
                    p.send_frame(2, chunk)
                    sent += len(chunk)
            self.assertLess(sent, 64 << 20)
            if not U.is_sanitized(self.server.path) and not H.VALGRIND:
                grown = self.server.rss_kib() - rss0
                self.assertLess(grown, 24 * 1024, "RSS grew %d KiB" % grown)
            p.rst()


if __name__ == "__main__":
    unittest.main(verbosity=2)
