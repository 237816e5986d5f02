/*
 * conn.c - one connection's bytes: read into its input buffer, through
 * http-parser until the upgrade, then through the session; output queued
 * in its buffer and written as the socket takes it. The only code that
 * reads or writes a client socket. Never frees a connection that an event
 * still uses: teardown is queued with ws_server_kill().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/handshake.h"
#include "ws/request_api.h"
#include "ws/server.h"

#define READS_PER_WAKE 4            /* fairness: reads per readiness event */
#define WRITE_PER_WAKE (1u << 20)   /* fairness: bytes per flush */
#define READ_PAUSE_BYTES (1u << 20) /* stop reading while this much waits */
#define IDLE_BUF_KEEP 0u            /* idle connections keep no buffers */
#define SPARE_OUT_MAX 16384u        /* the largest output buffer kept spare */

static void on_io(struct ws_loop *loop, int fd, int events, void *arg);
static void on_timer(struct ws_loop *loop, struct ws_timer *t, void *arg);

/* Arm c's single timer for ms milliseconds (handshake, close, linger). */
static void conn_timer(struct ws_conn *c, int ms)
{
    ws_loop_timer_start(c->srv->loop, &c->timer, (uint64_t)ms, 0, on_timer, c);
}

/* Whether c wants to read now: not while a large reply waits (backpressure)
   and not once the session has stopped taking input. */
static bool wants_read(const struct ws_conn *c)
{
    switch (c->phase) {
    case WS_CONN_HTTP:
        return !c->close_after_write && ws_buf_size(&c->out) < READ_PAUSE_BYTES;
    case WS_CONN_WS:
        return !ws_session_finished(&c->session) &&
               ws_buf_size(&c->out) < READ_PAUSE_BYTES;
    case WS_CONN_LINGER:
        return true;
    default:
        return false;
    }
}

/* Watch exactly the events c needs now. Not while c waits on the flush
   list: its flush, at the end of this event, decides with the output
   written (an echo would otherwise add and drop write interest, two
   epoll_ctl calls, for every message). */
static void update_interest(struct ws_conn *c)
{
    int events = 0;

    if (c->phase == WS_CONN_DEAD || c->queued_flush)
        return;
    if (wants_read(c))
        events |= WS_IO_READ;
    if (ws_buf_size(&c->out) > 0)
        events |= WS_IO_WRITE;
    ws_loop_set_events(c->srv->loop, c->fd, events);
}

int ws_conn_create(struct ws_server *s, int fd, const struct ws_net_addr *a)
{
    struct ws_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return WS_ENOMEM;
    c->srv = s;
    c->id = s->next_id++;
    c->fd = fd;
    c->phase = WS_CONN_HTTP;
    /* Frames are written whole and at once; Nagle's algorithm would only
       hold the last segment of each back until the peer's delayed ACK. */
    ws_net_set_nodelay(fd, 1);
    /* Kept as an address; ws_conn_peer() formats it when first asked. */
    memcpy(&c->peer, &a->ss,
           a->len < sizeof(c->peer) ? a->len : sizeof(c->peer));
    c->http = malloc(sizeof(*c->http));
    rc = c->http ? ws_http_request_init(c->http, s->cfg.max_header_bytes,
                                        s->cfg.max_headers, 0)
                 : WS_ENOMEM;
    if (rc < 0)
        goto fail_http;
    rc = ws_loop_watch(s->loop, fd, WS_IO_READ, on_io, c);
    if (rc < 0)
        goto fail_watch;
    conn_timer(c, s->cfg.handshake_timeout_ms);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    return 0;

fail_watch:
    ws_http_request_free(c->http);
fail_http:
    free(c->http);
    free(c);
    return rc;
}

void ws_conn_free(struct ws_conn *c)
{
    if (c->http) {
        ws_http_request_free(c->http);
        free(c->http);
    }
    ws_session_free(&c->session); /* zero-filled until the upgrade */
    free(c->close_reason);
    free(c->peer_text);
    ws_buf_free(&c->in);
    ws_buf_free(&c->out);
    if (c->path_owned)
        free(c->path);
    free(c);
}

