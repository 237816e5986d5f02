"""test_raw.py - ws_echo against raw sockets: the bytes a client library
never sends. Each case asserts the exact answer of the server (HTTP status,
or close code followed by the TCP close).

Run from the repository root: /usr/bin/python3 tests/integration/test_raw.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1.
"""

import base64
import os
import socket
import struct
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402
from wsharness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,  # noqa: E402
                       OP_PONG, OP_TEXT, build_frame)

# Autobahn case 6.3.1: "κόσμε" followed by an encoded UTF-16 surrogate
# (U+D800, ED A0 80), then "edited".
BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
BAD_UTF8_PREFIX = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"

# Rows in the spirit of Autobahn case 6 (Kuhn's UTF-8 stress test).
BAD_UTF8_ROWS = (
    ("overlong_nul", b"\xc0\x80"),
    ("overlong_slash_3byte", b"\xe0\x80\xaf"),
    ("above_10ffff", b"\xf4\x90\x80\x80"),
    ("lead_byte_f5", b"\xf5\x80\x80\x80"),
    ("lone_continuation", b"\x80"),
    ("byte_fe", b"\xfe"),
    ("surrogate_dfff", b"\xed\xbf\xbf"),
    ("truncated_then_ascii", b"\xe2\x82"),
)
INVALID_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000,
                       2999, 5000)
VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                     1012, 1013, 1014, 3000, 3999, 4000, 4999)
RESERVED_OPCODES = (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)


class _Base(H.EchoServerTest):
    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        # The server keeps serving other clients after a hostile one.
        self.assertTrue(self.server.alive(), "ws_echo died during the test")
        self.assert_echo_works()

    def client(self, handshake=True):
        c = H.RawClient.for_server(self.server)
        self.clients.append(c)
        if handshake:
            c.handshake()
        return c

    def assert_echo_works(self):
        with H.RawClient.for_server(self.server) as c:
            c.handshake()
            c.send_frame(OP_TEXT, b"still alive")
            f = c.recv_frame()
            self.assertEqual((f.fin, f.rsv, f.opcode, f.masked, f.payload),
                             (True, 0, OP_TEXT, False, b"still alive"))
            c.send_close(1000)
            self.assertEqual(c.recv_close()[0], 1000)
            self.assertTrue(c.wait_tcp_close(), "no TCP close after 1000")

    def expect_close(self, c, code, what=""):
        """The next frame is a close with code, then TCP closes."""
        try:
            got, reason = c.recv_close()
        except H.Closed:
            self.fail("%sTCP closed without a close frame (want %d)"
                      % (what, code))
        except socket.timeout:
            self.fail("%sno close frame within %.1fs (want %d)"
                      % (what, c.timeout, code))
        self.assertEqual(got, code, "%sclose code (reason %r)"
                         % (what, reason))
        self.assertTrue(c.wait_tcp_close(), "%sserver sent close %d but "
                        "did not close TCP within %.1fs"
                        % (what, code, H.t(3)))


