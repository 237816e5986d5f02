/*
 * fuzz_request.c - libFuzzer target for http/request.c, and for
 * http/handshake.c on the requests it parses. Input: 2 configuration
 * bytes, then the bytes a client sends. Byte 0 picks the limits and
 * whether pipelined requests are parsed (reset after each one), byte 1
 * seeds the split points.
 *
 * The stream is fed whole and in data-derived pieces; both must give the
 * same trace (state, status, consumed bytes, method, target, path, query,
 * version, flags and every header). Each request that reaches DONE is
 * checked for the module's promises (bounded, trimmed, NUL-terminated, no
 * control characters) and run through the handshake functions with small
 * output buffers.
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

#define CFG_BYTES 2
#define CFG_PIPELINE 0x40u
#define MAX_REQUESTS 8
#define BIG 1024 /* an output buffer large enough for any response */

struct trace {
    char *p;
    size_t len, cap;
};

static void trace_add(struct trace *t, const void *p, size_t n)
{
    if (n > t->cap - t->len) {
        size_t cap = t->cap * 2 + n + 256;
        char *q = realloc(t->p, cap);

        FUZZ_CHECK(q != NULL);
        t->p = q;
        t->cap = cap;
    }
    if (n > 0)
        memcpy(t->p + t->len, p, n);
    t->len += n;
}

static void trace_num(struct trace *t, uint64_t v)
{
    trace_add(t, &v, sizeof(v));
}

/* A string with its length, so that "ab","c" and "a","bc" differ. */
static void trace_str(struct trace *t, const char *s)
{
    size_t n = s != NULL ? strlen(s) : SIZE_MAX;

    trace_num(t, n);
    if (s != NULL)
        trace_add(t, s, n);
}

/* RFC 7230 §3.2.6 tchar. */
static bool ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ref_case_equal(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        int y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;

        if (x != y)
            return false;
        if (x == 0)
            return true;
    }
}

/* p lies in the request's storage, with its NUL. */
static bool in_storage(const struct ws_http_request *r, const char *p,
                       size_t len)
{
    return p >= r->storage && p + len < r->storage + r->storage_cap;
}

/* What ws_http_request promises about a request in state DONE. */
static void check_done(const struct ws_http_request *r)
{
    size_t plen, max_headers = r->max_headers;

    FUZZ_CHECK(r->method != NULL && r->url != NULL);
    FUZZ_CHECK(r->http_major == 1);
    FUZZ_CHECK(r->storage_len <= r->storage_cap);
    FUZZ_CHECK(r->header_bytes <= r->max_header_bytes);
    FUZZ_CHECK(r->body_bytes <= r->max_body_bytes);
    /* The body: within the limit, NUL-terminated, only with a body
       declared (RFC 7230 §3.3.3), never allocated past limit + 1. */
    FUZZ_CHECK(r->body.len <= r->body_bytes);
    FUZZ_CHECK(r->body.len == 0 || r->has_body);
    FUZZ_CHECK(r->body.cap <= r->max_body_bytes + 1);
    FUZZ_CHECK(r->body.data == NULL || r->body.data[r->body.len] == '\0');
    /* The target: no white space or controls (RFC 7230 §3.1.1). */
    FUZZ_CHECK(strlen(r->url) == r->url_len && r->url_len > 0);
    FUZZ_CHECK(in_storage(r, r->url, r->url_len));
    for (size_t i = 0; i < r->url_len; i++)
        FUZZ_CHECK((unsigned char)r->url[i] > 0x20 && r->url[i] != 0x7f);
    /* path = target up to '?' or '#'; query = after '?', up to '#'. */
    plen = strcspn(r->url, "?#");
    FUZZ_CHECK(strlen(r->path) == plen && memcmp(r->path, r->url, plen) == 0);
    if (r->url[plen] == '?') {
        size_t qlen = strcspn(r->url + plen + 1, "#");

        FUZZ_CHECK(strlen(r->query) == qlen &&
                   memcmp(r->query, r->url + plen + 1, qlen) == 0);
    } else {
        FUZZ_CHECK(r->query[0] == '\0');
    }
    FUZZ_CHECK(r->nheaders <= max_headers);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];
        size_t k = 0, n = 0;

        /* RFC 7230 §3.2: name is a token; value is trimmed of OWS and
           holds VCHAR, obs-text, SP and HTAB only. */
        FUZZ_CHECK(h->name_len > 0 && strlen(h->name) == h->name_len);
        FUZZ_CHECK(strlen(h->value) == h->value_len);
        FUZZ_CHECK(in_storage(r, h->name, h->name_len));
        FUZZ_CHECK(h->value_len == 0 || in_storage(r, h->value, h->value_len));
        for (size_t j = 0; j < h->name_len; j++)
            FUZZ_CHECK(ref_tchar((unsigned char)h->name[j]));
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];

            FUZZ_CHECK((c >= 0x20 && c != 0x7f) || c == '\t');
        }
        if (h->value_len > 0) {
            FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            FUZZ_CHECK(h->value[h->value_len - 1] != ' ' &&
                       h->value[h->value_len - 1] != '\t');
        }
        /* The lookups agree with a walk over the array. */
        for (size_t j = 0; j < r->nheaders; j++) {
            if (!ref_case_equal(r->headers[j].name, h->name))
                continue;
            if (j == i)
                k = n;
            n++;
        }
        FUZZ_CHECK(ws_http_request_header_count(r, h->name) == n);
        FUZZ_CHECK(ws_http_request_header(r, h->name, k) == h->value);
        FUZZ_CHECK(ws_http_request_header(r, h->name, n) == NULL);
    }
}