void ws_conn_teardown(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (c->phase == WS_CONN_DEAD)
        return;
    ws_loop_timer_stop(s->loop, &c->timer);
    ws_loop_unwatch(s->loop, c->fd);
    ws_net_close(c->fd);
    c->fd = -1;
    c->phase = WS_CONN_DEAD;
    if (c->opened) {
        const char *reason = c->close_reason ? c->close_reason : "";

        s->nopen--;
        ws_post_unregister(c);
        if (s->cb.on_close)
            WS_CALLBACK(s, s->cb.on_close(c, c->kill_code, reason,
                                          c->close_reason_len, s->user_data));
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    c->doomed_next = s->dead_list; /* it left kill_list already */
    s->dead_list = c;
}

/*
 * The code on_close reports when c ends now: the peer's close code once it
 * sent one, the code we failed the connection with, or 1006 (RFC 6455
 * §7.1.5) when TCP ended without a closing handshake.
 */
static int end_code(const struct ws_conn *c)
{
    const struct ws_session *ss = &c->session;

    if (c->phase == WS_CONN_HTTP || ss->state == WS_SESSION_ABORTED)
        return WS_CLOSE_ABNORMAL;
    if (ss->close_received || ss->state == WS_SESSION_FAILED)
        return ss->close_code;
    return WS_CLOSE_ABNORMAL;
}

/* End c after the current event, with the code its state calls for. */
static void conn_end(struct ws_conn *c)
{
    ws_server_kill(c, end_code(c));
}

/*
 * Our last bytes are out: send FIN and wait (bounded) for the peer's, so
 * that unread input does not turn our close into a reset that could
 * destroy the close frame in flight (RFC 6455 §7.1.1: the server closes
 * the TCP connection first).
 */
static void begin_linger(struct ws_conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->phase = WS_CONN_LINGER;
    ws_buf_clear(&c->in);
    conn_timer(c, c->srv->cfg.close_timeout_ms);
}

/* Decide what the session's state asks for after input or a send. */
static void after_session(struct ws_conn *c)
{
    if (c->phase != WS_CONN_WS)
        return;
    switch (c->session.state) {
    case WS_SESSION_OPEN:
        break;
    case WS_SESSION_ABORTED:
        conn_end(c);
        return;
    case WS_SESSION_CLOSE_SENT:
    case WS_SESSION_DONE:
    case WS_SESSION_FAILED:
        /* The close timeout replaces any keepalive timer, once: it bounds
           the wait for the peer's close, the flush and the linger. */
        if (!c->close_timer) {
            c->close_timer = true;
            conn_timer(c, c->srv->cfg.close_timeout_ms);
        }
        break;
    }
    ws_server_want_flush(c);
}

/*
 * The server keeps one emptied output buffer for the next connection that
 * queues output: echoing small messages then costs no malloc and free per
 * event, and an idle connection still holds no buffer. Borrowed before a
 * send, handed back (or freed) once the output is empty again.
 */
static void out_borrow(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (c->out.data == NULL && s->spare_out.data != NULL) {
        c->out = s->spare_out;
        s->spare_out = (struct ws_buf){0};
    }
}

static void out_release(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (ws_buf_size(&c->out) > 0)
        return;
    if (s->spare_out.data == NULL && c->out.cap <= SPARE_OUT_MAX) {
        ws_buf_clear(&c->out);
        s->spare_out = c->out;
        c->out = (struct ws_buf){0};
        return;
    }
    ws_buf_shrink(&c->out, IDLE_BUF_KEEP);
}

/* Write what the socket takes, up to the per-wake budget. */
static void flush(struct ws_conn *c)
{
    size_t budget = WRITE_PER_WAKE;

    while (ws_buf_size(&c->out) > 0 && budget > 0) {
        size_t n = ws_buf_size(&c->out);
        ssize_t w =
            ws_net_write(c->fd, ws_buf_head(&c->out), n < budget ? n : budget);

        if (w == -EAGAIN)
            break;
        if (w < 0) {
            conn_end(c); /* the peer may have closed right after its close */
            return;
        }
        ws_buf_consume(&c->out, (size_t)w);
        budget -= (size_t)w;
    }
    if (ws_buf_size(&c->out) == 0) {
        out_release(c);
        if (c->drain_armed) {
            struct ws_server *s = c->srv;

            c->drain_armed = false;
            if (s->cb.on_drain && c->phase == WS_CONN_WS)
                WS_CALLBACK(s, s->cb.on_drain(c, s->user_data));
        }
        if (c->close_after_write ||
            (c->phase == WS_CONN_WS && ws_session_finished(&c->session))) {
            begin_linger(c);
        }
    }
    update_interest(c);
}

void ws_conn_flush(struct ws_conn *c)
{
    if (c->phase != WS_CONN_DEAD && !c->queued_kill)
        flush(c);
}

/* Queue a complete error response and close once it is written. */
static void respond_error(struct ws_conn *c, int status)
{
    char text[512];
    ssize_t n = ws_http_write_error(text, sizeof(text), status);

    c->close_after_write = true;
    if (n < 0 || ws_buf_append(&c->out, text, (size_t)n,
                               c->srv->cfg.max_output_bytes) < 0) {
        ws_server_kill(c, WS_CLOSE_ABNORMAL);
        return;
    }
    ws_server_want_flush(c);
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

/* Session events, raised inside ws_session_feed(). */
static void sess_message(void *ctx, uint8_t opcode, const uint8_t *data,
                         size_t len)
{
    struct ws_conn *c = ctx;
    struct ws_server *s = c->srv;

    if (s->cb.on_message)
        WS_CALLBACK(s, s->cb.on_message(c, (enum ws_msg_type)opcode, data, len,
                                        s->user_data));
}

static void sess_pong(void *ctx, const uint8_t *data, size_t len)
{
    struct ws_conn *c = ctx;
    struct ws_server *s = c->srv;

    if (s->cb.on_pong)
        WS_CALLBACK(s, s->cb.on_pong(c, data, len, s->user_data));
}

/* The peer's close frame: keep its reason for on_close. */
static void sess_close(void *ctx, uint16_t code, const uint8_t *reason,
                       size_t len)
{
    struct ws_conn *c = ctx;

    (void)code;
    free(c->close_reason);
    c->close_reason = NULL;
    c->close_reason_len = 0;
    if (len > 0 && (c->close_reason = malloc(len + 1)) != NULL) {
        memcpy(c->close_reason, reason, len);
        c->close_reason[len] = '\0';
        c->close_reason_len = (uint8_t)len; /* §5.5: at most 123 */
    }
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

static const struct ws_session_handler session_events = {
    .message = sess_message,
    .fragment = sess_fragment,
    .pong = sess_pong,
    .close = sess_close,
};

/* How often an open connection's quiet time is checked: the smaller of
   the ping interval and the idle timeout; 0 when neither is set. */
static int keepalive_period(const struct ws_server *s)
{
    int ping = s->cfg.ping_interval_ms, idle = s->cfg.idle_timeout_ms;

    if (ping > 0 && idle > 0)
        return ping < idle ? ping : idle;
    return ping > 0 ? ping : idle;
}

/* Arm the keepalive check ms from now (nothing when ms is 0). */
static void keepalive_arm(struct ws_conn *c, int ms)
{
    if (ms > 0)
        conn_timer(c, ms);
}

/*
 * An open connection's keepalive check. Reads only record a time stamp,
 * so the timer is not re-armed for every frame: here the quiet time is
 * measured, the connection closed (1001) past the idle timeout or pinged
 * past the ping interval, and the next check armed.
 */
static void keepalive_check(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    uint64_t quiet = ws_loop_now(s->loop) - c->last_rx_ms;
    int idle = s->cfg.idle_timeout_ms, ping = s->cfg.ping_interval_ms;
    uint64_t next = (uint64_t)keepalive_period(s);

    if (idle > 0 && quiet >= (uint64_t)idle) {
        ws_conn_close(c, WS_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    if (ping > 0 && quiet >= (uint64_t)ping)
        ws_conn_ping(c, NULL, 0); /* RFC 6455 §5.5.2: a keepalive */
    if (idle > 0 && (uint64_t)idle - quiet < next)
        next = (uint64_t)idle - quiet;
    keepalive_arm(c, next > 0 ? (int)next : 1);
}

/*
 * Keep the upgrade path for ws_conn_path() beyond the request: a pointer
 * to the server's copy of a configured endpoint, or to "/", costs nothing
 * per connection; any other path is copied.
 */
static int keep_path(struct ws_conn *c)
{
    static char root[] = "/";
    const char *path = c->http->path;

    if (strcmp(path, root) == 0) {
        c->path = root;
        return 0;
    }
    for (char **p = c->srv->paths; p && *p; p++) {
        if (strcmp(*p, path) == 0) {
            c->path = *p;
            return 0;
        }
    }
    c->path = strdup(path);
    c->path_owned = c->path != NULL;
    return c->path ? 0 : WS_ENOMEM;
}

/* Write the 101 and switch c to the session (RFC 6455 §4.2.2). */
static int switch_protocols(struct ws_conn *c, const char *key, size_t key_len)
{
    struct ws_server *s = c->srv;
    char accept[WS_ACCEPT_KEY_LEN + 1], text[512];
    int pick = s->protocols ? ws_handshake_pick_protocol(
                                  c->http, (const char *const *)s->protocols)
                            : -1;
    ssize_t n;

    c->protocol = (uint16_t)(pick + 1); /* at most 65535 of them: server.c */
    if (ws_handshake_accept_key(key, key_len, accept) < 0)
        return WS_EINVAL;
    n = ws_handshake_write_101(text, sizeof(text), accept, ws_conn_protocol(c));
    if (n < 0)
        return WS_ENOMEM;
    /* Everything that can fail comes before the 101 is queued, so that a
       failure can still be answered with a 500 alone. */
    if (keep_path(c) < 0 || ws_post_register(c) < 0)
        return WS_ENOMEM;
    if (ws_buf_append(&c->out, text, (size_t)n, s->cfg.max_output_bytes) < 0) {
        ws_post_unregister(c);
        return WS_ENOMEM;
    }
    ws_http_request_free(c->http);
    free(c->http);
    c->http = NULL;
    ws_loop_timer_stop(s->loop, &c->timer);
    ws_session_init(&c->session, &s->limits, &session_events, c);
    c->session.streaming = c->stream_on_open;
    c->phase = WS_CONN_WS;
    c->last_rx_ms = ws_loop_now(s->loop);
    keepalive_arm(c, keepalive_period(s));
    c->opened = true;
    s->nopen++;
    if (s->cb.on_open)
        WS_CALLBACK(s, s->cb.on_open(c, s->user_data));
    after_session(c);
    return 0;
}

/* An upgrade request: check it, ask the application, answer. */
static void handle_upgrade(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    const char *key = NULL;
    size_t key_len = 0;
    int status = ws_handshake_check(c->http, &key, &key_len);

    if (status == 0 && !is_endpoint(s, c->http->path))
        status = 404;
    if (status == 0 && s->cb.on_upgrade) {
        struct ws_request req = {c->http, ws_conn_peer(c)};

        WS_CALLBACK(s, status = s->cb.on_upgrade(c, &req, s->user_data));
        if (status != 0 && (status < 400 || status > 599))
            status = 500;
    }
    if (status == 0 && switch_protocols(c, key, key_len) < 0)
        status = 500;
    if (status != 0)
        respond_error(c, status);
}

/* A plain HTTP request: the application's handler, or 404/426. */
static void handle_plain(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    struct ws_http_request *r = c->http;
    bool keep = r->keep_alive;
    struct ws_response res;
    struct ws_request req = {r, ws_conn_peer(c)};
    int rc;

    if (s->cb.on_http == NULL) {
        /* RFC 7231 §6.5.15: a WebSocket endpoint says what it needs. */
        respond_error(c, is_endpoint(s, r->path) && s->paths ? 426 : 404);
        return;
    }
    ws_response_init(&res, s->cfg.max_output_bytes);
    WS_CALLBACK(s, s->cb.on_http(c, &req, &res, s->user_data));
    rc = res.failed ? WS_ENOMEM
                    : ws_response_write(&res, &c->out, s->cfg.max_output_bytes,
                                        keep, strcmp(r->method, "HEAD") == 0);
    ws_response_free(&res);
    if (rc < 0) {
        ws_buf_clear(&c->out);
        respond_error(c, 500);
        return;
    }
    c->close_after_write = !keep;
    ws_http_request_reset(r);
    conn_timer(c, s->cfg.handshake_timeout_ms); /* the keep-alive wait */
    ws_server_want_flush(c);
}

/* Feed input to http-parser; act on a complete request. */
static bool input_http(struct ws_conn *c, const uint8_t *p, size_t len,
                       size_t *used)
{
    int rc;

    if (c->close_after_write)
        return false; /* an answer that ends the connection is queued */
    rc = ws_http_request_feed(c->http, (const char *)p, len, used);
    if (rc < 0) {
        respond_error(c, c->http->status);
        return false;
    }
    if (c->http->state != WS_HTTP_REQ_DONE)
        return false;
    if (ws_handshake_is_upgrade(c->http))
        handle_upgrade(c);
    else
        handle_plain(c);
    return true;
}

/* Feed input to the session. */
static bool input_ws(struct ws_conn *c, uint8_t *p, size_t len, size_t *used)
{
    *used = ws_session_feed(&c->session, p, len, &c->out);
    after_session(c);
    return *used > 0;
}

/* Hand p[0..len) (p[len] writable) to the layer that owns the connection
   now; returns the bytes consumed. Bytes after the upgrade request go on
   to the session. */
static size_t process_input(struct ws_conn *c, uint8_t *p, size_t len)
{
    size_t pos = 0;
    bool progress = true;

    while (progress && pos < len && !c->queued_kill) {
        size_t used = 0;

        if (c->phase == WS_CONN_HTTP)
            progress = input_http(c, p + pos, len - pos, &used);
        else if (c->phase == WS_CONN_WS)
            progress = input_ws(c, p + pos, len - pos, &used);
        else
            progress = false;
        pos += used;
    }
    return pos;
}

/* Read and discard: after our FIN we wait only for the peer's. */
static void drain(struct ws_conn *c)
{
    uint8_t scratch[4096];

    for (int i = 0; i < READS_PER_WAKE; i++) {
        ssize_t n = ws_net_read(c->fd, scratch, sizeof(scratch));

        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            conn_end(c);
            return;
        }
    }
}

/* The most c->in may hold: a frame header, the frame the session awaits
   whole (up to 1 MiB) or, before the upgrade, part of a request, on top
   of a read's worth. */
static size_t input_cap(const struct ws_conn *c)
{
    size_t cap = WS_READ_CHUNK + 2 * WS_FRAME_MAX_HEADER + 1;

    if (c->phase == WS_CONN_HTTP)
        cap += c->srv->cfg.max_header_bytes;
    if (c->phase == WS_CONN_WS)
        cap += ws_session_need(&c->session);
    return cap;
}

/* Whether input left over now would ever be consumed. */
static bool takes_input(const struct ws_conn *c)
{
    if (c->queued_kill)
        return false;
    if (c->phase == WS_CONN_HTTP)
        return !c->close_after_write;
    return c->phase == WS_CONN_WS && !ws_session_finished(&c->session);
}

/*
 * Keep the n bytes at p that a read into the server's shared buffer left
 * unconsumed (a partial frame or request) in c's own buffer, with room for
 * all of a frame the session awaits whole.
 */
static int keep_input(struct ws_conn *c, const uint8_t *p, size_t n)
{
    size_t need = c->phase == WS_CONN_WS ? ws_session_need(&c->session) : 0;
    size_t room = (need > n ? need : n) + 1;

    if (n == 0 || !takes_input(c))
        return 0;
    if (ws_buf_reserve(&c->in, room, input_cap(c)) < 0)
        return WS_ENOMEM;
    memcpy(ws_buf_tail(&c->in), p, n);
    ws_buf_commit(&c->in, n);
    return 0;
}

/*
 * One read and what follows it. With nothing pending, the bytes go to the
 * server's shared buffer, are processed there, and only what is left over
 * is copied to c's own: a connection between messages holds no buffer, and
 * small messages cost no allocation. With bytes pending, the read appends
 * to them: a frame the session awaits whole (ws_session_need) is read
 * exactly to its end, so the buffer is empty once it is taken and the next
 * frame starts at its front, never moved to make it contiguous. Returns
 * the bytes read, 0 for end of stream, or a negative errno.
 */
static ssize_t read_some(struct ws_conn *c, size_t *asked)
{
    struct ws_server *s = c->srv;
    size_t have = ws_buf_size(&c->in), used;
    size_t need = c->phase == WS_CONN_WS ? ws_session_need(&c->session) : 0;
    ssize_t n;

    if (have == 0) {
        /* A chunk and a frame header more: a message of a chunk's size
           arrives whole in one read. The last byte is for the NUL. */
        *asked = WS_READ_SHARED - 1;
        n = ws_net_read(c->fd, s->read_buf, *asked);
        if (n <= 0)
            return n;
        used = process_input(c, s->read_buf, (size_t)n);
        if (keep_input(c, s->read_buf + used, (size_t)n - used) < 0)
            ws_server_kill(c, WS_CLOSE_ABNORMAL);
        return n;
    }
    *asked = need > have ? need - have : WS_READ_CHUNK;
    /* One byte stays free: the session borrows in[len] for a NUL. */
    if (ws_buf_reserve(&c->in, *asked + 1, input_cap(c)) < 0) {
        ws_server_kill(c, WS_CLOSE_ABNORMAL);
        return -EAGAIN;
    }
    n = ws_net_read(c->fd, ws_buf_tail(&c->in), *asked);
    if (n <= 0)
        return n;
    ws_buf_commit(&c->in, (size_t)n);
    used = process_input(c, ws_buf_head(&c->in), ws_buf_size(&c->in));
    ws_buf_consume(&c->in, used);
    return n;
}

/* Read what the socket has, up to the per-wake budget, and process it. */
static void readable(struct ws_conn *c)
{
    if (c->phase == WS_CONN_LINGER) {
        drain(c);
        return;
    }
    for (int i = 0; i < READS_PER_WAKE && wants_read(c); i++) {
        size_t asked;
        ssize_t n = read_some(c, &asked);

        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            conn_end(c); /* end of stream or a reset */
            return;
        }
        c->last_rx_ms = ws_loop_now(c->srv->loop);
        if (c->queued_kill || (size_t)n < asked)
            break;
    }
    if (ws_buf_size(&c->in) == 0)
        ws_buf_shrink(&c->in, IDLE_BUF_KEEP);
    update_interest(c);
}

/* Readiness on a client socket. */
static void on_io(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct ws_conn *c = arg;

    (void)loop;
    (void)fd;
    if ((events & WS_IO_WRITE) && !c->queued_kill)
        flush(c);
    if ((events & WS_IO_READ) && !c->queued_kill && c->phase != WS_CONN_DEAD)
        readable(c);
    ws_server_settle(c->srv);
}

/* The connection's one timer: handshake, keep-alive, close or linger. */
static void on_timer(struct ws_loop *loop, struct ws_timer *t, void *arg)
{
    struct ws_conn *c = arg;

    (void)loop;
    (void)t;
    if (c->phase == WS_CONN_WS && c->session.state == WS_SESSION_OPEN &&
        !c->close_timer) {
        keepalive_check(c);
        ws_server_settle(c->srv);
        return;
    }
    /* Handshake or keep-alive wait over, no answer to our close, or the
       peer never sent its FIN: in every case the connection ends now. */
    conn_end(c);
    ws_server_settle(c->srv);
}

/* Check that c may send: open and not being torn down. */
static int sendable(const struct ws_conn *c)
{
    if (c == NULL)
        return WS_EINVAL;
    if (c->phase != WS_CONN_WS || c->queued_kill)
        return WS_ECLOSED;
    return 0;
}

/* The session's direct writer: what c's socket takes now. */
static size_t write_now(void *ctx, const struct iovec *iov, int n)
{
    struct ws_conn *c = ctx;
    ssize_t w = ws_net_writev(c->fd, iov, n);

    return w > 0 ? (size_t)w : 0;
}

/* Queue a frame through the session (a large one written at once when
   nothing waits before it) and arrange its write; checked: the text is
   known to be valid UTF-8. */
static int conn_send_as(struct ws_conn *c, uint8_t opcode, const void *data,
                        size_t len, bool checked)
{
    int rc = sendable(c);

    if (rc < 0)
        return rc;
    out_borrow(c);
    rc = ws_session_send_direct(&c->session, &c->out, opcode, data, len,
                                checked, write_now, c);
    if (rc == 0 && ws_buf_size(&c->out) >= c->srv->cfg.drain_threshold_bytes)
        c->drain_armed = true;
    out_release(c); /* when it was all written at once, or refused */
    after_session(c);
    return rc;
}

static int conn_send(struct ws_conn *c, uint8_t opcode, const void *data,
                     size_t len)
{
    return conn_send_as(c, opcode, data, len, false);
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
    out_borrow(c);
    rc = ws_session_close(&c->session, &c->out, (uint16_t)code, reason, len);
    out_release(c);
    after_session(c);
    return rc;
}

/* One piece of a fragmented message through the session. */
static int send_part(struct ws_conn *c, enum ws_session_part part,
                     uint8_t opcode, const void *data, size_t len)
{
    int rc = sendable(c);

    if (rc < 0)
        return rc;
    out_borrow(c);
    rc = ws_session_send_part(&c->session, &c->out, part, opcode, data, len);
    if (rc == 0 && ws_buf_size(&c->out) >= c->srv->cfg.drain_threshold_bytes)
        c->drain_armed = true;
    out_release(c);
    after_session(c);
    return rc;
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

const char *ws_conn_peer(const struct ws_conn *c)
{
    char text[WS_NET_ADDRSTRLEN];
    socklen_t len = c->peer.sa.sa_family == AF_INET6 ? sizeof(c->peer.v6)
                                                     : sizeof(c->peer.v4);

    if (c->peer_text)
        return c->peer_text;
    /* Formatted once, when first asked: most connections never are, and
       the text is several times the size of the address. The cache is
       the one thing a const accessor changes (on the loop thread only). */
    ws_net_addr_format(&c->peer.sa, len, text, sizeof(text));
    ((struct ws_conn *)c)->peer_text = strdup(text);
    return c->peer_text ? c->peer_text : "";
}

const char *ws_conn_path(const struct ws_conn *c)
{
    if (c->path)
        return c->path;
    return c->http && c->http->path ? c->http->path : "";
}

const char *ws_conn_protocol(const struct ws_conn *c)
{
    return c->protocol > 0 ? c->srv->protocols[c->protocol - 1] : NULL;
}

size_t ws_conn_buffered(const struct ws_conn *c)
{
    return ws_buf_size(&c->out);
}

struct ws_server *ws_conn_server(const struct ws_conn *c)
{
    return c->srv;
}
