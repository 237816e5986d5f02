/*
 * conn.c - a connection's life: created for an accepted socket, opened by
 * the upgrade, ended with a close code, torn down after the event that
 * ended it and freed once no event uses it. Also the end-of-event queues
 * (flush and kill) and the one timer (handshake, keepalive, close,
 * linger). Never reads or writes the socket (conn_io.c does).
 */
#include <stdlib.h>
#include <string.h>

#include "ws/conn.h"

static void on_timer(struct ws_loop *loop, struct ws_timer *t);

void ws_conn_timer(struct ws_conn *c, int ms)
{
    ws_loop_timer_start(c->srv->loop, &c->timer, (uint64_t)ms, 0, on_timer);
}

struct ws_conn_extra *ws_conn_extra(struct ws_conn *c)
{
    if (c->extra == NULL)
        c->extra = calloc(1, sizeof(*c->extra));
    return c->extra;
}

/* Add c to / remove c from the live connections by id, which other
   threads read under post_lock (post.c). */
static int register_id(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    int rc;

    pthread_mutex_lock(&s->post_lock);
    rc = ws_idmap_put(&s->ids, c);
    pthread_mutex_unlock(&s->post_lock);
    return rc;
}

static void unregister_id(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    pthread_mutex_lock(&s->post_lock);
    ws_idmap_del(&s->ids, c->id);
    pthread_mutex_unlock(&s->post_lock);
}

int ws_conn_create(struct ws_server *s, int fd, const struct ws_net_addr *a)
{
    struct ws_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return WS_ENOMEM;
    c->srv = s;
    c->id = s->next_id++;
    c->phase = WS_CONN_HTTP;
    /* Other threads may see c in ids from now on; posts wait for the
       upgrade. */
    c->post_view = WS_CONN_GONE;
    /* Kept as an address; ws_conn_peer() formats it when first asked. */
    memcpy(&c->peer, &a->ss,
           a->len < sizeof(c->peer) ? a->len : sizeof(c->peer));
    c->http = malloc(sizeof(*c->http));
    rc = c->http
             ? ws_http_request_init(c->http, s->cfg.max_header_bytes,
                                    s->cfg.max_headers, s->cfg.max_body_bytes)
             : WS_ENOMEM;
    if (rc < 0)
        goto fail_http;
    rc = ws_loop_watch(s->loop, fd, WS_IO_READ, ws_conn_on_io, c);
    if (rc < 0)
        goto fail_watch;
    rc = register_id(c);
    if (rc < 0)
        goto fail_register;
    rc = s->transport->open(&c->tr, fd, s->transport_ctx);
    if (rc < 0)
        goto fail_open;
    ws_conn_timer(c, s->cfg.handshake_timeout_ms);
    s->nconns++;
    return 0;

fail_open:
    unregister_id(c);
fail_register:
    ws_loop_unwatch(s->loop, fd);
fail_watch:
    ws_http_request_free(c->http);
fail_http:
    free(c->http);
    free(c);
    return rc;
}

/* Free a torn-down connection. */
static void conn_free(struct ws_conn *c)
{
    if (c->http) {
        ws_http_request_free(c->http);
        free(c->http);
    }
    ws_session_free(&c->session); /* zero-filled until the upgrade */
    if (c->extra) {
        free(c->extra->close_reason);
        free(c->extra->peer);
        free(c->extra->protocol);
        free(c->extra->path);
        free(c->extra);
    }
    ws_buf_free(&c->in);
    ws_buf_free(&c->out);
    ws_outq_free(&c->shared);
    free(c);
}

/* Tear c down now: stop its timer and watcher, close the transport, run
   on_close if on_open ran (or on_upgrade accepted), and move it to the
   dead list. */
