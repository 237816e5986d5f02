#!/usr/bin/python3
"""test_deflate.py - permessage-deflate (RFC 7692) on build/ws_echo, which
turns it on: Debian's python3-websockets with compression (the default
offer and every no-context-takeover and window-bits combination, text and
binary from 0 B to 16 MiB, fragmented messages), the same against
ws_echo --deflate-context (both sides keep their context), a raw client
for what a library will not send (RSV1 where it is forbidden, corrupt
DEFLATE, bombs of 1 GiB, pings between compressed fragments, compression
negotiated and never used), with the server's fds and memory read from
/proc after, and a mirror of the Autobahn fuzzingclient's chapters 12 and
13 (payload kinds and sizes under each of its seven offers).
"""
import asyncio
import os
import socket
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402
import hostile_util as U  # noqa: E402

import websockets  # noqa: E402
import websockets.client  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory as Offer)

MAX_MESSAGE = 16 * 1024 * 1024  # ws_echo's default max_message_bytes
TAIL = b"\x00\x00\xff\xff"


def connect(server, offers=None, **kw):
    """A python-websockets client; offers: a list of Offer, None for the
    library's default offer."""
    opts = dict(max_size=MAX_MESSAGE + 1024, open_timeout=H.t(10),
                close_timeout=H.t(10), ping_interval=None)
    if offers is not None:
        opts.update(extensions=offers, compression=None)
    opts.update(kw)
    return websockets.client.connect(server.uri, **opts)


def text_of(n, seed=0):
    """n bytes of UTF-8 text with 2-, 3- and 4-byte characters."""
    words = ["grüße", "日本語", "𝄞music", "plain", "ascii", "déjà"]
    out, i = [], seed
    size = 0
    while size < n:
        w = words[i % len(words)] + " "
        out.append(w)
        size += len(w.encode())
        i += 7
    s = "".join(out).encode()[:n]
    return s.decode("utf-8", "ignore").ljust(n, "x")[:n]


def ext_of(ws):
    return ws.response_headers.get("Sec-WebSocket-Extensions")


class Base(unittest.TestCase):
    extra = []

    @classmethod
    def setUpClass(cls):
        cls.server = H.EchoServer()
        cls.server.extra = list(cls.extra)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def run_async(self, coro, timeout=120):
        return asyncio.run(asyncio.wait_for(coro, H.t(timeout)))

    async def echo_all(self, ws, messages):
        for m in messages:
            await ws.send(m)
            got = await asyncio.wait_for(ws.recv(), H.t(30))
            self.assertEqual(type(got), type(m))
            self.assertEqual(len(got), len(m))
            self.assertTrue(got == m, "echo differs at %d bytes" % len(m))


# Every offer python-websockets can make, each a one-sided or two-sided
# choice of context takeover and window bits (RFC 7692 §7.1).
OFFERS = [
    ("default", None),
    ("client_max_window_bits", [Offer(client_max_window_bits=True)]),
    ("server_no_context_takeover",
     [Offer(server_no_context_takeover=True)]),
    ("client_no_context_takeover",
     [Offer(client_no_context_takeover=True)]),
    ("both no_context_takeover",
     [Offer(server_no_context_takeover=True,
            client_no_context_takeover=True)]),
    ("server_max_window_bits=9", [Offer(server_max_window_bits=9)]),
    ("server_max_window_bits=8", [Offer(server_max_window_bits=8)]),
    ("client_max_window_bits=9", [Offer(client_max_window_bits=9)]),
    ("windows 12/10", [Offer(server_max_window_bits=12,
                             client_max_window_bits=10)]),
    ("two offers, the first accepted",
     [Offer(server_max_window_bits=10), Offer()]),
]


