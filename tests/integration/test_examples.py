"""test_examples.py - the README's examples, so that none of them can rot.

Each program of demo/examples/ is run as built in BUILD/examples/ (BUILD
from the environment, default "build") on port 0; the port is read from its
"listening on port N" line on stderr. It is driven with python3-websockets
10.x, stopped by PID with SIGTERM and must exit 0. WS_TEST_VALGRIND=1 runs
each under valgrind (errors or leaks fail) with every timeout scaled up.

Run from the repository root: /usr/bin/python3 tests/integration/test_examples.py
"""

import asyncio
import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402

import websockets  # noqa: E402
import websockets.client  # noqa: E402

UPLOAD = 20 * 1024 * 1024  # 20 times upload_to_file's max_message_bytes
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def binary(name):
    path = os.path.join(os.environ.get("BUILD", "build"), "examples", name)
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(ROOT, path)  # not run from the repository root
    return path


class Example:
    """One example process: started on port 0, stopped by PID."""

    def __init__(self, name, *args, stdin=subprocess.DEVNULL):
        self.name = name
        self.cmd = [binary(name)] + list(args) + ["0"]
        if H.VALGRIND:
            self.cmd = H.VALGRIND_CMD + self.cmd
        self.stdin = stdin
        self.proc = None
        self.port = None
        self.out, self.err = [], []
        self._threads = []

    def start(self):
        if not os.access(binary(self.name), os.X_OK):
            raise RuntimeError("%s is missing: run make first"
                               % binary(self.name))
        self.proc = subprocess.Popen(self.cmd, stdin=self.stdin,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._threads = [self._drain(self.proc.stdout, self.out),
                         self._drain(self.proc.stderr, self.err)]
        banner = re.compile(r"listening on port (\d+)$")
        line = self.wait_line(self.err, banner, H.t(10))
        if line is None:
            self._kill()
            raise RuntimeError("%s did not start: %s" % (self.name,
                                                         self.diag()))
        self.port = int(banner.search(line).group(1))
        return self

    @staticmethod
    def _drain(pipe, lines):
        def run():
            for raw in iter(pipe.readline, b""):
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            pipe.close()
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    def wait_line(self, lines, pattern, timeout):
        """The first line matching pattern, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                if pattern.search(line):
                    return line
            if self.proc.poll() is not None and not self._reading():
                return None
            time.sleep(0.02)
        return None

    def _reading(self):
        return any(th.is_alive() for th in self._threads)

    def diag(self):
        return "rc=%r stdout=%r stderr=%r" % (
            self.proc.poll() if self.proc else None, self.out[-5:],
            self.err[-20:])

    def _kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=H.t(10))
        for th in self._threads:
            th.join(timeout=5)

    @property
    def uri(self):
        return "ws://127.0.0.1:%d/" % self.port

    def wait_exit(self, timeout):
        """Wait for an exit the program chose; assert it was 0."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError("%s did not exit: %s"
                                 % (self.name, self.diag()))
        self._check(self.proc.returncode)

    def stop(self):
        """SIGTERM by PID; SIGKILL after a timeout. Assert exit status 0."""
        if self.proc.poll() is not None:
            self._kill()
            raise AssertionError("%s exited before it was stopped: %s"
                                 % (self.name, self.diag()))
        os.kill(self.proc.pid, signal.SIGTERM)
        self.wait_exit(H.t(10))

    def _check(self, rc):
        for th in self._threads:
            th.join(timeout=5)
        if rc == 99 and H.VALGRIND:
            raise AssertionError("valgrind: " + self.diag())
        if rc != 0:
            raise AssertionError("%s exit status %d: %s"
                                 % (self.name, rc, self.diag()))


def connect(example, **kw):
    opts = dict(open_timeout=H.t(10), close_timeout=H.t(10),
                ping_interval=None, compression=None)
    opts.update(kw)
    return websockets.client.connect(example.uri, **opts)


async def recv(ws, timeout=10):
    return await asyncio.wait_for(ws.recv(), H.t(timeout))


class _Base(unittest.TestCase):
    def run_async(self, coro, timeout=60):
        return asyncio.run(asyncio.wait_for(coro, H.t(timeout)))

    def start(self, name, *args, **kw):
        example = Example(name, *args, **kw).start()
        self.addCleanup(self._stop, example)
        return example

    @staticmethod
    def _stop(example):
        if example.proc.returncode is None:
            example.stop()