static void teardown(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (c->phase == WS_CONN_DEAD)
        return;
    ws_loop_timer_stop(s->loop, &c->timer);
    ws_loop_unwatch(s->loop, c->tr.fd);
    ws_conn_unqueue_input(c);
    ws_conn_leave_topics(c); /* publishing from on_close skips it */
    s->transport->close(&c->tr);
    c->phase = WS_CONN_DEAD;
    unregister_id(c); /* on_close cannot find it, nor walk to it */
    if (c->opened) {
        const char *kept = c->extra ? c->extra->close_reason : NULL;
        const char *reason = kept ? kept : "";
        size_t reason_len = kept ? c->extra->close_reason_len : 0;

        /* We failed it: the reason that went on the wire. */
        if (!kept && c->session.state == WS_SESSION_FAILED) {
            reason = ws_session_close_text(c->session.close_code);
            reason_len = strlen(reason);
        }
        s->nopen--;
        if (s->cb.on_close)
            WS_CALLBACK(s, s->cb.on_close(c, c->kill_code, reason, reason_len,
                                          s->user_data));
    } else if (c->accepted && s->cb.on_close) {
        /* on_upgrade accepted but the 101 could not be queued: on_close
           follows all the same, so that what on_upgrade attached to c is
           freed where it always is (ws.h). */
        WS_CALLBACK(s,
                    s->cb.on_close(c, WS_CLOSE_ABNORMAL, "", 0, s->user_data));
    }
    s->nconns--;
    c->doomed_next = s->dead_list; /* it left kill_list already */
    s->dead_list = c;
}

void ws_conn_show_threads(struct ws_conn *c)
{
    size_t queued = ws_conn_queued(c);
    uint32_t view = c->queued_kill || c->phase != WS_CONN_WS ||
                            c->session.state != WS_SESSION_OPEN
                        ? WS_CONN_GONE
                    : queued < WS_CONN_GONE ? (uint32_t)queued
                                            : WS_CONN_GONE - 1;

    /* Relaxed: readers hold post_lock, which keeps c alive; the value is
       a snapshot either way. */
    atomic_store_explicit(&c->post_view, view, memory_order_relaxed);
}

void ws_conn_kill(struct ws_conn *c, int code)
{
    if (c->queued_kill || c->phase == WS_CONN_DEAD)
        return;
    atomic_store_explicit(&c->post_view, WS_CONN_GONE, memory_order_relaxed);
    c->queued_kill = true;
    c->kill_code = (uint16_t)code;
    c->doomed_next = c->srv->kill_list;
    c->srv->kill_list = c;
    ws_server_embed_poke(c->srv); /* outside an iteration: "now" */
}

/*
 * The code on_close reports when c ends now: the peer's close code once it
 * sent one, the code we failed the connection with, the code of the close
 * we started when the peer never answered it (a dead peer past the idle
 * timeout: 1001, "idle timeout"), or 1006 (RFC 6455 §7.1.5) when TCP ended
 * without a closing handshake.
 */
static int end_code(const struct ws_conn *c)
{
    const struct ws_session *ss = &c->session;

    if (c->phase == WS_CONN_HTTP || ss->state == WS_SESSION_ABORTED)
        return WS_CLOSE_ABNORMAL;
    if (ss->close_received || ss->state == WS_SESSION_FAILED ||
        (ss->close_sent && ss->closed_first))
        return ss->close_code;
    return WS_CLOSE_ABNORMAL;
}

void ws_conn_end(struct ws_conn *c)
{
    ws_conn_kill(c, end_code(c));
}

void ws_conn_want_flush(struct ws_conn *c)
{
    if (c->queued_flush || c->phase == WS_CONN_DEAD)
        return;
    c->queued_flush = true;
    c->flush_next = c->srv->flush_list;
    c->srv->flush_list = c;
    ws_server_embed_poke(c->srv);
}

void ws_conn_settle(struct ws_server *s)
{
    /* Writes first (they may fail and kill), then teardowns (whose
       on_close may send on others, so go round until both are empty). */
    while (s->flush_list || s->kill_list) {
        while (s->flush_list) {
            struct ws_conn *c = s->flush_list;

            s->flush_list = c->flush_next;
            c->queued_flush = false;
            /* A closing connection leaves its topics now: nothing more
               can be sent on it. Here, never inside a publish, whose
               loop over a topic's subscribers must not see them move. */
            if (c->topics.n > 0 && c->phase == WS_CONN_WS &&
                c->session.state != WS_SESSION_OPEN)
                ws_conn_leave_topics(c);
            ws_conn_flush(c);
        }
        while (s->kill_list) {
            struct ws_conn *c = s->kill_list;

            s->kill_list = c->doomed_next;
            teardown(c);
        }
    }
}

