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

    def wait_subscribed(self, channel, count):
        """Until count instances subscribe to channel: before that, what
        is published there may not reach them all."""
        want = b":%d\r\n" % count
        deadline = time.monotonic() + H.t(10)
        while not self.command("PUBSUB", "NUMSUB", channel).endswith(want):
            if time.monotonic() > deadline:
                raise AssertionError("%s: not %d subscribers" % (channel,
                                                                 count))
            time.sleep(0.02)

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
    """ws_chat --redis (and maybe --workers, --reuse-port on a given
    port, a short --presence-ttl), on a free port unless given one."""

    def __init__(self, redis, port=None, workers=1, ttl=None, reuse=False):
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
        if ttl:
            self.extra += ["--presence-ttl", str(ttl)]
        if reuse:
            self.extra.append("--reuse-port")

    def command(self):
        if self.fixed_port:
            self.port = self.fixed_port
        return super().command()

    def start(self, attempts=5):
        super().start(attempts)
        return self

    def kill(self):
        """SIGKILL: the instance dies without a word to anyone."""
        self._kill()
        self.proc = None

    def wait_up(self, count=1):
        deadline = time.monotonic() + H.t(10)
        while sum(l.startswith("redis ") and l.endswith(" up")
                  for l in self.stdout_lines) < count:
            if time.monotonic() > deadline:
                raise AssertionError("redis never up: %r"
                                     % self.stdout_lines[-5:])
            time.sleep(0.02)
        return self