# ---------------------------------------------------------------------------
class FrameTest(_Base):
    """Frame-level violations (RFC 6455 §5) on an open connection."""

    def test_unmasked_client_frame(self):
        """RFC 6455 §5.1/§5.3: a client frame without the MASK bit is a
        protocol error: close 1002."""
        c = self.client()
        c.send_frame(OP_TEXT, b"hello", mask=False)
        self.expect_close(c, 1002)

    def test_ping_payload_126(self):
        """RFC 6455 §5.5: a control frame with a 126-byte payload: 1002."""
        c = self.client()
        c.send_frame(OP_PING, b"p" * 126)
        self.expect_close(c, 1002)

    def test_ping_payload_125(self):
        """RFC 6455 §5.5.2/§5.5.3: a 125-byte ping (the limit) gets a pong
        with the same payload."""
        c = self.client()
        payload = bytes(range(125))
        c.send_frame(OP_PING, payload)
        f = c.recv_frame()
        self.assertEqual((f.fin, f.opcode, f.masked, f.payload),
                         (True, OP_PONG, False, payload))

    def test_fragmented_ping(self):
        """RFC 6455 §5.4/§5.5: control frames must not be fragmented; a
        ping with FIN=0: 1002."""
        c = self.client()
        c.send_frame(OP_PING, b"frag", fin=False)
        self.expect_close(c, 1002)

    def test_unsolicited_pong_ignored(self):
        """RFC 6455 §5.5.3: an unsolicited pong gets no answer; the
        connection goes on."""
        c = self.client()
        c.send_frame(OP_PONG, b"unsolicited")
        c.send_frame(OP_TEXT, b"next")
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"next"))

    def test_continuation_without_start(self):
        """RFC 6455 §5.4: a continuation frame with no message started:
        1002."""
        c = self.client()
        c.send_frame(OP_CONT, b"orphan", fin=True)
        self.expect_close(c, 1002)

    def test_text_inside_fragmented_message(self):
        """RFC 6455 §5.4: a new text frame while a fragmented message is
        in progress: 1002."""
        c = self.client()
        c.send_frame(OP_TEXT, b"first ", fin=False)
        c.send_frame(OP_TEXT, b"second", fin=True)
        self.expect_close(c, 1002)

    def test_binary_inside_fragmented_message(self):
        """RFC 6455 §5.4: a new binary frame while a fragmented message is
        in progress: 1002."""
        c = self.client()
        c.send_frame(OP_BINARY, b"first ", fin=False)
        c.send_frame(OP_BINARY, b"second", fin=False)
        self.expect_close(c, 1002)

    def test_invalid_utf8_single_frame(self):
        """RFC 6455 §8.1: a text frame that is not valid UTF-8 (encoded
        surrogate U+D800): close 1007."""
        c = self.client()
        c.send_frame(OP_TEXT, BAD_UTF8)
        self.expect_close(c, 1007)

    def test_truncated_utf8_at_message_end(self):
        """RFC 6455 §8.1: a text message ending inside a multi-byte
        sequence (E2 82 without its last byte): 1007."""
        c = self.client()
        c.send_frame(OP_TEXT, b"abc\xe2\x82")
        self.expect_close(c, 1007)

    def test_valid_utf8_split_across_fragments(self):
        """RFC 6455 §5.4/§8.1: a valid multi-byte character split between
        fragments is fine: the whole text comes back."""
        c = self.client()
        text = "\u03ba\u1f79\u03c3\u03bc\u03b5 \U0001f600".encode()
        c.send_frame(OP_TEXT, text[:2 + 1], fin=False)   # κ + 1/3 of ό
        c.send_frame(OP_CONT, text[3:-2], fin=False)     # ... + 2/4 of 😀
        c.send_frame(OP_CONT, text[-2:], fin=True)
        self.assertEqual(c.recv_message(), (OP_TEXT, text))

    def test_invalid_utf8_across_fragments(self):
        """RFC 6455 §8.1: invalid UTF-8 whose bad sequence (ED A0 80) is
        split across fragments: 1007."""
        c = self.client()
        cut = BAD_UTF8.index(b"\xed") + 1
        c.send_frame(OP_TEXT, BAD_UTF8[:cut], fin=False)
        c.send_frame(OP_CONT, BAD_UTF8[cut:cut + 1], fin=False)
        c.send_frame(OP_CONT, BAD_UTF8[cut + 1:], fin=True)
        self.expect_close(c, 1007)

    def test_invalid_utf8_fail_fast(self):
        """RFC 6455 §8.1 (and Autobahn 6.4): the first fragment holds an
        invalid sequence, FIN=0, and nothing else is sent: the server must
        fail at once with 1007, without waiting for the message end."""
        c = self.client()
        c.send_frame(OP_TEXT, BAD_UTF8_PREFIX, fin=False)
        self.expect_close(c, 1007)

    def test_invalid_utf8_fail_fast_mid_frame(self):
        """RFC 6455 §8.1: a text frame whose header announces 1000 bytes
        but whose first bytes are already invalid (FF): 1007 without the
        rest of the payload."""
        c = self.client()
        frame = build_frame(OP_TEXT, b"ok \xff" + b"a" * 996)
        # header (2) + 16-bit length (2) + mask (4) + 4 payload bytes
        c.send(frame[:2 + 2 + 4 + 4])
        self.expect_close(c, 1007)

    def test_close_one_byte_payload(self):
        """RFC 6455 §5.5.1: a close frame with a 1-byte payload: 1002."""
        c = self.client()
        c.send_frame(OP_CLOSE, b"\x03")
        self.expect_close(c, 1002)

    def test_close_empty_payload(self):
        """RFC 6455 §5.5.1/§7.1.5: a close without a code is answered
        with a close (empty, or 1000), then TCP closes."""
        c = self.client()
        c.send_frame(OP_CLOSE, b"")
        code, _ = c.recv_close()
        self.assertIn(code, (None, 1000))
        self.assertTrue(c.wait_tcp_close())

    def test_close_reason_invalid_utf8(self):
        """RFC 6455 §5.5.1/§8.1: a close reason that is not UTF-8: 1007."""
        c = self.client()
        c.send_close(1000, b"bad \xed\xa0\x80 reason")
        self.expect_close(c, 1007)

    def test_close_reason_123_bytes(self):
        """RFC 6455 §5.5/§5.5.1: a close with the longest reason (123
        bytes of UTF-8) is valid and its code is echoed."""
        c = self.client()
        c.send_close(1000, ("\u20ac" * 41).encode())
        self.expect_close(c, 1000)

    def test_length_64bit_top_bit(self):
        """RFC 6455 §5.2: the most significant bit of a 64-bit payload
        length must be 0: 1002."""
        c = self.client()
        head = struct.pack("!BBQ", 0x82, 0x80 | 127, (1 << 63) | 5)
        c.send(head + os.urandom(4))
        self.expect_close(c, 1002)

    def test_nonminimal_length_16bit(self):
        """RFC 6455 §5.2: the minimal number of bytes must encode the
        length: 5 bytes in the 16-bit form: 1002."""
        c = self.client()
        c.send_frame(OP_TEXT, b"hello", length_form=16)
        self.expect_close(c, 1002)

    def test_nonminimal_length_64bit(self):
        """RFC 6455 §5.2: 200 bytes in the 64-bit form: 1002."""
        c = self.client()
        c.send_frame(OP_BINARY, b"x" * 200, length_form=64)
        self.expect_close(c, 1002)

    def test_nonminimal_length_64bit_65535(self):
        """RFC 6455 §5.2: 65535 bytes (fits in 16 bits) in the 64-bit
        form: 1002."""
        c = self.client()
        c.send_frame(OP_BINARY, b"x" * 65535, length_form=64)
        self.expect_close(c, 1002)

    def test_minimal_length_edges(self):
        """RFC 6455 §5.2: 125 (7-bit), 126 (16-bit), 65535 (16-bit) and
        65536 (64-bit) byte frames are echoed with minimal encodings."""
        c = self.client()
        for n, b1 in ((125, 125), (126, 126), (65535, 126), (65536, 127)):
            payload = os.urandom(n)
            c.send_frame(OP_BINARY, payload)
            f = c.recv_frame(H.t(10))
            self.assertEqual((f.opcode, f.masked, len(f.payload)),
                             (OP_BINARY, False, n))
            self.assertEqual(c.last_len7, b1, "length form for %d" % n)
            self.assertEqual(f.payload, payload)

    def test_huge_declared_length(self):
        """RFC 6455 §7.4.1/§10.4: a frame header declaring 2^40 bytes
        (over the 16 MiB limit): 1009 at once, no payload sent."""
        c = self.client()
        c.send(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40)
               + os.urandom(4))
        self.expect_close(c, 1009)

    def test_declared_length_limit_plus_one(self):
        """RFC 6455 §10.4: a text frame header declaring 16 MiB + 1
        bytes: 1009 at once, no payload sent."""
        c = self.client()
        c.send(struct.pack("!BBQ", 0x81, 0x80 | 127, (16 << 20) + 1)
               + os.urandom(4))
        self.expect_close(c, 1009)

    def test_fragmented_message_over_limit(self):
        """RFC 6455 §10.4: fragments of 8 MiB + 8 MiB + 1 byte (total
        over 16 MiB): 1009."""
        c = self.client()
        chunk = b"\x00" * (8 << 20)
        c.send_frame(OP_BINARY, chunk, fin=False)
        c.send_frame(OP_CONT, chunk, fin=False)
        try:
            c.send_frame(OP_CONT, b"\x01", fin=True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.timeout = H.t(15)
        self.expect_close(c, 1009)

    def test_pipelined_frame_after_handshake(self):
        """RFC 6455 §4.1/§4.2: a frame sent in the same TCP segment right
        behind the upgrade request (one sendall) is not lost."""
        c = self.client(handshake=False)
        c.handshake(trailing=build_frame(OP_TEXT, b"hello"))
        f = c.recv_frame()
        self.assertEqual((f.fin, f.opcode, f.masked, f.payload),
                         (True, OP_TEXT, False, b"hello"))

    def test_control_frames_between_fragments(self):
        """RFC 6455 §5.4/§5.5: control frames may be injected between
        fragments: ping -> pong with its payload, pong ignored, then the
        whole text comes back."""
        c = self.client()
        c.send_frame(OP_TEXT, b"Hel", fin=False)
        c.send_frame(OP_PING, b"ping-in-the-middle")
        c.send_frame(OP_CONT, b"lo, ", fin=False)
        c.send_frame(OP_PONG, b"pong-in-the-middle")
        c.send_frame(OP_CONT, b"world", fin=True)
        f = c.recv_frame()
        self.assertEqual((f.fin, f.opcode, f.payload),
                         (True, OP_PONG, b"ping-in-the-middle"))
        f = c.recv_frame()
        self.assertEqual((f.fin, f.opcode, f.masked, f.payload),
                         (True, OP_TEXT, False, b"Hello, world"))

    def test_frame_one_byte_per_send(self):
        """RFC 6455 §5.2: a frame (16-bit length, 300 bytes) that arrives
        one byte per TCP segment is reassembled and echoed."""
        c = self.client()
        payload = ("\u00e9" * 150).encode()
        c.send_bytewise(build_frame(OP_TEXT, payload), delay=0.0005)
        f = c.recv_frame(H.t(10))
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, payload))

    def test_handshake_one_byte_per_send(self):
        """RFC 6455 §4.1: an upgrade request that arrives one byte per
        TCP segment is still answered with 101."""
        c = self.client(handshake=False)
        key, req = c.request_bytes()
        c.send_bytewise(req, delay=0.0005)
        status, headers, _ = c.read_response()
        self.assertEqual(status, 101)
        self.assertEqual(headers.get("sec-websocket-accept"),
                         H.accept_for(key))

    def test_many_frames_in_one_segment(self):
        """RFC 6455 §5.2/§6.2: 200 small frames sent in one sendall are
        all echoed, in order."""
        c = self.client()
        c.send(b"".join(build_frame(OP_TEXT, b"m%d" % i)
                        for i in range(200)))
        got = [c.recv_message() for _ in range(200)]
        self.assertEqual(got, [(OP_TEXT, b"m%d" % i) for i in range(200)])

    def test_large_echoes_read_together_stay_in_order(self):
        """Several large messages read at once are echoed in one write
        (corked): their echoes, a pong and a close between and after
        them still come back in the order of the frames sent."""
        a, b, cc = os.urandom(65536), ("\u00e9" * 10000).encode(), \
            os.urandom(70000)
        c = self.client()
        c.send(build_frame(OP_BINARY, a) + build_frame(OP_PING, b"p")
               + build_frame(OP_TEXT, b) + build_frame(OP_BINARY, cc)
               + build_frame(OP_BINARY, a)
               + build_frame(OP_CLOSE, H.close_payload(1000, b"")))
        self.assertEqual(c.recv_message(), (OP_BINARY, a))
        self.assertEqual(c.recv_message(), (OP_PONG, b"p"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b))
        self.assertEqual(c.recv_message(), (OP_BINARY, cc))
        self.assertEqual(c.recv_message(), (OP_BINARY, a))
        self.expect_close(c, 1000)

    def test_mixed_echoes_read_together_stay_in_order(self):
        """Messages of every size read at once (small ones copied into the
        queue, those of 256 bytes or more and any after them corked, a
        pong queued by the session between them): every echo whole and
        in the order sent."""
        frames = [(OP_TEXT, b"t" * 300), (OP_TEXT, b"s1"),
                  (OP_BINARY, os.urandom(512)), (OP_BINARY, b"s2"),
                  (OP_PING, b"p1"), (OP_TEXT, b"after ping"),
                  (OP_BINARY, os.urandom(1000)),
                  (OP_BINARY, os.urandom(20000)), (OP_TEXT, b"s3"),
                  (OP_TEXT, b"u" * 255), (OP_TEXT, b"v" * 256)]
        want = [(OP_PONG if op == OP_PING else op, body)
                for op, body in frames]
        c = self.client()
        c.send(b"".join(build_frame(op, body) for op, body in frames)
               + build_frame(OP_CLOSE, H.close_payload(1000, b"")))
        self.assertEqual([c.recv_message() for _ in want], want)
        self.expect_close(c, 1000)

    def test_fragmented_large_echoes_read_together(self):
        """Large messages assembled from fragments (in the session's own
        buffer, freed once delivered, not in the input) read together with
        more: each echo is whole and its own, never a later message's
        bytes in a reused buffer."""
        msgs = [bytes([65 + i]) * (65536 + 977 * i) for i in range(6)]
        stream = b""
        for m in msgs:
            parts = [m[k:k + 1300] for k in range(0, len(m), 1300)]
            for k, part in enumerate(parts):
                stream += build_frame(OP_BINARY if k == 0 else OP_CONT, part,
                                      fin=k == len(parts) - 1)
        c = self.client()
        c.send(stream)
        for m in msgs:
            got = c.recv_message(H.t(10))
            self.assertEqual(got[0], OP_BINARY)
            self.assertTrue(got[1] == m, "echo of %d bytes of %r damaged: "
                            "starts %r" % (len(m), m[:1], got[1][:8]))

    def test_large_echoes_to_a_reader_that_waits(self):
        """Echoes of messages read together, written in one go, that the
        socket cannot take at once are queued in order, before what the
        session queued meanwhile. The client reads nothing until the
        server's socket is full, and sends a round at a time (two large
        messages, a ping, a small one: the small one's send writes the
        two echoes while the pong waits), so that the write which fills
        the socket is almost always such a one."""
        body = os.urandom(70000)
        rounds, want = [], []
        for i in range(100):
            msgs = [body[i:65536], body[i:i + 20000], b"small %d" % i]
            rounds.append(build_frame(OP_BINARY, msgs[0])
                          + build_frame(OP_BINARY, msgs[1])
                          + build_frame(OP_PING, b"r%d" % i)
                          + build_frame(OP_BINARY, msgs[2]))
            want += [(OP_BINARY, msgs[0]), (OP_BINARY, msgs[1]),
                     (OP_PONG, b"r%d" % i), (OP_BINARY, msgs[2])]
        c = H.RawClient.for_server(self.server)
        self.clients.append(c)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.handshake()

        def sender():  # blocks once the server stops reading
            for r in rounds:
                data = memoryview(r)
                while data:
                    try:
                        data = data[c.sock.send(data):]
                    except socket.timeout:
                        continue
                    except OSError:
                        return
                time.sleep(0.002)  # pacing: one round per server read
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        th.join(H.t(2))
        got = [c.recv_message(H.t(10)) for _ in want]
        th.join(H.t(10))
        self.assertEqual(len(got), len(want))
        self.assertTrue(got == want, "echoes out of order or damaged")

    def test_many_tiny_fragments(self):
        """RFC 6455 §5.4: an empty first fragment, 1000 one-byte
        continuations and an empty final one make one 1000-byte text."""
        c = self.client()
        c.send(build_frame(OP_TEXT, b"", fin=False)
               + b"".join(build_frame(OP_CONT, b"x", fin=False)
                          for _ in range(1000))
               + build_frame(OP_CONT, b"", fin=True))
        self.assertEqual(c.recv_message(H.t(10)), (OP_TEXT, b"x" * 1000))

    def test_random_split_stream(self):
        """RFC 6455 §5.2/§5.4/§5.5: 300 mixed frames (binary of every
        length form, fragmented text with a ping inside, pings) sent as one
        stream cut at pseudo-random points: every echo and pong comes back
        in order."""
        rnd = random.Random(6455)
        stream, expect = [], []
        for i in range(300):
            k = rnd.randrange(4)
            if k == 0 or k == 3:
                p = os.urandom(rnd.randrange(0, 300) if k == 0
                               else rnd.randrange(126, 70000))
                stream.append(build_frame(OP_BINARY, p))
                expect.append((OP_BINARY, p))
            elif k == 1:
                p = ("\u00e9%d\u20ac" % i).encode() * rnd.randrange(1, 50)
                cut = rnd.randrange(len(p) + 1)
                stream += [build_frame(OP_TEXT, p[:cut], fin=False),
                           build_frame(OP_PING, b"q%d" % i),
                           build_frame(OP_CONT, p[cut:])]
                expect += [(OP_PONG, b"q%d" % i), (OP_TEXT, p)]
            else:
                stream.append(build_frame(OP_PING, b"ping%d" % i))
                expect.append((OP_PONG, b"ping%d" % i))
        data = b"".join(stream)
        c = self.client()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        errors = []

        def sender():
            try:
                pos = 0
                while pos < len(data):
                    n = rnd.choice((1, 2, 3, 7, 13, 100, 1000, 5000))
                    c.sock.sendall(data[pos:pos + n])
                    pos += n
            except OSError as e:
                errors.append(e)
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        got = [c.recv_message(H.t(30)) for _ in expect]
        th.join(H.t(30))
        self.assertEqual(errors, [])
        self.assertEqual(len(got), len(expect))
        self.assertTrue(got == expect, "echoes differ from the frames sent")

    def test_pong_not_inside_pending_frame(self):
        """RFC 6455 §5.4/§5.5: while a 16 MiB echo is only partly written
        (the client is not reading), pings get pongs that come after the
        whole data frame, never inside it."""
        c = self.client()
        big = os.urandom(16 << 20)
        errors = []

        def sender():
            try:
                c.send(build_frame(OP_BINARY, big))
                for i in range(10):
                    c.send(build_frame(OP_PING, b"p%d" % i))
            except OSError as e:
                errors.append(e)
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        time.sleep(H.t(0.5))  # let the server's output queue back up
        c.timeout = H.t(20)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.fin, len(f.payload)),
                         (OP_BINARY, True, len(big)))
        self.assertTrue(f.payload == big, "16 MiB echo differs")
        pongs = [c.recv_frame() for _ in range(10)]
        th.join(H.t(20))
        self.assertEqual(errors, [])
        self.assertEqual([(f.opcode, f.payload) for f in pongs],
                         [(OP_PONG, b"p%d" % i) for i in range(10)])

    def test_close_inside_fragmented_message(self):
        """RFC 6455 §5.4/§5.5.1: a close between fragments is a valid
        control frame: it is answered (1000), then TCP closes."""
        c = self.client()
        c.send_frame(OP_TEXT, b"abc", fin=False)
        c.send_close(1000, b"mid-message")
        self.expect_close(c, 1000)

    def test_close_payload_126(self):
        """RFC 6455 §5.5: a close frame with a 126-byte payload (code and
        a 124-byte reason): 1002."""
        c = self.client()
        c.send_close(1000, b"r" * 124)
        self.expect_close(c, 1002)

    def test_pong_payload_126(self):
        """RFC 6455 §5.5: a pong with a 126-byte payload: 1002."""
        c = self.client()
        c.send_frame(OP_PONG, b"p" * 126)
        self.expect_close(c, 1002)

    def test_ping_with_rsv1(self):
        """RFC 6455 §5.2: RSV1 on a control frame: 1002."""
        c = self.client()
        c.send_frame(OP_PING, b"p", rsv=4)
        self.expect_close(c, 1002)

    def test_continuation_without_start_not_final(self):
        """RFC 6455 §5.4: a non-final continuation with no message
        started: 1002."""
        c = self.client()
        c.send_frame(OP_CONT, b"orphan", fin=False)
        self.expect_close(c, 1002)

    def test_client_tcp_close_without_close_frame(self):
        """RFC 6455 §7.1.5/§7.3: the client shuts down its side without a
        close frame; the server closes TCP too (no close frame expected)."""
        c = self.client()
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.wait_tcp_close())

    def test_tcp_close_after_protocol_error(self):
        """RFC 6455 §7.1.1/§7.1.7: after failing the connection (1002)
        the server closes TCP itself, without waiting for the client's
        close frame."""
        c = self.client()
        c.send_frame(OP_TEXT, b"x", mask=False)
        self.assertEqual(c.recv_close()[0], 1002)
        self.assertTrue(c.wait_tcp_close(H.t(3)),
                        "TCP still open 3 s after close 1002")

    def test_nothing_after_close(self):
        """RFC 6455 §5.5.1: after sending its close, an endpoint sends no
        more data frames; the server's answer to close is the last frame."""
        c = self.client()
        c.send_close(1000, b"")
        c.send_frame(OP_TEXT, b"after close")
        self.assertEqual(c.recv_close()[0], 1000)
        self.assertTrue(c.wait_tcp_close())


