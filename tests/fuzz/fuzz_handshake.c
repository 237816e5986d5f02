/*
 * fuzz_handshake.c - libFuzzer target for http/handshake.c alone. The
 * request is built straight from the input, without http-parser, so header
 * values can hold any bytes a parser might let through. Input: byte 0
 * picks the method and HTTP version, byte 1 seeds the buffer sizes; then
 * lines separated by LF: the first is the server's subprotocol list
 * (comma-separated), every other one a header "name:value".
 *
 * ws_handshake_check(), ws_http_list_has_token(),
 * ws_handshake_pick_protocol() and ws_handshake_is_upgrade() must agree
 * with slow references written from RFC 6455 §4.2.1 and RFC 7230 §7;
 * ws_handshake_write_101() and ws_http_write_error() must write whole
 * responses or nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handshake.h"
#include "http/request.h"
#include "tests/fuzz/fuzz.h"
#include "ws/ws.h"

#define MAX_HEADERS 32
#define MAX_PROTOCOLS 4
#define MAX_INPUT 4096 /* libFuzzer's default -max_len */
#define BIG 16384      /* more than any response to such an input */

static bool ref_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int ref_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* a[0..n) equals the NUL-terminated b, ignoring ASCII case. */
static bool ref_case_equal_n(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ref_lower((unsigned char)a[i]) != ref_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* RFC 7230 §7: split value[0..len) at commas, trim OWS, compare. */
static bool ref_list_has(const char *value, size_t len, const char *token)
{
    size_t start = 0;

    if (token[0] == '\0')
        return false;
    for (size_t i = 0; i <= len; i++) {
        size_t a = start, b = i;

        if (i < len && value[i] != ',')
            continue;
        while (a < b && ref_ows(value[a]))
            a++;
        while (b > a && ref_ows(value[b - 1]))
            b--;
        if (ref_case_equal_n(value + a, b - a, token))
            return true;
        start = i + 1;
    }
    return false;
}

/* How many headers are called name; *last gets the last one. */
static size_t ref_count(const struct ws_http_request *r, const char *name,
                        const struct ws_http_header **last)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nheaders; i++)
        if (ref_case_equal_n(r->headers[i].name, r->headers[i].name_len,
                             name)) {
            n++;
            *last = &r->headers[i];
        }
    return n;
}

static bool ref_any_has(const struct ws_http_request *r, const char *name,
                        const char *token)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];

        if (ref_case_equal_n(h->name, h->name_len, name) &&
            ref_list_has(h->value, h->value_len, token))
            return true;
    }
    return false;
}

/* RFC 4648 §4: the value of a base64 digit, or -1. */
static int ref_b64(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

    return p != NULL ? (int)(p - alphabet) : -1;
}

/* RFC 6455 §4.2.1 item 5: the canonical base64 of exactly 16 bytes is 22
   digits, the last with its 4 low bits zero (RFC 4648 §3.5), and "==". */
static bool ref_key(const char *k, size_t len)
{
    if (len != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (ref_b64(k[i]) < 0)
            return false;
    return (ref_b64(k[21]) & 0x0F) == 0;
}

/* RFC 6455 §4.2.1 with the statuses documented in handshake.h. */
static int ref_check(const struct ws_http_request *r,
                     const struct ws_http_header **key)
{
    const struct ws_http_header *h = NULL;

    if (strcmp(r->method, "GET") != 0)
        return 405;
    if (r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1))
        return 400;
    if (ref_count(r, "Host", &h) != 1)
        return 400;
    if (!ref_any_has(r, "Upgrade", "websocket"))
        return 400;
    if (!ref_any_has(r, "Connection", "Upgrade"))
        return 400;
    if (ref_count(r, "Sec-WebSocket-Key", key) != 1 ||
        !ref_key((*key)->value, (*key)->value_len))
        return 400;
    if (ref_count(r, "Sec-WebSocket-Version", &h) != 1 ||
        strcmp(h->value, "13") != 0)
        return 426;
    return 0;
}

/* RFC 7230 §3.2.6: a token is one or more tchar. */
static bool ref_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

/* Split the text at LF into NUL-terminated lines (in place). */
static size_t split_lines(char *text, size_t len, char **lines, size_t max)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= len && n < max; i++) {
        if (i < len && text[i] != '\n')
            continue;
        text[i] = '\0';
        lines[n++] = text + start;
        start = i + 1;
    }
    return n;
}

/* A header from "name:value": value trimmed of OWS, as request.c does. */
static void make_header(struct ws_http_header *h, char *line)
{
    char *colon = strchr(line, ':');
    char *v = colon != NULL ? colon + 1 : line + strlen(line);
    size_t len;

    if (colon != NULL)
        *colon = '\0';
    while (ref_ows(*v))
        v++;
    len = strlen(v);
    while (len > 0 && ref_ows(v[len - 1]))
        v[--len] = '\0';
    h->name = line;
    h->name_len = strlen(line);
    h->value = v;
    h->value_len = len;
}

