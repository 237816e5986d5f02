/*
 * conn_api.c - what the application sees of a connection: the session's
 * events turned into its callbacks, and the public ws_conn_* calls
 * (sends, close, streaming, accessors). Sends queue through the session;
 * conn_io.c writes them at the end of the event.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"
#include "ws/conn.h"

/* Session events, raised inside ws_session_feed(). Text on its way to
   on_message is valid: the server notes it, so that sending exactly it
   back (or on to others) is not checked again. */
static void sess_message(void *ctx, uint8_t opcode, const uint8_t *data,
                         size_t len)
{
    struct ws_conn *c = ctx;
    struct ws_server *s = c->srv;

    if (s->cb.on_message == NULL)
        return;
    if (opcode == WS_OP_TEXT) {
        s->delivered = data;
        s->delivered_len = len;
    }
    WS_CALLBACK(s, s->cb.on_message(c, (enum ws_msg_type)opcode, data, len,
                                    s->user_data));
    s->delivered = NULL;
}

static void sess_pong(void *ctx, const uint8_t *data, size_t len)
{
    struct ws_conn *c = ctx;
    struct ws_server *s = c->srv;

    if (s->cb.on_pong)
        WS_CALLBACK(s, s->cb.on_pong(c, data, len, s->user_data));
}

/* Keep reason[0..len) as the reason on_close reports. */
static void keep_reason(struct ws_conn *c, const void *reason, size_t len)
{
    struct ws_conn_extra *t = len > 0 ? ws_conn_extra(c) : c->extra;

    if (t == NULL)
        return;
    free(t->close_reason);
    t->close_reason = NULL;
    t->close_reason_len = 0;
    if (len > 0 && (t->close_reason = malloc(len + 1)) != NULL) {
        memcpy(t->close_reason, reason, len);
        t->close_reason[len] = '\0';
        t->close_reason_len = (uint8_t)len; /* §5.5: at most 123 */
    }
}

/* The peer's close frame: its reason replaces ours, if we sent one. */
static void sess_close(void *ctx, uint16_t code, const uint8_t *reason,
                       size_t len)
{
    (void)code;
    keep_reason(ctx, reason, len);
}

/* Streaming mode: one piece of a message, straight to the application. */
static void sess_fragment(void *ctx, uint8_t opcode, const uint8_t *data,
                          size_t len, bool first, bool last)
{
    struct ws_conn *c = ctx;
    struct ws_server *s = c->srv;

    if (s->cb.on_fragment)
        WS_CALLBACK(s, s->cb.on_fragment(c, (enum ws_msg_type)opcode, data, len,
                                         first, last, s->user_data));
}

const struct ws_session_handler ws_conn_session_events = {
    .message = sess_message,
    .fragment = sess_fragment,
    .pong = sess_pong,
    .close = sess_close,
};

/* Check that c may send: open and not being torn down. */
static int sendable(const struct ws_conn *c)
{
    if (c == NULL)
        return WS_EINVAL;
    /* In on_upgrade the connection is not open yet: wrong time, not
       closed. */
    if (c->phase == WS_CONN_HTTP && !c->queued_kill)
        return WS_ESTATE;
    if (c->phase != WS_CONN_WS || c->queued_kill)
        return WS_ECLOSED;
    return 0;
}

/* Whether data is the text on_message has now (checked on its way in). */
static bool is_delivered(const struct ws_server *s, const void *data,
                         size_t len)
{
    return s->delivered != NULL && data == s->delivered &&
           len == s->delivered_len;
}

/* Note a queue that reached the drain threshold, hand back an unused
   output buffer, and act on the session's state: the end of every send. */
static int sent(struct ws_conn *c, int rc)
{
    if (rc == 0 && ws_conn_queued(c) >= c->srv->cfg.drain_threshold_bytes)
        c->drain_armed = true;
    ws_conn_out_release(c); /* when it was all written at once, or refused */
    ws_conn_after_session(c);
    return rc;
}

/* Send one whole frame; checked: the text is known to be valid UTF-8. */
static int conn_send_as(struct ws_conn *c, uint8_t opcode, const void *data,
                        size_t len, bool checked)
{
    int rc = sendable(c);

    if (rc < 0)
        return rc;
    ws_conn_out_borrow(c);
    rc = ws_conn_send_frame(c, opcode, data, len,
                            checked || is_delivered(c->srv, data, len));
    return sent(c, rc);
}

