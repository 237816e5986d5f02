/*
 * conn_http.c - a connection's HTTP phase: each request through
 * http-parser, plain responses (the application's on_http, or 404/426),
 * and the upgrade (RFC 6455 §4.2): checks, the application's on_upgrade,
 * the 101. Queues output and decides; conn_io.c writes it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/handshake.h"
#include "ws/conn.h"
#include "ws/request_api.h"

void ws_conn_respond_error(struct ws_conn *c, int status)
{
    char text[512];
    ssize_t n = ws_http_write_error(text, sizeof(text), status);

    c->close_after_write = true;
    if (n < 0 || ws_buf_append(&c->out, text, (size_t)n,
                               ws_conn_response_cap(c->srv)) < 0) {
        ws_conn_kill(c, WS_CLOSE_ABNORMAL);
        return;
    }
    ws_conn_want_flush(c);
}

/* True when path names a WebSocket endpoint of the server. */
static bool is_endpoint(const struct ws_server *s, const char *path)
{
    if (s->paths == NULL)
        return true;
    for (char **p = s->paths; *p; p++) {
        if (strcmp(*p, path) == 0)
            return true;
    }
    return false;
}

/*
 * Keep the upgrade path for ws_conn_path() beyond the request: "/" or one
 * of the server's endpoints is a byte (enum ws_conn_path); any other path
 * is copied.
 */
static int keep_path(struct ws_conn *c)
{
    const char *path = c->http->path;
    struct ws_conn_extra *x;
    size_t i = 0;

    if (strcmp(path, "/") == 0) {
        c->path = WS_CONN_PATH_ROOT;
        return 0;
    }
    for (char **p = c->srv->paths; p && *p; p++, i++) {
        if (strcmp(*p, path) == 0 &&
            i < WS_CONN_PATH_COPY - WS_CONN_PATH_ENDPOINT) {
            c->path = (uint8_t)(WS_CONN_PATH_ENDPOINT + i);
            return 0;
        }
    }
    if ((x = ws_conn_extra(c)) == NULL || (x->path = strdup(path)) == NULL)
        return WS_ENOMEM;
    c->path = WS_CONN_PATH_COPY;
    return 0;
}

/*
 * Negotiate permessage-deflate (RFC 7692 §5) over every
 * Sec-WebSocket-Extensions header, in order: 1 with *z made and ext
 * holding the response's value, 0 when no offer is accepted (or the
 * server does not offer compression), WS_ENOMEM.
 */
static int negotiate_deflate(struct ws_conn *c, struct ws_deflate **z,
                             char *ext, size_t cap)
{
    const struct ws_server *s = c->srv;
    const struct ws_http_request *r = c->http;
    const struct ws_deflate_policy policy = {
        .server_takeover = s->cfg.deflate_server_context != 0,
        .client_takeover = s->cfg.deflate_client_context != 0,
        .server_max_bits = (uint8_t)s->cfg.deflate_server_window_bits,
        .client_max_bits = (uint8_t)s->cfg.deflate_client_window_bits,
    };
    struct ws_deflate_params params;

    *z = NULL;
    if (s->deflate == NULL)
        return 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];

        if (strcasecmp(h->name, "Sec-WebSocket-Extensions") != 0 ||
            ws_deflate_negotiate(&h->value, &h->value_len, 1, &policy, &params,
                                 ext, cap) != 1)
            continue;
        *z = ws_deflate_create(s->deflate, &params);
        return *z ? 1 : WS_ENOMEM;
    }
    return 0;
}

/*
 * Choose c's subprotocol (RFC 6455 §4.2.2 /subprotocol/): on_upgrade's
 * pick in res (ws_response_protocol() checked that the client offered
 * it), else the first of cfg.protocols that the client offers. A pick
 * outside cfg.protocols is copied for ws_conn_protocol(). Returns 0 or
 * WS_ENOMEM.
 */
static int choose_protocol(struct ws_conn *c, const struct ws_response *res)
{
    struct ws_server *s = c->srv;
    int pick = -1;

    if (!res->protocol_set) {
        if (s->protocols)
            pick = ws_handshake_pick_protocol(
                c->http, (const char *const *)s->protocols);
        c->protocol = (uint16_t)(pick + 1); /* at most 65535: server.c */
        return 0;
    }
    c->protocol = 0;
    if (res->protocol[0] == '\0')
        return 0; /* "none", even where cfg.protocols would match */
    for (size_t i = 0; s->protocols && s->protocols[i]; i++) {
        if (strcmp(s->protocols[i], res->protocol) == 0) {
            c->protocol = (uint16_t)(i + 1);
            return 0;
        }
    }
    if (ws_conn_extra(c) == NULL ||
        (c->extra->protocol = strdup(res->protocol)) == NULL)
        return WS_ENOMEM;
    return 0;
}