class Peer:
    """One python websockets chat client."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def at(cls, port, nick=None, room=None):
        import websockets.client as wc
        # No limit on unread messages, so that a close is always read.
        p = cls(await wc.connect("ws://127.0.0.1:%d/chat" % port,
                                 max_queue=None))
        if nick:
            p.welcome = await p.join(nick, room)
        return p

    async def send(self, **msg):
        import json
        await self.ws.send(json.dumps(msg))

    async def expect(self, type_, timeout=10):
        """The next event of type_, skipping others."""
        import asyncio
        import json
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(),
                                                  H.t(timeout)))
            if type_ is None or m["type"] == type_:
                return m

    async def expect_any(self, types, timeout=10):
        """The next event of one of types."""
        while True:
            m = await self.expect(None, timeout)
            if m["type"] in types:
                return m

    async def join(self, nick, room=None):
        await self.send(type="join", nick=nick, room=room)
        m = await self.expect("welcome")
        assert m["nick"] == nick, m
        return m

    async def error(self):
        return (await self.expect("error"))["code"]

    async def say(self, text):
        await self.send(type="say", text=text)

    async def close(self):
        await self.ws.close()


def run(coro, seconds=60):
    import asyncio
    asyncio.run(asyncio.wait_for(coro, H.t(seconds)))


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
        return c.wait_up()

    def test_presence_history_and_nicks_span_three_instances(self):
        one, two, three = (self.chat() for _ in range(3))

        async def go():
            ann = await Peer.at(one.port, "ann", "r")
            self.assertEqual(ann.welcome["online"], ["ann"])
            await ann.say("m1")
            await ann.say("m2")
            await ann.expect("message")
            await ann.expect("message")
            bo = await Peer.at(two.port, "bo", "r")
            self.assertEqual([m["text"] for m in bo.welcome["history"]],
                             ["m1", "m2"])
            self.assertEqual(bo.welcome["online"], ["ann", "bo"])
            self.assertEqual(bo.welcome["online_count"], 2)
            self.assertEqual((await ann.expect("join"))["nick"], "bo")
            # Nicks are unique on every instance, ignoring ASCII case.
            cy = await Peer.at(three.port)
            await cy.send(type="join", nick="BO", room="other")
            self.assertEqual(await cy.error(), "nick_taken")
            cy.welcome = await cy.join("cy", "r")
            self.assertEqual(cy.welcome["online"], ["ann", "bo", "cy"])
            for p in (ann, bo):
                self.assertEqual((await p.expect("join"))["nick"], "cy")
            self.redis.wait_subscribed("ws:r", 3)
            await bo.say("m3")
            for p in (ann, bo, cy):
                self.assertEqual((await p.expect("message"))["text"], "m3")
            # A switch leaves one room's presence for another's.
            await cy.send(type="switch", room="s")
            w = await cy.expect("welcome")
            self.assertEqual((w["room"], w["online"], w["history"]),
                             ("s", ["cy"], []))
            for p in (ann, bo):
                self.assertEqual((await p.expect("leave"))["nick"], "cy")
            ann2 = await Peer.at(one.port, "ann2", "r")
            self.assertEqual(ann2.welcome["online"], ["ann", "ann2", "bo"])
            self.assertEqual([m["text"] for m in ann2.welcome["history"]],
                             ["m1", "m2", "m3"])
            # A client that leaves frees its nick on every instance.
            await bo.close()
            for p in (ann, ann2):
                self.assertEqual((await p.expect("leave"))["nick"], "bo")
            bo2 = await Peer.at(three.port, "bo", "s")
            self.assertEqual(bo2.welcome["online"], ["bo", "cy"])
            for p in (ann, ann2, cy, bo2):
                await p.close()
        run(go())

    def test_history_is_the_last_50_in_order(self):
        one, two = self.chat(), self.chat()

        async def go():
            # Each one's burst (less its join): 56 messages in all.
            talkers = [await Peer.at(one.port, "t%d" % i) for i in range(7)]
            for i in range(8):
                for j, t in enumerate(talkers):
                    await t.say("%d.%d" % (j, i))
            seen = [(await talkers[0].expect("message"))["text"]
                    for _ in range(56)]
            late = await Peer.at(two.port, "late")
            texts = [m["text"] for m in late.welcome["history"]]
            # The last 50 in the order the room saw them, which keeps
            # each sender's order.
            self.assertEqual(texts, seen[-50:])
            for j in range(7):
                mine = [t for t in seen if t.startswith("%d." % j)]
                self.assertEqual(mine, ["%d.%d" % (j, i) for i in range(8)])
            for p in talkers + [late]:
                await p.close()
        run(go())

    def test_dead_instance_leaves_the_lists_in_time(self):
        ttl = 2
        one, two = self.chat(ttl=ttl), self.chat(ttl=ttl)

        async def go():
            ann = await Peer.at(one.port, "ann")
            bo = await Peer.at(two.port, "bo")
            self.assertEqual((await ann.expect("join"))["nick"], "bo")
            two.kill()
            t0 = time.monotonic()
            self.assertEqual((await ann.expect("leave", 4 * ttl))["nick"],
                             "bo")
            # Within the TTL and a third (the heartbeat), plus the
            # scheduling of a loaded machine.
            self.assertLess(time.monotonic() - t0, H.t(ttl * 4 / 3 + 1.5))
            # bo's page reconnects to the instance that is left, and its
            # nick, which expired with its presence, is free again.
            bo2 = await Peer.at(one.port, "bo")
            self.assertEqual(bo2.welcome["online"], ["ann", "bo"])
            self.assertEqual((await ann.expect("join"))["nick"], "bo")
            await ann.close()
            await bo2.close()
            del bo
        run(go())

    def test_chat_survives_redis_outage(self):
        one, two = self.chat(ttl=3), self.chat(ttl=3)
        port = self.redis.port

        async def go():
            ann = await Peer.at(one.port, "ann")
            bo = await Peer.at(two.port, "bo")
            await ann.expect("join")
            self.redis.stop()
            # Each instance serves its local room throughout: joins
            # (from local state) and messages.
            ann2 = await Peer.at(one.port, "ann2")
            self.assertIn("ann", ann2.welcome["online"])
            await ann.say("while down")
            self.assertEqual((await ann2.expect("message"))["text"],
                             "while down")
            self.redis = Redis(port).start()
            one.wait_up(2)
            two.wait_up(2)
            # Cross-instance chat resumes by itself, once the
            # instances' subscriptions are back; bo hears of ann2, who
            # came while Redis was away, and of no one else again (a
            # restarted Redis lost its entries but told no one).
            self.redis.wait_subscribed("ws:lobby", 2)
            await ann.say("again")
            joins, got = [], None
            while got is None or joins != ["ann2"]:
                m = await bo.expect_any(("join", "message", "leave"))
                self.assertNotEqual(m["type"], "leave", m)
                if m["type"] == "join":
                    joins.append(m["nick"])
                    self.assertEqual(joins, ["ann2"][:len(joins)])
                else:
                    got = m
            self.assertEqual((got["nick"], got["text"]), ("ann", "again"))
            # What one announces next reaches bo before what one
            # publishes after it: no other join came.
            await ann.say("done")
            m = await bo.expect_any(("join", "message"))
            self.assertEqual((m["type"], m.get("text")), ("message", "done"))
            for p in (ann, ann2, bo):
                await p.close()
        run(go())

    def test_stalled_redis_keeps_local_latency(self):
        one, two = self.chat(), self.chat()

        async def go():
            ann = await Peer.at(one.port, "ann")
            bo = await Peer.at(two.port, "bo")
            await ann.expect("join")
            self.redis.wait_subscribed("ws:lobby", 2)
            os.kill(self.redis.proc.pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                ann2 = await Peer.at(one.port, "ann2")  # enters alone
                await ann.say("stalled")
                self.assertEqual((await ann2.expect("message"))["text"],
                                 "stalled")
                self.assertLess(time.monotonic() - t0, 0.5 + U.PROMPT)
            finally:
                os.kill(self.redis.proc.pid, signal.SIGCONT)
            # Once Redis runs again, what waited reaches the others.
            self.assertEqual((await bo.expect("message"))["text"], "stalled")
            for p in (ann, ann2, bo):
                await p.close()
        run(go())

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

    def test_dead_worker_is_restarted(self):
        """A worker that dies is started again by the supervisor, and
        the port keeps serving: a client of the dead one reconnects."""
        port = H.free_port()
        c = Chat(self.redis, port=port, workers=2)
        c.banner = lambda: "ws_chat listening on 127.0.0.1 port %d" % port
        c.start()
        self.addCleanup(c.stop)
        c.wait_up(2)

        def kids():
            with open("/proc/%d/task/%d/children" % (c.proc.pid,
                                                      c.proc.pid)) as f:
                return set(int(x) for x in f.read().split())

        before = kids()
        self.assertEqual(len(before), 2)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        c.wait_up(3)  # the new worker's bridge
        after = kids()
        self.assertEqual(len(after), 2)
        self.assertNotIn(victim, after)

        async def go():
            for i in range(4):  # whichever worker the kernel picks
                p = await Peer.at(port, "n%d" % i)
                self.assertIn("n%d" % i, p.welcome["online"])
                await p.close()
        run(go())


if __name__ == "__main__":
    unittest.main(verbosity=2)