static int conn_send(struct ws_conn *c, uint8_t opcode, const void *data,
                     size_t len)
{
    return conn_send_as(c, opcode, data, len, false);
}

int ws_conn_send_shared(struct ws_conn *c, uint8_t opcode,
                        struct ws_shared *frame)
{
    int rc = sendable(c);

    if (rc < 0)
        return rc;
    return sent(c, ws_conn_queue_shared(c, opcode, frame));
}

int ws_conn_send_checked(struct ws_conn *c, enum ws_msg_type type,
                         const void *data, size_t len)
{
    return conn_send_as(c, (uint8_t)type, data, len, true);
}

int ws_conn_send(struct ws_conn *c, enum ws_msg_type type, const void *data,
                 size_t len)
{
    if (type != WS_TEXT && type != WS_BINARY)
        return WS_EINVAL;
    return conn_send(c, (uint8_t)type, data, len);
}

int ws_conn_send_text(struct ws_conn *c, const char *text)
{
    if (text == NULL)
        return WS_EINVAL;
    return conn_send(c, WS_OP_TEXT, text, strlen(text));
}

int ws_conn_send_binary(struct ws_conn *c, const void *data, size_t len)
{
    return conn_send(c, WS_OP_BINARY, data, len);
}

int ws_conn_ping(struct ws_conn *c, const void *data, size_t len)
{
    if (len > WS_FRAME_MAX_CONTROL)
        return WS_EINVAL;
    return conn_send(c, WS_OP_PING, data, len);
}

int ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
    int rc = sendable(c);
    size_t len = reason ? strlen(reason) : 0;

    if (rc < 0)
        return rc;
    if (code < 0 || code > 65535)
        return WS_EINVAL;
    ws_conn_uncork(c); /* frames c's input produced go first */
    ws_conn_out_borrow(c);
    rc = ws_session_close(&c->session, &c->out, (uint16_t)code, reason, len);
    /* Reported by on_close if the peer never answers (conn.c, end_code). */
    if (rc == 0)
        keep_reason(c, reason, len);
    ws_conn_out_release(c);
    ws_conn_after_session(c);
    return rc;
}

/* One piece of a fragmented message through the session. */
static int send_part(struct ws_conn *c, enum ws_session_part part,
                     uint8_t opcode, const void *data, size_t len)
{
    int rc = sendable(c);

    if (rc < 0)
        return rc;
    ws_conn_uncork(c);
    ws_conn_out_borrow(c);
    rc = ws_session_send_part(&c->session, &c->out, part, opcode, data, len);
    return sent(c, rc);
}

int ws_conn_send_begin(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len)
{
    if (type != WS_TEXT && type != WS_BINARY)
        return WS_EINVAL;
    return send_part(c, WS_PART_BEGIN, (uint8_t)type, data, len);
}

int ws_conn_send_continue(struct ws_conn *c, const void *data, size_t len)
{
    return send_part(c, WS_PART_CONTINUE, 0, data, len);
}

int ws_conn_send_finish(struct ws_conn *c, const void *data, size_t len)
{
    return send_part(c, WS_PART_FINISH, 0, data, len);
}

int ws_conn_set_streaming(struct ws_conn *c, int on)
{
    if (c == NULL || (on && c->srv->cb.on_fragment == NULL))
        return WS_EINVAL;
    if (c->phase == WS_CONN_HTTP) {
        c->stream_on_open = on != 0; /* from on_upgrade: applied at open */
        return 0;
    }
    if (c->phase != WS_CONN_WS)
        return WS_ECLOSED;
    return ws_session_set_streaming(&c->session, on != 0);
}

int ws_conn_set_keepalive(struct ws_conn *c, int ping_interval_ms,
                          int idle_timeout_ms)
{
    struct ws_conn_extra *x;

    if (c == NULL || ping_interval_ms < -1 || idle_timeout_ms < -1)
        return WS_EINVAL;
    if (c->phase != WS_CONN_HTTP &&
        (c->phase != WS_CONN_WS || c->session.state != WS_SESSION_OPEN))
        return WS_ECLOSED;
    if ((x = ws_conn_extra(c)) == NULL)
        return WS_ENOMEM;
    if (!x->own_keepalive) {
        x->ping_ms = c->srv->cfg.ping_interval_ms;
        x->idle_ms = c->srv->cfg.idle_timeout_ms;
        x->own_keepalive = true;
    }
    if (ping_interval_ms >= 0)
        x->ping_ms = ping_interval_ms;
    if (idle_timeout_ms >= 0)
        x->idle_ms = idle_timeout_ms;
    ws_conn_keepalive_changed(c);
    return 0;
}

