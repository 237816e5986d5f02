/*
 * test_request.c - http/request.c over captured browser requests, limits,
 * malformed requests and pipelining. Every row is fed whole, one byte at a
 * time and split at every offset (three pieces for short rows), each piece
 * in an allocation of exactly its size; the results must not differ.
 * Generated requests make the storage and the headers array grow, and a
 * realloc that fails on demand checks the way out of memory (not under
 * valgrind, whose realloc replaces it: that test is skipped there).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/request.h"
#include "ws/ws.h"

/*
 * request.c allocates only with realloc. This one, found before libc's (or
 * a sanitizer's, which dlsym's RTLD_NEXT then finds), fails the call that
 * realloc_countdown reaches 0 on; -1 never fails.
 */
static volatile long realloc_countdown = -1;

void *realloc(void *p, size_t n)
{
    static void *(*next)(void *, size_t);

    if (realloc_countdown >= 0 && realloc_countdown-- == 0)
        return NULL;
    if (next == NULL)
        *(void **)&next = dlsym(RTLD_NEXT, "realloc");
    return next(p, n);
}

/* RFC 6455 §5.7: a single-frame masked text message "Hello". */
#define FRAME_HELLO "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

/* Captured from Chrome 120 (key replaced by the RFC 6455 §1.3 sample). */
#define CHROME_REQ                                                             \
    "GET /chat HTTP/1.1\r\n"                                                   \
    "Host: 127.0.0.1:8080\r\n"                                                 \
    "Connection: Upgrade\r\n"                                                  \
    "Pragma: no-cache\r\n"                                                     \
    "Cache-Control: no-cache\r\n"                                              \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "          \
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"                   \
    "Upgrade: websocket\r\n"                                                   \
    "Origin: http://127.0.0.1:8080\r\n"                                        \
    "Sec-WebSocket-Version: 13\r\n"                                            \
    "Accept-Encoding: gzip, deflate, br\r\n"                                   \
    "Accept-Language: en-US,en;q=0.9\r\n"                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                          \
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" \
    "\r\n"

/* Captured from Firefox 121. */
#define FIREFOX_REQ                                                            \
    "GET /chat?room=lobby HTTP/1.1\r\n"                                        \
    "Host: localhost:8080\r\n"                                                 \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "    \
    "Firefox/121.0\r\n"                                                        \
    "Accept: */*\r\n"                                                          \
    "Accept-Language: en-US,en;q=0.5\r\n"                                      \
    "Accept-Encoding: gzip, deflate, br\r\n"                                   \
    "Sec-WebSocket-Version: 13\r\n"                                            \
    "Origin: http://localhost:8080\r\n"                                        \
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"                         \
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"                          \
    "Connection: keep-alive, Upgrade\r\n"                                      \
    "Sec-Fetch-Dest: empty\r\n"                                                \
    "Sec-Fetch-Mode: websocket\r\n"                                            \
    "Sec-Fetch-Site: same-origin\r\n"                                          \
    "Pragma: no-cache\r\n"                                                     \
    "Cache-Control: no-cache\r\n"                                              \
    "Upgrade: websocket\r\n"                                                   \
    "\r\n"

/* RFC 6455 §1.3: the sample client handshake. */
#define RFC_REQ                                                                \
    "GET /chat HTTP/1.1\r\n"                                                   \
    "Host: server.example.com\r\n"                                             \
    "Upgrade: websocket\r\n"                                                   \
    "Connection: Upgrade\r\n"                                                  \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                          \
    "Origin: http://example.com\r\n"                                           \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"                              \
    "Sec-WebSocket-Version: 13\r\n"                                            \
    "\r\n"

#define SMALL_REQ                                                              \
    "GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: 0123456789\r\n\r\n"
#define POST_HEAD "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
#define CHUNK_HEAD                                                             \
    "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
#define CHUNK_BODY "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
#define CONNECT_REQ                                                            \
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"
#define NOCONN_REQ "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"
#define PIPE_1 "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
#define EXPECT_HEAD                                                            \
    "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"                 \
    "Content-Length: 5\r\n\r\n"
#define PIPE_2 "GET /b?q=2 HTTP/1.1\r\nHost: y\r\n\r\n"

#define SLEN(s) (sizeof(s) - 1)

struct hdr {
    const char *name;
    const char *value;
};

/* One vector: input, limits (0: defaults) and the expected outcome. */
struct req_row {
    const char *label;
    const char *raw;
    size_t raw_len; /* 0: strlen(raw) */
    size_t max_header_bytes, max_headers, max_body_bytes;
    int rc;
    enum ws_http_request_state state;
    int status;          /* when ERROR */
    size_t consumed;     /* when DONE; otherwise all of raw */
    size_t header_bytes; /* when DONE */
    const char *method, *url, *path, *query;
    unsigned short major, minor;
    bool upgrade, keep_alive;
    struct hdr headers[20]; /* a NULL name ends the list */
    /* After the headers (DONE or BODY): */
    bool has_body, expect;
    const char *body; /* when DONE: the body kept (NULL: none) */
    size_t body_len;  /* 0: strlen(body) */
};

#define ERR_ROW(lbl, input, st)                                                \
    {                                                                          \
        .label = lbl, .raw = input, .rc = WS_EHTTP,                            \
        .state = WS_HTTP_REQ_ERROR, .status = st                               \
    }