/* Comma-separated protocol list, NULL-terminated, in place. */
static void make_protocols(char *line, const char **ours)
{
    size_t n = 0;
    char *p = line;

    while (n < MAX_PROTOCOLS) {
        char *comma = strchr(p, ',');

        ours[n++] = p;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    ours[n] = NULL;
}

typedef ssize_t (*writer)(char *out, size_t cap, const void *arg);

/* A response fits whole in a big buffer, or nothing is written. */
static ssize_t check_writer(writer fn, const void *arg, struct fuzz_rng *rng,
                            char *big)
{
    ssize_t full = fn(big, BIG, arg);
    size_t cap;
    char *out;
    ssize_t n;

    if (full < 0)
        return full;
    FUZZ_CHECK(full > 0 && full < BIG);
    cap = (size_t)(fuzz_next(rng) % ((uint64_t)full + 4));
    out = (char *)fuzz_dup(NULL, 0, cap);
    n = fn(cap > 0 ? out : NULL, cap, arg);
    if (cap < (size_t)full) {
        FUZZ_CHECK(n == WS_ENOSPC);
        for (size_t j = 0; j < cap; j++)
            FUZZ_CHECK((unsigned char)out[j] == 0xA5);
    } else {
        FUZZ_CHECK(n == full && memcmp(out, big, (size_t)n) == 0);
    }
    free(out);
    return full;
}

struct reply_101 {
    const char *accept;
    const char *protocol;
};

static ssize_t write_101(char *out, size_t cap, const void *arg)
{
    const struct reply_101 *a = arg;

    return ws_handshake_write_101(out, cap, a->accept, a->protocol);
}

static ssize_t write_error(char *out, size_t cap, const void *arg)
{
    return ws_http_write_error(out, cap, *(const int *)arg);
}

/* The 101 response for accept and protocol (RFC 6455 §4.2.2 step 5). */
static void check_101(const char *accept, const char *protocol,
                      struct fuzz_rng *rng)
{
    struct reply_101 a = {accept, protocol};
    char big[BIG + 1], line[BIG];
    ssize_t n = check_writer(write_101, &a, rng, big);

    if (strlen(accept) != WS_ACCEPT_KEY_LEN ||
        (protocol != NULL && !ref_token(protocol))) {
        FUZZ_CHECK(n == WS_EINVAL);
        return;
    }
    FUZZ_CHECK(n > 0);
    big[n] = '\0';
    /* The contract checks only the length of accept: look at the text
       only for one that ws_handshake_accept_key() could have made. */
    for (size_t i = 0; i < WS_ACCEPT_KEY_LEN; i++)
        if (ref_b64(accept[i]) < 0 && accept[i] != '=')
            return;
    FUZZ_CHECK(strncmp(big, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    snprintf(line, sizeof(line), "\r\nSec-WebSocket-Accept: %s\r\n", accept);
    FUZZ_CHECK(strstr(big, line) != NULL);
    if (protocol != NULL) {
        snprintf(line, sizeof(line), "\r\nSec-WebSocket-Protocol: %s\r\n",
                 protocol);
        FUZZ_CHECK(strstr(big, line) != NULL);
    } else {
        FUZZ_CHECK(strstr(big, "Sec-WebSocket-Protocol") == NULL);
    }
    FUZZ_CHECK(strcmp(big + n - 4, "\r\n\r\n") == 0);
    FUZZ_CHECK(strstr(big, "\r\n\r\n") == big + n - 4);
}

/* An error response for any int status. */
static void check_error(int status, struct fuzz_rng *rng)
{
    char big[BIG + 1], line[64];
    ssize_t n = check_writer(write_error, &status, rng, big);
    const char *body, *cl;

    if (status < 400 || status > 599) {
        FUZZ_CHECK(n == WS_EINVAL);
        return;
    }
    FUZZ_CHECK(n > 0);
    big[n] = '\0';
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
             ws_http_reason(status));
    FUZZ_CHECK(strncmp(big, line, strlen(line)) == 0);
    body = strstr(big, "\r\n\r\n");
    cl = strstr(big, "\r\nContent-Length: ");
    FUZZ_CHECK(body != NULL && cl != NULL && cl < body);
    body += 4;
    FUZZ_CHECK(strtoul(cl + 18, NULL, 10) == strlen(body));
    FUZZ_CHECK((status == 426) == (strstr(big, "Upgrade: websocket") != NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "CONNECT", "HEAD"};
    static const unsigned short versions[4][2] = {
        {1, 1}, {1, 0}, {2, 0}, {0, 9}};
    struct ws_http_header headers[MAX_HEADERS];
    struct ws_http_request r;
    const char *ours[MAX_PROTOCOLS + 1];
    char *lines[MAX_HEADERS + 1], *text, accept[WS_ACCEPT_KEY_LEN + 1];
    const struct ws_http_header *ref_key_h = NULL;
    const char *key = NULL;
    size_t nlines, key_len = 0;
    struct fuzz_rng rng;
    int status, want, pick, want_pick = -1;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    fuzz_seed(&rng, data, 2, size);
    text = (char *)fuzz_dup(data + 2, size - 2, 1);
    text[size - 2] = '\0';
    nlines = split_lines(text, size - 2, lines, MAX_HEADERS + 1);

    memset(&r, 0, sizeof(r));
    r.state = WS_HTTP_REQ_DONE;
    r.method = methods[data[0] & 3u];
    r.http_major = versions[(data[0] >> 2) & 3u][0];
    r.http_minor = versions[(data[0] >> 2) & 3u][1];
    r.headers = headers;
    make_protocols(lines[0], ours);
    for (size_t i = 1; i < nlines; i++)
        make_header(&headers[r.nheaders++], lines[i]);

    /* RFC 6455 §4.2.1. */
    status = ws_handshake_check(&r, &key, &key_len);
    want = ref_check(&r, &ref_key_h);
    FUZZ_CHECK(status == want);
    FUZZ_CHECK(ws_handshake_is_upgrade(&r) ==
               ref_any_has(&r, "Upgrade", "websocket"));
    if (status == 0) {
        FUZZ_CHECK(key == ref_key_h->value && key_len == 24);
        FUZZ_CHECK(ws_handshake_accept_key(key, key_len, accept) == 0);
        FUZZ_CHECK(strlen(accept) == WS_ACCEPT_KEY_LEN);
        FUZZ_CHECK(accept[27] == '=');
        for (size_t i = 0; i < 27; i++)
            FUZZ_CHECK(ref_b64(accept[i]) >= 0);
    } else {
        check_error(status, &rng);
    }
    /* Before the end of the headers: refused; with a body still to
       come (BODY) the headers are all there and are checked, body and
       all (RFC 7231 §4.3.1: 400 unless the method is wrong already). */
    r.state = WS_HTTP_REQ_HEADERS;
    FUZZ_CHECK(ws_handshake_check(&r, &key, &key_len) == WS_EINVAL);
    r.state = WS_HTTP_REQ_BODY;
    r.has_body = true;
    status = ws_handshake_check(&r, &key, &key_len);
    FUZZ_CHECK(status == (want == 405 ? 405 : 400));
    r.has_body = false;
    r.state = WS_HTTP_REQ_DONE;

    /* RFC 6455 §4.2.2 /subprotocol/: the first of ours offered. */
    for (int i = 0; ours[i] != NULL && want_pick < 0; i++)
        if (ref_any_has(&r, "Sec-WebSocket-Protocol", ours[i]))
            want_pick = i;
    pick = ws_handshake_pick_protocol(&r, ours);
    FUZZ_CHECK(pick == want_pick);

    /* RFC 7230 §7 lists: each header value, and the raw input (which may
       hold NUL bytes) against each of ours. */
    for (size_t i = 0; i < r.nheaders; i++)
        for (int j = 0; ours[j] != NULL; j++)
            FUZZ_CHECK(
                ws_http_list_has_token(headers[i].value, headers[i].value_len,
                                       ours[j]) ==
                ref_list_has(headers[i].value, headers[i].value_len, ours[j]));
    for (int j = 0; ours[j] != NULL; j++) {
        char *raw = (char *)fuzz_dup(data, size, 0);

        FUZZ_CHECK(ws_http_list_has_token(raw, size, ours[j]) ==
                   ref_list_has(raw, size, ours[j]));
        free(raw);
    }

    /* Accept key of any length; then the 101 with a valid accept, or with
       a line of the input as the accept value. */
    {
        size_t n = (size_t)(fuzz_next(&rng) % 160u);
        char *k = (char *)fuzz_dup(data, n < size ? n : size, 0);
        int rc = ws_handshake_accept_key(k, n < size ? n : size, accept);

        FUZZ_CHECK(rc == ((n < size ? n : size) > 128 ? WS_EINVAL : 0));
        free(k);
        if (rc != 0)
            ws_handshake_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
    }
    check_101(accept, pick >= 0 ? ours[pick] : ours[0], &rng);
    check_101(accept, NULL, &rng);
    if (nlines > 1)
        check_101(lines[nlines - 1], NULL, &rng);

    /* Any status at all, from the first bytes. */
    {
        uint32_t u = 0;

        for (size_t i = 0; i < 4 && i < size; i++)
            u = u << 8 | data[i];
        check_error((int)(u % 2000u) - 500, &rng);
        check_error(400 + (int)(fuzz_next(&rng) % 200u), &rng);
    }
    free(text);
    return 0;
}