uint64_t ws_conn_id(const struct ws_conn *c)
{
    return c ? c->id : 0;
}

void ws_conn_set_user_data(struct ws_conn *c, void *data)
{
    c->user_data = data;
}

void *ws_conn_get_user_data(const struct ws_conn *c)
{
    return c->user_data;
}

/* The size of c's peer address, by its family. */
static socklen_t peer_len(const struct ws_conn *c)
{
    return c->peer.sa.sa_family == AF_INET6 ? sizeof(c->peer.v6)
                                            : sizeof(c->peer.v4);
}

const char *ws_conn_peer(const struct ws_conn *c)
{
    char text[WS_NET_ADDRSTRLEN];
    socklen_t len = peer_len(c);
    struct ws_conn_extra *t;

    if (c->extra && c->extra->peer)
        return c->extra->peer;
    /* Formatted once, when first asked: most connections never are, and
       the text is several times the size of the address. The cache is
       the one thing a const accessor changes (on the loop thread only). */
    ws_net_addr_format(&c->peer.sa, len, text, sizeof(text));
    t = ws_conn_extra((struct ws_conn *)c);
    if (t == NULL || (t->peer = strdup(text)) == NULL)
        return "";
    return t->peer;
}

int ws_conn_peer_addr(const struct ws_conn *c, struct sockaddr *addr,
                      socklen_t *len)
{
    socklen_t size;

    if (c == NULL || addr == NULL || len == NULL)
        return WS_EINVAL;
    size = peer_len(c);
    memcpy(addr, &c->peer, *len < size ? *len : size);
    *len = size;
    return 0;
}

int ws_conn_peer_port(const struct ws_conn *c)
{
    if (c->peer.sa.sa_family == AF_INET6)
        return ntohs(c->peer.v6.sin6_port);
    return ntohs(c->peer.v4.sin_port);
}

int ws_server_each_conn(struct ws_server *s,
                        void (*fn)(struct ws_conn *c, void *arg), void *arg)
{
    struct ws_conn *c;
    int n = 0;

    if (s == NULL || fn == NULL)
        return WS_EINVAL;
    /* Connections leave s->ids only when torn down, after the current
       event: a close inside fn only queues, so the walk stays valid. */
    for (size_t i = 0; (c = ws_conn_walk(s, &i)) != NULL;) {
        if (!c->opened || c->phase == WS_CONN_DEAD)
            continue;
        WS_CALLBACK(s, fn(c, arg));
        n++;
    }
    return n;
}

const char *ws_conn_path(const struct ws_conn *c)
{
    switch (c->path) {
    case WS_CONN_PATH_NONE:
        return c->http && c->http->path ? c->http->path : "";
    case WS_CONN_PATH_ROOT:
        return "/";
    case WS_CONN_PATH_COPY:
        return c->extra->path;
    default:
        return c->srv->paths[c->path - WS_CONN_PATH_ENDPOINT];
    }
}

int ws_conn_tls_info(const struct ws_conn *c, struct ws_tls_info *info)
{
    if (c == NULL || info == NULL)
        return WS_EINVAL;
    if (c->srv->tls == NULL || c->phase == WS_CONN_DEAD)
        return WS_ESTATE;
    ws_tls_conn_info(&c->tr, info);
    return 0;
}

const char *ws_conn_protocol(const struct ws_conn *c)
{
    if (c->extra && c->extra->protocol)
        return c->extra->protocol;
    return c->protocol > 0 ? c->srv->protocols[c->protocol - 1] : NULL;
}

const char *ws_conn_extensions(const struct ws_conn *c)
{
    const char *text = c->session.z ? ws_deflate_text(c->session.z) : NULL;

    return text ? text : "";
}

size_t ws_conn_buffered(const struct ws_conn *c)
{
    return ws_conn_queued(c) + ws_conn_corked_bytes(c);
}

int ws_conn_closed_here(const struct ws_conn *c)
{
    return c->phase != WS_CONN_HTTP && c->session.closed_first;
}

struct ws_server *ws_conn_server(const struct ws_conn *c)
{
    return c->srv;
}