static const struct req_row rows[] = {
    {.label = "Chrome upgrade, then a masked frame (RFC 6455 §5.7)",
     .raw = CHROME_REQ FRAME_HELLO,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CHROME_REQ),
     .header_bytes = SLEN(CHROME_REQ),
     .method = "GET",
     .url = "/chat",
     .path = "/chat",
     .query = "",
     .major = 1,
     .minor = 1,
     .upgrade = true,
     .keep_alive = true,
     .headers = {{"Host", "127.0.0.1:8080"},
                 {"Connection", "Upgrade"},
                 {"Pragma", "no-cache"},
                 {"Cache-Control", "no-cache"},
                 {"User-Agent",
                  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
                 {"Upgrade", "websocket"},
                 {"Origin", "http://127.0.0.1:8080"},
                 {"Sec-WebSocket-Version", "13"},
                 {"Accept-Encoding", "gzip, deflate, br"},
                 {"Accept-Language", "en-US,en;q=0.9"},
                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                 {"Sec-WebSocket-Extensions",
                  "permessage-deflate; client_max_window_bits"}}},
    {.label = "Firefox upgrade, then a masked frame",
     .raw = FIREFOX_REQ FRAME_HELLO,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(FIREFOX_REQ),
     .header_bytes = SLEN(FIREFOX_REQ),
     .method = "GET",
     .url = "/chat?room=lobby",
     .path = "/chat",
     .query = "room=lobby",
     .major = 1,
     .minor = 1,
     .upgrade = true,
     .keep_alive = true,
     .headers = {{"Host", "localhost:8080"},
                 {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) "
                                "Gecko/20100101 Firefox/121.0"},
                 {"Accept", "*/*"},
                 {"Accept-Language", "en-US,en;q=0.5"},
                 {"Accept-Encoding", "gzip, deflate, br"},
                 {"Sec-WebSocket-Version", "13"},
                 {"Origin", "http://localhost:8080"},
                 {"Sec-WebSocket-Extensions", "permessage-deflate"},
                 {"Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="},
                 {"Connection", "keep-alive, Upgrade"},
                 {"Sec-Fetch-Dest", "empty"},
                 {"Sec-Fetch-Mode", "websocket"},
                 {"Sec-Fetch-Site", "same-origin"},
                 {"Pragma", "no-cache"},
                 {"Cache-Control", "no-cache"},
                 {"Upgrade", "websocket"}}},
    {.label = "RFC 6455 §1.3 sample handshake",
     .raw = RFC_REQ,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(RFC_REQ),
     .header_bytes = SLEN(RFC_REQ),
     .method = "GET",
     .url = "/chat",
     .path = "/chat",
     .query = "",
     .major = 1,
     .minor = 1,
     .upgrade = true,
     .keep_alive = true,
     .headers = {{"Host", "server.example.com"},
                 {"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                 {"Origin", "http://example.com"},
                 {"Sec-WebSocket-Protocol", "chat, superchat"},
                 {"Sec-WebSocket-Version", "13"}}},
    {.label = "query and fragment split off the path (RFC 3986 §3)",
     .raw = "GET /a/b?x=1&y=2#frag HTTP/1.1\r\nHost: h\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 43,
     .header_bytes = 43,
     .method = "GET",
     .url = "/a/b?x=1&y=2#frag",
     .path = "/a/b",
     .query = "x=1&y=2",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}}},
    {.label = "empty query",
     .raw = "GET /p? HTTP/1.1\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 20,
     .header_bytes = 20,
     .method = "GET",
     .url = "/p?",
     .path = "/p",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true},
    {.label = "OWS trimmed around values (RFC 7230 §3.2.4)",
     .raw = "GET / HTTP/1.1\r\nA:   v1  \t\r\nB:\t\tv 2\r\nC:\r\n"
            "D:    \r\nE:x\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 56,
     .header_bytes = 56,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"A", "v1"}, {"B", "v 2"}, {"C", ""}, {"D", ""}, {"E", "x"}}},
    {.label = "obs-fold keeps its white space (RFC 7230 §3.2.4)",
     .raw = "GET / HTTP/1.1\r\nX-Fold: a\r\n\tb  \r\n c\r\nY: 1\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 45,
     .header_bytes = 45,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"X-Fold", "a\tb   c"}, {"Y", "1"}}},
    {.label = "repeated headers kept in order",
     .raw = "GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat\r\nX: 1\r\n"
            "sec-websocket-protocol: superchat, v2\r\nX: 2\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 99,
     .header_bytes = 99,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Sec-WebSocket-Protocol", "chat"},
                 {"X", "1"},
                 {"sec-websocket-protocol", "superchat, v2"},
                 {"X", "2"}}},
    {.label = "bare LF line ends (RFC 7230 §3.5)",
     .raw = "GET /lf HTTP/1.1\nHost: h\n\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 26,
     .header_bytes = 26,
     .method = "GET",
     .url = "/lf",
     .path = "/lf",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}}},
    {.label = "HTTP/1.0 closes by default (RFC 7230 §6.3)",
     .raw = "GET / HTTP/1.0\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 18,
     .header_bytes = 18,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 0},
    {.label = "HTTP/1.0 with Connection: keep-alive",
     .raw = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 42,
     .header_bytes = 42,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 0,
     .keep_alive = true,
     .headers = {{"Connection", "keep-alive"}}},
    {.label = "HTTP/1.1 with Connection: close",
     .raw = "HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 39,
     .header_bytes = 39,
     .method = "HEAD",
     .url = "/x",
     .path = "/x",
     .query = "",
     .major = 1,
     .minor = 1,
     .headers = {{"Connection", "close"}}},
    {.label = "Content-Length body within the limit, next request left",
     .raw = POST_HEAD "hello" PIPE_1,
     .max_body_bytes = 5,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(POST_HEAD) + 5,
     .header_bytes = SLEN(POST_HEAD),
     .method = "POST",
     .url = "/form",
     .path = "/form",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Content-Length", "5"}},
     .has_body = true,
     .body = "hello"},
    {.label = "chunked body within the limit (RFC 7230 §4.1)",
     .raw = CHUNK_HEAD CHUNK_BODY,
     .max_body_bytes = 8,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CHUNK_HEAD CHUNK_BODY),
     .header_bytes = SLEN(CHUNK_HEAD),
     .method = "POST",
     .url = "/up",
     .path = "/up",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Transfer-Encoding", "chunked"}},
     .has_body = true,
     .body = "helloabc"},
    {.label = "chunk extensions dropped, the data kept (RFC 7230 §4.1.1)",
     .raw = CHUNK_HEAD "3;x=y\r\nabc\r\n0\r\n\r\n" PIPE_1,
     .max_body_bytes = 3,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CHUNK_HEAD "3;x=y\r\nabc\r\n0\r\n\r\n"),
     .header_bytes = SLEN(CHUNK_HEAD),
     .method = "POST",
     .url = "/up",
     .path = "/up",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Transfer-Encoding", "chunked"}},
     .has_body = true,
     .body = "abc"},
    {.label = "an empty chunked body is a body of 0 bytes",
     .raw = CHUNK_HEAD "0\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CHUNK_HEAD "0\r\n\r\n"),
     .header_bytes = SLEN(CHUNK_HEAD),
     .method = "POST",
     .url = "/up",
     .path = "/up",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Transfer-Encoding", "chunked"}},
     .has_body = true},
    {.label = "binary body with NUL and CRLF bytes kept as sent",
     .raw = "PUT /b HTTP/1.1\r\nContent-Length: 6\r\n\r\na\0\r\nb\xff",
     .raw_len = 44,
     .max_body_bytes = 100,
     .state = WS_HTTP_REQ_DONE,
     .consumed = 44,
     .header_bytes = 38,
     .method = "PUT",
     .url = "/b",
     .path = "/b",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Content-Length", "6"}},
     .has_body = true,
     .body = "a\0\r\nb\xff",
     .body_len = 6},
    {.label = "Expect: 100-continue, the body not sent yet (RFC 7231 "
              "§5.1.1)",
     .raw = EXPECT_HEAD,
     .max_body_bytes = 5,
     .state = WS_HTTP_REQ_BODY,
     .has_body = true,
     .expect = true},
    {.label = "Expect: 100-continue, the body sent at once",
     .raw = EXPECT_HEAD "hello" PIPE_1,
     .max_body_bytes = 5,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(EXPECT_HEAD "hello"),
     .header_bytes = SLEN(EXPECT_HEAD),
     .method = "POST",
     .url = "/up",
     .path = "/up",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"},
                 {"Expect", "100-continue"},
                 {"Content-Length", "5"}},
     .has_body = true,
     .expect = true,
     .body = "hello"},
    {.label = "Expect: 100-Continue without a body: nothing to wait for",
     .raw = "GET / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 40,
     .header_bytes = 40,
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Expect", "100-Continue"}}},
    {.label = "HTTP/1.0: Expect ignored (RFC 7231 §5.1.1)",
     .raw = "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
            "Content-Length: 1\r\n\r\n",
     .max_body_bytes = 1,
     .state = WS_HTTP_REQ_BODY,
     .has_body = true},
    {.label = "chunked trailer fields counted as body, not kept (RFC 7230 "
              "§4.1.2)",
     .has_body = true,
     .body = "hello",
     .raw = CHUNK_HEAD "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" PIPE_1,
     .max_body_bytes = 9,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CHUNK_HEAD "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
     .header_bytes = SLEN(CHUNK_HEAD),
     .method = "POST",
     .url = "/up",
     .path = "/up",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Transfer-Encoding", "chunked"}}},
    {.label = "Content-Length: 0 under the default zero body limit",
     .raw = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
     .state = WS_HTTP_REQ_DONE,
     .consumed = 38,
     .header_bytes = 38,
     .method = "POST",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Content-Length", "0"}}},
    {.label = "CONNECT stops after the headers",
     .raw = CONNECT_REQ "\x16\x03\x01",
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(CONNECT_REQ),
     .header_bytes = SLEN(CONNECT_REQ),
     .method = "CONNECT",
     .url = "example.com:443",
     .path = "example.com:443",
     .query = "",
     .major = 1,
     .minor = 1,
     .upgrade = true,
     .keep_alive = true,
     .headers = {{"Host", "example.com"}}},
    {.label = "Upgrade without Connection: upgrade still stops at its end",
     .raw = NOCONN_REQ FRAME_HELLO,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(NOCONN_REQ),
     .header_bytes = SLEN(NOCONN_REQ),
     .method = "GET",
     .url = "/ws",
     .path = "/ws",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "h"}, {"Upgrade", "websocket"}}},
    {.label = "pipelined GETs: only the first is consumed",
     .raw = PIPE_1 PIPE_2,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(PIPE_1),
     .header_bytes = SLEN(PIPE_1),
     .method = "GET",
     .url = "/a",
     .path = "/a",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "x"}}},
    {.label = "header bytes exactly at the limit",
     .raw = SMALL_REQ,
     .max_header_bytes = SLEN(SMALL_REQ),
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(SMALL_REQ),
     .header_bytes = SLEN(SMALL_REQ),
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "example.com"}, {"X-Pad", "0123456789"}}},
    {.label = "max_headers headers exactly",
     .raw = SMALL_REQ,
     .max_headers = 2,
     .state = WS_HTTP_REQ_DONE,
     .consumed = SLEN(SMALL_REQ),
     .header_bytes = SLEN(SMALL_REQ),
     .method = "GET",
     .url = "/",
     .path = "/",
     .query = "",
     .major = 1,
     .minor = 1,
     .keep_alive = true,
     .headers = {{"Host", "example.com"}, {"X-Pad", "0123456789"}}},
    {.label = "incomplete headers need more input",
     .raw = "GET /slow HTTP/1.1\r\nHost: h\r\nX-Half: abc",
     .state = WS_HTTP_REQ_HEADERS},
    {.label = "incomplete body needs more input",
     .raw = POST_HEAD "hel",
     .max_body_bytes = 5,
     .state = WS_HTTP_REQ_BODY,
     .has_body = true},
    {.label = "431: header bytes one over the limit (RFC 6585 §5)",
     .raw = SMALL_REQ,
     .max_header_bytes = SLEN(SMALL_REQ) - 1,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 431},
    {.label = "431: endless request line refused before its end",
     .raw = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     .max_header_bytes = 32,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 431},
    {.label = "431: one header too many (RFC 6585 §5)",
     .raw = SMALL_REQ,
     .max_headers = 1,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 431},
    {.label = "413: Content-Length over the limit (RFC 7231 §6.5.11)",
     .raw = POST_HEAD "hello",
     .max_body_bytes = 4,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 413},
    ERR_ROW("413: any body under the default zero limit",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 413),
    {.label = "413 at the end of the headers, before a 100 Continue",
     .raw = "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
            "Content-Length: 6\r\n\r\n",
     .max_body_bytes = 5,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 413},
    ERR_ROW("417: an expectation other than 100-continue (RFC 7231 §5.1.1)",
            "POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417),
    ERR_ROW("417: two Expect headers",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n"
            "Expect: 100-continue\r\n\r\n",
            417),
    {.label = "413: a chunk over the limit",
     .raw = CHUNK_HEAD CHUNK_BODY,
     .max_body_bytes = 4,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 413},
    {.label = "413: chunks adding up over the limit",
     .raw = CHUNK_HEAD CHUNK_BODY,
     .max_body_bytes = 7,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 413},
    {.label = "413: chunked trailer fields over the limit",
     .raw = CHUNK_HEAD "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
     .max_body_bytes = 8,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 413},
    ERR_ROW("400: white space before the colon (RFC 7230 §3.2.4)",
            "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    ERR_ROW("400: header line without a colon",
            "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400),
    ERR_ROW("400: header line starting with a colon",
            "GET / HTTP/1.1\r\n: h\r\n\r\n", 400),
    ERR_ROW("400: unknown method", "FETCH / HTTP/1.1\r\n\r\n", 400),
    ERR_ROW("400: garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", 400),
    ERR_ROW("400: control character in a value",
            "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 400),
    ERR_ROW("400: control character first in a value",
            "GET / HTTP/1.1\r\nX:\x01z\r\n\r\n", 400),
    ERR_ROW("400: escape first in a value",
            "GET / HTTP/1.1\r\nUpgrade: \x1bwebsocket\r\n\r\n", 400),
    ERR_ROW("400: tab in the target", "GET /a\tb HTTP/1.1\r\n\r\n", 400),
    ERR_ROW("400: form feed in the target", "GET /a\f HTTP/1.1\r\n\r\n", 400),
    {.label = "400: NUL first in a value",
     .raw = "GET / HTTP/1.1\r\nUpgrade:\0websocket\r\n\r\n",
     .raw_len = 38,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 400},
    ERR_ROW("400: DEL in a value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400),
    ERR_ROW("400: space in the target", "GET /a b HTTP/1.1\r\n\r\n", 400),
    ERR_ROW("400: bad version", "GET / HTTP/1.x\r\n\r\n", 400),
    ERR_ROW("400: lower-case protocol name", "GET / http/1.1\r\n\r\n", 400),
    ERR_ROW("400: two-digit version", "GET / HTTP/10.1\r\n\r\n", 400),
    ERR_ROW("400: CR without LF", "GET / HTTP/1.1\rX\r\n\r\n", 400),
    ERR_ROW("400: two Content-Length (RFC 7230 §3.3.2)",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
            "Content-Length: 2\r\n\r\n",
            400),
    ERR_ROW("400: bad Content-Length",
            "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
    ERR_ROW("400: Transfer-Encoding not ending in chunked (RFC 7230 §3.3.3)",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ERR_ROW("400: bad chunk size",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    {.label = "400: NUL in the target",
     .raw = "GET /a\0b HTTP/1.1\r\n\r\n",
     .raw_len = 21,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 400},
    {.label = "400: NUL in a value",
     .raw = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
     .raw_len = 26,
     .rc = WS_EHTTP,
     .state = WS_HTTP_REQ_ERROR,
     .status = 400},
    ERR_ROW("505: HTTP/2.0 (RFC 7230 §2.6)", "GET / HTTP/2.0\r\n\r\n", 505),
    ERR_ROW("505: HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
    ERR_ROW("505: HTTP/0.9 simple request", "GET /\r\n\r\n", 505),
};

/* What one run returned, summed over its feeds. */
struct outcome {
    int rc;
    size_t consumed;
};

static size_t row_len(const struct req_row *row)
{
    return row->raw_len ? row->raw_len : strlen(row->raw);
}

/* Feed raw[from..to) from an allocation of exactly its size. */
static int feed_copy(struct ws_http_request *r, const char *raw, size_t from,
                     size_t to, size_t *consumed)
{
    char *piece = malloc(to - from);
    int rc;

    assert_non_null(piece);
    memcpy(piece, raw + from, to - from);
    rc = ws_http_request_feed(r, piece, to - from, consumed);
    free(piece);
    return rc;
}

/* Feed raw cut at the ascending offsets cuts[0..ncuts), as a server would:
   stop at the first error or at the end of the request. */
static struct outcome feed_cuts(struct ws_http_request *r, const char *raw,
                                size_t len, const size_t *cuts, size_t ncuts)
{
    struct outcome o = {0, 0};
    size_t start = 0;

    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len, n = 0;

        o.rc = feed_copy(r, raw, start, end, &n);
        o.consumed += n;
        if (o.rc != 0 || r->state == WS_HTTP_REQ_DONE)
            break;
        if (n != end - start)
            fail_msg("consumed %zu of %zu before the end", n, end - start);
        start = end;
    }
    return o;
}

#define CHECK_NUM(what, got, want)                                             \
    do {                                                                       \
        if ((unsigned long long)(got) != (unsigned long long)(want))           \
            fail_msg("%s [%s]: %s is %llu, want %llu", row->label, how, what,  \
                     (unsigned long long)(got), (unsigned long long)(want));   \
    } while (0)

#define CHECK_STR(what, got, want)                                             \
    do {                                                                       \
        if ((got) == NULL || strcmp((got), (want)) != 0)                       \
            fail_msg("%s [%s]: %s is \"%s\", want \"%s\"", row->label, how,    \
                     what, (got) ? (got) : "(null)", want);                    \
    } while (0)

/* Compare the parsed headers with the row's, and the lookups. */
static void check_headers(const struct req_row *row,
                          const struct ws_http_request *r, const char *how)
{
    size_t n = 0;

    while (n < 20 && row->headers[n].name != NULL)
        n++;
    CHECK_NUM("nheaders", r->nheaders, n);
    for (size_t i = 0; i < n; i++) {
        const struct ws_http_header *h = &r->headers[i];
        CHECK_STR("header name", h->name, row->headers[i].name);
        CHECK_STR("header value", h->value, row->headers[i].value);
        CHECK_NUM("name_len", h->name_len, strlen(row->headers[i].name));
        CHECK_NUM("value_len", h->value_len, strlen(row->headers[i].value));
    }
}

/* Compare the body kept with the row's; a NUL follows it. */
static void check_body(const struct req_row *row,
                       const struct ws_http_request *r, const char *how)
{
    size_t len = row->body_len ? row->body_len
                 : row->body   ? strlen(row->body)
                               : 0;

    CHECK_NUM("body length", r->body.len, len);
    if (len == 0)
        return;
    if (memcmp(r->body.data, row->body, len) != 0)
        fail_msg("%s [%s]: body differs", row->label, how);
    CHECK_NUM("NUL after the body", r->body.data[len], 0);
    CHECK_NUM("body capacity", r->body.cap <= len + 1 || r->body.cap <= 1024,
              1);
}

/* Compare one run with the row; then check that DONE and ERROR stick. */
static void check_outcome(const struct req_row *row, struct ws_http_request *r,
                          struct outcome o, const char *how)
{
    size_t n = 99;
    int rc;

    CHECK_NUM("rc", (unsigned)o.rc, (unsigned)row->rc);
    CHECK_NUM("state", r->state, row->state);
    if (row->state == WS_HTTP_REQ_ERROR) {
        CHECK_NUM("status", r->status, row->status);
    } else if (row->state == WS_HTTP_REQ_DONE) {
        CHECK_NUM("consumed", o.consumed, row->consumed);
        CHECK_NUM("header_bytes", r->header_bytes, row->header_bytes);
        CHECK_STR("method", r->method, row->method);
        CHECK_STR("url", r->url, row->url);
        CHECK_NUM("url_len", r->url_len, strlen(row->url));
        CHECK_STR("path", r->path, row->path);
        CHECK_STR("query", r->query, row->query);
        CHECK_NUM("http_major", r->http_major, row->major);
        CHECK_NUM("http_minor", r->http_minor, row->minor);
        CHECK_NUM("upgrade", r->upgrade, row->upgrade);
        CHECK_NUM("keep_alive", r->keep_alive, row->keep_alive);
        check_headers(row, r, how);
        check_body(row, r, how);
    } else {
        CHECK_NUM("consumed", o.consumed, row_len(row));
    }
    if (row->state == WS_HTTP_REQ_DONE || row->state == WS_HTTP_REQ_BODY) {
        CHECK_NUM("has_body", r->has_body, row->has_body);
        CHECK_NUM("expect_continue", r->expect_continue, row->expect);
    }
    if (row->state == WS_HTTP_REQ_DONE || row->state == WS_HTTP_REQ_ERROR) {
        rc = feed_copy(r, "GET", 0, 3, &n);
        CHECK_NUM("rc after the end", (unsigned)rc, (unsigned)row->rc);
        CHECK_NUM("consumed after the end", n, 0);
        CHECK_NUM("state after the end", r->state, row->state);
    }
}

/* Reset, feed the row cut at cuts[], and check. */
static void run_cuts(const struct req_row *row, struct ws_http_request *r,
                     const size_t *cuts, size_t ncuts, const char *how)
{
    struct outcome o;

    ws_http_request_reset(r);
    o = feed_cuts(r, row->raw, row_len(row), cuts, ncuts);
    check_outcome(row, r, o, how);
}

/* One row: whole, byte by byte, every split in two (and three). */
static void test_row(void **state)
{
    const struct req_row *row = *state;
    size_t len = row_len(row), *cuts;
    struct ws_http_request r;
    char how[64];

    assert_int_equal(ws_http_request_init(&r, row->max_header_bytes,
                                          row->max_headers,
                                          row->max_body_bytes),
                     0);
    run_cuts(row, &r, NULL, 0, "whole");
    cuts = malloc(len * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    run_cuts(row, &r, cuts, len - 1, "byte by byte");
    for (size_t a = 1; a < len; a++) {
        snprintf(how, sizeof(how), "split at %zu", a);
        run_cuts(row, &r, &a, 1, how);
    }
    for (size_t a = 1; len <= 160 && a < len; a++) {
        for (size_t b = a + 1; b < len; b++) {
            size_t two[2] = {a, b};
            snprintf(how, sizeof(how), "split at %zu and %zu", a, b);
            run_cuts(row, &r, two, 2, how);
        }
    }
    free(cuts);
    ws_http_request_free(&r);
}

/* Server loop: buffer what arrives, feed, reset after each request. Returns
   the paths seen, joined by spaces, in out. */
static void pipeline_run(const char *raw, size_t len, size_t cut, char *out,
                         size_t cap)
{
    struct ws_http_request r;
    char *pending = NULL;
    size_t plen = 0, pieces[3] = {0, cut, len};

    out[0] = '\0';
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    for (int p = 0; p < 2; p++) {
        size_t add = pieces[p + 1] - pieces[p], n;
        char *grown = malloc(plen + add);
        assert_non_null(grown);
        if (plen > 0)
            memcpy(grown, pending, plen);
        memcpy(grown + plen, raw + pieces[p], add);
        free(pending);
        pending = grown;
        plen += add;
        while (plen > 0) {
            assert_int_equal(ws_http_request_feed(&r, pending, plen, &n), 0);
            memmove(pending, pending + n, plen - n);
            plen -= n;
            if (r.state != WS_HTTP_REQ_DONE)
                break;
            strncat(out, r.path, cap - strlen(out) - 1);
            strncat(out, " ", cap - strlen(out) - 1);
            assert_true(r.keep_alive);
            ws_http_request_reset(&r);
        }
    }
    assert_int_equal(plen, 0);
    free(pending);
    ws_http_request_free(&r);
}

/* Two pipelined GETs in one buffer come out one by one after reset. */
static void test_pipelined(void **state)
{
    static const char raw[] = PIPE_1 PIPE_2;
    struct ws_http_request r;
    size_t n;
    char *copy = malloc(SLEN(raw)), paths[64];

    (void)state;
    assert_non_null(copy);
    memcpy(copy, raw, SLEN(raw));
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_int_equal(ws_http_request_feed(&r, copy, SLEN(raw), &n), 0);
    assert_int_equal(n, SLEN(PIPE_1));
    assert_string_equal(r.path, "/a");
    ws_http_request_reset(&r);
    assert_int_equal(ws_http_request_feed(&r, copy + n, SLEN(raw) - n, &n), 0);
    assert_int_equal(n, SLEN(PIPE_2));
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_string_equal(r.path, "/b");
    assert_string_equal(r.query, "q=2");
    assert_string_equal(ws_http_request_header(&r, "host", 0), "y");
    ws_http_request_free(&r);
    free(copy);
    for (size_t cut = 0; cut <= SLEN(raw); cut++) {
        pipeline_run(raw, SLEN(raw), cut, paths, sizeof(paths));
        assert_string_equal(paths, "/a /b ");
    }
}

/* ws_http_request_header(name, n) and _count: case-insensitive, in order,
   exact names only. */
static void test_header_lookup(void **state)
{
    static const char raw[] = "GET / HTTP/1.1\r\n"
                              "Sec-WebSocket-Protocol: chat\r\n"
                              "X-A: 1\r\n"
                              "sec-websocket-protocol: superchat\r\n"
                              "X-A2: 2\r\n"
                              "SEC-WEBSOCKET-PROTOCOL: v3\r\n\r\n";
    struct ws_http_request r;
    size_t n;

    (void)state;
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_int_equal(ws_http_request_feed(&r, raw, SLEN(raw), &n), 0);
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_string_equal(ws_http_request_header(&r, "Sec-WebSocket-Protocol", 0),
                        "chat");
    assert_string_equal(ws_http_request_header(&r, "sec-websocket-PROTOCOL", 1),
                        "superchat");
    assert_string_equal(ws_http_request_header(&r, "Sec-WebSocket-Protocol", 2),
                        "v3");
    assert_null(ws_http_request_header(&r, "Sec-WebSocket-Protocol", 3));
    assert_int_equal(ws_http_request_header_count(&r, "SEC-websocket-protocol"),
                     3);
    assert_string_equal(ws_http_request_header(&r, "x-a", 0), "1");
    assert_null(ws_http_request_header(&r, "x-a", 1));
    assert_int_equal(ws_http_request_header_count(&r, "X-A"), 1);
    assert_null(ws_http_request_header(&r, "X", 0));
    assert_null(ws_http_request_header(&r, "Missing", 0));
    assert_int_equal(ws_http_request_header_count(&r, "Missing"), 0);
    ws_http_request_free(&r);
}

/* Zero limits mean 16384 header bytes, 100 headers and no body. */
static void test_defaults(void **state)
{
    struct ws_http_request r;
    size_t n;

    (void)state;
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_int_equal(r.max_header_bytes, 16384);
    assert_int_equal(r.max_headers, 100);
    assert_int_equal(r.max_body_bytes, 0);
    assert_int_equal(r.state, WS_HTTP_REQ_HEADERS);
    /* Feeding nothing is not end of input: it changes nothing. */
    assert_int_equal(ws_http_request_feed(&r, "", 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(r.state, WS_HTTP_REQ_HEADERS);
    ws_http_request_free(&r);
    ws_http_request_free(&r); /* twice is harmless */
}

/* Build "GET / HTTP/1.1\r\n" + nheaders "Hnnnnn: <pad>\r\n" + "\r\n". */
static char *big_request(size_t nheaders, size_t pad, size_t *len)
{
    size_t cap = 32 + nheaders * (pad + 16), off;
    char *buf = malloc(cap);

    assert_non_null(buf);
    off = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        off += (size_t)snprintf(buf + off, cap - off, "H%05zu: ", i);
        memset(buf + off, 'v', pad);
        off += pad;
        off += (size_t)snprintf(buf + off, cap - off, "\r\n");
    }
    off += (size_t)snprintf(buf + off, cap - off, "\r\n");
    *len = off;
    return buf;
}

/* Feed a generated request with the default limits; return the state. */
static int feed_big(size_t nheaders, size_t pad, size_t max_hb, int *status)
{
    struct ws_http_request r;
    size_t len, n;
    char *raw = big_request(nheaders, pad, &len);
    int rc;

    assert_int_equal(ws_http_request_init(&r, max_hb, 0, 0), 0);
    rc = ws_http_request_feed(&r, raw, len, &n);
    *status = r.status;
    if (rc == 0) {
        assert_int_equal(r.state, WS_HTTP_REQ_DONE);
        assert_int_equal(n, len);
        assert_int_equal(r.header_bytes, len);
    }
    ws_http_request_free(&r);
    free(raw);
    return rc;
}

/* The default limits: 100 headers pass, 101 do not; 16384 bytes pass,
   16385 do not; http-parser's own 80 KiB cap is 431 too. */
static void test_default_limits(void **state)
{
    int status;
    size_t len;

    (void)state;
    assert_int_equal(feed_big(100, 10, 0, &status), 0);
    assert_int_equal(feed_big(101, 10, 0, &status), WS_EHTTP);
    assert_int_equal(status, 431);
    /* 16 + 2 * (8 + pad + 2) + 2 = 16384 when pad = 8173. */
    free(big_request(2, 8173, &len));
    assert_int_equal(len, 16384);
    assert_int_equal(feed_big(2, 8173, 0, &status), 0);
    assert_int_equal(feed_big(2, 8174, 0, &status), WS_EHTTP);
    assert_int_equal(status, 431);
    assert_int_equal(feed_big(10, 9000, 200000, &status), WS_EHTTP);
    assert_int_equal(status, 431);
}

/* Limits too large to allocate are WS_ENOMEM, and free stays safe. */
static void test_init_enomem(void **state)
{
    struct ws_http_request r;

    (void)state;
    assert_int_equal(ws_http_request_init(&r, SIZE_MAX / 2, 0, 0), WS_ENOMEM);
    ws_http_request_free(&r);
    assert_int_equal(ws_http_request_init(&r, 0, SIZE_MAX / 2, 0), WS_ENOMEM);
    ws_http_request_free(&r);
}

/*
 * Generated requests: "GET /gen/path?q=<n>&x=y#frag HTTP/1.1", then
 * nheaders "X-Gen-<i>:" lines whose values have assorted lengths, inner
 * spaces and OWS around them, the last value padded with 'p' so that the
 * whole request is total bytes (0: no padding).
 */
#define GEN_MAX 128

struct gen {
    char *raw;
    size_t len;
    size_t nheaders;
    char url[64], query[32];
    char names[GEN_MAX][32]; /* room for any size_t index */
    char *values[GEN_MAX];   /* as expected: trimmed */
};

/* Header i's value, pad bytes of 'p' added; the caller frees it. */
static char *gen_value(size_t i, size_t pad)
{
    size_t n = 1 + (i * 37) % 90;
    char *v = malloc(n + pad + 1);

    assert_non_null(v);
    for (size_t j = 0; j < n; j++)
        v[j] = j % 13 == 6 && j + 1 < n ? ' ' : (char)('A' + (i * 7 + j) % 58);
    memset(v + n, 'p', pad);
    v[n + pad] = '\0';
    return v;
}

/* Write the request into g->raw (NULL: only count); return its length. */
static size_t gen_write(struct gen *g, char *out)
{
    static const char *const lead[] = {"", " ", " \t"};
    size_t off = 0;

#define GEN_PUT(s)                                                             \
    do {                                                                       \
        size_t n_ = strlen(s);                                                 \
        if (out != NULL)                                                       \
            memcpy(out + off, s, n_);                                          \
        off += n_;                                                             \
    } while (0)
    GEN_PUT("GET ");
    GEN_PUT(g->url);
    GEN_PUT(" HTTP/1.1\r\n");
    for (size_t i = 0; i < g->nheaders; i++) {
        GEN_PUT(g->names[i]);
        GEN_PUT(":");
        GEN_PUT(lead[i % 3]);
        GEN_PUT(g->values[i]);
        GEN_PUT(i % 2 ? "  \r\n" : "\r\n");
    }
    GEN_PUT("\r\n");
#undef GEN_PUT
    return off;
}

static void gen_free(struct gen *g)
{
    for (size_t i = 0; i < g->nheaders; i++)
        free(g->values[i]);
    free(g->raw);
}

static void gen_make(struct gen *g, size_t nheaders, size_t total)
{
    size_t len;

    assert_true(nheaders >= 1 && nheaders <= GEN_MAX);
    g->nheaders = nheaders;
    snprintf(g->query, sizeof(g->query), "q=%zu&x=y", nheaders);
    snprintf(g->url, sizeof(g->url), "/gen/path?%s#frag", g->query);
    for (size_t i = 0; i < nheaders; i++) {
        snprintf(g->names[i], sizeof(g->names[i]), "X-Gen-%zu", i);
        g->values[i] = gen_value(i, 0);
    }
    len = gen_write(g, NULL);
    if (total > 0) {
        assert_true(total >= len);
        free(g->values[nheaders - 1]);
        g->values[nheaders - 1] = gen_value(nheaders - 1, total - len);
        len = gen_write(g, NULL);
        assert_int_equal(len, total);
    }
    g->raw = malloc(len);
    assert_non_null(g->raw);
    g->len = gen_write(g, g->raw);
}

/* p[0..n] (its NUL too) lies in r's storage. */
static bool in_storage(const struct ws_http_request *r, const char *p, size_t n)
{
    return p >= r->storage && p + n < r->storage + r->storage_cap;
}

/* A DONE request parsed from g: every field, pointer and lookup. */
static void check_gen(const struct gen *g, const struct ws_http_request *r,
                      const char *how)
{
    if (r->state != WS_HTTP_REQ_DONE)
        fail_msg("[%s] state %d status %d", how, r->state, r->status);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, g->url);
    assert_int_equal(r->url_len, strlen(g->url));
    assert_string_equal(r->path, "/gen/path");
    assert_string_equal(r->query, g->query);
    assert_true(in_storage(r, r->url, r->url_len));
    assert_true(in_storage(r, r->path, strlen(r->path)));
    assert_true(in_storage(r, r->query, strlen(r->query)));
    if (r->nheaders != g->nheaders)
        fail_msg("[%s] nheaders %zu, want %zu", how, r->nheaders, g->nheaders);
    for (size_t i = 0; i < g->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];

        if (strcmp(h->name, g->names[i]) != 0 ||
            strcmp(h->value, g->values[i]) != 0)
            fail_msg("[%s] header %zu is \"%s: %s\", want \"%s: %s\"", how, i,
                     h->name, h->value, g->names[i], g->values[i]);
        assert_int_equal(h->name_len, strlen(g->names[i]));
        assert_int_equal(h->value_len, strlen(g->values[i]));
        assert_true(in_storage(r, h->name, h->name_len));
        assert_true(in_storage(r, h->value, h->value_len));
        assert_ptr_equal(ws_http_request_header(r, g->names[i], 0), h->value);
    }
}

/*
 * Many headers arriving one byte at a time, each byte in its own
 * allocation: storage and the headers array grow several times, nothing is
 * published while the headers arrive (ws_conn_path() may look at path
 * then), and every element parsed before a move is right at DONE.
 */
static void test_growth_byte_by_byte(void **state)
{
    struct ws_http_request r;
    struct gen g;
    size_t scap = 0, hcap = 0, sgrew = 0, hgrew = 0, n;

    (void)state;
    gen_make(&g, 90, 0);
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    for (size_t i = 0; i < g.len; i++) {
        assert_int_equal(feed_copy(&r, g.raw, i, i + 1, &n), 0);
        assert_int_equal(n, 1);
        sgrew += r.storage_cap != scap;
        hgrew += r.headers_cap != hcap;
        scap = r.storage_cap;
        hcap = r.headers_cap;
        if (r.state == WS_HTTP_REQ_HEADERS) {
            assert_null(r.url);
            assert_null(r.path);
            assert_null(r.query);
            assert_int_equal(r.nheaders, 0);
        }
    }
    /* 512 up to 8192 bytes; 16, 32, 64 and 100 headers. */
    assert_true(sgrew >= 5);
    assert_int_equal(hgrew, 4);
    assert_int_equal(r.headers_cap, 100);
    assert_true(r.storage_cap <= 2 * 16384 + 2 * 100 + 8);
    check_gen(&g, &r, "byte by byte");
    ws_http_request_free(&r);
    gen_free(&g);
}

/* Feed g whole, byte by byte and split in two at every step-th offset,
   each from a fresh request; want_status 0 means DONE. */
static void run_gen(const struct gen *g, size_t max_header_bytes,
                    size_t max_headers, int want_status, size_t step)
{
    size_t *cuts = malloc(g->len * sizeof(*cuts)), ncuts;
    struct ws_http_request r;
    struct outcome o;
    char how[64];

    assert_non_null(cuts);
    for (size_t run = 0; run < 2 + g->len / step; run++) {
        if (run == 0) {
            ncuts = 0;
            snprintf(how, sizeof(how), "whole");
        } else if (run == 1) {
            for (size_t i = 0; i + 1 < g->len; i++)
                cuts[i] = i + 1;
            ncuts = g->len - 1;
            snprintf(how, sizeof(how), "byte by byte");
        } else {
            cuts[0] = 1 + (run - 2) * step;
            ncuts = 1;
            snprintf(how, sizeof(how), "split at %zu", cuts[0]);
        }
        assert_int_equal(
            ws_http_request_init(&r, max_header_bytes, max_headers, 0), 0);
        o = feed_cuts(&r, g->raw, g->len, cuts, ncuts);
        if (want_status != 0) {
            if (o.rc != WS_EHTTP || r.state != WS_HTTP_REQ_ERROR ||
                r.status != want_status)
                fail_msg("[%s] rc %d state %d status %d, want %d", how, o.rc,
                         r.state, r.status, want_status);
            assert_int_equal(r.nheaders, 0);
        } else {
            assert_int_equal(o.rc, 0);
            assert_int_equal(o.consumed, g->len);
            assert_int_equal(r.header_bytes, g->len);
            check_gen(g, &r, how);
        }
        ws_http_request_free(&r);
    }
    free(cuts);
}

/* The limits answer as before while storage grows: exactly
   max_header_bytes or max_headers pass, one more is 431 (RFC 6585 §5). */
static void test_growth_limits(void **state)
{
    struct gen g;

    (void)state;
    gen_make(&g, 40, 3000);
    run_gen(&g, 3000, 0, 0, 7);
    run_gen(&g, 2999, 0, 431, 7);
    run_gen(&g, 0, 40, 0, 7);
    run_gen(&g, 0, 39, 431, 7);
    gen_free(&g);
    /* The defaults, as in test_default_limits, with growth on the way. */
    gen_make(&g, 100, 16384);
    run_gen(&g, 0, 0, 0, 61);
    gen_free(&g);
    gen_make(&g, 100, 16385);
    run_gen(&g, 0, 0, 431, 61);
    gen_free(&g);
    gen_make(&g, 101, 0);
    run_gen(&g, 0, 0, 431, 61);
    gen_free(&g);
}

/* Path and query are copied from the target inside storage; around the
   first allocation's end the copy itself makes storage move. */
static void test_growth_url_copy(void **state)
{
    char raw[1400], want_path[700], want_query[700];
    struct ws_http_request r;
    size_t n;

    (void)state;
    for (size_t len = 160; len < 600; len++) {
        size_t plen = len / 2, qlen = len - plen - 1, off;

        want_path[0] = '/';
        memset(want_path + 1, 'a', plen - 1);
        want_path[plen] = '\0';
        memset(want_query, 'b', qlen);
        want_query[qlen] = '\0';
        off = (size_t)snprintf(raw, sizeof(raw), "GET %s?%s HTTP/1.1\r\n\r\n",
                               want_path, want_query);
        assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
        assert_int_equal(feed_copy(&r, raw, 0, off, &n), 0);
        assert_int_equal(r.state, WS_HTTP_REQ_DONE);
        assert_int_equal(r.url_len, len);
        assert_string_equal(r.path, want_path);
        assert_string_equal(r.query, want_query);
        assert_true(in_storage(&r, r.query, qlen));
        ws_http_request_free(&r);
    }
}

/* Keep-alive: after a large request, reset keeps the grown allocations
   and a small request (then a large one again) parses into them. */
static void test_keepalive_reuse(void **state)
{
    static const char small[] = SMALL_REQ;
    struct ws_http_request r;
    struct gen g;
    size_t n, scap, hcap, cuts[SLEN(small) - 1];
    const char *storage;
    const struct ws_http_header *headers;
    struct outcome o;

    (void)state;
    gen_make(&g, 90, 0);
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_int_equal(feed_copy(&r, g.raw, 0, g.len, &n), 0);
    check_gen(&g, &r, "large");
    storage = r.storage;
    headers = r.headers;
    scap = r.storage_cap;
    hcap = r.headers_cap;
    assert_true(scap > 512 && hcap == 100);

    ws_http_request_reset(&r);
    assert_null(r.path);
    assert_int_equal(r.nheaders, 0);
    for (size_t i = 0; i + 1 < SLEN(small); i++)
        cuts[i] = i + 1;
    o = feed_cuts(&r, small, SLEN(small), cuts, SLEN(small) - 1);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, SLEN(small));
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_string_equal(r.path, "/");
    assert_int_equal(r.nheaders, 2);
    assert_string_equal(ws_http_request_header(&r, "host", 0), "example.com");
    assert_string_equal(ws_http_request_header(&r, "x-pad", 0), "0123456789");
    assert_ptr_equal(r.storage, storage);
    assert_ptr_equal(r.headers, headers);
    assert_int_equal(r.storage_cap, scap);
    assert_int_equal(r.headers_cap, hcap);

    ws_http_request_reset(&r);
    assert_int_equal(feed_copy(&r, g.raw, 0, g.len, &n), 0);
    check_gen(&g, &r, "large again");
    assert_ptr_equal(r.storage, storage);
    assert_int_equal(r.storage_cap, scap);
    ws_http_request_free(&r);
    gen_free(&g);
}

/* Nothing is allocated before the first byte; a browser's upgrade request
   takes one 512-byte storage and a 16-entry headers array; a small limit
   caps the first allocation too. */
static void test_lazy_alloc(void **state)
{
    static const char chrome[] = CHROME_REQ;
    struct ws_http_request r;
    size_t n;

    (void)state;
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_null(r.storage);
    assert_null(r.headers);
    assert_int_equal(ws_http_request_feed(&r, "GET /ch", 7, &n), 0);
    assert_int_equal(r.storage_cap, 512);
    assert_null(r.headers);
    assert_int_equal(feed_copy(&r, chrome, 7, SLEN(chrome), &n), 0);
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_int_equal(r.nheaders, 12);
    assert_int_equal(r.storage_cap, 512);
    assert_int_equal(r.headers_cap, 16);
    ws_http_request_free(&r);
    assert_null(r.storage);
    assert_null(r.headers);

    assert_int_equal(ws_http_request_init(&r, 64, 2, 0), 0);
    assert_int_equal(ws_http_request_feed(&r, SMALL_REQ, SLEN(SMALL_REQ), &n),
                     0);
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_int_equal(r.storage_cap, 2 * 64 + 2 * 2 + 8);
    assert_int_equal(r.headers_cap, 2);
    ws_http_request_free(&r);
}

/* True when the realloc above is the one called: valgrind replaces it
   with its own, which never fails. */
static bool realloc_can_fail(void)
{
    char *p = malloc(1), *q;

    assert_non_null(p);
    realloc_countdown = 0;
    q = realloc(p, 2);
    realloc_countdown = -1;
    free(q != NULL ? q : p);
    return q == NULL;
}

/* Running out of memory while storage or the headers array grows is 503
   (RFC 7231 §6.6.4), final, leaks nothing, and a reset request parses the
   next one into what it kept. */
static void test_alloc_failure(void **state)
{
    struct ws_http_request r;
    struct gen g;
    size_t n;
    long fail_at;
    int rc;

    (void)state;
    if (!realloc_can_fail())
        skip();
    gen_make(&g, 40, 3000);
    for (fail_at = 0;; fail_at++) {
        assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
        realloc_countdown = fail_at;
        rc = feed_copy(&r, g.raw, 0, g.len, &n);
        if (realloc_countdown >= 0) {
            realloc_countdown = -1; /* every allocation was made */
            assert_int_equal(rc, 0);
            check_gen(&g, &r, "no failure");
            ws_http_request_free(&r);
            break;
        }
        realloc_countdown = -1;
        assert_int_equal(rc, WS_EHTTP);
        assert_int_equal(r.state, WS_HTTP_REQ_ERROR);
        assert_int_equal(r.status, 503);
        assert_int_equal(r.nheaders, 0);
        assert_int_equal(ws_http_request_feed(&r, "G", 1, &n), WS_EHTTP);
        assert_int_equal(n, 0);
        ws_http_request_reset(&r);
        assert_int_equal(feed_copy(&r, g.raw, 0, g.len, &n), 0);
        check_gen(&g, &r, "after a failure");
        ws_http_request_free(&r);
    }
    /* Storage 512 to 4096 bytes and headers 16 to 64: seven allocations,
       each of which fails once above. */
    assert_int_equal(fail_at, 7);
    gen_free(&g);
}

/* Feed head and then len body bytes (a pattern) in pieces of step; the
   request must be DONE with the pattern as its body. */
static void feed_body(struct ws_http_request *r, const char *head, size_t len,
                      size_t step, bool chunked)
{
    char *piece = malloc(step + 32);
    size_t n, sent = 0;

    assert_non_null(piece);
    assert_int_equal(feed_copy(r, head, 0, strlen(head), &n), 0);
    assert_int_equal(r->state, WS_HTTP_REQ_BODY);
    while (sent < len) {
        size_t k = len - sent < step ? len - sent : step, hl = 0;

        if (chunked)
            hl = (size_t)snprintf(piece, 32, "%zx\r\n", k);
        for (size_t i = 0; i < k; i++)
            piece[hl + i] = (char)('a' + (sent + i) % 26);
        if (chunked)
            memcpy(piece + hl + k, "\r\n", 2);
        assert_int_equal(feed_copy(r, piece, 0, hl + k + (chunked ? 2 : 0), &n),
                         0);
        sent += k;
    }
    if (chunked)
        assert_int_equal(feed_copy(r, "0\r\n\r\n", 0, 5, &n), 0);
    free(piece);
    assert_int_equal(r->state, WS_HTTP_REQ_DONE);
    assert_int_equal(r->body.len, len);
    for (size_t i = 0; i < len; i++)
        if (r->body.data[i] != (char)('a' + i % 26))
            fail_msg("body byte %zu differs", i);
    assert_int_equal(r->body.data[len], '\0');
}

/*
 * The body grows with what arrives, never past the limit or what
 * Content-Length declared (one byte more for the NUL), and never to a
 * length only announced; reset frees it, and the next request on the
 * connection parses as if none had come before.
 */
static void test_body_growth(void **state)
{
    static const char cl_head[] =
        "POST /u HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    struct ws_http_request r;
    size_t n;

    (void)state;
    assert_int_equal(ws_http_request_init(&r, 0, 0, 100000), 0);
    feed_body(&r, cl_head, 100000, 1000, false);
    assert_int_equal(r.body.cap, 100001);
    ws_http_request_reset(&r);
    assert_null(r.body.data);
    assert_int_equal(r.body.cap, 0);
    feed_body(&r, CHUNK_HEAD, 100000, 10000, true);
    assert_int_equal(r.body.cap, 100001); /* 1024 doubled, then capped */
    ws_http_request_reset(&r);
    feed_body(&r, CHUNK_HEAD, 3000, 1000, true);
    assert_int_equal(r.body.cap, 4096);
    ws_http_request_reset(&r);
    /* Announced, not sent: the first allocation only. */
    assert_int_equal(feed_copy(&r, cl_head, 0, SLEN(cl_head), &n), 0);
    assert_int_equal(feed_copy(&r, "abc", 0, 3, &n), 0);
    assert_int_equal(r.state, WS_HTTP_REQ_BODY);
    assert_int_equal(r.body.cap, 1024);
    ws_http_request_reset(&r);
    assert_null(r.body.data);
    /* Keep-alive after a body: the next request is parsed on its own. */
    assert_int_equal(feed_copy(&r, POST_HEAD "hello" PIPE_2, 0,
                               SLEN(POST_HEAD "hello" PIPE_2), &n),
                     0);
    assert_int_equal(n, SLEN(POST_HEAD "hello"));
    assert_string_equal(r.body.data, "hello");
    ws_http_request_reset(&r);
    assert_int_equal(feed_copy(&r, PIPE_2, 0, SLEN(PIPE_2), &n), 0);
    assert_int_equal(r.state, WS_HTTP_REQ_DONE);
    assert_string_equal(r.path, "/b");
    assert_false(r.has_body);
    assert_int_equal(r.body.len, 0);
    ws_http_request_free(&r);
    assert_int_equal(ws_http_request_init(&r, 0, 0, SIZE_MAX), WS_ENOMEM);
}

/* Running out of memory while the body grows is 503 too, and frees what
   the body held. */
static void test_body_alloc_failure(void **state)
{
    struct ws_http_request r;
    size_t n;

    (void)state;
    if (!realloc_can_fail())
        skip();
    assert_int_equal(ws_http_request_init(&r, 0, 0, 100000), 0);
    assert_int_equal(feed_copy(&r, CHUNK_HEAD, 0, SLEN(CHUNK_HEAD), &n), 0);
    assert_int_equal(feed_copy(&r, "400\r\n", 0, 5, &n), 0);
    realloc_countdown = 0;
    assert_int_equal(feed_copy(&r, "aaaa", 0, 4, &n), WS_EHTTP);
    realloc_countdown = -1;
    assert_int_equal(r.status, 503);
    assert_null(r.body.data);
    ws_http_request_free(&r);
}

#define NROWS (sizeof(rows) / sizeof(rows[0]))
#define NFIXED 13

int main(void)
{
    struct CMUnitTest tests[NROWS + NFIXED] = {
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_limits),
        cmocka_unit_test(test_init_enomem),
        cmocka_unit_test(test_growth_byte_by_byte),
        cmocka_unit_test(test_growth_limits),
        cmocka_unit_test(test_growth_url_copy),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_lazy_alloc),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_body_growth),
        cmocka_unit_test(test_body_alloc_failure),
    };

    /* One named entry per row; the row is the test's initial state. */
    for (size_t i = 0; i < NROWS; i++) {
        struct CMUnitTest t = {rows[i].label, test_row, NULL, NULL,
                               (void *)&rows[i]};
        tests[NFIXED + i] = t;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
