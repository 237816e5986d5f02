/*
 * test_handshake.c - http/handshake.c: the RFC 6455 §1.3 accept vector,
 * every §4.2.1 rejection with its exact status, header token lists,
 * subprotocol choice and the exact bytes of the 101 and error responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "http/handshake.h"
#include "http/request.h"
#include "ws/ws.h"

#define SLEN(s) (sizeof(s) - 1)

/* RFC 6455 §1.3 sample request, one line per macro. */
#define GET "GET /chat HTTP/1.1\r\n"
#define HOST "Host: server.example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define ORIGIN "Origin: http://example.com\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define END "\r\n"

#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* An upgrade request and the verdict of ws_handshake_check(). */
struct check_row {
    const char *label;
    const char *raw;
    int status;      /* 0: accepted */
    bool is_upgrade; /* ws_handshake_is_upgrade() */
    const char *key; /* when accepted */
};

static const struct check_row check_rows[] = {
    {"RFC 6455 §1.3 sample", GET HOST UPG CONN KEY ORIGIN VER END, 0, true,
     SAMPLE_KEY},
    {"Content-Length: 0 is no body",
     GET HOST UPG CONN KEY VER "Content-Length: 0\r\n" END, 0, true,
     SAMPLE_KEY},
    {"400: a body (RFC 7231 §4.3.1; the bytes after it are frames)",
     GET HOST UPG CONN KEY VER "Content-Length: 2\r\n" END "hi", 400, true,
     NULL},
    {"400: a chunked body, even an empty one",
     GET HOST UPG CONN KEY VER "Transfer-Encoding: chunked\r\n" END "0\r\n\r\n",
     400, true, NULL},
    {"405 before the body: POST with one",
     "POST /chat HTTP/1.1\r\n" HOST UPG CONN KEY VER "Content-Length: 2\r\n" END
     "hi",
     405, true, NULL},
    {"Chrome capture",
     "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\n"
     "Pragma: no-cache\r\nCache-Control: no-cache\r\n"
     "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
     "Upgrade: websocket\r\nOrigin: http://127.0.0.1:8080\r\n"
     "Sec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n"
     "Accept-Language: en-US,en;q=0.9\r\n"
     "Sec-WebSocket-Key: 9v1sCVnTDdHXl0wxtHMMpg==\r\n"
     "Sec-WebSocket-Extensions: permessage-deflate; "
     "client_max_window_bits\r\n\r\n",
     0, true, "9v1sCVnTDdHXl0wxtHMMpg=="},
    {"Firefox capture: Connection: keep-alive, Upgrade",
     "GET /chat HTTP/1.1\r\nHost: localhost:8080\r\n"
     "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) "
     "Gecko/20100101 Firefox/121.0\r\nAccept: */*\r\n"
     "Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n"
     "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
     "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
     0, true, "x3JJHMbDL1EzLkh9GBhXDw=="},
    {"Upgrade: WebSocket (case-insensitive, §4.2.1 item 3)",
     GET HOST "Upgrade: WebSocket\r\n" CONN KEY VER END, 0, true, SAMPLE_KEY},
    {"Connection: upgrade in lower case",
     GET HOST UPG "Connection: upgrade\r\n" KEY VER END, 0, true, SAMPLE_KEY},
    {"Connection tokens in two headers (RFC 7230 §3.2.2)",
     GET HOST UPG
     "Connection: keep-alive\r\nConnection: Upgrade\r\n" KEY VER END,
     0, true, SAMPLE_KEY},
    {"Upgrade list with another protocol first",
     GET HOST "Upgrade: h2c, websocket\r\n" CONN KEY VER END, 0, true,
     SAMPLE_KEY},
    {"HTTP/1.2 is later than 1.1",
     "GET /chat HTTP/1.2\r\n" HOST UPG CONN KEY VER END, 0, true, SAMPLE_KEY},
    {"405: POST (§4.2.1 item 1)",
     "POST /chat HTTP/1.1\r\n" HOST UPG CONN KEY VER
     "Content-Length: 0\r\n" END,
     405, true, NULL},
    {"405: CONNECT",
     "CONNECT server.example.com:80 HTTP/1.1\r\n" HOST UPG CONN KEY VER END,
     405, true, NULL},
    {"400: HTTP/1.0 (§4.2.1 item 1)",
     "GET /chat HTTP/1.0\r\n" HOST UPG CONN KEY VER END, 400, true, NULL},
    {"400: no Host (§4.2.1 item 2)", GET UPG CONN KEY VER END, 400, true, NULL},
    {"400: two Host (RFC 7230 §5.4)",
     GET HOST "Host: other.example.com\r\n" UPG CONN KEY VER END, 400, true,
     NULL},
    {"400: no Upgrade (§4.2.1 item 3)", GET HOST CONN KEY VER END, 400, false,
     NULL},
    {"400: Upgrade: websocketx",
     GET HOST "Upgrade: websocketx\r\n" CONN KEY VER END, 400, false, NULL},
    {"400: Upgrade: websocket/13 is another product",
     GET HOST "Upgrade: websocket/13\r\n" CONN KEY VER END, 400, false, NULL},
    {"400: no Connection (§4.2.1 item 4)", GET HOST UPG KEY VER END, 400, true,
     NULL},
    {"400: Connection: keep-alive only",
     GET HOST UPG "Connection: keep-alive\r\n" KEY VER END, 400, true, NULL},
    {"400: Connection: keep-alive, upgradex",
     GET HOST UPG "Connection: keep-alive, upgradex\r\n" KEY VER END, 400, true,
     NULL},
    {"400: no Sec-WebSocket-Key (§4.2.1 item 5)", GET HOST UPG CONN VER END,
     400, true, NULL},
    {"400: two Sec-WebSocket-Key",
     GET HOST UPG CONN KEY
     "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n" VER END,
     400, true, NULL},
    {"400: key of 15 bytes",
     GET HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" VER END,
     400, true, NULL},
    {"key of 16 zero bytes",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" VER END,
     0, true, "AAAAAAAAAAAAAAAAAAAAAA=="},
    {"400: key of 15 bytes padded to 24 characters",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA====\r\n" VER END,
     400, true, NULL},
    {"400: key of 17 bytes (one '=')",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" VER END,
     400, true, NULL},
    {"400: key without padding",
     GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VER END,
     400, true, NULL},
    {"400: key with a character outside RFC 4648",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n" VER END,
     400, true, NULL},
    {"400: key in URL-safe base64",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n" VER END,
     400, true, NULL},
    {"400: '=' inside the key",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j=Q==\r\n" VER END,
     400, true, NULL},
    {"400: three '=' (RFC 4648 §4)",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ===\r\n" VER END,
     400, true, NULL},
    {"400: non-zero pad bits (RFC 4648 §3.5)",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n" VER END,
     400, true, NULL},
    {"400: space inside the key",
     GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ=\r\n" VER END,
     400, true, NULL},
    {"400: empty key", GET HOST UPG CONN "Sec-WebSocket-Key:\r\n" VER END, 400,
     true, NULL},
    {"426: Sec-WebSocket-Version: 8 (§4.2.1 item 6)",
     GET HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END, 426, true, NULL},
    {"426: no Sec-WebSocket-Version", GET HOST UPG CONN KEY END, 426, true,
     NULL},
    {"426: Sec-WebSocket-Version: 13, 8",
     GET HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n" END, 426, true,
     NULL},
    {"426: two Sec-WebSocket-Version",
     GET HOST UPG CONN KEY VER "Sec-WebSocket-Version: 8\r\n" END, 426, true,
     NULL},
    {"426: Sec-WebSocket-Version: 013",
     GET HOST UPG CONN KEY "Sec-WebSocket-Version: 013\r\n" END, 426, true,
     NULL},
    {"Sec-WebSocket-Version with OWS around 13",
     GET HOST UPG CONN KEY "Sec-WebSocket-Version:  13 \t\r\n" END, 0, true,
     SAMPLE_KEY},
};

