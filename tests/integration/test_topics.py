"""test_topics.py - publish/subscribe through the public API, against
tests/ws_topics (see its header for the text commands): subscribe,
unsubscribe, listing and the limits; publishing to all subscribers or all
but the sender; closing and unsubscribing from inside the callback that
published; a slow subscriber among fast ones; frames shared, not copied,
across 200 subscribers that do not read (server memory from /proc); 10 000
subscribers (900 with the select backend, which watches at most 1000
descriptors) with every delivery checked; compressed and plain
subscribers side by side; and other threads publishing while connections
come and go (run under TSan by make tsan).
"""

import asyncio
import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_util as U  # noqa: E402
import wsharness as H  # noqa: E402

import websockets.client  # noqa: E402

BACKEND = os.environ.get("BACKEND", "select")


def raise_fd_limit():
    """As many descriptors as allowed, for this process and the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class TopicServer(U.Server):
    def __init__(self, args=()):
        super().__init__("bcast", args)
        self.path = U.binary("tests/ws_topics")
        self.name = "ws_topics"

    def start(self, attempts=5):
        super().start(attempts)
        return self

    def check_clean(self):
        bad = [l for l in self.stderr_lines
               if "ThreadSanitizer" in l or "AddressSanitizer" in l]
        assert not bad, bad


class Client(U.Peer):
    """A raw client that speaks ws_topics' commands."""

    def say(self, text):
        self.send_frame(H.OP_TEXT, text)

    def text(self, timeout=None):
        fin, op, payload = self.recv_frame(timeout)
        assert fin and op == H.OP_TEXT, (fin, op, payload[:40])
        return payload.decode()

    def ask(self, text, timeout=None):
        self.say(text)
        return self.text(timeout)

    def nothing_more(self):
        """No message waits for us: a ping's pong comes first."""
        self.send_frame(H.OP_PING, b"probe")
        _, op, payload = self.recv_frame()
        assert (op, payload) == (H.OP_PONG, b"probe"), (op, payload[:40])


def connect(port, n=1, **kw):
    return [Client(port, **kw).handshake() for _ in range(n)]


