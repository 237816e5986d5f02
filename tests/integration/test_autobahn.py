"""test_autobahn.py - ws_echo against the Autobahn TestSuite fuzzingclient
cases 1-7, 9 (a few sizes per group) and 10, rewritten in Python from the
suite's case descriptions (the table is autobahn_cases.py). One test per
case, named after its number (test_6_4_3 is case 6.4.3).

The verdict follows Autobahn's: the events the client sees (messages and
pongs, compared byte for byte) must be the strict expected ones, and the
close must be right: the endpoint that sends the first close frame, the
close code (the exact one ws_echo sends), a clean close where required,
and the server closing the TCP connection first (RFC 6455 §7.1.1). Any
frame from the server that breaks RFC 6455 (masked, RSV bits, a data frame
after its close, ...) fails the case too. Timeouts are for liveness only.

Run from the repository root:
    /usr/bin/python3 tests/integration/test_autobahn.py
Environment: BUILD (default "build"), WS_TEST_VALGRIND=1.
"""

import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import autobahn_cases as C  # noqa: E402
import wsharness as H  # noqa: E402
from wsharness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,  # noqa: E402
                       OP_PONG, OP_TEXT)

IO_TIMEOUT = H.t(30)     # one blocking send or receive
EVENT_TIMEOUT = H.t(20)  # the expected events (16 MiB echoes included)
CLOSE_TIMEOUT = H.t(5)   # the server's close frame
DROP_TIMEOUT = H.t(5)    # the server's TCP close after the close frames


def parse_frame(buf, pos):
    """(Frame, end) for a whole frame at buf[pos:], or None if the frame is
    not complete yet (RFC 6455 §5.2)."""
    if len(buf) - pos < 2:
        return None
    b0, b1 = buf[pos], buf[pos + 1]
    n, head = b1 & 0x7F, 2
    if n == 126:
        head = 4
    elif n == 127:
        head = 10
    if len(buf) - pos < head:
        return None
    if n == 126:
        n = struct.unpack_from("!H", buf, pos + 2)[0]
    elif n == 127:
        n = struct.unpack_from("!Q", buf, pos + 2)[0]
    masked = bool(b1 & 0x80)
    start = pos + head + (4 if masked else 0)
    end = start + n
    if len(buf) < end:
        return None
    payload = bytes(buf[start:end])
    if masked:
        payload = H.mask_bytes(payload, bytes(buf[start - 4:start]))
    return H.Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked,
                   payload), end