class EchoTest(_Base):
    def test_round_trip(self):
        echo = self.start("echo")

        async def go():
            async with connect(echo) as ws:
                for message in ["hello", "h\u00e9llo \U0001f600", b"\x00\xff",
                                os.urandom(200000)]:
                    await ws.send(message)
                    self.assertEqual(await recv(ws), message)
                await ws.close()
                self.assertEqual(ws.close_code, 1000)
        self.run_async(go())


class PubsubTest(_Base):
    def test_topics(self):
        ps = self.start("pubsub")

        async def nothing_waiting(ws):
            """No message is queued for ws: a ping's pong comes first."""
            await asyncio.wait_for(await ws.ping(), H.t(10))
            self.assertEqual(len(ws.messages), 0)

        async def go():
            async with connect(ps) as a, connect(ps) as b, \
                    connect(ps) as c:
                for ws, topic in ((a, "news"), (b, "news"), (c, "other")):
                    await ws.send("sub " + topic)
                    # Messages are handled in order: the pong means done.
                    await asyncio.wait_for(await ws.ping(), H.t(10))
                await a.send("pub news hello ✓")
                self.assertEqual(await recv(b), "news hello ✓")
                for ws in (a, c):  # not the sender, not another topic
                    await nothing_waiting(ws)
                await c.send("pub news from outside")
                self.assertEqual(await recv(a), "news from outside")
                self.assertEqual(await recv(b), "news from outside")
                await b.send("unsub news")
                await asyncio.wait_for(await b.ping(), H.t(10))
                await a.send("pub news only me")
                await nothing_waiting(b)
                await c.send("pub news once more")
                self.assertEqual(await recv(a), "news once more")
                await nothing_waiting(b)
        self.run_async(go())


class WorkerBroadcastTest(_Base):
    async def collect(self, ws, ticks, welcomes, until):
        """Read until until() holds; ticks and welcomes fill up."""
        while not until():
            msg = await recv(ws, 5)
            if msg.startswith("tick "):
                ticks.append(int(msg[5:]))
            else:
                self.assertRegex(msg, r"^welcome, client \d+$")
                welcomes.append(msg)

    def test_ticks_and_private_welcome(self):
        server = self.start("worker_broadcast")

        async def go():
            async with connect(server) as a:
                a_ticks, a_welcome = [], []
                await self.collect(a, a_ticks, a_welcome,
                                   lambda: len(a_ticks) >= 3 and a_welcome)
                self.assertEqual(a_ticks, sorted(a_ticks))
                # The newest client is welcomed; the older one is not.
                async with connect(server) as b:
                    b_ticks, b_welcome = [], []
                    await self.collect(b, b_ticks, b_welcome,
                                       lambda: len(b_ticks) >= 3 and
                                       b_welcome)
                    self.assertNotEqual(a_welcome[0], b_welcome[0])
                    last = b_ticks[-1]
                    await self.collect(a, a_ticks, a_welcome,
                                       lambda: a_ticks[-1] >= last)
                    self.assertEqual(len(a_welcome), 1, a_welcome)
                    self.assertEqual(len(b_welcome), 1, b_welcome)
                    await b.close()
                await a.close()
        self.run_async(go())


class UploadToFileTest(_Base):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="ws-upload-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.server = self.start("upload_to_file", self.dir)

    def upload(self, message):
        data = message if isinstance(message, bytes) else b"".join(message)

        async def go():
            async with connect(self.server) as ws:
                await ws.send(message)
                reply = await recv(ws, 60)
                await ws.close()
                return reply
        reply = self.run_async(go(), 120)
        m = re.fullmatch(r"stored (\d+) bytes in (upload-\d+\.bin)", reply)
        self.assertIsNotNone(m, reply)
        self.assertEqual(int(m.group(1)), len(data))
        with open(os.path.join(self.dir, m.group(2)), "rb") as f:
            stored = f.read()
        self.assertEqual(len(stored), len(data))
        self.assertEqual(hashlib.sha256(stored).digest(),
                         hashlib.sha256(data).digest())
        return m.group(2)

    def test_fragmented_and_one_frame(self):
        data = os.urandom(UPLOAD)
        step = 256 * 1024  # 80 fragments of 256 KiB
        first = self.upload([data[i:i + step]
                             for i in range(0, len(data), step)])
        second = self.upload(data[::-1])  # one 20 MiB frame
        self.assertNotEqual(first, second)  # a file per connection

    def test_empty_message(self):
        self.upload(b"")


