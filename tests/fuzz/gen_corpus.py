#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Run from the repository root: python3 tests/fuzz/gen_corpus.py
The seeds are small files: RFC 6455 §5.7 frames, the §1.3 handshake,
upgrade requests captured from Chrome 120 and Firefox 121 (the same ones
as tests/test_request.c), and rows of Markus Kuhn's UTF-8 decoder stress
test as used by the Autobahn testsuite (case 6). Files named regress-* are
crash inputs kept by hand; this script never touches them.
"""
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def mask(key, payload):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload, fin=True, key=None, rsv=0):
    """A frame in the shortest length form; masked when key is given."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if key is not None else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n <= 0xFFFF:
        h = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        h = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if key is None:
        return h + payload
    return h + bytes(key) + mask(key, payload)


KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7
ZERO = bytes(4)  # a zero key leaves the payload readable to the mutator
KOSME = "κόσμε".encode()

# Kuhn's UTF-8 decoder stress test (Autobahn case 6 rows), by section.
UTF8 = {
    "1-kosme": KOSME,
    "2.1-first-1..4": b"\x00\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80",
    "2.2-last-1..4": b"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf",
    "2.3-boundaries": b"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd\xf4\x8f\xbf\xbf",
    "2.3.5-past-10ffff": b"\xf4\x90\x80\x80",
    "3.1-continuations": bytes(range(0x80, 0xC0)),
    "3.2-lonely-starts": b"\xc0 \xc1 \xc2 \xdf \xe0 \xef \xf0 \xf7 ",
    "3.3-last-missing": b"\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf",
    "3.3-cut-4byte": b"Hello \xf0\x9f\x98",
    "3.5-impossible": b"\xfe\xff\xfe\xfe\xff\xff",
    "4.1-overlong-slash": b"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf",
    "4.2-overlong-max": b"\xc1\xbf\xe0\x9f\xbf\xf0\x8f\xbf\xbf",
    "4.3-overlong-nul": b"\xc0\x80\xe0\x80\x80\xf0\x80\x80\x80",
    "5.1-surrogate": b"\xed\xa0\x80",
    "5.1-surrogate-last": b"\xed\xbf\xbf",
    "5.2-surrogate-pair": b"\xed\xa0\x80\xed\xb0\x80",
    "5.3-noncharacters": b"\xef\xbf\xbe\xef\xbf\xbf\xf4\x8f\xbf\xbe",
    "6.2-mixed": "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "6.4-fail-fast": KOSME + b"\xf4\x90\x80\x80edited",
    "ascii-then-bad-8": b"0123456\x80",
    "ascii-then-bad-9": b"01234567\x80",
    "ascii-long": b"The quick brown fox jumps over the lazy dog. " * 3,
    "emoji": "chat 💬 ✓".encode(),
    "empty": b"",
}

CHROME = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8080\r\n"
    b"Connection: Upgrade\r\n"
    b"Pragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Upgrade: websocket\r\n"
    b"Origin: http://127.0.0.1:8080\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"\r\n"
)

FIREFOX = (
    b"GET /chat?room=lobby HTTP/1.1\r\n"
    b"Host: localhost:8080\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
    b"Firefox/121.0\r\n"
    b"Accept: */*\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Origin: http://localhost:8080\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-Fetch-Dest: empty\r\n"
    b"Sec-Fetch-Mode: websocket\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Pragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Upgrade: websocket\r\n"
    b"\r\n"
)