/* Parse raw (from an allocation of exactly its size) into r. */
static void parse(struct ws_http_request *r, const char *raw)
{
    size_t len = strlen(raw), n = 0;
    char *copy = malloc(len);

    assert_non_null(copy);
    memcpy(copy, raw, len);
    assert_int_equal(ws_http_request_init(r, 0, 0, 16), 0);
    assert_int_equal(ws_http_request_feed(r, copy, len, &n), 0);
    free(copy);
    assert_int_equal(n, len);
    assert_int_equal(r->state, WS_HTTP_REQ_DONE);
}

/* One row of check_rows. */
static void test_check_row(void **state)
{
    const struct check_row *row = *state;
    struct ws_http_request r;
    const char *key = NULL;
    size_t key_len = 0;

    parse(&r, row->raw);
    if (ws_handshake_is_upgrade(&r) != row->is_upgrade)
        fail_msg("%s: is_upgrade is %d", row->label, !row->is_upgrade);
    assert_int_equal(ws_handshake_check(&r, &key, &key_len), row->status);
    if (row->status == 0) {
        assert_int_equal(key_len, strlen(row->key));
        assert_memory_equal(key, row->key, key_len);
    }
    ws_http_request_free(&r);
}

/* Arguments that make no request, and a request not yet complete. */
static void test_check_einval(void **state)
{
    struct ws_http_request r;
    const char *key;
    size_t key_len, n;

    (void)state;
    assert_int_equal(ws_handshake_check(NULL, &key, &key_len), WS_EINVAL);
    assert_int_equal(ws_http_request_init(&r, 0, 0, 0), 0);
    assert_int_equal(ws_http_request_feed(&r, GET HOST, SLEN(GET HOST), &n), 0);
    assert_int_equal(ws_handshake_check(&r, &key, &key_len), WS_EINVAL);
    ws_http_request_free(&r);
    /* The headers are complete, the body is not: refused already. */
    assert_int_equal(ws_http_request_init(&r, 0, 0, 16), 0);
    assert_int_equal(
        ws_http_request_feed(
            &r, GET HOST UPG CONN KEY VER "Content-Length: 9\r\n" END "x",
            SLEN(GET HOST UPG CONN KEY VER "Content-Length: 9\r\n" END "x"),
            &n),
        0);
    assert_int_equal(r.state, WS_HTTP_REQ_BODY);
    assert_int_equal(ws_handshake_check(&r, &key, &key_len), 400);
    ws_http_request_free(&r);
    parse(&r, GET HOST UPG CONN KEY VER END);
    assert_int_equal(ws_handshake_check(&r, NULL, &key_len), WS_EINVAL);
    assert_int_equal(ws_handshake_check(&r, &key, NULL), WS_EINVAL);
    assert_false(ws_handshake_is_upgrade(NULL));
    ws_http_request_free(&r);
}

