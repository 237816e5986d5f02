"""test_echo.py - ws_echo against a strict client (python3-websockets 10.x).

Run from the repository root: /usr/bin/python3 tests/integration/test_echo.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1 to run the server
under valgrind, WS_ECHO_EMBED=epoll to run every ws_echo here through the
per-descriptor embedding (ws_echo --embed epoll).
"""

import asyncio
import subprocess
import signal
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402

import websockets  # noqa: E402
import websockets.client  # noqa: E402

MAX_MESSAGE = 16 * 1024 * 1024  # ws_echo's default max_message_bytes
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20, MAX_MESSAGE]


def connect(server, **kw):
    opts = dict(max_size=MAX_MESSAGE + 1024, open_timeout=H.t(10),
                close_timeout=H.t(10), ping_interval=None,
                compression=None)
    opts.update(kw)
    return websockets.client.connect(server.uri, **opts)


def text_of(n, seed=0):
    """A str of exactly n UTF-8 bytes, mostly ASCII with a multibyte tail."""
    if n < 8:
        return ("abcdefg"[seed % 7:] + "abcdefg")[:n]
    tail = "\u00e9\u20ac\U0001f600"  # 2 + 3 + 4 bytes
    head = n - len(tail.encode("utf-8"))
    base = "".join(chr(0x21 + (i + seed) % 90) for i in range(997))
    return (base * (head // len(base) + 1))[:head] + tail


def binary_of(n, seed=0):
    if n <= 4096:
        return bytes((i * 31 + seed) & 0xFF for i in range(n))
    block = os.urandom(4096)
    return (block * (n // 4096 + 1))[:n]


class _Base(H.EchoServerTest):
    def run_async(self, coro, timeout=30):
        return asyncio.run(asyncio.wait_for(coro, H.t(timeout)))

    def setUp(self):
        self.assertTrue(self.server.alive(), "ws_echo is not running")

    def tearDown(self):
        self.assertTrue(self.server.alive(), "ws_echo died during the test")

    async def roundtrip(self, message, **kw):
        async with connect(self.server, **kw) as ws:
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), H.t(30))
            await ws.close()
            return echo, ws.close_code


class EchoTest(_Base):
    """Echo over 127.0.0.1."""

    def check_echo(self, message):
        echo, code = self.run_async(self.roundtrip(message), timeout=60)
        self.assertIs(type(echo), type(message), "message type changed")
        self.assertEqual(len(echo), len(message))
        self.assertTrue(echo == message, "payload differs")
        self.assertEqual(code, 1000)

    def test_utf8_multibyte(self):
        """RFC 6455 §5.6: a text message with 2-, 3- and 4-byte UTF-8
        sequences (and U+FFFF/U+10FFFF edges) comes back unchanged."""
        self.check_echo("\u03ba\u1f79\u03c3\u03bc\u03b5 \u00e9\u20ac "
                        "\U0001f600 \uffff \U0010ffff \u0000 end")

    def test_fragmented_text(self):
        """RFC 6455 §5.4: a text message sent in 5 fragments (one empty,
        one cutting no character) comes back as one whole message."""
        parts = ["Hel", "", "lo, \u00e9\u20ac", "\U0001f600", " end"]

        async def go():
            async with connect(self.server) as ws:
                await ws.send(iter(parts))
                echo = await asyncio.wait_for(ws.recv(), H.t(10))
                await ws.close()
                return echo
        self.assertEqual(self.run_async(go()), "".join(parts))

    def test_fragmented_binary(self):
        """RFC 6455 §5.4: a 200 KiB binary message sent in 50 fragments
        comes back as one whole message."""
        data = binary_of(200 * 1024)
        parts = [data[i:i + 4096] for i in range(0, len(data), 4096)]

        async def go():
            async with connect(self.server) as ws:
                await ws.send(iter(parts))
                echo = await asyncio.wait_for(ws.recv(), H.t(10))
                await ws.close()
                return echo
        self.assertEqual(self.run_async(go()), data)

    def test_fragmented_async_iterable(self):
        """RFC 6455 §5.4: fragments produced by an async iterator (with
        pauses between them) are reassembled by the server."""
        async def gen():
            for p in ("frag-1 ", "frag-2 ", "frag-3"):
                await asyncio.sleep(0.05)
                yield p

        async def go():
            async with connect(self.server) as ws:
                await ws.send(gen())
                echo = await asyncio.wait_for(ws.recv(), H.t(10))
                await ws.close()
                return echo
        self.assertEqual(self.run_async(go()), "frag-1 frag-2 frag-3")

    def test_ping_pong_payload(self):
        """RFC 6455 §5.5.2/§5.5.3: a ping with payload gets a pong with
        the same payload (websockets matches pong to ping by payload)."""
        async def go():
            async with connect(self.server) as ws:
                for payload in (b"ping-1", b"\x00\xff" * 62 + b"x", b""):
                    waiter = await ws.ping(payload)
                    await asyncio.wait_for(waiter, H.t(5))
                # The connection still echoes after the pings.
                await ws.send("after ping")
                echo = await asyncio.wait_for(ws.recv(), H.t(5))
                await ws.close()
                return echo
        self.assertEqual(self.run_async(go()), "after ping")

    def test_several_messages_in_order(self):
        """RFC 6455 §6.1: messages on one connection are echoed in order,
        text and binary interleaved, each with its own type."""
        msgs = []
        for i in range(50):
            msgs.append("msg %d \u00e9" % i if i % 2 else binary_of(i * 7, i))

        async def go():
            async with connect(self.server) as ws:
                for m in msgs:
                    await ws.send(m)
                got = [await asyncio.wait_for(ws.recv(), H.t(5))
                       for _ in msgs]
                await ws.close()
                return got
        self.assertEqual(self.run_async(go()), msgs)

    def test_compression_offer_declined(self):
        """RFC 7692 §5: ws_echo --no-deflate declines the client's
        permessage-deflate offer (no Sec-WebSocket-Extensions in the 101)
        and echo works uncompressed."""
        server = H.EchoServer(self.family)
        server.extra = ["--no-deflate"]
        server.start()

        async def go():
            async with connect(server, compression="deflate") as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions")
                await ws.send("plain")
                echo = await asyncio.wait_for(ws.recv(), H.t(5))
                await ws.close()
                return ext, echo
        try:
            ext, echo = self.run_async(go())
        finally:
            server.stop()
        self.assertIsNone(ext)
        self.assertEqual(echo, "plain")

    def test_concurrent_clients(self):
        """RFC 6455 §5.1/§6: 100 concurrent clients, 20 messages each,
        every echo verified (right content, type and order per client)."""
        nclients, nmsgs = 100, 20
        counts = {"ok": 0, "closed_1000": 0}

        async def client(n):
            async with connect(self.server, open_timeout=H.t(30)) as ws:
                for i in range(nmsgs):
                    m = ("c%d m%d \u20ac" % (n, i) * (i + 1) if i % 2 == 0
                         else binary_of(i * 100 + n, n))
                    await ws.send(m)
                    echo = await asyncio.wait_for(ws.recv(), H.t(20))
                    self.assertEqual(echo, m)
                    counts["ok"] += 1
                await ws.close()
                if ws.close_code == 1000:
                    counts["closed_1000"] += 1

        async def go():
            await asyncio.gather(*(client(n) for n in range(nclients)))
        self.run_async(go(), timeout=60)
        self.assertEqual(counts["ok"], nclients * nmsgs)
        self.assertEqual(counts["closed_1000"], nclients)


def _add_size_tests():
    for n in SIZES:
        def text_test(self, n=n):
            self.check_echo(text_of(n, n))
        text_test.__doc__ = ("RFC 6455 §5.2/§5.6: a %d-byte text message is "
                             "echoed as text." % n)
        setattr(EchoTest, "test_text_%08d" % n, text_test)

        def bin_test(self, n=n):
            self.check_echo(binary_of(n, n))
        bin_test.__doc__ = ("RFC 6455 §5.2/§5.6: a %d-byte binary message "
                            "is echoed as binary." % n)
        setattr(EchoTest, "test_binary_%08d" % n, bin_test)

    for code in (1000, 1001, 3000, 4999):
        def close_test(self, code=code):
            async def go():
                async with connect(self.server) as ws:
                    await ws.send("before close")
                    self.assertEqual(
                        await asyncio.wait_for(ws.recv(), H.t(5)),
                        "before close")
                    await ws.close(code, "reason \u00e9 %d" % code)
                    return ws.close_code
            self.assertEqual(self.run_async(go()), code)
        close_test.__doc__ = ("RFC 6455 §5.5.1/§7.4: a client close %d with "
                              "a reason is answered with the same code."
                              % code)
        setattr(EchoTest, "test_close_code_%d" % code, close_test)


_add_size_tests()


class ReusePortTest(unittest.TestCase):
    """cfg.reuse_port: two ws_echo processes listen on one port, the kernel
    spreads the connections over both, and each echoes its own; without
    it the second cannot bind."""

    def test_two_processes_one_port(self):
        port = H.free_port()
        procs = []

        def start(*flags):
            p = subprocess.Popen(
                [H.echo_binary(), "--port", str(port), "--verbose"] +
                H.embed_flags() + list(flags), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            procs.append(p)
            return p
        try:
            a = start("--reuse-port")
            self.assertIn("listening", a.stdout.readline())
            b = start("--reuse-port")
            self.assertIn("listening", b.stdout.readline())
            lone = subprocess.run([H.echo_binary(), "--port", str(port)] +
                                  H.embed_flags(),
                                  capture_output=True, text=True,
                                  timeout=H.t(10))
            self.assertEqual(lone.returncode, 1)
            self.assertIn("in use", lone.stderr)

            async def go():
                for i in range(60):
                    async with connect(H.EchoServerAt(port)) as ws:
                        await ws.send("n%d" % i)
                        self.assertEqual(await ws.recv(), "n%d" % i)
            asyncio.run(asyncio.wait_for(go(), H.t(60)))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            outs = [p.communicate(timeout=H.t(10))[0] for p in procs]
        opened = [o.count("open ") for o in outs]
        self.assertEqual(sum(opened), 60)
        self.assertTrue(all(n > 0 for n in opened), opened)  # both served
        self.assertEqual([p.returncode for p in procs], [0, 0])


class WorkersTest(unittest.TestCase):
    """ws_echo --workers 2: two processes on one port; connections held
    open spread over both (their descriptors, from /proc); a worker
    killed is started again and the port keeps serving; SIGTERM stops
    them all."""

    def test_workers(self):
        port = H.free_port()
        p = subprocess.Popen(
            [H.echo_binary(), "--port", str(port), "--workers", "2"] +
            H.embed_flags(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(2):
                self.assertIn("listening", p.stdout.readline())

            def children():
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                    return [int(x) for x in f.read().split()]

            def fds(pid):
                return len(os.listdir("/proc/%d/fd" % pid))
            kids = children()
            self.assertEqual(len(kids), 2)
            base = {k: fds(k) for k in kids}

            async def hold(n):
                socks = [await connect(H.EchoServerAt(port))
                         for _ in range(n)]
                for i, ws in enumerate(socks):
                    await ws.send("w%d" % i)
                    self.assertEqual(await ws.recv(), "w%d" % i)
                grown = {k: fds(k) - base[k] for k in kids}
                for ws in socks:
                    await ws.close()
                return grown
            grown = asyncio.run(asyncio.wait_for(hold(40), H.t(30)))
            self.assertEqual(sum(grown.values()), 40)
            self.assertTrue(all(g > 0 for g in grown.values()), grown)
            os.kill(kids[0], signal.SIGKILL)
            self.assertIn("listening", p.stdout.readline())  # its successor
            self.assertEqual(len(children()), 2)

            async def once():
                for i in range(10):
                    async with connect(H.EchoServerAt(port)) as ws:
                        await ws.send("after")
                        self.assertEqual(await ws.recv(), "after")
            asyncio.run(asyncio.wait_for(once(), H.t(30)))
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=H.t(10))
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("died of signal 9", err)


class EchoIPv6Test(_Base):
    """The same round trips over ::1."""
    family = socket.AF_INET6

    def test_roundtrip_ipv6(self):
        """RFC 6455 §4/§5: handshake, text and binary echo, ping and close
        over IPv6 loopback."""
        async def go():
            async with connect(self.server) as ws:
                await ws.send("hello over ::1 \u20ac")
                t1 = await asyncio.wait_for(ws.recv(), H.t(5))
                await ws.send(b"\x00\x01\xff" * 50000)
                b1 = await asyncio.wait_for(ws.recv(), H.t(5))
                await asyncio.wait_for(await ws.ping(b"v6"), H.t(5))
                await ws.close(1000, "bye")
                return t1, b1, ws.close_code
        t1, b1, code = self.run_async(go())
        self.assertEqual(t1, "hello over ::1 \u20ac")
        self.assertEqual(b1, b"\x00\x01\xff" * 50000)
        self.assertEqual(code, 1000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