RFC = (  # RFC 6455 §1.3
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

REQUESTS = {
    "rfc6455-1.3": RFC,
    "chrome-120": CHROME,
    "firefox-121": FIREFOX,
    "upgrade-then-frame": RFC + frame(1, b"Hello", key=KEY),
    "plain-get": b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n"
    b"Accept: */*\r\n\r\n",
    "http10": b"GET / HTTP/1.0\r\n\r\n",
    "http20": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "post-length": b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"\r\nhello",
    "post-chunked": b"POST /up HTTP/1.1\r\nHost: h\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n"
    b"0\r\nX-Trailer: 1\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    b"GET /b?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "absolute-form": b"GET http://example.com/chat?x=1#frag HTTP/1.1\r\n"
    b"Host: example.com\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n b\r\n\r\n",
    "lf-only": b"GET / HTTP/1.1\nHost: h\nUpgrade: websocket\n\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "tab-in-value": b"GET / HTTP/1.1\r\nHost:\th\t\r\nX: a\tb\r\n\r\n",
    "empty-value": b"GET / HTTP/1.1\r\nHost:\r\nX:   \r\n\r\n",
    "bad-key": RFC.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25jZR=="),
    "version-8": RFC.replace(b"Version: 13", b"Version: 8"),
    "two-hosts": RFC.replace(b"Host:", b"Host: a\r\nHost:"),
    "post-upgrade": RFC.replace(b"GET ", b"POST "),
    "length-and-chunked": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}

# Byte 0 of a request seed: limits (bits 0-1 header bytes, 2-3 header
# count, 4-5 body) and bit 6 pipelining; byte 1 seeds the split points.
REQUEST_CFG = {
    "pipelined": b"\x60\x01",
    "post-length": b"\x10\x02",
    "post-chunked": b"\x10\x03",
    "length-and-chunked": b"\x10\x04",
}

# Handshake seeds: byte 0 method and version, byte 1 split seed, then the
# server's protocol list and "name:value" lines.
HANDSHAKES = {
    "rfc6455-1.3": b"chat,superchat\n"
    b"Host: server.example.com\nUpgrade: websocket\nConnection: Upgrade\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
    b"Origin: http://example.com\n"
    b"Sec-WebSocket-Protocol: chat, superchat\nSec-WebSocket-Version: 13",
    "firefox-121": b"v2.json\n"
    b"Host: localhost:8080\nSec-WebSocket-Version: 13\n"
    b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\n"
    b"Connection: keep-alive, Upgrade\nUpgrade: websocket",
    "lists": b"a,,b\n"
    b"Host: h\nUpgrade: h2c , WebSocket\nConnection: close,\t upgrade \n"
    b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\n"
    b"Sec-WebSocket-Version: 13\nSec-WebSocket-Protocol: ,b,",
    "version-missing": b"chat\nHost: h\nUpgrade: websocket\n"
    b"Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "key-not-canonical": b"chat\nHost: h\nUpgrade: websocket\n"
    b"Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\n"
    b"Sec-WebSocket-Version: 13",
}


def frame_seeds():
    hello = b"Hello"
    return {
        # RFC 6455 §5.7, in order.
        "5.7-unmasked-hello": frame(1, hello),
        "5.7-masked-hello": frame(1, hello, key=KEY),
        "5.7-fragment-hel": frame(1, b"Hel", fin=False),
        "5.7-fragment-lo": frame(0, b"lo"),
        "5.7-ping": frame(9, hello),
        "5.7-masked-pong": frame(10, hello, key=KEY),
        "5.7-256-binary": frame(2, bytes(256))[:4],
        "5.7-64k-binary": frame(2, bytes(65536))[:10],
        "close-1000-bye": frame(8, b"\x03\xe8bye", key=KEY),
        "close-payload-1000": b"\x03\xe8bye",
        "close-payload-3000": b"\x0b\xb8" + KOSME,
        "close-payload-1005": b"\x03\xed",
        "close-payload-bad-utf8": b"\x03\xe8\xed\xa0\x80",
        "rsv1": frame(1, hello, rsv=4),
        "reserved-opcode": frame(3, b""),
        "ping-not-fin": frame(9, b"", fin=False),
        "ping-126": bytes([0x89, 0x7E, 0x00, 0x7E]),
        "len16-not-minimal": bytes([0x82, 0x7E, 0x00, 0x7D]),
        "len64-not-minimal": bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
        "len64-top-bit": bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        "len64-masked": bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + KEY,
    }


def session_seeds():
    """5 configuration bytes (limits and streaming, echo and driver, two
    bytes of split seed, fragmented sending and mode switches), then what
    a client sends: masked frames (RFC 6455 §5.1)."""
    hello = b"Hello"
    k = KEY
    cfg = b"\x00\x00\x00\x00\x00"
    echo = b"\x00\x04\x11\x22\x00"
    close = frame(8, b"\x03\xe8bye", key=k)
    fragmented = (frame(1, KOSME[:3], fin=False, key=k)
                  + frame(9, hello, key=k)
                  + frame(0, KOSME[3:8], fin=False, key=k)
                  + frame(0, KOSME[8:], key=k))
    seeds = {
        "5.7-masked-hello": cfg + frame(1, hello, key=k),
        "5.7-fragmented": cfg + frame(1, b"Hel", fin=False, key=k)
        + frame(0, b"lo", key=k),
        "ping-between-fragments": echo + frame(1, b"Hel", fin=False, key=k)
        + frame(9, hello, key=k) + frame(0, b"lo", key=k) + close,
        "echo-then-close": echo + frame(1, hello, key=k)
        + frame(2, bytes(range(256)), key=k) + close,
        "pong-and-close-1005": cfg + frame(10, hello, key=k)
        + frame(8, b"", key=k),
        "zero-key-text": cfg + frame(1, KOSME, key=ZERO),
        "zero-key-fragmented-utf8": cfg
        + frame(1, KOSME[:3], fin=False, key=ZERO)
        + frame(0, KOSME[3:], key=ZERO),
        "6.4-fail-fast": cfg + frame(1, UTF8["6.4-fail-fast"], key=ZERO),
        "close-bad-code": cfg + frame(8, b"\x03\xee", key=k),
        "close-bad-utf8": cfg + frame(8, b"\x03\xe8\xc0\xaf", key=k),
        "too-big-16": b"\x03\x00\x00\x00\x00" + frame(2, bytes(17), key=k),
        "many-fragments": b"\x10\x00\x05\x00\x00"
        + frame(1, b"a", fin=False, key=k) + frame(0, b"b", fin=False, key=k)
        + frame(0, b"c", key=k),
        "output-limit-24": b"\x00\x07\x00\x00\x00" + frame(9, hello, key=k) * 4
        + frame(1, hello, key=k),
        "close-in-callback": b"\x00\x08\x00\x00\x00" + frame(1, hello, key=k)
        + frame(1, hello, key=k) + close,
        "flush-and-close": b"\x00\x34\x09\x00\x00" + frame(1, hello, key=k) * 3
        + close,
        "unmasked": cfg + frame(1, hello),
        "cont-without-start": cfg + frame(0, hello, key=k),
        "len16": cfg + frame(2, bytes(300), key=k),
        # Streaming receive, fragmented sending, switches between modes.
        "streaming": b"\x80\x04\x00\x00\x00" + fragmented + close,
        "streaming-explore": b"\x80\x34\x07\x01\x0d" + fragmented
        + frame(1, hello, key=k) + close,
        "echo-parts-utf8": b"\x00\x04\x00\x00\x01" + frame(1, KOSME, key=k)
        + fragmented,
        "toggle-in-callback": b"\x00\x04\x03\x00\x02" + frame(1, hello, key=k)
        + fragmented + frame(2, bytes(200), key=k),
        "app-parts": b"\x00\x10\x05\x00\x0c" + frame(9, b"", key=k) * 6
        + frame(1, hello, key=k) + close,
    }
    return seeds


def main():
    for name, data in UTF8.items():
        put("utf8", name, data)
    for name, data in frame_seeds().items():
        put("frame", name, data)
    for name, data in session_seeds().items():
        put("session", name, data)
    for name, data in REQUESTS.items():
        put("request", name, REQUEST_CFG.get(name, b"\x00\x00") + data)
    # The same requests with small limits and other splits.
    for name in ("rfc6455-1.3", "chrome-120"):
        put("request", name + "-small-limits", b"\x0e\x05" + REQUESTS[name])
    for name, data in HANDSHAKES.items():
        put("handshake", name, b"\x00\x00" + data)
    put("handshake", "http10-post", b"\x05\x00" + HANDSHAKES["rfc6455-1.3"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