/* RFC 6455 §1.3 and §4.2.2 step 5.4: the sample key and its accept
   value; the 128-byte key limit. */
static void test_accept_key(void **state)
{
    char out[WS_ACCEPT_KEY_LEN + 1], key[130];

    (void)state;
    memset(out, 'x', sizeof(out));
    assert_int_equal(ws_handshake_accept_key(SAMPLE_KEY, SLEN(SAMPLE_KEY), out),
                     0);
    assert_string_equal(out, SAMPLE_ACCEPT);
    /* Only key_len bytes of the key count. */
    assert_int_equal(
        ws_handshake_accept_key(SAMPLE_KEY "junk", SLEN(SAMPLE_KEY), out), 0);
    assert_string_equal(out, SAMPLE_ACCEPT);
    memset(key, 'k', sizeof(key));
    assert_int_equal(ws_handshake_accept_key(key, 128, out), 0);
    assert_int_equal(strlen(out), WS_ACCEPT_KEY_LEN);
    assert_int_equal(ws_handshake_accept_key(key, 129, out), WS_EINVAL);
    assert_int_equal(ws_handshake_accept_key(NULL, 1, out), WS_EINVAL);
    assert_int_equal(ws_handshake_accept_key(key, 1, NULL), WS_EINVAL);
}

/* A header list value, a token, and whether the list holds it. */
struct token_row {
    const char *value;
    size_t len; /* 0: strlen(value) */
    const char *token;
    bool found;
};

static const struct token_row token_rows[] = {
    {"Upgrade", 0, "upgrade", true},
    {"upgrade", 0, "Upgrade", true},
    {"keep-alive, Upgrade", 0, "Upgrade", true},
    {"keep-alive,Upgrade", 0, "Upgrade", true},
    {"Upgrade,keep-alive", 0, "Upgrade", true},
    {" \tUpgrade\t ", 0, "Upgrade", true},
    {",, Upgrade ,,", 0, "Upgrade", true},
    {"a , b\t,\tc", 0, "b", true},
    {"keep-alive, upgradex", 0, "upgrade", false},
    {"keep-alive, xupgrade", 0, "upgrade", false},
    {"websocketx", 0, "websocket", false},
    {"websocket/13", 0, "websocket", false},
    {"web socket", 0, "websocket", false},
    {"websocket", 0, "web", false},
    {"", 0, "websocket", false},
    {",,,", 0, "websocket", false},
    {"websocket", 0, "", false},
    {"websocketX", 9, "websocket", true},
    {"websocket", 8, "websocket", false},
    {"a, websocket", 5, "websocket", false},
};