class Session:
    """One connection driven as Autobahn's fuzzing client drives it. A
    reader thread records what the server sends; only the test's thread
    writes, so frames are never interleaved."""

    def __init__(self, server):
        self.client = H.RawClient.for_server(server, timeout=IO_TIMEOUT)
        try:
            self.client.handshake()
        except BaseException:
            self.client.close()
            raise
        self.sock = self.client.sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cv = threading.Condition()
        self.events = []        # ("text" | "binary" | "ping" | "pong", data)
        self.violations = []    # what the server sent against RFC 6455
        self.close = None       # (code or None, reason) of its close frame
        self.close_sent = False
        self.close_written = False  # our close frame left without error
        self.closed_by_me = None  # True if our close frame went first
        self.tcp_end = None     # "fin", "reset", "timeout", "dropped"
        self._dropping = False
        self._message = None    # (kind, [payloads]) of a fragmented message
        self._reader = threading.Thread(
            target=self._read, args=(bytearray(self.client.buf),),
            daemon=True)
        self._reader.start()

    # -- reader thread -----------------------------------------------------
    def _read(self, buf):
        end = "fin"
        try:
            while True:
                buf = self._take_frames(buf)
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            end = "timeout"
        except OSError:
            end = "reset"
        with self.cv:
            self.tcp_end = "dropped" if self._dropping else end
            self.cv.notify_all()

    def _take_frames(self, buf):
        """Handle every whole frame in buf; return the rest."""
        pos = 0
        while True:
            parsed = parse_frame(buf, pos)
            if parsed is None:
                break
            frame, pos = parsed
            self._on_frame(frame)
        if pos:
            del buf[:pos]
        return buf

    def _violation(self, what):
        with self.cv:
            self.violations.append(what)

    def _record(self, event):
        with self.cv:
            self.events.append(event)
            self.cv.notify_all()

    def _on_frame(self, f):
        if f.masked:
            self._violation("masked frame (RFC 6455 §5.1)")
        if f.rsv:
            self._violation("RSV bits %d (RFC 6455 §5.2)" % f.rsv)
        if self.close is not None:
            self._violation("opcode %d after the close frame (RFC 6455 "
                            "§5.5.1)" % f.opcode)
        if f.opcode in (OP_CONT, OP_TEXT, OP_BINARY):
            self._on_data(f)
        elif f.opcode in (OP_CLOSE, OP_PING, OP_PONG):
            self._on_control(f)
        else:
            self._violation("reserved opcode %d (RFC 6455 §5.2)" % f.opcode)

    def _on_data(self, f):
        """Reassemble messages (RFC 6455 §5.4); the server may fragment."""
        if f.opcode == OP_CONT and self._message is None:
            self._violation("continuation with no message (RFC 6455 §5.4)")
            return
        if f.opcode != OP_CONT:
            if self._message is not None:
                self._violation("new message inside a fragmented one "
                                "(RFC 6455 §5.4)")
            self._message = (C.KIND[f.opcode], [])
        self._message[1].append(f.payload)
        if f.fin:
            kind, parts = self._message
            self._message = None
            self._record((kind, b"".join(parts)))

    def _on_control(self, f):
        if not f.fin or len(f.payload) > 125:
            self._violation("fragmented or %d-byte control frame (RFC 6455 "
                            "§5.5)" % len(f.payload))
        if f.opcode == OP_PING:
            self._record(("ping", f.payload))
        elif f.opcode == OP_PONG:
            self._record(("pong", f.payload))
        else:
            self._on_close(f.payload)

    def _on_close(self, payload):
        """RFC 6455 §5.5.1: empty, or a code and a UTF-8 reason."""
        if len(payload) == 1:
            self._violation("1-byte close payload (RFC 6455 §5.5.1)")
        code = struct.unpack("!H", payload[:2])[0] if len(payload) > 1 \
            else None
        reason = payload[2:]
        if not C.is_utf8(reason):
            self._violation("close reason not UTF-8 (RFC 6455 §5.5.1)")
        with self.cv:
            if self.close is None:
                self.close = (code, reason)
            self.cv.notify_all()

    # -- test thread -------------------------------------------------------
    def wait_until(self, predicate, timeout):
        with self.cv:
            return self.cv.wait_for(predicate, timeout)

    def ended(self):
        """True once the server has sent its close frame or TCP ended."""
        return self.close is not None or self.tcp_end is not None

    def write(self, data, chop=None, pause=0.0):
        """Write data in chop-byte pieces; stop quietly (returning False)
        once TCP is gone: a server that fails the connection closes it."""
        step = chop or max(len(data), 1)
        for at in range(0, max(len(data), 1), step):
            if self.tcp_end is not None:
                return False
            try:
                self.sock.sendall(data[at:at + step])
            except OSError:
                return False
            if pause:
                time.sleep(pause)
        return True

    def send_close(self, payload):
        """Our close frame; the first one sent decides closed_by_me."""
        with self.cv:
            self.close_sent = True
            if self.closed_by_me is None:
                self.closed_by_me = self.close is None
        if self.write(H.build_frame(OP_CLOSE, payload)):
            self.close_written = True

    def was_clean(self):
        """Autobahn's wasClean: both close frames went through, then the
        server closed TCP."""
        return (self.close is not None and self.close_written
                and self.tcp_end == "fin")

    def run(self, steps):
        for step in steps:
            if isinstance(step, C.Send):
                self.write(step.data, step.chop, step.pause)
            elif isinstance(step, C.Close):
                self.send_close(step.payload)
            elif isinstance(step, C.Await):
                self.await_events(step.count)
            elif isinstance(step, C.Quiet):
                self.expect_quiet(step.seconds)
            else:
                raise TypeError("unknown step %r" % (step,))

    def await_events(self, count):
        if not self.wait_until(
                lambda: len(self.events) >= count or self.ended(),
                EVENT_TIMEOUT):
            raise AssertionError("no event #%d within %.0f s; got %s"
                                 % (count, EVENT_TIMEOUT,
                                    describe(self.events)))

    def expect_quiet(self, seconds):
        seen = len(self.events)
        if self.wait_until(lambda: len(self.events) > seen or self.ended(),
                           seconds):
            raise AssertionError(
                "the server reacted to a valid part of the message: "
                "events %s, close %r, TCP %s" % (describe(self.events),
                                                 self.close, self.tcp_end))

    def finish(self, expect, n_events):
        """The closing handshake as Autobahn performs it."""
        if expect.by_me and not self.close_sent:
            # Autobahn closes (1000) once it has every expected event.
            self.wait_until(lambda: len(self.events) >= n_events
                            or self.ended(), EVENT_TIMEOUT)
            self.send_close(H.close_payload(1000))
        self.wait_until(self.ended, CLOSE_TIMEOUT)
        if self.close is None:
            return  # the case has failed; end() drops the connection
        if not self.close_sent:
            # Autobahn answers the server's close with the same code.
            code = self.close[0]
            self.send_close(b"" if code is None else H.close_payload(code))
        self.wait_until(lambda: self.tcp_end is not None, DROP_TIMEOUT)

    def end(self):
        """Drop the connection if the server did not; join the reader."""
        with self.cv:
            if self.tcp_end is None:
                self._dropping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(H.t(5))
        self.client.close()