def _add_frame_tests():
    for rsv, name in ((4, "rsv1"), (2, "rsv2"), (1, "rsv3")):
        def rsv_test(self, rsv=rsv):
            c = self.client()
            c.send_frame(OP_TEXT, b"hello", rsv=rsv)
            self.expect_close(c, 1002)
        rsv_test.__doc__ = ("RFC 6455 §5.2: %s set with no extension "
                            "negotiated: 1002." % name.upper())
        setattr(FrameTest, "test_%s_set" % name, rsv_test)

    for op in RESERVED_OPCODES:
        def op_test(self, op=op):
            c = self.client()
            c.send_frame(op, b"x")
            self.expect_close(c, 1002)
        op_test.__doc__ = "RFC 6455 §5.2: reserved opcode 0x%X: 1002." % op
        setattr(FrameTest, "test_reserved_opcode_0x%X" % op, op_test)

    for name, bad in BAD_UTF8_ROWS:
        def utf8_test(self, bad=bad):
            c = self.client()
            c.send_frame(OP_TEXT, b"a" + bad + b"z")
            self.expect_close(c, 1007)
        utf8_test.__doc__ = ("RFC 6455 §8.1 / RFC 3629 §3-4: text with %s "
                             "(%s): 1007." % (name.replace("_", " "),
                                              bad.hex(" ")))
        setattr(FrameTest, "test_invalid_utf8_%s" % name, utf8_test)

    for code in INVALID_CLOSE_CODES:
        def bad_close(self, code=code):
            c = self.client()
            c.send_close(code, b"r")
            self.expect_close(c, 1002)
        bad_close.__doc__ = ("RFC 6455 §7.4.1/§7.4.2: close code %d may not "
                             "be sent on the wire: 1002." % code)
        setattr(FrameTest, "test_close_invalid_code_%04d" % code, bad_close)

    for code in VALID_CLOSE_CODES:
        def good_close(self, code=code):
            c = self.client()
            c.send_close(code, b"bye")
            self.expect_close(c, code)
        good_close.__doc__ = ("RFC 6455 §5.5.1/§7.4: valid close code %d is "
                              "echoed, then TCP closes." % code)
        setattr(FrameTest, "test_close_valid_code_%04d" % code, good_close)