/* Open c with the 101 text[0..n) and, before its final empty line, the
   headers on_upgrade added. Returns what ws_conn_open() returns; z stays
   the caller's on failure. */
static int open_with_headers(struct ws_conn *c, const char *text, size_t n,
                             const struct ws_response *res,
                             struct ws_deflate *z)
{
    size_t cap = ws_conn_response_cap(c->srv);
    struct ws_buf reply = {0};
    int rc;

    if (ws_buf_size(&res->headers) == 0)
        return ws_conn_open(c, text, n, z);
    rc = ws_buf_append(&reply, text, n - 2, cap);
    if (rc == 0)
        rc = ws_buf_append(&reply, ws_buf_head(&res->headers),
                           ws_buf_size(&res->headers), cap);
    if (rc == 0)
        rc = ws_buf_append(&reply, "\r\n", 2, cap);
    if (rc == 0)
        rc = ws_conn_open(c, ws_buf_head(&reply), ws_buf_size(&reply), z);
    ws_buf_free(&reply);
    return rc < 0 ? WS_ENOMEM : 0;
}

/* Write the 101 and switch c to the session (RFC 6455 §4.2.2). */
static int switch_protocols(struct ws_conn *c, const char *key, size_t key_len,
                            const struct ws_response *res)
{
    char accept[WS_ACCEPT_KEY_LEN + 1], text[512], ext[160];
    struct ws_deflate *z;
    int deflate, rc;
    ssize_t n;

    if (choose_protocol(c, res) < 0)
        return WS_ENOMEM;
    if (ws_handshake_accept_key(key, key_len, accept) < 0)
        return WS_EINVAL;
    deflate = negotiate_deflate(c, &z, ext, sizeof(ext));
    if (deflate < 0)
        return deflate;
    n = ws_handshake_write_101_ext(text, sizeof(text), accept,
                                   ws_conn_protocol(c), deflate ? ext : NULL);
    rc = n < 0 || keep_path(c) < 0
             ? WS_ENOMEM
             : open_with_headers(c, text, (size_t)n, res, z);
    if (rc < 0)
        ws_deflate_free(z);
    return rc;
}

/* The library answers 500 itself: nothing on_upgrade put in res. */
static int library_500(struct ws_response *res)
{
    ws_buf_clear(&res->headers);
    ws_buf_clear(&res->body);
    return 500;
}

/*
 * What on_upgrade's answer means: 0 accepts, 400..599 refuses, a redirect
 * (301, 302, 303, 307, 308) with a Location header refuses with it (RFC
 * 6455 §4.1: the client may follow it); anything else, or a builder call
 * that ran out of memory, is the application's error: 500.
 */
static int upgrade_status(int status, struct ws_response *res)
{
    bool redirect = status == 301 || status == 302 || status == 303 ||
                    status == 307 || status == 308;

    if (res->failed)
        return library_500(res);
    if (status == 0 || (status >= 400 && status <= 599))
        return status;
    return redirect && res->has_location ? status : library_500(res);
}

/* Refuse the upgrade with status: the library's own answer, or, when
   on_upgrade added headers or a body, one with them. */
static void refuse_upgrade(struct ws_conn *c, int status,
                           struct ws_response *res)
{
    size_t queued = ws_buf_size(&c->out);

    if (ws_buf_size(&res->headers) == 0 && ws_buf_size(&res->body) == 0 &&
        status >= 400) {
        ws_conn_respond_error(c, status);
        return;
    }
    if (ws_response_write_refusal(res, status, &c->out,
                                  ws_conn_response_cap(c->srv)) < 0) {
        ws_buf_truncate(&c->out, queued);
        ws_conn_respond_error(c, 500);
        return;
    }
    c->close_after_write = true;
    ws_conn_want_flush(c);
}