def describe(events, limit=6):
    """A short text for a list of events: kind, length, first bytes."""
    def one(e):
        data = e[1]
        head = data[:12].hex(" ") + (" ..." if len(data) > 12 else "")
        return "%s(%d: %s)" % (e[0], len(data), head)
    out = [one(e) for e in events[:limit]]
    if len(events) > limit:
        out.append("... %d in all" % len(events))
    return "[" + ", ".join(out) + "]"


def first_difference(got, want):
    """Where got and want (event lists) part: a message for a failure."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "event #%d: got %s, want %s" % (i + 1, describe([g]),
                                                   describe([w]))
    return "got %d events %s, want %d %s" % (len(got), describe(got),
                                             len(want), describe(want))


class _Chapter(H.EchoServerTest):
    """One ws_echo per chapter; each case on a fresh connection."""
    chapter = None

    def tearDown(self):
        self.assertTrue(self.server.alive(), "ws_echo died during the case")

    def run_case(self, case):
        steps, want = case.script()
        session = Session(self.server)
        try:
            session.run(steps)
            session.finish(case.close, len(want))
        finally:
            session.end()
        self.check_events(session, want)
        self.check_close(session, case.close)

    def check_events(self, s, want):
        self.assertEqual(s.violations, [], "server frames break RFC 6455")
        if s.events != want:
            self.fail("events differ: " + first_difference(s.events, want))

    def check_close(self, s, expect):
        """Autobahn's close verdict, with the exact close code."""
        self.assertIsNotNone(s.close, "no close frame from the server "
                             "within %.0f s (TCP: %s)"
                             % (CLOSE_TIMEOUT, s.tcp_end))
        self.assertEqual(s.closed_by_me, expect.by_me,
                         "the first close frame came from the %s"
                         % ("server" if expect.by_me else "client"))
        self.assertEqual(s.close[0], expect.code,
                         "close code (reason %r)" % (s.close[1],))
        # RFC 6455 §7.1.1: the server closes TCP first. Autobahn takes a
        # reset too; ws_echo always shuts its side down first (a FIN), even
        # after failing the connection, so anything else is a failure.
        self.assertEqual(s.tcp_end, "fin", "how TCP ended after the close "
                         "frames (\"dropped\": the client gave up after "
                         "%.0f s)" % DROP_TIMEOUT)
        if expect.clean:
            self.assertTrue(s.was_clean(), "close handshake not clean")


class FramingTest(_Chapter):
    """1.x: text and binary messages of every length encoding."""
    chapter = "1"


class PingPongTest(_Chapter):
    """2.x: pings and pongs."""
    chapter = "2"


class ReservedBitsTest(_Chapter):
    """3.x: RSV bits without an extension."""
    chapter = "3"


class OpcodesTest(_Chapter):
    """4.x: reserved opcodes."""
    chapter = "4"


class FragmentationTest(_Chapter):
    """5.x: fragmented messages and control frames between fragments."""
    chapter = "5"


class Utf8Test(_Chapter):
    """6.x: UTF-8 validation of text messages, failing fast."""
    chapter = "6"


class CloseTest(_Chapter):
    """7.x: the closing handshake and close codes."""
    chapter = "7"


class LimitsTest(_Chapter):
    """9.x: big messages, many frames, small writes, round trips."""
    chapter = "9"


class MiscTest(_Chapter):
    """10.x: auto-fragmented messages."""
    chapter = "10"


CHAPTER_CLASSES = (FramingTest, PingPongTest, ReservedBitsTest, OpcodesTest,
                   FragmentationTest, Utf8Test, CloseTest, LimitsTest,
                   MiscTest)


def _add_case_tests():
    for cls in CHAPTER_CLASSES:
        for case in C.CHAPTERS[cls.chapter]:
            def test(self, case=case):
                self.run_case(case)
            test.__doc__ = "%s: %s." % (case.id, case.doc)
            setattr(cls, "test_" + case.id.replace(".", "_"), test)


_add_case_tests()


def _by_case_number(a, b):
    """Order test_6_4_3 before test_6_10_1, as Autobahn numbers them."""
    def key(name):
        return [int(part) for part in name[len("test_"):].split("_")]
    return (key(a) > key(b)) - (key(a) < key(b))


def load_tests(loader, tests, pattern):
    """The chapters in Autobahn's order, each case in number order."""
    ordered = unittest.TestLoader()
    ordered.sortTestMethodsUsing = _by_case_number
    suite = unittest.TestSuite()
    for cls in CHAPTER_CLASSES:
        suite.addTests(ordered.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    unittest.main(verbosity=2)