void ws_conn_free_dead(struct ws_server *s)
{
    while (s->dead_list) {
        struct ws_conn *c = s->dead_list;

        s->dead_list = c->doomed_next;
        conn_free(c);
    }
}

void ws_conn_close_all(struct ws_server *s)
{
    struct ws_conn *c;

    ws_conn_settle(s);
    /* RFC 6455 §7.4.1: 1001, the server is going away. One best-effort
       write each (also of a close queued before, by a shutdown that was
       stopped): destroy never waits for a peer. */
    for (size_t i = 0; (c = ws_conn_walk(s, &i)) != NULL;) {
        if (c->phase == WS_CONN_WS) {
            ws_conn_close(c, WS_CLOSE_GOING_AWAY, "server shutdown");
            ws_conn_flush(c);
        }
        ws_conn_kill(c, WS_CLOSE_GOING_AWAY);
    }
    ws_conn_settle(s);
    ws_conn_free_dead(s);
}

/*
 * Before the upgrade: a connection whose last answer is being written
 * closes after it; one that has begun a request is answered 503 (RFC 9110
 * §15.6.4: the server cannot handle it now) with Connection: close; one
 * that has sent nothing (or is still in its TLS handshake) is closed, as
 * an HTTP server closes an idle keep-alive connection (RFC 9112 §9.5).
 */
static void going_away_http(struct ws_conn *c)
{
    if (c->close_after_write || c->queued_kill)
        return;
    if (c->http->header_bytes > 0) {
        ws_conn_respond_error(c, 503);
        return;
    }
    if (ws_conn_queued(c) > 0) {
        c->close_after_write = true;
        ws_conn_want_flush(c); /* reads stop, the FIN follows the answer */
        return;
    }
    ws_conn_kill(c, WS_CLOSE_ABNORMAL);
}

void ws_conn_going_away(struct ws_conn *c)
{
    switch (c->phase) {
    case WS_CONN_HTTP:
        going_away_http(c);
        break;
    case WS_CONN_WS:
        /* RFC 6455 §7.4.1: 1001, going away. Queued after everything
           queued before it, past max_output_bytes if need be (the one
           frame that may be), so the peer reads all it was sent and then
           the close; WS_ECLOSED when c is closing already, which goes on
           as it was. The close timeout bounds the wait for the answer. */
        ws_conn_close(c, WS_CLOSE_GOING_AWAY, "server shutdown");
        break;
    default:
        break; /* lingering after its close, or torn down */
    }
}

/* Tell on_error why this side failed c (RFC 6455 §7.1.7): the code and
   reason that went on the wire. */
static void report_failure(struct ws_conn *c)
{
    uint16_t code = c->session.close_code;
    int err = code == WS_CLOSE_INVALID_DATA     ? WS_EUTF8
              : code == WS_CLOSE_TOO_BIG        ? WS_ETOOBIG
              : code == WS_CLOSE_POLICY         ? WS_EFULL
              : code == WS_CLOSE_INTERNAL_ERROR ? WS_ENOMEM
                                                : WS_EPROTO;

    ws_server_error(c->srv, c, err, "%s: closed with %u (%s)", ws_conn_peer(c),
                    code, ws_session_close_text(code));
}

void ws_conn_after_session(struct ws_conn *c)
{
    if (c->phase != WS_CONN_WS)
        return;
    switch (c->session.state) {
    case WS_SESSION_OPEN:
        break;
    case WS_SESSION_ABORTED:
        ws_conn_end(c);
        return;
    case WS_SESSION_CLOSE_SENT:
    case WS_SESSION_DONE:
    case WS_SESSION_FAILED:
        atomic_store_explicit(&c->post_view, WS_CONN_GONE,
                              memory_order_relaxed);
        /* The close timeout replaces any keepalive timer, once: it bounds
           the wait for the peer's close, the flush and the linger. */
        if (!c->close_timer && c->session.state == WS_SESSION_FAILED &&
            !c->session.close_received)
            report_failure(c);
        if (!c->close_timer) {
            c->close_timer = true;
            ws_conn_timer(c, c->srv->cfg.close_timeout_ms);
        }
        break;
    }
    ws_conn_want_flush(c);
}