class InteropTest(Base):
    """Python-websockets with compression against ws_echo (no context kept
    by the server: it answers with both no_context_takeover)."""

    def test_offers(self):
        """RFC 7692 §7.1: every offer is accepted with an answer the client
        takes, and text and binary from 0 B to 1 MiB round-trip."""
        sizes = [0, 1, 63, 64, 125, 126, 65535, 65536, 1 << 20]

        async def go(offers):
            async with connect(self.server, offers) as ws:
                self.assertIn("permessage-deflate", ext_of(ws))
                msgs = []
                for n in sizes:
                    msgs += [text_of(n, n), os.urandom(n), b"z" * n]
                await self.echo_all(ws, msgs)
                return ext_of(ws)
        for label, offers in OFFERS:
            with self.subTest(offer=label):
                ext = self.run_async(go(offers))
                H.log("%s -> %s" % (label, ext))
                if label == "server_max_window_bits=8":
                    self.assertIn("server_max_window_bits=8", ext)

    def test_large(self):
        """16 MiB (the limit) compressible text and 4 MiB of random bytes,
        compressed both ways."""
        async def go():
            async with connect(self.server) as ws:
                await self.echo_all(ws, [("abc" * (MAX_MESSAGE // 3 + 1))
                                         [:MAX_MESSAGE],
                                         os.urandom(4 << 20)])
        self.run_async(go())

    def test_fragmented(self):
        """Fragmented compressed messages (python-websockets compresses
        the whole and splits it) and close codes."""
        async def go():
            async with connect(self.server) as ws:
                await ws.send([b"ab", b"cd" * 5000, b"", b"ef"])
                self.assertEqual(await ws.recv(),
                                 b"ab" + b"cd" * 5000 + b"ef")
                await ws.send(["grü", "ße " * 3000, "!"])
                self.assertEqual(await ws.recv(), "grü" + "ße " * 3000 + "!")
                await ws.close(4001, "bye")
                return ws.close_code
        self.assertEqual(self.run_async(go()), 4001)

    def test_concurrent(self):
        """50 compressing clients at once, 20 messages each."""
        async def one(i):
            async with connect(self.server) as ws:
                await self.echo_all(ws, [text_of(200 + i * 13, j)
                                         for j in range(20)])

        async def go():
            await asyncio.gather(*(one(i) for i in range(50)))
        self.run_async(go())


class ContextTest(InteropTest):
    """The same against ws_echo --deflate-context: both sides keep their
    context, so repeated messages shrink on the wire."""
    extra = ["--deflate-context"]

    def test_context_kept_on_the_wire(self):
        """RFC 7692 §7.2.3.2: with the window kept, the second of two
        equal messages is a back-reference: fewer bytes than the first."""
        c = H.RawClient.for_server(self.server)
        with c:
            hdr = c.handshake(extra=b"Sec-WebSocket-Extensions: "
                                    b"permessage-deflate\r\n")
            self.assertEqual(hdr.get("sec-websocket-extensions"),
                             "permessage-deflate")
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            inf = zlib.decompressobj(-15)
            text = (b'{"type":"message","room":"lobby","nick":"ada",'
                    b'"text":"hello, context"}')
            sizes = []
            for _ in range(3):
                body = comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH)
                c.send_frame(H.OP_TEXT, body[:-4], rsv=4)
                f = c.recv_frame()
                self.assertEqual((f.rsv, f.opcode, f.fin), (4, H.OP_TEXT, True))
                self.assertEqual(inf.decompress(f.payload + TAIL), text)
                sizes.append(len(f.payload))
            self.assertLess(sizes[1], sizes[0])
            c.send_close(1000)
            self.assertEqual(c.recv_close()[0], 1000)


class RawTest(Base):
    """Hand-made frames on a connection that negotiated compression."""

    def setUp(self):
        self.c = H.RawClient.for_server(self.server, timeout=H.t(20))
        hdr = self.c.handshake(extra=b"Sec-WebSocket-Extensions: x-foo, "
                                     b"permessage-deflate; "
                                     b"client_max_window_bits\r\n")
        self.assertEqual(hdr.get("sec-websocket-extensions"),
                         "permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover")

    def tearDown(self):
        self.c.close()

    def expect_close(self, code):
        got = self.c.recv_close()[0]
        self.assertEqual(got, code)
        self.assertTrue(self.c.wait_tcp_close())

    def test_uncompressed_messages_still_work(self):
        """RFC 7692 §6: negotiated and never used is legal; the server may
        answer uncompressed (below deflate_min_bytes) or compressed."""
        for n in (0, 10, 200, 70000):
            data = os.urandom(n)
            self.c.send_frame(H.OP_BINARY, data)
            f = self.c.recv_frame()
            payload = f.payload
            if f.rsv == 4:
                payload = zlib.decompressobj(-15).decompress(payload + TAIL)
            self.assertEqual(payload, data)
            self.assertEqual(f.rsv == 4, n >= 64)

    def test_ping_between_compressed_fragments(self):
        """RFC 6455 §5.4 with RFC 7692 §6.1: RSV1 on the first fragment
        only; a ping between fragments is answered at once."""
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        text = ("fragmented and compressed " * 200).encode()
        body = (comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        k = len(body) // 3
        self.c.send_frame(H.OP_TEXT, body[:k], fin=False, rsv=4)
        self.c.send_frame(H.OP_PING, b"between")
        f = self.c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (H.OP_PONG, b"between"))
        self.c.send_frame(H.OP_CONT, body[k:2 * k], fin=False)
        self.c.send_frame(H.OP_CONT, body[2 * k:], fin=True)
        f = self.c.recv_frame()
        self.assertEqual(f.rsv, 4)
        self.assertEqual(zlib.decompressobj(-15).decompress(f.payload + TAIL),
                         text)

    def test_rsv1_on_continuation(self):
        """RFC 7692 §6.1: RSV1 on a continuation frame fails with 1002."""
        self.c.send_frame(H.OP_TEXT, b"\xf2\x48", fin=False, rsv=4)
        self.c.send_frame(H.OP_CONT, b"\xcd\xc9", fin=True, rsv=4)
        self.expect_close(1002)

    def test_rsv1_on_ping(self):
        """RFC 7692 §6.1: control frames are never compressed: 1002."""
        self.c.send_frame(H.OP_PING, b"x", rsv=4)
        self.expect_close(1002)

    def test_rsv2(self):
        """RFC 6455 §5.2: RSV2 means nothing here either: 1002."""
        self.c.send_frame(H.OP_TEXT, b"x", rsv=2)
        self.expect_close(1002)

    def test_corrupt_deflate(self):
        """Data that is not DEFLATE closes with 1007."""
        self.c.send_frame(H.OP_BINARY, b"\xff" * 40, rsv=4)
        self.expect_close(1007)

    def test_invalid_text_after_inflating(self):
        """RFC 6455 §8.1 on the inflated bytes: 1007."""
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(b"ok \xc0\xaf no") + comp.flush(zlib.Z_SYNC_FLUSH)
        self.c.send_frame(H.OP_TEXT, body[:-4], rsv=4)
        self.expect_close(1007)


def bomb(total, chunk=1 << 20):
    """total zero bytes, compressed as a client would: (bytes, size)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zeros = bytes(chunk)
    parts = [comp.compress(zeros) for _ in range(total // chunk)]
    parts.append(comp.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


class BombTest(unittest.TestCase):
    """Decompression bombs against a server whose fds and memory are read
    from /proc: 1009, the server stays up, and both return to baseline."""

    @classmethod
    def setUpClass(cls):
        cls.server = U.Server("echo").start()
        cls.body = bomb(1 << 30)  # 1 GiB of zeros in about 1 MiB

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def connect(self):
        c = H.RawClient.for_server(self.server, timeout=H.t(30))
        c.handshake(extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
        return c

    def test_bombs(self):
        """1 GiB in one frame and over 64 fragments: 1009 each time, RSS
        grows by far less than inflating would take, fds back to baseline,
        and an echo still works."""
        base_fds = self.server.stable_fds()
        base_rss = self.server.rss_kib()
        H.log("bomb: %d compressed bytes for 1 GiB" % len(self.body))
        self.assertLess(len(self.body), 2 << 20)
        for frags in (1, 64):
            with self.connect() as c:
                k = len(self.body) // frags + 1
                pieces = [self.body[i:i + k]
                          for i in range(0, len(self.body), k)]
                for i, p in enumerate(pieces):
                    c.send_frame(H.OP_BINARY if i == 0 else H.OP_CONT, p,
                                 fin=i == len(pieces) - 1,
                                 rsv=4 if i == 0 else 0)
                self.assertEqual(c.recv_close()[0], 1009)
            rss = self.server.rss_kib()
            H.log("bomb over %d frame(s): RSS %d -> %d KiB"
                  % (frags, base_rss, rss))
            # The limit is 16 MiB of output: the growth stays far below the
            # 1 GiB that inflating would take (the bound leaves room for
            # sanitizers, whose quarantine keeps freed blocks).
            self.assertLess(rss - base_rss, 256 * 1024)
        self.assertEqual(self.server.wait_fds(base_fds), base_fds)
        with self.connect() as c:
            c.send_frame(H.OP_TEXT, b"alive")
            self.assertEqual(c.recv_message()[1], b"alive")


# The Autobahn fuzzingclient's chapters 12 and 13, mirrored: each of its
# payload kinds at each of its sizes, echoed by ws_echo under each of the
# seven offers of chapter 13 (12.x is 13.1's default offer). The messages
# are checked byte for byte; Autobahn sends 1000 per case, this 10.
AUTOBAHN_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536,
                  131072]


def autobahn_payloads():
    json_like = (b'{"id": 1234, "name": "Ada Lovelace", "tags": ["x", "y"],'
                 b' "score": 98.6, "active": true}, ')
    faust = ("Habe nun, ach! Philosophie, Juristerei und Medizin, und leider "
             "auch Theologie durchaus studiert, mit heißem Bemühn. ").encode()
    html = b"<tr><td class=\"a\">cell</td><td>&nbsp;</td></tr>\n"
    picture = bytes((i * 37 + (i >> 9)) & 0xFF for i in range(1 << 16))
    return [("12.1 json", True, json_like), ("12.2 picture", False, picture),
            ("12.3 german text", True, faust), ("12.4 html", True, html),
            ("12.5 random", False, os.urandom(1 << 16))]


# 13.1-13.7: (server_no_context_takeover, server_max_window_bits) asked
# by the client, one offer or several in order.
AUTOBAHN_OFFERS = [
    ("13.1", [(False, None)]), ("13.2", [(True, None)]),
    ("13.3", [(False, 8)]), ("13.4", [(False, 15)]), ("13.5", [(True, 8)]),
    ("13.6", [(True, 15)]), ("13.7", [(True, 8), (True, None),
                                      (False, None)]),
]


class AutobahnCompressionTest(Base):
    """Chapters 12 and 13 against ws_echo, and again with context kept."""

    def mirror(self):
        payloads = autobahn_payloads()

        async def case(offers, text, unit, size):
            async with connect(self.server, offers) as ws:
                data = (unit * (size // len(unit) + 1))[:size]
                msgs = [data.decode("utf-8", "ignore") if text else data
                        for _ in range(10)]
                # The cut may split a character: keep the text valid.
                await self.echo_all(ws, msgs)
        n = 0
        t0 = time.monotonic()
        for label, spec in AUTOBAHN_OFFERS:
            offers = [Offer(server_no_context_takeover=nct,
                            server_max_window_bits=bits,
                            client_max_window_bits=True)
                      for nct, bits in spec]
            for kind, text, unit in payloads:
                for size in AUTOBAHN_SIZES:
                    with self.subTest(case=label, kind=kind, size=size):
                        self.run_async(case(offers, text, unit, size))
                        n += 1
        H.log("autobahn 12/13 mirror: %d cases in %.1f s"
              % (n, time.monotonic() - t0))

    def test_chapters_12_13(self):
        self.mirror()


class AutobahnCompressionContextTest(AutobahnCompressionTest):
    extra = ["--deflate-context"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