/* ws_http_list_has_token over token_rows (RFC 7230 §7). */
static void test_list_has_token(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(token_rows) / sizeof(token_rows[0]); i++) {
        const struct token_row *t = &token_rows[i];
        size_t len = t->len ? t->len : strlen(t->value);
        char *copy = malloc(len ? len : 1);

        assert_non_null(copy);
        memcpy(copy, t->value, len);
        if (ws_http_list_has_token(copy, len, t->token) != t->found)
            fail_msg("row %zu: \"%s\"[%zu] has \"%s\": want %d", i, t->value,
                     len, t->token, t->found);
        free(copy);
    }
    assert_false(ws_http_list_has_token(NULL, 0, "a"));
    assert_false(ws_http_list_has_token("a", 1, NULL));
}

/* The client's protocol headers, the server's list, the expected pick. */
struct proto_row {
    const char *label;
    const char *headers;
    const char *ours[4];
    int want;
};

static const struct proto_row proto_rows[] = {
    {"server order wins",
     "Sec-WebSocket-Protocol: chat, superchat\r\n",
     {"superchat", "chat", NULL},
     0},
    {"first server entry not offered",
     "Sec-WebSocket-Protocol: chat, superchat\r\n",
     {"v2.mqtt", "chat", NULL},
     1},
    {"none matching",
     "Sec-WebSocket-Protocol: chat, superchat\r\n",
     {"mqtt", "wamp", NULL},
     -1},
    {"prefix is not a match",
     "Sec-WebSocket-Protocol: chatx\r\n",
     {"chat", NULL},
     -1},
    {"tokens across two headers",
     "Sec-WebSocket-Protocol: a\r\nsec-websocket-protocol: b\r\n",
     {"b", "c", NULL},
     0},
    {"case-insensitive token",
     "Sec-WebSocket-Protocol: CHAT\r\n",
     {"chat", NULL},
     0},
    {"no header", "", {"chat", NULL}, -1},
    {"empty server list", "Sec-WebSocket-Protocol: chat\r\n", {NULL}, -1},
};

/* ws_handshake_pick_protocol over proto_rows (RFC 6455 §4.2.2). */
static void test_pick_protocol(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(proto_rows) / sizeof(proto_rows[0]); i++) {
        const struct proto_row *p = &proto_rows[i];
        struct ws_http_request r;
        char raw[512];
        int got;

        snprintf(raw, sizeof(raw), "%s%s\r\n", GET HOST UPG CONN KEY VER,
                 p->headers);
        parse(&r, raw);
        got = ws_handshake_pick_protocol(&r, p->ours);
        if (got != p->want)
            fail_msg("%s: picked %d, want %d", p->label, got, p->want);
        assert_int_equal(ws_handshake_pick_protocol(&r, NULL), -1);
        ws_http_request_free(&r);
    }
}

/* What the application may pick in on_upgrade: a token the client
   offered, spelt as it offered it (RFC 6455 §4.1, §4.2.2). */