class TopicsBasics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TopicServer(["--max-topics", 3,
                                  "--max-topic-bytes", 16]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.check_clean()

    def test_subscribe_list_and_limits(self):
        (a,) = connect(self.server.port)
        self.assertEqual(a.ask("sub news"), "ok 1")
        self.assertEqual(a.ask("sub news"), "ok 0")  # already
        self.assertEqual(a.ask("sub News"), "ok 1")  # case-sensitive
        self.assertEqual(a.ask("sub x" * 1), "ok 1")
        self.assertEqual(a.ask("sub fourth"), "err WS_ETOOBIG")
        self.assertEqual(sorted(a.ask("topics").split()[1:]),
                         ["News", "news", "x"])
        self.assertEqual(a.ask("count news"), "count 1")
        self.assertEqual(a.ask("unsub x"), "ok 1")
        self.assertEqual(a.ask("unsub x"), "ok 0")
        self.assertEqual(a.ask("sub " + "t" * 17), "err WS_ETOOBIG")
        self.assertEqual(a.ask("sub " + "t" * 16), "ok 1")
        a.close_handshake()
        (b,) = connect(self.server.port)
        # a left its topics when it closed: they are gone with it.
        self.assertEqual(b.ask("count news"), "count 0")
        b.close_handshake()

    def test_publish_to_others_and_to_all(self):
        a, b, c = connect(self.server.port, 3)
        for p, t in ((a, "room"), (b, "room"), (c, "hall")):
            self.assertEqual(p.ask("sub " + t), "ok 1")
        a.say("pub room hello ✓")
        self.assertEqual(b.text(), "hello ✓")
        a.nothing_more()
        c.nothing_more()
        a.say("all room to everyone")
        self.assertEqual(a.text(), "to everyone")
        self.assertEqual(b.text(), "to everyone")
        c.say("pub room from outside")  # not subscribed itself
        self.assertEqual(a.text(), "from outside")
        self.assertEqual(b.text(), "from outside")
        c.say("pub nobody lost")  # no subscribers: nothing happens
        c.nothing_more()
        b.send_frame(H.OP_BINARY, b"room\x00\x00\xff binary")
        fin, op, payload = a.recv_frame()
        self.assertEqual((op, payload), (H.OP_BINARY, b"\x00\xff binary"))
        for p in (a, b, c):
            p.close_handshake()

    def test_close_and_unsubscribe_inside_the_publishing_callback(self):
        """The callback that publishes then closes the other subscribers
        and leaves the topic: the message still reaches them first."""
        pubs = connect(self.server.port, 5)
        for p in pubs:
            self.assertEqual(p.ask("sub party"), "ok 1")
        sender, others = pubs[0], pubs[1:]
        sender.say("pubclose party last words")
        self.assertEqual(sender.text(), "ok 1")  # it left the topic
        for p in others:
            self.assertEqual(p.text(), "last words")
            self.assertEqual(p.recv_close(), 1000)
            p.close()
        self.assertEqual(sender.ask("count party"), "count 0")
        sender.close_handshake()


class SlowAndPaused(unittest.TestCase):
    def setUp(self):
        self.server = TopicServer().start()

    def tearDown(self):
        self.server.stop()
        self.server.check_clean()

    def test_slow_subscriber_among_fast(self):
        """One subscriber never reads; 20 others get every message, in
        order, while the slow one's queue grows to its limit and it is
        closed with 1008 (or stays, paused); nothing holds the others."""
        self.server.stop()
        self.server = TopicServer(["--max-output", 20 << 20]).start()
        port = self.server.port
        (slow,) = connect(port, rcvbuf=4096)
        fast = connect(port, 20)
        (pub,) = connect(port)
        for p in [slow] + fast:
            self.assertEqual(p.ask("sub feed"), "ok 1")
        body = b"feed\x00" + b"m" * 65536
        t0 = time.monotonic()
        for i in range(400):
            pub.send_frame(H.OP_BINARY, body[:5] + b"%06d" % i + body[11:])
            for p in fast:
                _, op, payload = p.recv_frame(H.t(10))
                self.assertEqual(payload[:6], b"%06d" % i)
        took = time.monotonic() - t0
        # 400 x 64 KiB is 25 MiB for the slow one, past its 20 MiB.
        self.assertTrue(slow.wait_eof(H.t(10)), "slow subscriber not closed")
        self.assertLess(took, H.t(60))
        for p in fast + [pub]:
            p.close_handshake()

    def test_frames_are_shared_not_copied(self):
        """200 subscribers that do not read, 16 messages of 256 KiB:
        copies would hold 800 MiB; shared frames hold 4 MiB (and what the
        kernel takes). Each may hold all 16 under its output cap (the
        default 1 MiB would close it with 1008 once the kernel's buffers
        are full, which this test is not about)."""
        self.server.stop()
        self.server = TopicServer(["--max-output", 8 << 20]).start()
        port = self.server.port
        subs = connect(port, 200, rcvbuf=4096)
        (pub,) = connect(port)
        for p in subs:
            self.assertEqual(p.ask("sub big"), "ok 1")
        rss0 = self.server.rss_kib()
        for i in range(16):
            pub.send_frame(H.OP_BINARY, b"big\x00" + bytes([i]) * (256 << 10))
        pub.nothing_more()  # all 16 published
        grown = self.server.rss_kib() - rss0
        if not H.VALGRIND:
            self.assertLess(grown, 64 << 10, "RSS grew %d KiB" % grown)
        for p in subs:  # now read everything: each frame arrives whole
            for i in range(16):
                _, op, payload = p.recv_frame(H.t(20))
                self.assertEqual(len(payload), 256 << 10)
                self.assertEqual(payload[0], i)
                self.assertEqual(payload[-1], i)
            p.close()
        pub.close_handshake()


class ManySubscribers(unittest.TestCase):
    def test_every_delivery(self):
        hard = raise_fd_limit()
        n = 10000 if BACKEND == "epoll" else 900
        if H.VALGRIND:
            n = min(n, 500)
        if 2 * n + 100 > hard:
            n = (hard - 100) // 2
            print("descriptor limit %d: %d subscribers" % (hard, n))
        server = TopicServer(["--max-connections", n + 50]).start()
        try:
            subs = []
            for i in range(n):
                p = Client(server.port, timeout=H.t(30)).handshake()
                p.say("sub crowd")
                subs.append(p)
            for p in subs:
                self.assertEqual(p.text(), "ok 1")
            (pub,) = connect(server.port)
            self.assertEqual(pub.ask("count crowd"), "count %d" % n)
            msgs = ["message %d to the crowd" % i for i in range(10)]
            t0 = time.monotonic()
            for m in msgs:
                pub.say("pub crowd " + m)
            for p in subs:
                for m in msgs:
                    self.assertEqual(p.text(), m)
            print("%d subscribers x %d messages verified in %.2f s"
                  % (n, len(msgs), time.monotonic() - t0))
            for p in subs:
                p.close()
            pub.close_handshake()
        finally:
            server.stop()
            server.check_clean()


class CompressedSubscribers(unittest.TestCase):
    """Subscribers with and without permessage-deflate get the same text
    (one compressed frame for all that share a compressor); with server
    context takeover each gets its own."""

    def run_mixed(self, flag):
        server = TopicServer([flag]).start()
        try:
            async def go():
                uri = "ws://127.0.0.1:%d/" % server.port
                socks = []
                for i in range(6):
                    socks.append(await websockets.client.connect(
                        uri, compression="deflate" if i % 2 else None))
                for ws in socks:
                    await ws.send("sub mix")
                    self.assertEqual(await ws.recv(), "ok 1")
                text = "compressible text, " * 200
                for k in range(5):
                    await socks[0].send("pub mix %d %s" % (k, text))
                    for ws in socks[1:]:
                        self.assertEqual(await ws.recv(), "%d %s" % (k, text))
                for ws in socks:
                    await ws.close()
            asyncio.run(asyncio.wait_for(go(), H.t(30)))
        finally:
            server.stop()
            server.check_clean()

    def test_no_context(self):
        self.run_mixed("--deflate")

    def test_server_context(self):
        self.run_mixed("--deflate-context")


class PostedPublishWithChurn(unittest.TestCase):
    def test_threads_publish_while_connections_churn(self):
        server = TopicServer(["--post-threads", 2]).start()
        try:
            seen = 0
            for i in range(200):
                (p,) = connect(server.port)
                self.assertEqual(p.ask("sub ticks"), "ok 1")
                last = {}
                for _ in range(3):
                    word, tid, k = p.text(H.t(10)).split()
                    self.assertEqual(word, "tick")
                    self.assertGreater(int(k), last.get(tid, -1))
                    last[tid] = int(k)
                    seen += 1
                if i % 3 == 0:
                    p.rst()
                elif i % 3 == 1:
                    p.close()
                else:
                    p.say("unsub ticks")
                    while True:  # ticks queued before the answer
                        t = p.text(H.t(10))
                        if not t.startswith("tick"):
                            break
                    self.assertEqual(t, "ok 1")
                    p.close_handshake()
            self.assertEqual(seen, 600)
            self.assertTrue(server.alive())
        finally:
            server.stop()
            server.check_clean()


if __name__ == "__main__":
    unittest.main(verbosity=2)