class SelectEmbedTest(_Base):
    def test_echo_stdin_and_own_timer(self):
        server = self.start("select_embed", stdin=subprocess.PIPE)

        async def go():
            async with connect(server) as ws:
                await ws.send("ping through select()")
                self.assertEqual(await recv(ws), "ping through select()")
                # Its own descriptor: stdin goes to every client.
                server.proc.stdin.write(b"typed on stdin\n")
                server.proc.stdin.flush()
                self.assertEqual(await recv(ws), "typed on stdin\n")
                await ws.close()
        self.run_async(go())
        # Its own timer: "timer N" lines on stdout.
        for n in (1, 2):
            self.assertIsNotNone(
                server.wait_line(server.out, re.compile("^timer %d$" % n),
                                 H.t(10)), server.diag())
        server.stop()
        server.proc.stdin.close()

    def test_end_of_input_stops_it(self):
        server = self.start("select_embed", stdin=subprocess.PIPE)
        server.proc.stdin.close()
        server.wait_exit(H.t(10))


class HttpApiTest(_Base):
    """http_api: bodies read by on_http (http.client, raw sockets, curl)
    and what on_upgrade puts in its answer (python-websockets)."""

    def ws(self, api, target, **kw):
        opts = dict(open_timeout=H.t(10), close_timeout=H.t(10),
                    ping_interval=None, compression=None)
        opts.update(kw)
        return websockets.client.connect(
            "ws://127.0.0.1:%d%s" % (api.port, target), **opts)

    def test_post_bodies_and_keep_alive(self):
        api = self.start("http_api")
        conn = http.client.HTTPConnection("127.0.0.1", api.port,
                                          timeout=H.t(10))
        conn.request("POST", "/api/echo", body=b"hello api",
                     headers={"Content-Type": "text/plain"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertEqual(r.read(), b'{"bytes":9,"body":"hello api"}\n')
        # The same connection: a chunked body (RFC 7230 §4.1).
        conn.request("POST", "/api/echo", body=iter([b"chu", b"nked"]),
                     encode_chunked=True)
        r = conn.getresponse()
        self.assertEqual(r.read(), b'{"bytes":7,"body":"chunked"}\n')
        # Over max_body_bytes (64 KiB): 413, and the connection closes.
        conn.request("POST", "/api/echo", body=b"x" * (64 * 1024 + 1))
        r = conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(r.getheader("Connection"), "close")
        conn.close()

    def raw(self, api, request):
        s = socket.create_connection(("127.0.0.1", api.port),
                                     timeout=H.t(10))
        self.addCleanup(s.close)
        s.sendall(request)
        return s

    def test_expect_100_continue(self):
        api = self.start("http_api")
        s = self.raw(api, b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
                          b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"ok")
        self.assertIn(b'{"bytes":2,"body":"ok"}', s.recv(1000))
        # Too large: the final status at once, before any body.
        s = self.raw(api, b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
                          b"Expect: 100-continue\r\n"
                          b"Content-Length: 1000000\r\n\r\n")
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 413 "))
        if shutil.which("curl"):
            # curl waits up to a second for a 100 before it sends.
            t0 = time.monotonic()
            out = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", "Expect: 100-continue", "--data-binary", "@-",
                 "http://127.0.0.1:%d/api/echo" % api.port],
                input=b"y" * 200000, capture_output=True, timeout=H.t(10))
            self.assertEqual(out.stdout, b"413")
            self.assertLess(time.monotonic() - t0, H.t(0.9))

    def test_upgrade_answers(self):
        api = self.start("http_api")

        async def go():
            with self.assertRaises(
                    websockets.exceptions.InvalidStatusCode) as cm:
                async with self.ws(api, "/ws"):
                    pass
            self.assertEqual(cm.exception.status_code, 401)
            self.assertEqual(cm.exception.headers["WWW-Authenticate"],
                             'Bearer realm="ws"')
            async with self.ws(api, "/ws?token=t1&proto=b.v1",
                               subprotocols=["a.v1", "b.v1"]) as ws:
                self.assertEqual(ws.response_headers["Set-Cookie"],
                                 "token=t1; HttpOnly")
                self.assertEqual(ws.subprotocol, "b.v1")
                await ws.send("hi")
                self.assertEqual(await recv(ws), "hi")
            # With the cookie: no new one. A pick the client did not
            # offer is refused, so no subprotocol is spoken.
            async with self.ws(api, "/ws?proto=zz", subprotocols=["a.v1"],
                               extra_headers={"Cookie": "token=t1"}) as ws:
                self.assertNotIn("Set-Cookie", ws.response_headers)
                self.assertIsNone(ws.subprotocol)
        self.run_async(go())