static void test_offers_protocol(void **state)
{
    static const struct {
        const char *label, *headers, *name;
        bool want;
    } rows[] = {
        {"offered", "Sec-WebSocket-Protocol: chat, superchat\r\n", "superchat",
         true},
        {"in a second header",
         "Sec-WebSocket-Protocol: a\r\nsec-websocket-protocol: b\r\n", "b",
         true},
        {"not offered", "Sec-WebSocket-Protocol: chat\r\n", "mqtt", false},
        {"prefix", "Sec-WebSocket-Protocol: chatx\r\n", "chat", false},
        {"other case: the client would fail it",
         "Sec-WebSocket-Protocol: CHAT\r\n", "chat", false},
        {"no header", "", "chat", false},
        {"not a token", "Sec-WebSocket-Protocol: a b\r\n", "a b", false},
        {"empty", "Sec-WebSocket-Protocol: chat\r\n", "", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct ws_http_request r;
        char raw[512];

        snprintf(raw, sizeof(raw), "%s%s\r\n", GET HOST UPG CONN KEY VER,
                 rows[i].headers);
        parse(&r, raw);
        if (ws_handshake_offers_protocol(&r, rows[i].name) != rows[i].want)
            fail_msg("%s: got %d", rows[i].label, !rows[i].want);
        assert_false(ws_handshake_offers_protocol(&r, NULL));
        ws_http_request_free(&r);
    }
    assert_false(ws_handshake_offers_protocol(NULL, "chat"));
}

/* The 101 text, byte for byte (RFC 6455 §4.2.2 step 5 and §1.3). */
static void test_write_101(void **state)
{
    static const char plain[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
                                "\r\n";
    static const char chat[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "\r\n";
    char out[256];

    (void)state;
    assert_int_equal(
        ws_handshake_write_101(out, sizeof(out), SAMPLE_ACCEPT, NULL),
        SLEN(plain));
    assert_memory_equal(out, plain, SLEN(plain));
    assert_int_equal(
        ws_handshake_write_101(out, sizeof(out), SAMPLE_ACCEPT, "chat"),
        SLEN(chat));
    assert_memory_equal(out, chat, SLEN(chat));
    /* Exactly the size fits; one byte less is WS_ENOSPC and writes
       nothing. */
    assert_int_equal(
        ws_handshake_write_101(out, SLEN(chat), SAMPLE_ACCEPT, "chat"),
        SLEN(chat));
    memset(out, '#', sizeof(out));
    assert_int_equal(
        ws_handshake_write_101(out, SLEN(chat) - 1, SAMPLE_ACCEPT, "chat"),
        WS_ENOSPC);
    assert_int_equal(ws_handshake_write_101(NULL, 0, SAMPLE_ACCEPT, NULL),
                     WS_ENOSPC);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], '#');
    assert_int_equal(ws_handshake_write_101(out, sizeof(out), NULL, NULL),
                     WS_EINVAL);
    assert_int_equal(ws_handshake_write_101(out, sizeof(out), "short", NULL),
                     WS_EINVAL);
    assert_int_equal(ws_handshake_write_101(out, sizeof(out), SAMPLE_ACCEPT,
                                            "chat\r\nX-Evil: 1"),
                     WS_EINVAL);
    assert_int_equal(
        ws_handshake_write_101(out, sizeof(out), SAMPLE_ACCEPT, ""), WS_EINVAL);
}

/* What a response parsed back with http-parser looked like. */
struct parsed_response {
    char field[64];
    size_t field_len;
    bool in_value;
    char headers[512]; /* "name: value\n" lines */
    char body[128];
    size_t body_len;
    bool complete;
};

/* http-parser: a piece of a header name. */
static int resp_field(http_parser *p, const char *at, size_t n)
{
    struct parsed_response *pr = p->data;

    if (pr->in_value)
        strcat(pr->headers, "\n");
    pr->in_value = false;
    strncat(pr->headers, at, n);
    return 0;
}

/* http-parser: a piece of a header value. */
static int resp_value(http_parser *p, const char *at, size_t n)
{
    struct parsed_response *pr = p->data;

    if (!pr->in_value)
        strcat(pr->headers, ": ");
    pr->in_value = true;
    strncat(pr->headers, at, n);
    return 0;
}

/* http-parser: body bytes. */
static int resp_body(http_parser *p, const char *at, size_t n)
{
    struct parsed_response *pr = p->data;

    assert_true(pr->body_len + n < sizeof(pr->body));
    memcpy(pr->body + pr->body_len, at, n);
    pr->body_len += n;
    return 0;
}

/* http-parser: the response is complete. */
static int resp_complete(http_parser *p)
{
    struct parsed_response *pr = p->data;

    pr->complete = true;
    return 0;
}

/* Statuses the server answers, with the body each must carry. */
static const struct {
    int status;
    const char *body;
} error_rows[] = {
    {400, "400 Bad Request\n"},
    {403, "403 Forbidden\n"},
    {404, "404 Not Found\n"},
    {405, "405 Method Not Allowed\n"},
    {413, "413 Payload Too Large\n"},
    {417, "417 Expectation Failed\n"},
    {426, "426 Upgrade Required\n"},
    {431, "431 Request Header Fields Too Large\n"},
    {500, "500 Internal Server Error\n"},
    {501, "501 Not Implemented\n"},
    {503, "503 Service Unavailable\n"},
    {505, "505 HTTP Version Not Supported\n"},
    {599, "599 Unknown\n"},
};

/* Parse out[0..len) as a response; it must be exactly one message. */
static void parse_response(const char *out, size_t len, int status,
                           struct parsed_response *pr)
{
    http_parser p;
    http_parser_settings s;
    char *copy = malloc(len);

    assert_non_null(copy);
    memcpy(copy, out, len);
    memset(pr, 0, sizeof(*pr));
    http_parser_settings_init(&s);
    s.on_header_field = resp_field;
    s.on_header_value = resp_value;
    s.on_body = resp_body;
    s.on_message_complete = resp_complete;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = pr;
    assert_int_equal(http_parser_execute(&p, &s, copy, len), len);
    free(copy);
    assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
    assert_true(pr->complete);
    assert_int_equal(p.status_code, status);
    assert_int_equal(p.http_major, 1);
    assert_int_equal(p.http_minor, 1);
    strcat(pr->headers, "\n");
}

/* Error responses parse as HTTP: status line, headers, a body whose
   length Content-Length gives (RFC 7230 §3.3.2). */
static void test_write_error(void **state)
{
    char out[512], line[128], want[256];

    (void)state;
    for (size_t i = 0; i < sizeof(error_rows) / sizeof(error_rows[0]); i++) {
        int st = error_rows[i].status;
        const char *body = error_rows[i].body;
        struct parsed_response pr;
        ssize_t n = ws_http_write_error(out, sizeof(out), st);

        assert_true(n > 0);
        snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", st,
                 ws_http_reason(st));
        assert_memory_equal(out, line, strlen(line));
        parse_response(out, (size_t)n, st, &pr);
        assert_int_equal(pr.body_len, strlen(body));
        assert_memory_equal(pr.body, body, pr.body_len);
        snprintf(want, sizeof(want),
                 "Content-Type: text/plain\nContent-Length: %zu\n%s%s",
                 strlen(body), st == 405 ? "Allow: GET\n" : "",
                 st == 426 ? "Upgrade: websocket\nSec-WebSocket-Version: 13\n"
                             "Connection: Upgrade, close\n"
                           : "Connection: close\n");
        assert_string_equal(pr.headers, want);
        /* Exactly the size fits; one byte less does not. */
        assert_int_equal(ws_http_write_error(out, (size_t)n, st), n);
        memset(out, '#', sizeof(out));
        assert_int_equal(ws_http_write_error(out, (size_t)n - 1, st),
                         WS_ENOSPC);
        assert_int_equal(out[0], '#');
    }
    assert_int_equal(ws_http_write_error(NULL, 0, 404), WS_ENOSPC);
    assert_int_equal(ws_http_write_error(out, sizeof(out), 200), WS_EINVAL);
    assert_int_equal(ws_http_write_error(out, sizeof(out), 600), WS_EINVAL);
    assert_int_equal(ws_http_write_error(out, sizeof(out), -7), WS_EINVAL);
}

/* Reason phrases (RFC 7231 §6.1, RFC 6585 §5). */
static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(ws_http_reason(101), "Switching Protocols");
    assert_string_equal(ws_http_reason(404), "Not Found");
    assert_string_equal(ws_http_reason(426), "Upgrade Required");
    assert_string_equal(ws_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(ws_http_reason(505), "HTTP Version Not Supported");
    assert_string_equal(ws_http_reason(299), "Unknown");
    assert_string_equal(ws_http_reason(-1), "Unknown");
}

#define NCHECK (sizeof(check_rows) / sizeof(check_rows[0]))

int main(void)
{
    struct CMUnitTest tests[NCHECK + 8] = {
        cmocka_unit_test(test_check_einval),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_list_has_token),
        cmocka_unit_test(test_pick_protocol),
        cmocka_unit_test(test_offers_protocol),
        cmocka_unit_test(test_write_101),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_reason),
    };

    /* One named entry per check row; the row is the initial state. */
    for (size_t i = 0; i < NCHECK; i++) {
        struct CMUnitTest t = {check_rows[i].label, test_check_row, NULL, NULL,
                               (void *)&check_rows[i]};
        tests[8 + i] = t;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