/* How often an open connection's quiet time is checked: the smaller of
   its ping interval and idle timeout; 0 when neither is set. */
static int keepalive_period(const struct ws_conn *c)
{
    int ping = ws_conn_ping_ms(c), idle = ws_conn_idle_ms(c);

    if (ping > 0 && idle > 0)
        return ping < idle ? ping : idle;
    return ping > 0 ? ping : idle;
}

/* Arm the keepalive check ms from now (nothing when ms is 0). */
static void keepalive_arm(struct ws_conn *c, int ms)
{
    if (ms > 0)
        ws_conn_timer(c, ms);
}

/*
 * An open connection's keepalive check. Reads only record a time stamp,
 * so the timer is not re-armed for every frame: here the quiet time is
 * measured, the connection closed (1001) past the idle timeout or pinged
 * past the ping interval, and the next check armed.
 */
static void keepalive_check(struct ws_conn *c)
{
    uint64_t quiet = (uint32_t)ws_loop_now(c->srv->loop) - c->last_rx_ms;
    int idle = ws_conn_idle_ms(c), ping = ws_conn_ping_ms(c);
    uint64_t next = (uint64_t)keepalive_period(c);

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

int ws_conn_open(struct ws_conn *c, const void *reply, size_t len,
                 struct ws_deflate *z)
{
    struct ws_server *s = c->srv;

    /* The one step that can fail comes first, so that a failure can
       still be answered with a 500 alone. */
    if (ws_buf_append(&c->out, reply, len, ws_conn_response_cap(s)) < 0)
        return WS_ENOMEM;
    ws_http_request_free(c->http);
    free(c->http);
    c->http = NULL;
    ws_loop_timer_stop(s->loop, &c->timer);
    ws_session_init(&c->session, &s->session_cfg, c);
    ws_session_set_deflate(&c->session, z);
    c->session.streaming = c->stream_on_open;
    c->phase = WS_CONN_WS;
    ws_conn_show_threads(c); /* posts are taken from now on */
    c->last_rx_ms = (uint32_t)ws_loop_now(s->loop);
    keepalive_arm(c, keepalive_period(c));
    c->opened = true;
    s->nopen++;
    if (s->cb.on_open)
        WS_CALLBACK(s, s->cb.on_open(c, s->user_data));
    ws_conn_after_session(c);
    return 0;
}

void ws_conn_keepalive_changed(struct ws_conn *c)
{
    /* Before the upgrade the timer is the handshake's: ws_conn_open()
       arms the keepalive. Once closing it is the close timeout's. */
    if (c->phase != WS_CONN_WS || c->session.state != WS_SESSION_OPEN ||
        c->close_timer)
        return;
    if (keepalive_period(c) > 0)
        keepalive_arm(c, 1); /* the check measures and re-arms */
    else
        ws_loop_timer_stop(c->srv->loop, &c->timer);
}

/* The connection's one timer: handshake, keep-alive, close or linger. */
static void on_timer(struct ws_loop *loop, struct ws_timer *t)
{
    struct ws_conn *c = WS_TIMER_OWNER(t, struct ws_conn, timer);

    (void)loop;
    /* A request begun and not finished in time (an idle keep-alive
       connection ending is no error). */
    if (c->phase == WS_CONN_HTTP && !c->close_after_write &&
        c->http->header_bytes > 0)
        ws_server_error(c->srv, c, WS_EHTTP,
                        "%s: handshake timeout: no whole request in %d ms",
                        ws_conn_peer(c), c->srv->cfg.handshake_timeout_ms);
    if (c->phase == WS_CONN_WS && c->session.state == WS_SESSION_OPEN &&
        !c->close_timer) {
        keepalive_check(c);
        ws_conn_settle(c->srv);
        return;
    }
    /* Handshake or keep-alive wait over, no answer to our close, or the
       peer never sent its FIN: in every case the connection ends now. */
    ws_conn_end(c);
    ws_conn_settle(c->srv);
}