/* Record everything a caller may read from a finished request. */
static void trace_request(struct trace *t, const struct ws_http_request *r,
                          int rc, size_t consumed)
{
    trace_num(t, (uint64_t)r->state);
    trace_num(t, (uint64_t)(int64_t)rc);
    if (r->state == WS_HTTP_REQ_ERROR) {
        /* The status must not depend on the split either (the seeds
           regress-400-*-split once gave 431 or 413 split, 400 whole). */
        trace_num(t, (uint64_t)r->status);
        return;
    }
    if (r->state != WS_HTTP_REQ_DONE)
        return;
    trace_num(t, consumed);
    trace_str(t, r->method);
    trace_str(t, r->url);
    trace_str(t, r->path);
    trace_str(t, r->query);
    trace_num(t, r->http_major);
    trace_num(t, r->http_minor);
    trace_num(t, r->upgrade);
    trace_num(t, r->keep_alive);
    trace_num(t, r->body_bytes);
    trace_num(t, r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        trace_str(t, r->headers[i].name);
        trace_str(t, r->headers[i].value);
    }
}

/*
 * Write a response with fn into buffers of several capacities: a buffer
 * too small is left untouched (WS_ENOSPC), any other gets the same bytes
 * as a big one. Returns the length.
 */
typedef ssize_t (*writer)(char *out, size_t cap, const void *arg);

static size_t check_writer(writer fn, const void *arg, struct fuzz_rng *rng,
                           char *big)
{
    ssize_t full = fn(big, BIG, arg);
    size_t caps[4];

    FUZZ_CHECK(full > 0 && full < BIG);
    caps[0] = 0;
    caps[1] = (size_t)full - 1;
    caps[2] = (size_t)full;
    caps[3] = (size_t)(fuzz_next(rng) % ((uint64_t)full + 8));
    for (size_t i = 0; i < 4; i++) {
        char *out = (char *)fuzz_dup(NULL, 0, caps[i]);
        ssize_t n = fn(caps[i] > 0 ? out : NULL, caps[i], arg);

        if (caps[i] < (size_t)full) {
            FUZZ_CHECK(n == WS_ENOSPC);
            for (size_t j = 0; j < caps[i]; j++)
                FUZZ_CHECK((unsigned char)out[j] == 0xA5);
        } else {
            FUZZ_CHECK(n == full && memcmp(out, big, (size_t)n) == 0);
        }
        free(out);
    }
    return (size_t)full;
}

