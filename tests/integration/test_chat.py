"""test_chat.py - the chat demo (build/ws_chat) against real clients.

The JSON protocol with python3-websockets 10.x: joining, chat, presence,
join and leave notices, history, rooms, every refusal and limit (nick
rules, text length, malformed JSON, unknown types, the rate limit with its
1008 close); and the static files over raw HTTP, traversal tricks included.

Run from the repository root: /usr/bin/python3 tests/integration/test_chat.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1 to run the server
under valgrind. Each test starts its own server on a free port and stops it
by PID, asserting a clean exit 0.
"""

import asyncio
import json
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import wsharness as H  # noqa: E402

import websockets  # noqa: E402
import websockets.client  # noqa: E402
import websockets.exceptions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
WWW = os.path.join(ROOT, "www")
HISTORY = 50
TEXT_MAX = 1000


def chat_binary():
    path = os.path.join(os.environ.get("BUILD", "build"), "ws_chat")
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(ROOT, path)
    return path


class ChatServer(H.EchoServer):
    """One ws_chat process on a free 127.0.0.1 port, stopped by PID."""

    def __init__(self):
        super().__init__(socket.AF_INET)
        self.name = "ws_chat"
        self.path = chat_binary()
        self.probe = False

    def command(self):
        return [self.path, "--host", self.host, "--port", str(self.port),
                "--www", WWW]

    @property
    def uri(self):
        return "ws://%s:%d/chat" % (self.host, self.port)


