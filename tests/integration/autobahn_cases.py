"""autobahn_cases.py - the case table for test_autobahn.py: the Autobahn
TestSuite fuzzingclient cases 1-7, 9 and 10, rewritten from the suite's
case descriptions (no Autobahn code is used), numbered as Autobahn numbers
them.

A Case row holds:
- id: Autobahn's case number ("6.4.3");
- doc: one line, what the client sends and the RFC 6455 section;
- close: Expect, the close behaviour Autobahn requires (who sends the first
  close frame, whether the close must be clean) with the exact close code
  ws_echo sends, where Autobahn would also take a second code or none;
- script: a function returning (steps, events), the client's steps and the
  exact events (messages and pongs) it must see before the server's close
  frame. Functions, so that the 9.x payloads (up to 16 MiB) are built only
  when their case runs.

The events are those of Autobahn's strict verdict ("OK"): where Autobahn
also accepts a lax one ("NON-STRICT", for example a server that fails only
at the end of an invalid UTF-8 message), the test requires the strict one.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsharness as H  # noqa: E402
from wsharness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,  # noqa: E402
                       OP_PONG, OP_TEXT)

Case = collections.namedtuple("Case", "id doc close script")
Expect = collections.namedtuple("Expect", "by_me code clean")

# Steps. Send: write data, in writes of chop bytes if chop is set, pausing
# pause seconds after each write. Close: send a close frame with payload as
# Autobahn's own close (it decides who closed first); a close frame sent
# with Send is just a frame. Await: wait until count events have arrived.
# Quiet: nothing may arrive for seconds.
Send = collections.namedtuple("Send", "data chop pause")
Close = collections.namedtuple("Close", "payload")
Await = collections.namedtuple("Await", "count")
Quiet = collections.namedtuple("Quiet", "seconds")

# The client closes with 1000 once it has every event; clean close.
NORMAL = Expect(by_me=True, code=1000, clean=True)
# The server fails the connection (RFC 6455 §7.1.7) with this code.
PROTOCOL_ERROR = Expect(by_me=False, code=1002, clean=False)
INVALID_PAYLOAD = Expect(by_me=False, code=1007, clean=False)

# Autobahn's "sync": a pause after each write so that the frames (or the
# octets) reach the server one by one instead of in one read.
FRAME_PAUSE = 0.005
OCTET_PAUSE = 0.0005
# Autobahn waits 1 s in 6.4.x to show that the valid start of a message is
# not failed; a quarter of that is as good a witness here.
FAIL_FAST_QUIET = H.t(0.25)

KIND = {OP_TEXT: "text", OP_BINARY: "binary"}
HELLO = b"Hello, world!"
# "Hello-µ@ßöäüàá-UTF-8!!" and Greek "kosme", the UTF-8 samples of 6.2.
HELLO_STR = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"
HELLO_UTF8 = HELLO_STR.encode("utf-8")
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
# "kosme", a UTF-16 surrogate (U+D800), "edited": invalid (6.3, 7.5.1).
KOSME_SURROGATE = KOSME + b"\xed\xa0\x80edited"
# "kosme", U+110000 (beyond Unicode: F4 90 80 80), "edited": invalid from
# the 90 on.
KOSME_TOO_HIGH = KOSME + b"\xf4\x90\x80\x80edited"


def frame(opcode, payload=b"", fin=True, rsv=0):
    """One masked client frame (RFC 6455 §5.2, §5.3)."""
    return H.build_frame(opcode, payload, fin=fin, rsv=rsv)


def writes(frames, chop=None, pause=0.0):
    """One Send step per frame."""
    return [Send(f, chop, pause) for f in frames]


def framewise(frames):
    """Autobahn's "frame-wise chops": one frame per write, then a pause."""
    return writes(frames, pause=FRAME_PAUSE)


def octetwise(frames):
    """Autobahn's "octet-wise chops": one octet per write, then a pause."""
    return writes(frames, chop=1, pause=OCTET_PAUSE)


def one_write(frames):
    """Autobahn's "in one chop": every frame in a single write."""
    return [Send(b"".join(frames), None, 0.0)]