/* An upgrade request: check it, ask the application, answer. */
static void handle_upgrade(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    struct ws_response res;
    const char *key = NULL;
    size_t key_len = 0;
    int status = ws_handshake_check(c->http, &key, &key_len);

    if (status == 0 && !is_endpoint(s, c->http->path))
        status = 404;
    /* The application's own refusals are its to report. */
    if (status != 0)
        ws_server_error(s, c, WS_EHTTP, "%s: upgrade refused: answered %d",
                        ws_conn_peer(c), status);
    ws_response_init_upgrade(&res, ws_conn_response_cap(s), c->http);
    if (status == 0 && s->cb.on_upgrade) {
        struct ws_request req = {c->http, ws_conn_peer(c)};

        WS_CALLBACK(s, status = s->cb.on_upgrade(c, &req, &res, s->user_data));
        status = upgrade_status(status, &res);
        c->accepted = status == 0;
    }
    /* c->http is gone once the 101 is queued; res does not look at it. */
    if (status == 0 && switch_protocols(c, key, key_len, &res) < 0)
        status = library_500(&res);
    if (status != 0)
        refuse_upgrade(c, status, &res);
    ws_response_free(&res);
}

/* A plain HTTP request: the application's handler, or 404/426. */
static void handle_plain(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    struct ws_http_request *r = c->http;
    bool keep = r->keep_alive;
    struct ws_response res;
    struct ws_request req = {r, ws_conn_peer(c)};
    size_t queued;
    int rc;

    if (s->cb.on_http == NULL) {
        /* RFC 7231 §6.5.15: a WebSocket endpoint says what it needs. */
        ws_conn_respond_error(c, is_endpoint(s, r->path) ? 426 : 404);
        return;
    }
    ws_response_init(&res, ws_conn_response_cap(s));
    WS_CALLBACK(s, s->cb.on_http(c, &req, &res, s->user_data));
    ws_http_body_free(&r->body);   /* borrowed until on_http returned */
    queued = ws_buf_size(&c->out); /* earlier pipelined answers */
    rc = res.failed ? WS_ENOMEM
                    : ws_response_write(&res, &c->out, ws_conn_response_cap(s),
                                        keep, strcmp(r->method, "HEAD") == 0);
    ws_response_free(&res);
    if (rc < 0) {
        /* Drop only what this answer added: the answers before it, part
           of which may be written (and, over TLS, inside a record
           OpenSSL must be able to finish), stay as they are. */
        ws_buf_truncate(&c->out, queued);
        ws_conn_respond_error(c, 500);
        return;
    }
    c->close_after_write = !keep;
    ws_http_request_reset(r);
    ws_conn_timer(c, s->cfg.handshake_timeout_ms); /* the keep-alive wait */
    ws_conn_want_flush(c);
}

/*
 * The headers are in and a body is still to come. An upgrade is refused
 * now, unread (ws_handshake_check() says why: a body, or not a GET). A
 * client that waits for 100 Continue (RFC 7231 §5.1.1) gets it, or, when
 * no on_http would read the body, the final answer at once (the
 * connection then closes, so the body it sends anyway is never parsed).
 */
static void body_ahead(struct ws_conn *c)
{
    static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct ws_http_request *r = c->http;
    const char *key;
    size_t key_len;
    int status;

    if (ws_handshake_is_upgrade(r)) {
        status = ws_handshake_check(r, &key, &key_len);
        status = status > 0 ? status : 400;
        ws_server_error(c->srv, c, WS_EHTTP, "%s: upgrade refused: answered %d",
                        ws_conn_peer(c), status);
        ws_conn_respond_error(c, status);
        return;
    }
    if (!r->expect_continue)
        return;
    r->expect_continue = false;
    if (c->srv->cb.on_http == NULL) {
        ws_conn_respond_error(c, is_endpoint(c->srv, r->path) ? 426 : 404);
        return;
    }
    if (ws_buf_append(&c->out, go_on, sizeof(go_on) - 1,
                      ws_conn_response_cap(c->srv)) < 0) {
        ws_conn_kill(c, WS_CLOSE_ABNORMAL);
        return;
    }
    ws_conn_want_flush(c);
}

bool ws_conn_input_http(struct ws_conn *c, const uint8_t *p, size_t len,
                        size_t *used)
{
    int rc;

    if (c->close_after_write)
        return false; /* an answer that ends the connection is queued */
    rc = ws_http_request_feed(c->http, (const char *)p, len, used);
    if (rc < 0) {
        ws_server_error(c->srv, c, WS_EHTTP, "%s: bad request: answered %d",
                        ws_conn_peer(c), c->http->status);
        ws_conn_respond_error(c, c->http->status);
        return false;
    }
    if (c->http->state == WS_HTTP_REQ_BODY)
        body_ahead(c);
    if (c->http->state != WS_HTTP_REQ_DONE)
        return false;
    if (ws_handshake_is_upgrade(c->http))
        handle_upgrade(c);
    else
        handle_plain(c);
    return true;
}