class Client:
    """A chat client: JSON in, JSON out, every wait bounded."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes))
                           else json.dumps(obj))

    async def recv(self, timeout=5):
        return json.loads(await asyncio.wait_for(self.ws.recv(),
                                                 H.t(timeout)))

    async def expect(self, type_, timeout=5, **fields):
        """The next message of type_ (with fields equal); others before it
        are skipped."""
        deadline = time.monotonic() + H.t(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s %r arrived" % (type_, fields))
            msg = await self.recv(left / H.SCALE)
            if msg.get("type") == type_ and all(
                    msg.get(k) == v for k, v in fields.items()):
                return msg

    async def expect_error(self, code):
        msg = await self.recv()
        if msg.get("type") != "error" or msg.get("code") != code:
            raise AssertionError("want error %s, got %r" % (code, msg))
        if not isinstance(msg.get("message"), str) or not msg["message"]:
            raise AssertionError("error without a message: %r" % msg)
        return msg

    async def quiet(self, seconds=0.3):
        """Assert that nothing arrives for a while."""
        try:
            msg = await asyncio.wait_for(self.ws.recv(), H.t(seconds))
        except asyncio.TimeoutError:
            return
        raise AssertionError("unexpected message %r" % msg)

    async def join(self, nick, room=None):
        req = {"type": "join", "nick": nick}
        if room is not None:
            req["room"] = room
        await self.send(req)
        welcome = await self.expect("welcome")
        # Who is online comes once, in the welcome; deltas follow.
        assert welcome["online_count"] == len(welcome["online"]), welcome
        return welcome

    async def say(self, text):
        await self.send({"type": "say", "text": text})

    async def close(self):
        await self.ws.close()


class ChatTest(unittest.IsolatedAsyncioTestCase):
    """Each test has a fresh server; bounded by asyncio.wait_for."""

    def setUp(self):
        self.server = ChatServer().start()
        self.clients = []

    def tearDown(self):
        server, self.server = self.server, None
        server.stop()

    async def asyncTearDown(self):
        for c in self.clients:
            await asyncio.wait_for(c.close(), H.t(10))

    async def client(self, nick=None, room=None):
        # max_queue=None: tests read only what they check, and a full queue
        # would stop websockets from reading the server's close frame.
        ws = await websockets.client.connect(
            self.server.uri, open_timeout=H.t(10), close_timeout=H.t(10),
            ping_interval=None, compression=None, max_size=1 << 22,
            max_queue=None)
        c = Client(ws)
        self.clients.append(c)
        if nick is not None:
            c.welcome = await c.join(nick, room)
        return c

    def run_bounded(self, coro, seconds=20):
        return asyncio.wait_for(coro, H.t(seconds))

    # -- joining, chatting, presence -----------------------------------

    async def test_two_clients_chat(self):
        """Two clients join the default room, see each other online and
        each other's messages with server timestamps."""
        async def go():
            ada = await self.client("ada")
            w = ada.welcome
            self.assertEqual((w["nick"], w["room"]), ("ada", "lobby"))
            self.assertEqual((w["history"], w["online"]), ([], ["ada"]))
            self.assertEqual(w["limits"]["text_max"], TEXT_MAX)
            bob = await self.client("bob")
            self.assertEqual(bob.welcome["online"], ["ada", "bob"])
            await ada.expect("join", nick="bob", room="lobby")
            before = time.time() * 1000
            await ada.say("hello, bob")
            for c in (ada, bob):
                m = await c.expect("message", nick="ada")
                self.assertEqual(m["text"], "hello, bob")
                self.assertEqual(m["room"], "lobby")
                self.assertIsInstance(m["ts"], int)
                self.assertLess(abs(m["ts"] - before), 10000)
            await bob.say("hi ada \u00e9\u20ac\U0001f600 <b>&amp;</b>")
            m = await ada.expect("message", nick="bob")
            self.assertEqual(m["text"], "hi ada \u00e9\u20ac\U0001f600 "
                                        "<b>&amp;</b>")
        await self.run_bounded(go())

    async def test_presence_and_leave(self):
        """A leave notice and the new online list reach those who stay."""
        async def go():
            ada = await self.client("ada")
            bob = await self.client("bob")
            cy = await self.client("Cy")
            self.assertEqual(cy.welcome["online"], ["ada", "bob", "Cy"])
            await bob.close()
            for c in (ada, cy):
                m = await c.expect("leave", nick="bob")
                self.assertIsInstance(m["ts"], int)
                await c.quiet(0.2)  # a delta, not the whole list again
            # The nick is free again once its owner has left.
            bob2 = await self.client("BOB")
            self.assertEqual(bob2.welcome["online"], ["ada", "BOB", "Cy"])
        await self.run_bounded(go())

    async def test_history_last_50(self):
        """After 60 messages a joiner gets exactly the last 50, in order,
        with their authors and timestamps. The texts have the full 1000
        characters, each escaped to 6 bytes of JSON: the largest welcome."""
        def text(i):
            return "m%02d " % i + "\x01" * (TEXT_MAX - 4)

        async def go():
            writers = [await self.client("w%d" % i, "hist")
                       for i in range(7)]
            for i in range(60):
                w = writers[i // 9]  # 9 each stays within the burst
                await w.say(text(i))
                await w.expect("message", text=text(i))
            reader = await self.client("reader", "hist")
            hist = reader.welcome["history"]
            self.assertEqual(len(hist), HISTORY)
            self.assertEqual([m["text"] for m in hist],
                             [text(i) for i in range(10, 60)])
            self.assertEqual([m["nick"] for m in hist],
                             ["w%d" % (i // 9) for i in range(10, 60)])
            ts = [m["ts"] for m in hist]
            self.assertEqual(ts, sorted(ts))
            self.assertTrue(all(m["type"] == "message" for m in hist))
            # Another room's history is its own.
            other = await self.client("other", "elsewhere")
            self.assertEqual(other.welcome["history"], [])
        await self.run_bounded(go(), 40)

    async def test_rooms_isolate(self):
        """Messages and presence stay in their room; switch moves a client
        with notices on both sides and the new room's history."""
        async def go():
            ada = await self.client("ada", "red")
            bob = await self.client("bob", "Blue")
            self.assertEqual(bob.welcome["room"], "blue")
            cy = await self.client("cy", "red")
            self.assertEqual(cy.welcome["online"], ["ada", "cy"])
            await ada.say("red only")
            await cy.expect("message", text="red only")
            await bob.quiet()
            await bob.send({"type": "switch", "room": "red"})
            w = await bob.expect("welcome", room="red")
            self.assertEqual([m["text"] for m in w["history"]],
                             ["red only"])
            self.assertEqual(w["online"], ["ada", "bob", "cy"])
            await ada.expect("join", nick="bob", room="red")
            await bob.say("moved")
            await ada.expect("message", text="moved", room="red")
        await self.run_bounded(go())

    # -- refusals ---------------------------------------------------------

    async def test_nick_taken(self):
        """A nick in use (ignoring case, in any room) is refused clearly;
        the same connection may then join with another nick."""
        async def go():
            await self.client("Ada", "one")
            c = await self.client()
            for nick in ("Ada", "ada", "ADA"):
                await c.send({"type": "join", "nick": nick, "room": "two"})
                await c.expect_error("nick_taken")
            w = await c.join("ada2", "two")
            self.assertEqual(w["nick"], "ada2")
            await c.send({"type": "join", "nick": "ada3"})
            await c.expect_error("already_joined")
        await self.run_bounded(go())

    async def test_invalid_nicks(self):
        """Nicks must be 1-24 printable characters without control or
        invisible ones and without stray spaces."""
        bad = ["", " ada", "ada ", "a  b", "x" * 25, "\u00e9" * 25,
               "a\u0007b", "a\nb", "a\u202eb", "a\u200bb", "\u00a0ada",
               "a\x7fb", 42, None, ["ada"]]
        good = ["x" * 24, "\u00e9" * 24, "Zo\u00eb", "a b", "<img>",
                "\U0001f600"]

        async def go():
            for nick in bad:
                c = await self.client()
                await c.send({"type": "join", "nick": nick})
                await c.expect_error("nick_invalid")
                await c.send({"type": "join"})
                await c.expect_error("nick_invalid")
            for nick in good:
                c = await self.client()
                w = await c.join(nick)
                self.assertEqual(w["nick"], nick)
        await self.run_bounded(go(), 30)

    async def test_invalid_rooms(self):
        """Room names are 1-32 of [A-Za-z0-9_-], folded to lower case; a
        missing, null or empty room means the lobby."""
        async def go():
            c = await self.client()
            for room in ("bad room", "x" * 33, "../etc", "caf\u00e9", 5):
                await c.send({"type": "join", "nick": "ada", "room": room})
                await c.expect_error("room_invalid")
            w = await c.join("ada", "Dev-Ops_1")
            self.assertEqual(w["room"], "dev-ops_1")
            for room in (None, ""):
                d = await self.client()
                w = await d.join("n%d" % len(self.clients), room)
                self.assertEqual(w["room"], "lobby")
        await self.run_bounded(go())

    async def test_message_limits(self):
        """Texts have 1-1000 characters (code points, not bytes)."""
        async def go():
            c = await self.client("ada")
            for text in ("x" * 1000, "\U0001f600" * 1000):
                await c.say(text)
                m = await c.expect("message")
                self.assertEqual(m["text"], text)
            for text in ("x" * 1001, "\u00e9" * 1001):
                await c.say(text)
                await c.expect_error("too_long")
            for text in ("", "   ", "\n\t"):
                await c.say(text)
                await c.expect_error("empty")
            await c.send({"type": "say", "text": 5})
            await c.expect_error("bad_message")
        await self.run_bounded(go())

    async def test_malformed_json(self):
        """Malformed JSON, non-objects, duplicate keys, deep nesting,
        binary frames and oversized messages get an error, never a crash;
        the connection still works afterwards."""
        cases = [("{bad", "bad_json"), ("[]", "bad_json"),
                 ("42", "bad_json"), ('"say"', "bad_json"),
                 ("null", "bad_json"), ("", "bad_json"),
                 ('{"type":"say","type":"join"}', "bad_json"),
                 ('{"type":"say","text":"\\u0000"}', "bad_json"),
                 ("[" * 5000 + "]" * 5000, "bad_json"),
                 (b'{"type":"say"}', "bad_json"),
                 ('{"type":"say","text":"' + "x" * 17000 + '"}',
                  "too_long")]

        async def go():
            for i in range(0, len(cases), 4):
                c = await self.client()
                for raw, code in cases[i:i + 4]:
                    await c.send(raw)
                    await c.expect_error(code)
                w = await c.join("n%d" % i, "r%d" % i)
                self.assertEqual(w["online"], ["n%d" % i])
            self.assertIsNone(self.server.proc.poll())
        await self.run_bounded(go())

    async def test_unknown_type(self):
        """Unknown or missing types, and messages that need a join first."""
        async def go():
            c = await self.client()
            await c.send({"type": "dance"})
            await c.expect_error("unknown_type")
            await c.send({"text": "no type"})
            await c.expect_error("bad_message")
            await c.send({"type": 7})
            await c.expect_error("bad_message")
            await c.say("before joining")
            await c.expect_error("not_joined")
            await c.send({"type": "switch", "room": "x"})
            await c.expect_error("not_joined")
            await c.join("ada")
            await c.send({"type": "switch", "room": "no way"})
            await c.expect_error("room_invalid")
        await self.run_bounded(go())

    async def test_rate_limit(self):
        """A flood gets a rate_limited error, then a close with 1008; the
        room sees the flooder leave. A steady 4 messages a second is fine."""
        async def go():
            ada = await self.client("ada")
            calm = await self.client("calm")
            for i in range(12):
                await calm.say("calm %d" % i)
                await calm.expect("message", text="calm %d" % i)
                await asyncio.sleep(0.25)
            flood = await self.client("flood")
            for i in range(100):
                await flood.say("spam %d" % i)
            got_error = False
            try:
                while True:
                    m = await flood.recv(10)
                    if m.get("type") == "error":
                        self.assertEqual(m["code"], "rate_limited")
                        got_error = True
            except websockets.exceptions.ConnectionClosed:
                pass
            self.assertTrue(got_error, "no rate_limited error")
            self.assertEqual(flood.ws.close_code, 1008)
            await ada.expect("leave", nick="flood")
        await self.run_bounded(go(), 30)

    # -- static files -------------------------------------------------------

    def http(self, target, method="GET"):
        """(status, headers, body) of one raw HTTP/1.1 request."""
        with H.RawClient(self.server.host, self.server.port) as raw:
            raw.send(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Connection: close\r\n\r\n"
                      % (method, target, self.server.port)).encode("latin-1"))
            status, headers, _ = raw.read_response(body=method != "HEAD")
            return status, headers, getattr(raw, "body", b"")

    def read_www(self, name):
        with open(os.path.join(WWW, name), "rb") as f:
            return f.read()

    def test_static_files(self):
        """The page's files with their types; 404 for what is missing."""
        cases = [("/", "index.html", "text/html"),
                 ("/index.html", "index.html", "text/html"),
                 ("/app.js", "app.js", "javascript"),
                 ("/style.css", "style.css", "text/css"),
                 ("/favicon.svg", "favicon.svg", "image/svg+xml"),
                 ("/%61pp.js?v=1", "app.js", "javascript")]
        for target, name, ctype in cases:
            status, headers, body = self.http(target)
            self.assertEqual(status, 200, target)
            self.assertIn(ctype, headers["content-type"], target)
            self.assertEqual(body, self.read_www(name), target)
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertIn("default-src 'self'",
                          headers["content-security-policy"])
        for target in ("/missing.html", "/www/index.html", "/app.js/",
                       "/nope/"):
            status, _, body = self.http(target)
            self.assertEqual(status, 404, target)
        status, headers, body = self.http("/", "HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]),
                         len(self.read_www("index.html")))
        status, headers, _ = self.http("/", "POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        status, _, _ = self.http("/chat")
        self.assertEqual(status, 426)

    def test_traversal(self):
        """No path reaches a file outside www/: 400 or 404, never 200."""
        targets = ["/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                   "/..%2f..%2fetc/passwd", "/%00", "/index.html%00.js",
                   "/%2E%2e/", "/..", "/./../../etc/passwd",
                   "/a/../../etc/passwd", "//etc/passwd", "/etc/passwd",
                   "/..%5c..%5cetc%5cpasswd", "/%2e%2e%2f%2e%2e%2fetc",
                   "/%252e%252e/etc/passwd", "/%c0%ae%c0%ae/etc/passwd",
                   "/" + "a/" * 1100 + "x", "/%", "/%zz",
                   "/../www/index.html", "http://x/../../etc/passwd"]
        for target in targets:
            status, _, body = self.http(target)
            self.assertIn(status, (400, 404, 414), target)
            self.assertNotIn(b"root:", body, target)
        # Dot segments that stay inside www/ resolve (RFC 3986 §5.2.4).
        status, _, body = self.http("/x/../app.js")
        self.assertEqual((status, body), (200, self.read_www("app.js")))
        status, _, body = self.http("/%2e/style.css")
        self.assertEqual((status, body), (200, self.read_www("style.css")))

    def test_cross_origin_refused(self):
        """A page of another origin may not open the chat (403)."""
        with H.RawClient(self.server.host, self.server.port) as raw:
            raw.send(raw.request_bytes(
                path="/chat", extra=b"Origin: http://evil.example\r\n")[1])
            status, _, _ = raw.read_response()
            self.assertEqual(status, 403)
        with H.RawClient(self.server.host, self.server.port) as raw:
            origin = "Origin: http://127.0.0.1:%d\r\n" % self.server.port
            raw.send(raw.request_bytes(path="/chat",
                                       extra=origin.encode())[1])
            status, _, _ = raw.read_response()
            self.assertEqual(status, 101)


class PresenceScale(unittest.TestCase):
    """Presence grows with the room, not its square: 600 clients join one
    room; the first gets one join delta per joiner (not the whole list
    each time), and a late joiner's welcome lists 200 nicks and the
    count."""
    N = 600

    def test_joins_cost_deltas(self):
        import hostile_util as U
        server = ChatServer().start()
        try:
            def joined(nick):
                p = U.Peer(server.port, timeout=H.t(20))
                key, req = p.request(path="/chat")
                p.send(req)
                status, _ = p.read_head()
                self.assertEqual(status, 101)
                p.send_frame(H.OP_TEXT, json.dumps(
                    {"type": "join", "nick": nick, "room": "big"}))
                _, _, payload = p.recv_frame()
                return p, json.loads(payload)

            first, w = joined("first")
            self.assertEqual(w["type"], "welcome")
            others = [joined("n%04d" % i)[0] for i in range(self.N)]
            got = 0
            for i in range(self.N):
                _, _, payload = first.recv_frame()
                m = json.loads(payload)
                self.assertEqual((m["type"], m["nick"]),
                                 ("join", "n%04d" % i))
                got += len(payload)
            # One small delta per joiner; the old full lists would have
            # sent about N^2/2 nicks, some 2.5 MB here.
            self.assertLess(got, self.N * 100)
            late, w = joined("late")
            self.assertEqual(w["online_count"], self.N + 2)
            self.assertEqual(len(w["online"]), 200)
            self.assertEqual(w["online"][0], "first")
            for p in [first, late] + others:
                p.close()
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
