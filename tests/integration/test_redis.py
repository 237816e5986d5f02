"""test_redis.py - the Redis bridge (ws/redis.h) with a real redis-server
(Debian's, started here on 127.0.0.1 and a free port with persistence off,
stopped by PID): two and three tests/ws_topics instances attached to it
share topics (a message published on one reaches the subscribers of the
others, once, and not back to its own instance twice); an instance
subscribes only to its rooms' channels; Redis stopped mid-chat and
started again: every instance keeps serving its local subscribers,
counts what it could not forward, and cross-instance delivery resumes by
itself; Redis stalled with SIGSTOP: local latency stays low.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_util as U  # noqa: E402
import test_topics as T  # noqa: E402
import wsharness as H  # noqa: E402

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """One redis-server, no persistence, on a free port; by PID."""

    def __init__(self, port=None):
        self.port = port or H.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + H.t(10)
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(("*%d\r\n" % len(args) + "".join(
                "$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
            return s.recv(65536)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=H.t(10))
        self.proc = None


class Bridged(T.TopicServer):
    def __init__(self, redis):
        super().__init__(["--redis", "127.0.0.1:%d" % redis.port])

    def wait_up(self, after=0):
        """The n-th "redis up" line (after the first `after` of them)."""
        deadline = time.monotonic() + H.t(15)
        while time.monotonic() < deadline:
            ups = [l for l in self.stdout_lines if l.startswith("redis up")]
            if len(ups) > after:
                return True
            time.sleep(0.02)
        return False


def settle(clients):
    """Every client's commands so far are done on its server (and its
    subscriptions have had time to reach Redis)."""
    for c in clients:
        c.nothing_more()
    time.sleep(0.2)


@unittest.skipUnless(os.path.exists(REDIS), "redis-server not installed")
class BridgeTest(unittest.TestCase):
    def setUp(self):
        self.redis = Redis().start()
        self.addCleanup(lambda: self.redis.stop())
        self.servers = []
        for _ in range(3):
            s = Bridged(self.redis).start()
            self.addCleanup(self.stop_server, s)
            self.assertTrue(s.wait_up(), s.stdout_lines)
            self.servers.append(s)

    @staticmethod
    def stop_server(s):
        s.stop()
        s.check_clean()

    def clients(self, topic="room"):
        out = []
        for s in self.servers:
            (c,) = T.connect(s.port)
            self.assertEqual(c.ask("sub " + topic), "ok 1")
            out.append(c)
        settle(out)
        return out

    def test_rooms_span_instances(self):
        a, b, c = self.clients()
        a.say("pub room from a")
        self.assertEqual(b.text(), "from a")
        self.assertEqual(c.text(), "from a")
        a.nothing_more()  # not the sender, and not twice on its instance
        (a2,) = T.connect(self.servers[0].port)  # a second on a's instance
        self.assertEqual(a2.ask("sub room"), "ok 1")
        settle([a2])
        c.say("all room to all")
        for p in (a, a2, b, c):
            self.assertEqual(p.text(), "to all")
        for p in (a, a2, b, c):
            p.nothing_more()  # exactly once each
        # Channels exist only for topics with local subscribers.
        chans = self.redis.command("PUBSUB", "CHANNELS", "ws:*")
        self.assertIn(b"ws:room", chans)
        self.assertNotIn(b"ws:other", chans)
        b.say("unsub room")
        self.assertEqual(b.text(), "ok 1")
        settle([b])
        num = self.redis.command("PUBSUB", "NUMSUB", "ws:room")
        self.assertIn(b":2\r\n", num)  # a's and c's instances
        for p in (a, a2, b, c):
            p.close()

    def test_redis_restart(self):
        a, b, c = self.clients()
        port = self.redis.port
        self.redis.stop()
        # Local delivery goes on; cross-instance does not, and is counted.
        (a2,) = T.connect(self.servers[0].port)
        self.assertEqual(a2.ask("sub room"), "ok 1")
        a.say("pub room while down")
        self.assertEqual(a2.text(), "while down")
        self.assertIsNotNone(self.servers[0].wait_line(
            lambda l: l.startswith("redis dropped"), H.t(5)))
        b.nothing_more()
        stats = a.ask("stats").split()
        self.assertGreaterEqual(int(stats[3]), 1)  # dropped
        self.assertEqual(stats[4], "0")  # not up
        # Redis back on the same port: every instance reconnects and
        # subscribes again by itself.
        self.redis = Redis(port).start()
        for s in self.servers:
            self.assertTrue(s.wait_up(after=1), s.stdout_lines[-5:])
        time.sleep(0.3)  # the subscriptions reach Redis
        a.say("pub room after restart")
        for p in (a2, b, c):
            self.assertEqual(p.text(H.t(10)), "after restart")
        for p in (a, a2, b, c):
            p.close()

    def test_stalled_redis_does_not_stall_the_loop(self):
        a, b, c = self.clients()
        (a2,) = T.connect(self.servers[0].port)
        self.assertEqual(a2.ask("sub room"), "ok 1")
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            worst = 0.0
            body = "x" * 20000
            for i in range(300):  # 6 MB towards a Redis that reads nothing
                t0 = time.monotonic()
                a.say("pub room %d %s" % (i, body))
                got = a2.text(H.t(5))
                worst = max(worst, time.monotonic() - t0)
                self.assertTrue(got.startswith("%d " % i))
            self.assertLess(worst, U.PROMPT, "local delivery waited")
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        # Once Redis runs again, what was written reaches the others.
        self.assertTrue(b.text(H.t(10)).startswith("0 "))
        for p in (a, a2, b, c):
            p.close()


class Chat(H.EchoServer):
    """ws_chat --redis (and maybe --workers), on a free port."""

    def __init__(self, redis, port=None, workers=1):
        super().__init__()
        self.name = "ws_chat"
        self.path = U.binary("ws_chat")
        self.fixed_port = port
        self.probe = False
        self.extra = ["--www", os.path.join(T.__file__.rsplit("/", 3)[0],
                                            "www"),
                      "--redis", "127.0.0.1:%d" % redis.port]
        if workers > 1:
            self.extra += ["--workers", str(workers)]

    def start(self, attempts=5):
        super().start(attempts)
        return self


@unittest.skipUnless(os.path.exists(REDIS), "redis-server not installed")
class ChatAcrossInstances(unittest.TestCase):
    """Members of one room on different ws_chat instances (or workers)
    see each other's messages, joins and leaves."""

    def setUp(self):
        self.redis = Redis().start()
        self.addCleanup(lambda: self.redis.stop())

    def chat(self, **kw):
        c = Chat(self.redis, **kw).start()
        self.addCleanup(c.stop)
        deadline = time.monotonic() + H.t(10)
        while not any("up" in l for l in c.stdout_lines):
            self.assertLess(time.monotonic(), deadline, c.stdout_lines)
            time.sleep(0.02)
        return c

    def run_chat(self, ports, supervisor=None):
        import asyncio
        import json
        import websockets.client as wc

        async def expect(ws, type_):
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), H.t(10)))
                if m["type"] == type_:
                    return m

        def workers():
            with open("/proc/%d/task/%d/children" % (supervisor,
                                                      supervisor)) as f:
                kids = [int(x) for x in f.read().split()]
            return {k: len(os.listdir("/proc/%d/fd" % k)) for k in kids}

        async def on_other_worker(fds_before_a, fds_with_a):
            """A connection the other worker took (the kernel spreads
            them by hash, so try until one lands there)."""
            a_worker = [k for k in fds_with_a
                        if fds_with_a[k] > fds_before_a[k]][0]
            spare = []
            for _ in range(64):
                before = workers()
                ws = await wc.connect("ws://127.0.0.1:%d/chat" % ports[1])
                after = workers()
                if after[a_worker] == before[a_worker]:
                    for w in spare:
                        await w.close()
                    return ws
                spare.append(ws)
            self.fail("the kernel never picked the other worker")

        async def go():
            before = workers() if supervisor else None
            a = await wc.connect("ws://127.0.0.1:%d/chat" % ports[0])
            if supervisor:
                b = await on_other_worker(before, workers())
            else:
                b = await wc.connect("ws://127.0.0.1:%d/chat" % ports[1])
            await a.send(json.dumps({"type": "join", "nick": "ann"}))
            await expect(a, "welcome")
            await asyncio.sleep(0.3)  # ann's instance subscribed in Redis
            await b.send(json.dumps({"type": "join", "nick": "bo"}))
            await expect(b, "welcome")
            self.assertEqual((await expect(a, "join"))["nick"], "bo")
            await asyncio.sleep(0.3)
            await a.send(json.dumps({"type": "say", "text": "hi bo"}))
            m = await expect(b, "message")
            self.assertEqual((m["nick"], m["text"]), ("ann", "hi bo"))
            await b.close()
            self.assertEqual((await expect(a, "leave"))["nick"], "bo")
            await a.close()
        asyncio.run(asyncio.wait_for(go(), H.t(30)))

    def test_two_instances(self):
        one, two = self.chat(), self.chat()
        self.run_chat([one.port, two.port])

    def test_two_workers(self):
        """--workers 2: two processes on one port; the kernel picks the
        worker of each connection, so open clients until both have one,
        then check that a room spans them."""
        port = H.free_port()
        c = Chat(self.redis, workers=2)
        c.port_choice = port
        c.command = lambda: [c.path, "--host", c.host, "--port", str(port)] \
            + c.extra
        c.banner = lambda: "ws_chat listening on 127.0.0.1 port %d" % port
        c.start()
        self.addCleanup(c.stop)
        deadline = time.monotonic() + H.t(10)
        while sum("up" in l for l in c.stdout_lines) < 2:
            self.assertLess(time.monotonic(), deadline, c.stdout_lines)
            time.sleep(0.02)
        self.run_chat([port, port], supervisor=c.proc.pid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