def fill(seed, n):
    """n bytes of seed repeated."""
    return (seed * (n // len(seed) + 1))[:n]


def fragments(opcode, payload, size):
    """A message as frames of size payload bytes (RFC 6455 §5.4)."""
    cuts = list(range(0, len(payload), size)) or [0]
    return [frame(opcode if i == 0 else OP_CONT, payload[at:at + size],
                  fin=(i == len(cuts) - 1)) for i, at in enumerate(cuts)]


def script(make_steps, events=()):
    """A script from a function that makes the steps (each run gets fresh
    mask keys) and the events expected."""
    return lambda: (list(make_steps()), list(events))


# ---------------------------------------------------------------------------
# 1.x Framing: text (1.1.x) and binary (1.2.x) messages of every payload
# length encoding, echoed.

LENGTHS_1 = (0, 125, 126, 127, 128, 65535, 65536, 65536)


def length_form(n):
    """The RFC 6455 §5.2 payload length encoding n needs."""
    return "7-bit" if n < 126 else "16-bit" if n < 65536 else "64-bit"


def chapter1():
    rows = []
    for group, op, seed in ((1, OP_TEXT, b"*"), (2, OP_BINARY, b"\xfe")):
        for i, n in enumerate(LENGTHS_1, 1):
            chop = 997 if i == 8 else None  # 1.x.8: in 997-octet writes
            doc = "%s message of %d bytes%s, echoed; RFC 6455 §5.2 (%s " \
                  "length), §5.6" % (KIND[op], n, " in 997-octet writes"
                                     if chop else "", length_form(n))
            rows.append(Case("1.%d.%d" % (group, i), doc, NORMAL,
                             echo_script(op, seed, n, chop)))
    return rows


def echo_script(op, seed, n, chop=None):
    def run():
        payload = fill(seed, n)
        return [Send(frame(op, payload), chop, 0.0)], [(KIND[op], payload)]
    return run


# ---------------------------------------------------------------------------
# 2.x Pings and pongs (RFC 6455 §5.5.2, §5.5.3).

def ping_script(payloads, steps=writes):
    """Pings with these payloads; a pong for each, in order."""
    return script(lambda: steps([frame(OP_PING, p) for p in payloads]),
                  [("pong", p) for p in payloads])


def chapter2():
    ten = [b"payload-%d" % i for i in range(10)]
    binary8 = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    unsolicited = b"unsolicited pong payload"
    return [
        Case("2.1", "ping with no payload: pong; RFC 6455 §5.5.2", NORMAL,
             ping_script([b""])),
        Case("2.2", "ping with a short text payload: pong with the same "
             "payload; RFC 6455 §5.5.2, §5.5.3", NORMAL,
             ping_script([HELLO])),
        Case("2.3", "ping with an 8-byte binary payload: pong with the "
             "same payload; RFC 6455 §5.5.3", NORMAL,
             ping_script([binary8])),
        Case("2.4", "ping with a 125-byte payload (the most a control "
             "frame holds): pong; RFC 6455 §5.5", NORMAL,
             ping_script([b"\xfe" * 125])),
        Case("2.5", "ping with a 126-byte payload: 1002; RFC 6455 §5.5 "
             "(control frames at most 125 bytes)", PROTOCOL_ERROR,
             script(lambda: writes([frame(OP_PING, b"\xfe" * 126)]))),
        Case("2.6", "ping with a 125-byte payload in one-octet writes: "
             "pong; RFC 6455 §5.5.2", NORMAL,
             ping_script([b"\xfe" * 125], octetwise)),
        Case("2.7", "unsolicited pong with no payload: ignored; RFC 6455 "
             "§5.5.3", NORMAL,
             script(lambda: writes([frame(OP_PONG)]))),
        Case("2.8", "unsolicited pong with a payload: ignored; RFC 6455 "
             "§5.5.3", NORMAL,
             script(lambda: writes([frame(OP_PONG, unsolicited)]))),
        Case("2.9", "unsolicited pong, then a ping: one pong for the ping; "
             "RFC 6455 §5.5.3", NORMAL,
             script(lambda: writes([frame(OP_PONG, unsolicited),
                                    frame(OP_PING, b"ping payload")]),
                    [("pong", b"ping payload")])),
        Case("2.10", "ten pings: ten pongs in order; RFC 6455 §5.5.2",
             NORMAL, ping_script(ten)),
        Case("2.11", "ten pings in one-octet writes: ten pongs in order; "
             "RFC 6455 §5.5.2", NORMAL, ping_script(ten, octetwise)),
    ]


# ---------------------------------------------------------------------------
# 3.x Reserved bits: no extension is negotiated, so any RSV bit fails the
# connection (RFC 6455 §5.2).

def rsv_after_text_script(rsv, steps):
    """A valid text message, the same with RSV bits set, then a ping: the
    first is echoed, the second fails the connection before the ping."""
    return script(lambda: steps([frame(OP_TEXT, HELLO),
                                 frame(OP_TEXT, HELLO, rsv=rsv),
                                 frame(OP_PING, HELLO)]),
                  [("text", HELLO)])


def chapter3():
    def alone(op, payload, rsv):
        return script(lambda: writes([frame(op, payload, rsv=rsv)]))
    return [
        Case("3.1", "text message with RSV = 1: 1002; RFC 6455 §5.2",
             PROTOCOL_ERROR, alone(OP_TEXT, HELLO, 1)),
        Case("3.2", "text, text with RSV = 2, ping: one echo, then 1002; "
             "RFC 6455 §5.2", PROTOCOL_ERROR,
             rsv_after_text_script(2, writes)),
        Case("3.3", "as 3.2 with RSV = 3, frame-wise writes: one echo, "
             "then 1002; RFC 6455 §5.2", PROTOCOL_ERROR,
             rsv_after_text_script(3, framewise)),
        Case("3.4", "as 3.2 with RSV = 4, octet-wise writes: one echo, "
             "then 1002; RFC 6455 §5.2", PROTOCOL_ERROR,
             rsv_after_text_script(4, octetwise)),
        Case("3.5", "binary message with RSV = 5: 1002; RFC 6455 §5.2",
             PROTOCOL_ERROR,
             alone(OP_BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", 5)),
        Case("3.6", "ping with RSV = 6: 1002; RFC 6455 §5.2",
             PROTOCOL_ERROR, alone(OP_PING, HELLO, 6)),
        Case("3.7", "close frame with RSV = 7: 1002; RFC 6455 §5.2",
             PROTOCOL_ERROR, alone(OP_CLOSE, H.close_payload(1000), 7)),
    ]


# ---------------------------------------------------------------------------
# 4.x Reserved opcodes 3-7 (non-control, 4.1.x) and 11-15 (control, 4.2.x)
# fail the connection (RFC 6455 §5.2).

RESERVED_PAYLOAD = b"reserved opcode payload"


def chapter4():
    rows = []
    for group, opcodes in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        kind = "non-control" if group == 1 else "control"
        for i, op in enumerate(opcodes, 1):
            # x.1 and x.3 have no payload, the others do; x.3-x.5 come
            # between a text message (echoed) and a ping (never answered).
            payload = b"" if i in (1, 3) else RESERVED_PAYLOAD
            cid = "4.%d.%d" % (group, i)
            if i <= 2:
                doc = "frame with reserved %s opcode %d%s: 1002; RFC 6455 " \
                      "§5.2" % (kind, op, " and a payload" if payload else "")
                rows.append(Case(cid, doc, PROTOCOL_ERROR, script(
                    lambda op=op, p=payload: writes([frame(op, p)]))))
            else:
                doc = "text, reserved %s opcode %d%s, ping: one echo, then " \
                      "1002; RFC 6455 §5.2" % (kind, op, " with a payload"
                                               if payload else "")
                rows.append(Case(cid, doc, PROTOCOL_ERROR, script(
                    lambda op=op, p=payload: writes([
                        frame(OP_TEXT, HELLO), frame(op, p),
                        frame(OP_PING)]),
                    [("text", HELLO)])))
    return rows


# ---------------------------------------------------------------------------
# 5.x Fragmentation (RFC 6455 §5.4).

def two_fragments(steps, ping=None):
    """fragment1 + fragment2 as a text message, a ping between them."""
    def frames():
        out = [frame(OP_TEXT, b"fragment1", fin=False)]
        if ping is not None:
            out.append(frame(OP_PING, ping))
        return steps(out + [frame(OP_CONT, b"fragment2")])
    events = [("pong", ping)] if ping is not None else []
    return script(frames, events + [("text", b"fragment1fragment2")])


def orphan_continuation(fin, steps):
    """A continuation with nothing to continue, then a text message."""
    return script(lambda: steps([
        frame(OP_CONT, b"non-continuation payload", fin=fin),
        frame(OP_TEXT, HELLO)]))


def repeated_orphans(fin):
    """5.16/5.17: twice an orphan continuation then a 2-frame message."""
    def frames():
        out = []
        for _ in range(2):
            out += [frame(OP_CONT, b"fragment1", fin=fin),
                    frame(OP_TEXT, b"fragment2", fin=False),
                    frame(OP_CONT, b"fragment3")]
        return writes(out)
    return script(frames)


def pings_inside_message(steps):
    """5.19/5.20: five fragments with a ping after the 2nd and the 4th. The
    client waits for the first pong (Autobahn sleeps 1 s) before sending
    the rest, so the pong must come while the message is still open."""
    parts = [b"fragment%d" % i for i in range(1, 6)]

    def run():
        first = steps([frame(OP_TEXT, parts[0], fin=False),
                       frame(OP_CONT, parts[1], fin=False),
                       frame(OP_PING, b"pongme 1!")])
        rest = steps([frame(OP_CONT, parts[2], fin=False),
                      frame(OP_CONT, parts[3], fin=False),
                      frame(OP_PING, b"pongme 2!"),
                      frame(OP_CONT, parts[4])])
        return first + [Await(1)] + rest, [
            ("pong", b"pongme 1!"), ("pong", b"pongme 2!"),
            ("text", b"".join(parts))]
    return run


def chapter5():
    ping = b"ping payload"
    return [
        Case("5.1", "ping in 2 fragments: 1002; RFC 6455 §5.4, §5.5 "
             "(control frames are not fragmented)", PROTOCOL_ERROR,
             script(lambda: writes([frame(OP_PING, b"fragment1", fin=False),
                                    frame(OP_CONT, b"fragment2")]))),
        Case("5.2", "pong in 2 fragments: 1002; RFC 6455 §5.4, §5.5",
             PROTOCOL_ERROR,
             script(lambda: writes([frame(OP_PONG, b"fragment1", fin=False),
                                    frame(OP_CONT, b"fragment2")]))),
        Case("5.3", "text in 2 fragments: echoed whole; RFC 6455 §5.4",
             NORMAL, two_fragments(writes)),
        Case("5.4", "as 5.3, frame-wise writes; RFC 6455 §5.4", NORMAL,
             two_fragments(framewise)),
        Case("5.5", "as 5.3, octet-wise writes; RFC 6455 §5.4", NORMAL,
             two_fragments(octetwise)),
        Case("5.6", "text in 2 fragments with a ping between: pong, then "
             "the message; RFC 6455 §5.4 (control frames interleave)",
             NORMAL, two_fragments(writes, ping)),
        Case("5.7", "as 5.6, frame-wise writes; RFC 6455 §5.4", NORMAL,
             two_fragments(framewise, ping)),
        Case("5.8", "as 5.6, octet-wise writes; RFC 6455 §5.4", NORMAL,
             two_fragments(octetwise, ping)),
        Case("5.9", "continuation (FIN set) with nothing to continue, then "
             "text, in one write: 1002; RFC 6455 §5.4", PROTOCOL_ERROR,
             orphan_continuation(True, one_write)),
        Case("5.10", "as 5.9, frame-wise writes; RFC 6455 §5.4",
             PROTOCOL_ERROR, orphan_continuation(True, framewise)),
        Case("5.11", "as 5.9, octet-wise writes; RFC 6455 §5.4",
             PROTOCOL_ERROR, orphan_continuation(True, octetwise)),
        Case("5.12", "continuation (FIN clear) with nothing to continue, "
             "then text, in one write: 1002; RFC 6455 §5.4", PROTOCOL_ERROR,
             orphan_continuation(False, one_write)),
        Case("5.13", "as 5.12, frame-wise writes; RFC 6455 §5.4",
             PROTOCOL_ERROR, orphan_continuation(False, framewise)),
        Case("5.14", "as 5.12, octet-wise writes; RFC 6455 §5.4",
             PROTOCOL_ERROR, orphan_continuation(False, octetwise)),
        Case("5.15", "text in 2 fragments, then an orphan continuation "
             "(FIN clear) and a text, in one write: one echo, then 1002; "
             "RFC 6455 §5.4", PROTOCOL_ERROR, script(
                 lambda: one_write([
                     frame(OP_TEXT, b"fragment1", fin=False),
                     frame(OP_CONT, b"fragment2"),
                     frame(OP_CONT, b"fragment3", fin=False),
                     frame(OP_TEXT, b"fragment4")]),
                 [("text", b"fragment1fragment2")])),
        Case("5.16", "twice: orphan continuation (FIN clear), text in 2 "
             "fragments: 1002; RFC 6455 §5.4", PROTOCOL_ERROR,
             repeated_orphans(False)),
        Case("5.17", "twice: orphan continuation (FIN set), text in 2 "
             "fragments: 1002; RFC 6455 §5.4", PROTOCOL_ERROR,
             repeated_orphans(True)),
        Case("5.18", "text in 2 fragments, both with the text opcode, in "
             "one write: 1002; RFC 6455 §5.4", PROTOCOL_ERROR,
             script(lambda: one_write([
                 frame(OP_TEXT, b"fragment1", fin=False),
                 frame(OP_TEXT, b"fragment2")]))),
        Case("5.19", "text in 5 fragments with a ping after the 2nd and "
             "the 4th, waiting for the first pong: 2 pongs, then the "
             "message; RFC 6455 §5.4", NORMAL, pings_inside_message(writes)),
        Case("5.20", "as 5.19, frame-wise writes; RFC 6455 §5.4", NORMAL,
             pings_inside_message(framewise)),
    ]


# ---------------------------------------------------------------------------
# 6.x UTF-8 handling: text payloads are validated (RFC 6455 §5.6, §8.1).

def text_fragments(payload, pieces):
    """payload as a text message whose fragments are pieces."""
    def run():
        frames, at = [], 0
        for i, n in enumerate(pieces):
            frames.append(frame(OP_TEXT if i == 0 else OP_CONT,
                                payload[at:at + n],
                                fin=(i == len(pieces) - 1)))
            at += n
        return writes(frames)
    return run


def text_script(payload, pieces=None):
    """A text message (in fragments of the given sizes): echoed."""
    pieces = pieces or [len(payload)]
    return script(text_fragments(payload, pieces), [("text", payload)])


def fail_fast_script(parts, one_frame):
    """6.4.x: an invalid message in three parts, sent as fragments or as
    three writes of one frame. After the first (valid) part nothing may
    happen; after the second, which makes the text invalid, the server
    must close with 1007 without waiting for the third. The third is never
    sent: Autobahn's strict verdict needs the close before it."""
    def run():
        whole = b"".join(parts)
        if one_frame:
            data = frame(OP_TEXT, whole)
            split = len(data) - len(whole) + len(parts[0])
            first, second = data[:split], data[split:split + len(parts[1])]
        else:
            first = frame(OP_TEXT, parts[0], fin=False)
            second = frame(OP_CONT, parts[1], fin=False)
        return [Send(first, None, 0.0), Quiet(FAIL_FAST_QUIET),
                Send(second, None, 0.0)], []
    return run


def chapter6():
    # 6.2.2 cuts the text after its 11th character, between code points.
    cut = len(HELLO_STR[:len(HELLO_STR) // 2].encode("utf-8"))
    by_12 = (KOSME_TOO_HIGH[:12], KOSME_TOO_HIGH[12:13],
             KOSME_TOO_HIGH[13:])
    by_cp = (KOSME, KOSME_TOO_HIGH[11:15], KOSME_TOO_HIGH[15:])
    rows = [
        Case("6.1.1", "empty text message: echoed; RFC 6455 §5.6", NORMAL,
             text_script(b"")),
        Case("6.1.2", "text in 3 empty fragments: one empty message; RFC "
             "6455 §5.4", NORMAL, text_script(b"", [0, 0, 0])),
        Case("6.1.3", "text in 3 fragments, only the middle one non-empty: "
             "echoed whole; RFC 6455 §5.4", NORMAL,
             text_script(b"middle frame payload", [0, 20, 0])),
        Case("6.2.1", "valid UTF-8 text in one frame: echoed; RFC 6455 "
             "§5.6", NORMAL, text_script(HELLO_UTF8)),
        Case("6.2.2", "valid UTF-8 text in 2 fragments cut between code "
             "points: echoed; RFC 6455 §5.6", NORMAL,
             text_script(HELLO_UTF8, [cut, len(HELLO_UTF8) - cut])),
        Case("6.2.3", "valid UTF-8 text in 1-byte fragments (cutting code "
             "points): echoed; RFC 6455 §5.6, §8.1", NORMAL,
             text_script(HELLO_UTF8, [1] * len(HELLO_UTF8))),
        Case("6.2.4", "\"kosme\" in 1-byte fragments: echoed; RFC 6455 "
             "§8.1", NORMAL, text_script(KOSME, [1] * len(KOSME))),
        Case("6.3.1", "text with a UTF-16 surrogate (ED A0 80) in one "
             "frame: 1007; RFC 6455 §8.1", INVALID_PAYLOAD,
             script(text_fragments(KOSME_SURROGATE,
                                   [len(KOSME_SURROGATE)]))),
        Case("6.3.2", "as 6.3.1 in 1-byte fragments: 1007; RFC 6455 §8.1",
             INVALID_PAYLOAD, script(text_fragments(
                 KOSME_SURROGATE, [1] * len(KOSME_SURROGATE)))),
        Case("6.4.1", "invalid text in 3 fragments, the 2nd holding all of "
             "U+110000: 1007 before the 3rd; RFC 6455 §8.1 (fail fast)",
             INVALID_PAYLOAD, fail_fast_script(by_cp, False)),
        Case("6.4.2", "invalid text in 3 fragments, the 2nd being the 90 "
             "after F4 that makes it invalid: 1007 before the 3rd; RFC "
             "6455 §8.1", INVALID_PAYLOAD, fail_fast_script(by_12, False)),
        Case("6.4.3", "as 6.4.1, but 3 writes of one frame: 1007 before "
             "the rest of the frame; RFC 6455 §8.1", INVALID_PAYLOAD,
             fail_fast_script(by_cp, True)),
        Case("6.4.4", "as 6.4.2, but 3 writes of one frame: 1007 before "
             "the rest of the frame; RFC 6455 §8.1", INVALID_PAYLOAD,
             fail_fast_script(by_12, True)),
    ]
    return rows + utf8_vector_rows()


def utf8_vector_rows():
    """6.5-6.23: one text message per vector of UTF8_GROUPS."""
    rows = []
    for group, (title, vectors) in enumerate(UTF8_GROUPS, 5):
        for i, payload in enumerate(vectors, 1):
            valid = is_utf8(payload)
            doc = "text %s (%s): %s; RFC 6455 §8.1, RFC 3629" % (
                short_hex(payload), title,
                "echoed" if valid else "1007")
            rows.append(Case(
                "6.%d.%d" % (group, i), doc,
                NORMAL if valid else INVALID_PAYLOAD,
                script(text_fragments(payload, [len(payload)]),
                       [("text", payload)] if valid else [])))
    return rows


def is_utf8(data):
    """RFC 3629 validity, by Python's strict decoder (which, like RFC 6455,
    rejects surrogates, overlong forms and code points above U+10FFFF)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def short_hex(data, limit=12):
    if len(data) <= limit:
        return data.hex(" ") or "(empty)"
    return "%s ... (%d bytes)" % (data[:limit].hex(" "), len(data))


def kosme_prefixes():
    """6.6: every prefix of "kosme"; those ending inside a code point are
    invalid as a whole message."""
    return [KOSME[:n] for n in range(1, len(KOSME) + 1)]


def noncharacters():
    """6.22: U+FFFE, U+FFFF and the last two code points of planes 1-16
    (all valid UTF-8)."""
    out = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for plane in range(1, 17):
        lead = 0xf0 | (plane >> 2)
        second = 0x80 | ((plane & 3) << 4) | 0x0f
        out += [bytes([lead, second, 0xbf, 0xbe]),
                bytes([lead, second, 0xbf, 0xbf])]
    return out


INCOMPLETE = (b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
              b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
              b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf")
SURROGATES = (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
              b"\xed\xaf\xbf", b"\xed\xb0\x80", b"\xed\xbe\x80",
              b"\xed\xbf\xbf")

# The groups of Markus Kuhn's UTF-8 decoder stress test, as Autobahn's
# cases 6.5-6.23 order them. Validity is not written here: is_utf8()
# decides it, and the sections' titles say what to expect.
UTF8_GROUPS = (
    ("valid samples", [b"hello\x24world", b"hello\xc2\xa2world",
                       b"hello\xe2\x82\xacworld",
                       b"hello\xf0\xa4\xad\xa2world", KOSME]),
    ("prefix of a valid string", kosme_prefixes()),
    ("first code point of each length", [b"\x00", b"\xc2\x80",
                                         b"\xe0\xa0\x80",
                                         b"\xf0\x90\x80\x80"]),
    ("first 5/6-byte form, beyond U+10FFFF",
     [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
    ("last code point of each length", [b"\x7f", b"\xdf\xbf",
                                        b"\xef\xbf\xbf",
                                        b"\xf4\x8f\xbf\xbf"]),
    ("last 4/5/6-byte form, beyond U+10FFFF",
     [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf",
      b"\xfd\xbf\xbf\xbf\xbf\xbf"]),
    ("boundary condition", [b"\xed\x9f\xbf", b"\xee\x80\x80",
                            b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
                            b"\xf4\x90\x80\x80"]),
    ("unexpected continuation bytes",
     [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
      b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf",
      bytes(range(0x80, 0xbf))]),
    ("lonely start bytes, each followed by a space",
     [b"".join(bytes([b, 0x20]) for b in range(lo, hi))
      for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7),
                     (0xf8, 0xfb), (0xfc, 0xfd))]),
    ("last continuation byte missing", list(INCOMPLETE)),
    ("concatenated incomplete sequences", [b"".join(INCOMPLETE)]),
    ("impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
    ("overlong '/'", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
                      b"\xf8\x80\x80\x80\xaf",
                      b"\xfc\x80\x80\x80\x80\xaf"]),
    ("maximum overlong form", [b"\xc1\xbf", b"\xe0\x9f\xbf",
                               b"\xf0\x8f\xbf\xbf",
                               b"\xf8\x87\xbf\xbf\xbf",
                               b"\xfc\x83\xbf\xbf\xbf\xbf"]),
    ("overlong NUL", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",
                      b"\xf8\x80\x80\x80\x80",
                      b"\xfc\x80\x80\x80\x80\x80"]),
    ("single UTF-16 surrogate", list(SURROGATES)),
    ("paired UTF-16 surrogates",
     [high + low for high in SURROGATES[:4]
      for low in (SURROGATES[4], SURROGATES[6])]),
    ("noncharacter, valid", noncharacters()),
    ("specials U+FFF9..U+FFFF, valid",
     [b"\xef\xbf" + bytes([b]) for b in range(0xb9, 0xc0)]),
)


# ---------------------------------------------------------------------------
# 7.x Closing (RFC 6455 §5.5.1, §7).

def close_after(frames_after, before=()):
    """Autobahn's close (1000), then frames the server must ignore."""
    return script(lambda: writes(before) + [Close(H.close_payload(1000))]
                  + writes(frames_after))


def close_with(payload):
    """Autobahn's close with this payload; nothing else."""
    return script(lambda: [Close(payload)])


def big_then_close():
    """7.1.6: a 256 KiB text and a short text, then close, then a ping.
    Autobahn rates what arrives as informational; ws_echo handles frames
    in order, so both echoes must precede its close."""
    def run():
        big = fill(b"BAsd7&jh23", 256 << 10)
        small = b"Hello World!"
        return (writes([frame(OP_TEXT, big), frame(OP_TEXT, small)])
                + [Close(H.close_payload(1000))] + writes([frame(OP_PING)]),
                [("text", big), ("text", small)])
    return run


# Autobahn 7.7.x: codes a client may send; ws_echo echoes each (Autobahn
# would also take 1000). 7.9.x and 7.13.x: codes that must not appear on
# the wire (RFC 6455 §7.4.1, §7.4.2): 1002 (Autobahn rates 7.13.x as
# informational and would also take 1000 or the code itself).
VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
               3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999)
OUT_OF_RANGE_CODES = (5000, 65535)


def chapter7():
    rows = [
        Case("7.1.1", "text, then close 1000: echo, then close 1000; RFC "
             "6455 §5.5.1", NORMAL, script(
                 lambda: writes([frame(OP_TEXT, b"Hello World!")]),
                 [("text", b"Hello World!")])),
        Case("7.1.2", "close 1000 twice: one close 1000; RFC 6455 §5.5.1",
             NORMAL, close_after([frame(OP_CLOSE,
                                        H.close_payload(1000))])),
        Case("7.1.3", "close 1000, then a ping: no pong; RFC 6455 §5.5.1",
             NORMAL, close_after([frame(OP_PING)])),
        Case("7.1.4", "close 1000, then text: no echo; RFC 6455 §5.5.1",
             NORMAL, close_after([frame(OP_TEXT, b"Hello World!")])),
        Case("7.1.5", "1st fragment, close 1000, last fragment: close "
             "1000, no message; RFC 6455 §5.4, §5.5.1", NORMAL,
             close_after([frame(OP_CONT, b"fragment2")],
                         [frame(OP_TEXT, b"fragment1", fin=False)])),
        Case("7.1.6", "256 KiB text, short text, close 1000, ping: both "
             "echoes, then close 1000; RFC 6455 §5.5.1", NORMAL,
             big_then_close()),
        Case("7.3.1", "close with an empty payload: empty close back; RFC "
             "6455 §5.5.1", Expect(True, None, True), close_with(b"")),
        Case("7.3.2", "close with a 1-byte payload: 1002; RFC 6455 §5.5.1",
             Expect(True, 1002, False), close_with(b"a")),
        Case("7.3.3", "close 1000 without a reason: close 1000; RFC 6455 "
             "§5.5.1", NORMAL, close_with(H.close_payload(1000))),
        Case("7.3.4", "close 1000 with a reason: close 1000; RFC 6455 "
             "§5.5.1", NORMAL,
             close_with(H.close_payload(1000, b"Hello World!"))),
        Case("7.3.5", "close 1000 with a 123-byte reason (125 in all): "
             "close 1000; RFC 6455 §5.5", NORMAL,
             close_with(H.close_payload(1000, b"*" * 123))),
        Case("7.3.6", "close 1000 with a 124-byte reason (126 in all): "
             "1002; RFC 6455 §5.5", Expect(True, 1002, False),
             close_with(H.close_payload(1000, b"*" * 124))),
        Case("7.5.1", "close 1000 with an invalid UTF-8 reason: 1007 "
             "(Autobahn also takes 1002); RFC 6455 §5.5.1, §8.1",
             Expect(True, 1007, False),
             close_with(H.close_payload(1000, KOSME_SURROGATE))),
    ]
    for i, code in enumerate(VALID_CODES, 1):
        rows.append(Case("7.7.%d" % i, "close %d: echoed; RFC 6455 §7.4.1"
                         % code, Expect(True, code, True),
                         close_with(H.close_payload(code))))
    for i, code in enumerate(INVALID_CODES, 1):
        rows.append(Case("7.9.%d" % i, "close %d, not to be sent: 1002; "
                         "RFC 6455 §7.4.1, §7.4.2" % code,
                         Expect(True, 1002, False),
                         close_with(H.close_payload(code))))
    for i, code in enumerate(OUT_OF_RANGE_CODES, 1):
        rows.append(Case("7.13.%d" % i, "close %d, above 4999: 1002; RFC "
                         "6455 §7.4.2" % code, Expect(True, 1002, False),
                         close_with(H.close_payload(code))))
    return rows


# ---------------------------------------------------------------------------
# 9.x Limits and performance: big messages, many frames, small writes and
# many round trips, compared byte for byte (RFC 6455 §5.2, §5.4). Autobahn
# has 6-9 cases per sub-group; the largest and smallest ones of each are
# kept, in Autobahn's numbering, to keep the run short.

SIZES_9_1 = (64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20)
FRAGMENT_SIZES_9_3 = (64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10,
                      256 << 10, 1 << 20, 4 << 20)
CHOPS_9_5 = (64, 128, 256, 512, 1024, 2048)
SIZES_9_7 = (0, 16, 64, 256, 1024, 4096)
ROUND_TRIPS = 1000
PICKED_9 = {"9.1": (1, 6), "9.2": (1, 6), "9.3": (1, 9), "9.4": (1, 9),
            "9.5": (1,), "9.6": (6,), "9.7": (6,), "9.8": (1,)}
TEXT_9, BINARY_9 = b"BAsd7&jh23", b"\xfe"


def big_message(op, n, frame_size=None, chop=None):
    """One message of n bytes, in frames of frame_size, in chop writes."""
    def run():
        payload = fill(TEXT_9 if op == OP_TEXT else BINARY_9, n)
        data = b"".join(fragments(op, payload, frame_size or max(n, 1)))
        return [Send(data, chop, 0.0)], [(KIND[op], payload)]
    return run


def round_trips(op, n):
    """ROUND_TRIPS messages of n bytes, each sent after the last echo."""
    def run():
        payload = fill(TEXT_9 if op == OP_TEXT else BINARY_9, n)
        steps = []
        for i in range(ROUND_TRIPS):
            steps += [Send(frame(op, payload), None, 0.0), Await(i + 1)]
        return steps, [(KIND[op], payload)] * ROUND_TRIPS
    return run


def nine_row(group, i, op):
    """Case 9.group.i for a text (odd groups) or binary message."""
    kind = KIND[op]
    if group in (1, 2):
        n = SIZES_9_1[i - 1]
        return ("%s message of %s in one frame, echoed; RFC 6455 §5.2"
                % (kind, size_name(n)), big_message(op, n))
    if group in (3, 4):
        fs = FRAGMENT_SIZES_9_3[i - 1]
        return ("4 MiB %s message in frames of %s, echoed; RFC 6455 §5.4"
                % (kind, size_name(fs)), big_message(op, 4 << 20, fs))
    if group in (5, 6):
        chop = CHOPS_9_5[i - 1]
        return ("1 MiB %s message in %d-octet writes, echoed; RFC 6455 "
                "§5.2" % (kind, chop), big_message(op, 1 << 20, chop=chop))
    n = SIZES_9_7[i - 1]
    return ("%d round trips of a %d-byte %s message; RFC 6455 §5.6"
            % (ROUND_TRIPS, n, kind), round_trips(op, n))


def size_name(n):
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d bytes" % n


def chapter9():
    rows = []
    for sub, picks in sorted(PICKED_9.items()):
        group = int(sub.split(".")[1])
        op = OP_TEXT if group % 2 else OP_BINARY
        for i in picks:
            doc, run = nine_row(group, i, op)
            rows.append(Case("%s.%d" % (sub, i), doc, NORMAL, run))
    return rows


# ---------------------------------------------------------------------------
# 10.x Miscellaneous.

def chapter10():
    def run():
        payload = fill(b"*", 65536)
        return writes(fragments(OP_TEXT, payload, 1300)), [("text",
                                                            payload)]
    return [Case("10.1.1", "64 KiB text message in 1300-byte fragments, "
                 "echoed whole; RFC 6455 §5.4", NORMAL, run)]


CHAPTERS = {
    "1": chapter1(), "2": chapter2(), "3": chapter3(), "4": chapter4(),
    "5": chapter5(), "6": chapter6(), "7": chapter7(), "9": chapter9(),
    "10": chapter10(),
}