class _EmbedTests:
    """Mixed into a _Base for each example that runs the server per
    descriptor inside a loop of its own (ws_server_socket_callback()),
    beside a descriptor and a timer of the application's; NAME is the
    example."""
    NAME = None

    def test_echo_stdin_and_own_timer(self):
        """Echo (a 600 KB message too, which the socket buffers cannot
        take at once, so writability is asked for and dropped), stdin to
        every client (a broadcast from the application's own code, which
        must leave without waiting for a server event), and the
        application's own timer."""
        server = self.start(self.NAME, stdin=subprocess.PIPE)
        big = os.urandom(600 * 1000)

        async def go():
            async with connect(server) as a, connect(server) as b:
                await a.send("ping through %s" % self.NAME)
                self.assertEqual(await recv(a), "ping through %s" % self.NAME)
                await b.send(big)
                self.assertEqual(await recv(b), big)
                for i in range(3):
                    server.proc.stdin.write(b"typed %d\n" % i)
                    server.proc.stdin.flush()
                    for ws in (a, b):
                        self.assertEqual(await recv(ws), "typed %d\n" % i)
                await a.close()
                self.assertEqual(a.close_code, 1000)
        self.run_async(go())
        for n in (1, 2):
            self.assertIsNotNone(
                server.wait_line(server.out, re.compile("^timer %d$" % n),
                                 H.t(10)), server.diag())
        server.stop()
        server.proc.stdin.close()

    def test_many_clients(self):
        """50 clients at once, 20 messages each, every echo checked."""
        server = self.start(self.NAME, stdin=subprocess.PIPE)

        async def client(n):
            async with connect(server) as ws:
                for i in range(20):
                    m = "c%d m%d " % (n, i) * (i + 1)
                    await ws.send(m)
                    self.assertEqual(await recv(ws), m)
        async def go():
            await asyncio.gather(*(client(n) for n in range(50)))
        self.run_async(go())
        server.stop()
        server.proc.stdin.close()

    def test_end_of_input_stops_it(self):
        server = self.start(self.NAME, stdin=subprocess.PIPE)
        server.proc.stdin.close()
        server.wait_exit(H.t(10))


class EpollEmbedTest(_EmbedTests, _Base):
    NAME = "epoll_embed"


class LibeventEmbedTest(_EmbedTests, _Base):
    NAME = "libevent_embed"

    def test_server_timer_through_deadline_callback(self):
        """The server's own timers run although libevent's loop never
        asks for a timeout: a request left unfinished is closed after
        handshake_timeout_ms (10 s by default), through the timer event
        the deadline callback arms."""
        server = self.start(self.NAME, stdin=subprocess.PIPE)
        with socket.create_connection(("127.0.0.1", server.port),
                                      timeout=H.t(30)) as sock:
            begun = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            while sock.recv(4096):
                pass
            took = time.monotonic() - begun
        self.assertGreater(took, 9)
        self.assertLess(took, H.t(20))
        server.stop()


class ReadmeTest(unittest.TestCase):
    def test_readme_embeds_each_example(self):
        """README.md shows each example verbatim, in a ```c block."""
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        examples = os.path.join(ROOT, "demo", "examples")
        for name in sorted(os.listdir(examples)):
            if name.endswith(".c"):
                with open(os.path.join(examples, name),
                          encoding="utf-8") as f:
                    code = f.read()
                if "```c\n" + code + "```" not in readme:
                    self.fail("README.md does not show demo/examples/%s "
                              "as it is" % name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