static ssize_t write_error(char *out, size_t cap, const void *arg)
{
    return ws_http_write_error(out, cap, *(const int *)arg);
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

/* An error response: status line, Content-Length that fits the body. */
static void check_error_reply(int status, struct fuzz_rng *rng)
{
    char big[BIG + 1], line[32];
    size_t n = check_writer(write_error, &status, rng, big);
    const char *body, *cl;

    big[n] = '\0';
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    FUZZ_CHECK(strncmp(big, line, strlen(line)) == 0);
    body = strstr(big, "\r\n\r\n");
    cl = strstr(big, "\r\nContent-Length: ");
    FUZZ_CHECK(body != NULL && cl != NULL && cl < body);
    body += 4;
    FUZZ_CHECK(strtoul(cl + 18, NULL, 10) == strlen(body));
}

/* The server's subprotocols, in order of preference. */
static const char *const protocols[] = {"chat", "superchat", "v2.json", NULL};

/* RFC 6455 §4.2: run the handshake functions on a parsed request. */
static void check_handshake(const struct ws_http_request *r,
                            struct fuzz_rng *rng)
{
    const char *key = NULL;
    size_t key_len = 0;
    int status = ws_handshake_check(r, &key, &key_len);
    char accept[WS_ACCEPT_KEY_LEN + 1], big[BIG + 1];
    struct reply_101 reply;
    int proto;
    size_t n;

    FUZZ_CHECK(status == 0 || status == 400 || status == 405 || status == 426);
    if (status != 0) {
        check_error_reply(status, rng);
        return;
    }
    FUZZ_CHECK(strcmp(r->method, "GET") == 0);
    FUZZ_CHECK(ws_handshake_is_upgrade(r));
    FUZZ_CHECK(key != NULL && key_len == 24 && strlen(key) == 24);
    FUZZ_CHECK(key_len == 24 && key[22] == '=' && key[23] == '=');
    memset(accept, 0x5A, sizeof(accept));
    FUZZ_CHECK(ws_handshake_accept_key(key, key_len, accept) == 0);
    FUZZ_CHECK(strlen(accept) == WS_ACCEPT_KEY_LEN);
    proto = ws_handshake_pick_protocol(r, protocols);
    FUZZ_CHECK(proto >= -1 && proto <= 2);
    reply.accept = accept;
    reply.protocol = proto >= 0 ? protocols[proto] : NULL;
    n = check_writer(write_101, &reply, rng, big);
    big[n] = '\0';
    FUZZ_CHECK(strncmp(big, "HTTP/1.1 101 ", 13) == 0);
    FUZZ_CHECK(strstr(big, accept) != NULL);
    FUZZ_CHECK(n >= 4 && strcmp(big + n - 4, "\r\n\r\n") == 0);
}

/* Limits from configuration byte 0. */
static void request_init(struct ws_http_request *r, unsigned c0)
{
    static const size_t header_bytes[] = {0, 1024, 256, 64};
    static const size_t headers[] = {0, 8, 3, 1};
    static const size_t body[] = {0, 16, 1024, 0};

    FUZZ_CHECK(ws_http_request_init(r, header_bytes[c0 & 3u],
                                    headers[(c0 >> 2) & 3u],
                                    body[(c0 >> 4) & 3u]) == 0);
    FUZZ_CHECK(r->state == WS_HTTP_REQ_HEADERS);
}

/*
 * Parse the requests in p[0..n): in one feed per request (rng NULL) or in
 * data-derived pieces, each piece an exact allocation. hs: also run the
 * handshake checks on every request that is DONE.
 */
static void run(const uint8_t *cfg, const uint8_t *p, size_t n,
                struct fuzz_rng *rng, struct trace *t, bool hs)
{
    struct ws_http_request r;
    struct fuzz_rng wrng;
    size_t off = 0, end = 0, start = 0, consumed;
    int rc = 0, nreq = 0;

    fuzz_seed(&wrng, cfg, CFG_BYTES, 3);
    request_init(&r, cfg[0]);
    while (off < n) {
        char *chunk;

        if (off == end)
            end = off + (rng != NULL ? fuzz_chunk(rng, n - off) : n - off);
        chunk = (char *)fuzz_dup(p + off, end - off, 0);
        consumed = SIZE_MAX;
        rc = ws_http_request_feed(&r, chunk, end - off, &consumed);
        free(chunk);
        FUZZ_CHECK(consumed <= end - off);
        off += consumed;
        if (rc != 0) {
            FUZZ_CHECK(rc == WS_EHTTP && r.state == WS_HTTP_REQ_ERROR);
            FUZZ_CHECK(r.status == 400 || r.status == 413 || r.status == 431 ||
                       r.status == 501 || r.status == 505);
            if (hs)
                check_error_reply(r.status, &wrng);
            /* An error is final. */
            FUZZ_CHECK(ws_http_request_feed(&r, "G", 1, &consumed) ==
                           WS_EHTTP &&
                       consumed == 0);
            break;
        }
        FUZZ_CHECK(r.state != WS_HTTP_REQ_ERROR);
        if (r.state != WS_HTTP_REQ_DONE) {
            /* Not done: every byte given was taken. */
            FUZZ_CHECK(off == end);
            continue;
        }
        check_done(&r);
        /* Nothing past the end of a request is taken. */
        FUZZ_CHECK(ws_http_request_feed(&r, "GET", 3, &consumed) == 0 &&
                   consumed == 0 && r.state == WS_HTTP_REQ_DONE);
        trace_request(t, &r, rc, off - start);
        if (hs)
            check_handshake(&r, &wrng);
        if (!(cfg[0] & CFG_PIPELINE) || ++nreq == MAX_REQUESTS)
            break;
        ws_http_request_reset(&r);
        start = off;
    }
    if (r.state != WS_HTTP_REQ_DONE)
        trace_request(t, &r, rc, off - start);
    ws_http_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace whole = {NULL, 0, 0}, split = {NULL, 0, 0};
    struct fuzz_rng rng;
    uint8_t cfg[CFG_BYTES];

    if (size < CFG_BYTES)
        return 0;
    memcpy(cfg, data, CFG_BYTES);
    data += CFG_BYTES;
    size -= CFG_BYTES;

    run(cfg, data, size, NULL, &whole, true);
    fuzz_seed(&rng, cfg, CFG_BYTES, size);
    run(cfg, data, size, &rng, &split, false);
    /* §9: the outcome does not depend on how the bytes arrive. */
    FUZZ_CHECK(whole.len == split.len);
    FUZZ_CHECK(whole.len == 0 || memcmp(whole.p, split.p, whole.len) == 0);
    free(whole.p);
    free(split.p);
    return 0;
}