_add_frame_tests()


# ---------------------------------------------------------------------------
def make_request(method="GET", path="/", version="HTTP/1.1", host=True,
                 upgrade="websocket", connection="Upgrade", key=None,
                 ws_version="13", extra=(), port=0):
    """An upgrade request; pass None for a header to leave it out."""
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode()
    lines = ["%s %s %s" % (method, path, version)]
    if host:
        lines.append("Host: 127.0.0.1:%d" % port)
    if upgrade is not None:
        lines.append("Upgrade: %s" % upgrade)
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not False:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if ws_version is not None:
        lines.append("Sec-WebSocket-Version: %s" % ws_version)
    lines.extend(extra)
    return key, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HandshakeTest(_Base):
    """The opening handshake (RFC 6455 §4.2.1/§4.2.2) over raw HTTP."""

    def answer(self, request):
        """Send request bytes; return (status, headers)."""
        c = self.client(handshake=False)
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            status, headers, _ = c.read_response()
        except H.Closed:
            self.fail("server closed without an HTTP answer")
        except socket.timeout:
            self.fail("no HTTP answer within %.1fs" % c.timeout)
        except ConnectionResetError:
            self.fail("connection reset before the HTTP answer was read")
        return status, headers

    def req(self, **kw):
        return make_request(port=self.server.port, **kw)

    def test_valid_upgrade(self):
        """RFC 6455 §4.2.2: a valid request gets 101 with Upgrade,
        Connection and the right Sec-WebSocket-Accept, and no extension
        or subprotocol that was not asked for."""
        key, r = self.req()
        status, h = self.answer(r)
        self.assertEqual(status, 101)
        self.assertEqual(h.get("sec-websocket-accept"), H.accept_for(key))
        self.assertEqual(h.get("upgrade", "").lower(), "websocket")
        self.assertIn("upgrade", [t.strip().lower() for t in
                                  h.get("connection", "").split(",")])
        self.assertNotIn("sec-websocket-extensions", h)
        self.assertNotIn("sec-websocket-protocol", h)

    def test_rfc_sample_key(self):
        """RFC 6455 §1.3: key dGhlIHNhbXBsZSBub25jZQ== gets accept
        s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
        _, r = self.req(key="dGhlIHNhbXBsZSBub25jZQ==")
        status, h = self.answer(r)
        self.assertEqual(status, 101)
        self.assertEqual(h.get("sec-websocket-accept"),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_tokens_case_and_lists(self):
        """RFC 6455 §4.2.1 / RFC 7230 §6.1: header names and the
        "websocket"/"Upgrade" tokens are case-insensitive, and Connection
        may be a list ("keep-alive, Upgrade"): 101."""
        key = base64.b64encode(os.urandom(16)).decode()
        r = ("GET /chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1\r\n"
             "upgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
             "sec-websocket-key: %s\r\nsec-websocket-version: 13\r\n\r\n"
             % key).encode()
        status, h = self.answer(r)
        self.assertEqual(status, 101)
        self.assertEqual(h.get("sec-websocket-accept"), H.accept_for(key))

    def test_version_8(self):
        """RFC 6455 §4.2.2/§4.4: Sec-WebSocket-Version 8: 426 with
        "Sec-WebSocket-Version: 13"."""
        _, r = self.req(ws_version="8")
        status, h = self.answer(r)
        self.assertEqual(status, 426)
        self.assertEqual(h.get("sec-websocket-version"), "13")

    def test_missing_key(self):
        """RFC 6455 §4.2.1 item 5: no Sec-WebSocket-Key: 400."""
        _, r = self.req(key=False)
        self.assertEqual(self.answer(r)[0], 400)

    def test_key_15_bytes(self):
        """RFC 6455 §4.2.1 item 5: a key that decodes to 15 bytes: 400."""
        key = base64.b64encode(b"\x01" * 15).decode()
        _, r = self.req(key=key)
        self.assertEqual(self.answer(r)[0], 400)

    def test_key_not_base64(self):
        """RFC 6455 §4.2.1 item 5: a key that is not base64: 400."""
        _, r = self.req(key="!!!!!!!!!!!!!!!!!!!!!!==")
        self.assertEqual(self.answer(r)[0], 400)

    def test_post(self):
        """RFC 6455 §4.2.1 item 1: the method must be GET; POST with
        upgrade headers: 405."""
        _, r = self.req(method="POST", extra=("Content-Length: 0",))
        self.assertEqual(self.answer(r)[0], 405)

    def test_http_1_0(self):
        """RFC 6455 §4.2.1 item 1: HTTP/1.1 or higher; HTTP/1.0: 400."""
        _, r = self.req(version="HTTP/1.0")
        self.assertEqual(self.answer(r)[0], 400)

    def test_no_host(self):
        """RFC 6455 §4.2.1 item 2: no Host header: 400."""
        _, r = self.req(host=False)
        self.assertEqual(self.answer(r)[0], 400)

    def test_connection_keep_alive_only(self):
        """RFC 6455 §4.2.1 item 4: Connection without the Upgrade token
        (keep-alive only): 400."""
        _, r = self.req(connection="keep-alive")
        self.assertEqual(self.answer(r)[0], 400)

    def test_headers_too_large(self):
        """RFC 6585 §5 (RFC 6455 §4.2.1 precondition): request headers over
        16 KiB: 431."""
        _, r = self.req(extra=("X-Filler: " + "a" * (17 * 1024),))
        self.assertEqual(self.answer(r)[0], 431)

    def test_garbage_request_line(self):
        """RFC 6455 §4.2.1 / RFC 7230 §3.1.1: a request line that is not
        HTTP: 400."""
        self.assertEqual(self.answer(b"\x16\x03\x01 hello there\r\n"
                                     b"\r\n")[0], 400)

    def test_two_keys(self):
        """RFC 6455 §11.3.1: Sec-WebSocket-Key must not appear more than
        once: 400."""
        _, r = self.req(extra=("Sec-WebSocket-Key: "
                               "dGhlIHNhbXBsZSBub25jZQ==",))
        self.assertEqual(self.answer(r)[0], 400)

    def test_connect_method(self):
        """RFC 6455 §4.2.1 item 1: CONNECT with upgrade headers is not a
        handshake (http-parser flags it as an upgrade): 405."""
        _, r = self.req(method="CONNECT", path="127.0.0.1:80")
        self.assertEqual(self.answer(r)[0], 405)

    def test_error_closes_connection(self):
        """RFC 6455 §4.2.2 / RFC 7230 §6.6: after refusing a handshake
        (400) the server closes the TCP connection."""
        _, r = self.req(key=False)
        c = self.client(handshake=False)
        c.send(r)
        status, h, _ = c.read_response(body=True)
        self.assertEqual(status, 400)
        self.assertTrue(c.wait_tcp_close(), "connection left open")

    def test_plain_get_426(self):
        """RFC 6455 §4.2.1: a plain GET / without upgrade headers is not
        a handshake; ws_echo has no HTTP handler and no paths, so every
        path is an endpoint: 426 with Upgrade: websocket (RFC 7231
        §6.5.15), as node ws answers."""
        r = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        status, headers = self.answer(r)[:2]
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("upgrade"), "websocket")
        self.assertEqual(headers.get("sec-websocket-version"), "13")

    def test_hostile_burst_then_client(self):
        """RFC 6455 §4.2.1: after 20 hostile connections (some cut in the
        middle of a request or frame) a normal client is still served."""
        for i in range(20):
            c = H.RawClient.for_server(self.server)
            try:
                if i % 4 == 0:
                    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nUpgr")
                elif i % 4 == 1:
                    c.handshake()
                    c.send(build_frame(OP_TEXT, b"x" * 1000)[:50])
                elif i % 4 == 2:
                    c.send(b"\x00" * 64)
            finally:
                c.close()
        self.assert_echo_works()


if __name__ == "__main__":
    unittest.main(verbosity=2)
