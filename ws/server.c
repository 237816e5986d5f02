/*
 * server.c - the public server API: configuration, listeners, accepting,
 * running the loop (or being driven by the application's), and handing accepted
 * sockets to the connection (ws/conn.h), which the server calls into and which
 * never calls back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tls.h"
#include "ws/conn.h"

#define MAX_PROTOCOL_NAME 128 /* fits the 101 response buffer */
#define MAX_PROTOCOLS 65535   /* a connection keeps its pick in 16 bits */

static const char busy_reply[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 24\r\nConnection: close\r\n\r\n"
    "503 Service Unavailable\n";

/* Copy a NULL-terminated string list; *out stays NULL for a NULL list. */
static int copy_list(const char *const *in, char ***out)
{
    size_t n = 0;

    *out = NULL;
    if (in == NULL)
        return 0;
    while (in[n])
        n++;
    *out = calloc(n + 1, sizeof(char *));
    if (*out == NULL)
        return WS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = strdup(in[i]);
        if ((*out)[i] == NULL)
            return WS_ENOMEM;
    }
    return 0;
}

static void free_list(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

/* Fill in the defaults for every zero field (see struct ws_config). */
static void apply_defaults(struct ws_config *c)
{
    if (c->max_message_bytes == 0)
        c->max_message_bytes = 16u << 20;
    if (c->max_frame_bytes == 0)
        c->max_frame_bytes = c->max_message_bytes;
    if (c->max_fragments == 0)
        c->max_fragments = 1u << 20;
    if (c->max_header_bytes == 0)
        c->max_header_bytes = 16384;
    if (c->max_headers == 0)
        c->max_headers = 100;
    if (c->max_body_bytes == 0)
        c->max_body_bytes = 1u << 20;
    if (c->max_output_bytes == 0)
        c->max_output_bytes = 1u << 20;
    if (c->handshake_timeout_ms == 0)
        c->handshake_timeout_ms = 10000;
    if (c->close_timeout_ms == 0)
        c->close_timeout_ms = 5000;
    if (c->backlog == 0)
        c->backlog = 511;
    /* Half the cap: a producer that pauses there and resumes on on_drain
       never meets it. */
    if (c->drain_threshold_bytes == 0)
        c->drain_threshold_bytes =
            c->max_output_bytes / 2 > 0 ? c->max_output_bytes / 2 : 1;
    if (c->max_posted_bytes == 0)
        c->max_posted_bytes = 64u << 20;
    if (c->deflate_server_window_bits == 0)
        c->deflate_server_window_bits = 15;
    if (c->deflate_client_window_bits == 0)
        c->deflate_client_window_bits = 15;
    if (c->deflate_mem_level == 0)
        c->deflate_mem_level = 8;
    if (c->deflate_level == 0)
        c->deflate_level = 1;
    if (c->deflate_min_bytes == 0)
        c->deflate_min_bytes = 64;
    if (c->max_topic_bytes == 0)
        c->max_topic_bytes = 256;
    if (c->max_topics_per_conn == 0)
        c->max_topics_per_conn = 1024;
}

/* Whether the permessage-deflate settings are in zlib's and RFC 7692's
   ranges (§7.1.2: windows of 8..15 bits; zlib compresses from 9, so a
   client told 8 could not comply: python-websockets fails to). */
static bool deflate_config_ok(const struct ws_config *c)
{
    return c->deflate_server_window_bits >= 9 &&
           c->deflate_server_window_bits <= 15 &&
           c->deflate_client_window_bits >= 9 &&
           c->deflate_client_window_bits <= 15 && c->deflate_mem_level >= 1 &&
           c->deflate_mem_level <= 9 && c->deflate_level >= 1 &&
           c->deflate_level <= 9;
}

/* The reason the calling thread's last ws_server_create() failed, for
   ws_server_last_error(NULL): there is no server to hold it. */
static _Thread_local char create_error[256];

/* Note why create fails; returns rc. */
static int create_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int create_fail(int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(create_error, sizeof(create_error), fmt, ap);
    va_end(ap);
    return rc;
}

/* Reject settings that cannot work, saying which and why. */
static int check_config(const struct ws_config *c)
{
    const char *neg = c->handshake_timeout_ms < 0 ? "handshake_timeout_ms"
                      : c->close_timeout_ms < 0   ? "close_timeout_ms"
                      : c->backlog < 0            ? "backlog"
                      : c->idle_timeout_ms < 0    ? "idle_timeout_ms"
                      : c->ping_interval_ms < 0   ? "ping_interval_ms"
                                                  : NULL;

    if (neg)
        return create_fail(WS_EINVAL, "%s is negative", neg);
    if (c->max_message_bytes > SIZE_MAX / 2)
        return create_fail(WS_EINVAL, "max_message_bytes is too large");
    /* A body is held whole, with a NUL after it. */
    if (c->max_body_bytes > SIZE_MAX / 2)
        return create_fail(WS_EINVAL, "max_body_bytes is too large");
    if (!deflate_config_ok(c))
        return create_fail(WS_EINVAL,
                           "deflate settings out of range: window bits "
                           "9..15, mem_level 1..9, level 1..9");
    for (const char *const *p = c->protocols; p && *p; p++) {
        if (**p == '\0' || strlen(*p) > MAX_PROTOCOL_NAME ||
            p - c->protocols >= MAX_PROTOCOLS)
            return create_fail(WS_EINVAL,
                               "protocols: an empty name, one longer than "
                               "%d bytes, or more than %d names",
                               MAX_PROTOCOL_NAME, MAX_PROTOCOLS);
    }
    return 0;
}

/* Copy the configuration and every string it points to into s. */
static int copy_config(struct ws_server *s, const struct ws_config *cfg)
{
    if (cfg)
        s->cfg = *cfg;
    apply_defaults(&s->cfg);
    if (check_config(&s->cfg) < 0)
        return WS_EINVAL; /* create_error says why */
    s->host = strdup(s->cfg.host ? s->cfg.host : "127.0.0.1");
    s->port = strdup(s->cfg.port ? s->cfg.port : "0");
    if (s->host == NULL || s->port == NULL)
        return WS_ENOMEM;
    if (copy_list(s->cfg.paths, &s->paths) < 0 ||
        copy_list(s->cfg.protocols, &s->protocols) < 0)
        return WS_ENOMEM;
    s->limits = (struct ws_session_limits){
        .max_message = s->cfg.max_message_bytes,
        .max_frame = s->cfg.max_frame_bytes,
        .max_fragments = s->cfg.max_fragments,
        .max_output = s->cfg.max_output_bytes,
    };
    s->session_cfg =
        (struct ws_session_config){&s->limits, &ws_conn_session_events};
    s->cfg.host = s->host;
    s->cfg.port = s->port;
    s->cfg.paths = (const char *const *)s->paths;
    s->cfg.protocols = (const char *const *)s->protocols;
    return 0;
}

/* Free everything create acquired; the server holds no connection. */
static void free_server(struct ws_server *s)
{
    if (s->loop) {
        ws_net_listener_close(&s->listener);
        ws_loop_timer_stop(s->loop, &s->shutdown_timer);
        ws_server_timers_free(s);
        ws_server_watches_free(s);
        ws_post_free(s);
        ws_loop_destroy(s->loop);
    }
    free(s->read_buf);
    ws_buf_free(&s->spare_out);
    ws_deflate_shared_free(s->deflate);
    ws_tls_free(s->tls);
    ws_topics_free(&s->topics);
    free(s->host);
    free(s->port);
    free_list(s->paths);
    free_list(s->protocols);
    free(s);
}

int ws_server_create(struct ws_server **out, const struct ws_config *cfg,
                     const struct ws_callbacks *cb, void *user_data)
{
    struct ws_server *s;
    int rc;

    create_error[0] = '\0';
    if (out == NULL)
        return create_fail(WS_EINVAL, "out is NULL");
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return create_fail(WS_ENOMEM, "out of memory");
    if (cb)
        s->cb = *cb;
    s->user_data = user_data;
    s->next_id = 1;
    s->transport = &ws_transport_plain;
    rc = copy_config(s, cfg);
    if (rc == 0 && s->cfg.tls) {
        rc = ws_tls_create(&s->tls, s->cfg.tls);
        s->transport = &ws_transport_tls;
        s->transport_ctx = s->tls;
        s->cfg.tls = NULL; /* the application's; s->tls has the copy */
    }
    if (rc == 0)
        rc = ws_loop_create(&s->loop);
    if (rc == 0)
        rc = ws_post_init(s);
    if (rc == 0 && (s->read_buf = malloc(WS_READ_SHARED)) == NULL)
        rc = WS_ENOMEM;
    if (rc == 0 && s->cfg.permessage_deflate) {
        const struct ws_deflate_config dc = {
            .level = s->cfg.deflate_level,
            .mem_level = s->cfg.deflate_mem_level,
            .min_bytes = s->cfg.deflate_min_bytes,
        };

        rc = ws_deflate_shared_create(&s->deflate, &dc);
    }
    /* Default: what the backend can watch, less a margin for the
       listeners, the wake pipes and the application's own descriptors. */
    if (rc == 0 && s->cfg.max_connections == 0) {
        s->cfg.max_connections = (size_t)ws_loop_fd_limit(s->loop) - 24;
        s->max_conns_default = true; /* embed.c may raise it */
    }
    /* select() can never watch a descriptor past FD_SETSIZE: more
       connections than that could only ever be refused. (epoll's limit is
       the process's descriptor limit, which the application may raise.) */
    if (rc == 0 && strcmp(ws_loop_backend_name(s->loop), "select") == 0 &&
        s->cfg.max_connections > (size_t)ws_loop_fd_limit(s->loop) - 24)
        rc =
            create_fail(WS_EINVAL,
                        "max_connections (%zu) is more than the select "
                        "backend can watch (%d); build with BACKEND=epoll",
                        s->cfg.max_connections, ws_loop_fd_limit(s->loop) - 24);
    if (rc < 0) {
        if (create_error[0] == '\0')
            create_fail(rc, "%s", ws_strerror(rc));
        free_server(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ws_server_error(struct ws_server *s, struct ws_conn *c, int err,
                     const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    if (s->cb.on_error == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    WS_CALLBACK(s, s->cb.on_error(c, err, detail, s->user_data));
}

/* Answer 503 without a connection object: one best-effort write. Over
   TLS there is no cheap answer (a handshake costs more than the
   connection it would refuse), so the socket is only closed. */
static void refuse_busy(struct ws_server *s, int fd)
{
    uint64_t now = ws_loop_now(s->loop);

    if (s->tls == NULL)
        ws_net_write(fd, busy_reply, sizeof(busy_reply) - 1);
    ws_net_close(fd);
    /* Told at most once a second: an overload must not also flood the
       log it is reported to. */
    s->busy_refused++;
    if (s->busy_report_ms == 0 || now - s->busy_report_ms >= 1000) {
        ws_server_error(s, NULL, WS_EBUSY,
                        "max_connections (%zu) reached: %llu connection(s) "
                        "refused with 503",
                        s->cfg.max_connections,
                        (unsigned long long)s->busy_refused);
        s->busy_refused = 0;
        s->busy_report_ms = now ? now : 1;
    }
}

/* Take one accepted socket on, or refuse it cleanly. */
static void adopt(struct ws_server *s, int fd, const struct ws_net_addr *a)
{
    int rc;

    if (s->nconns >= s->cfg.max_connections) {
        refuse_busy(s, fd);
        return;
    }
    rc = ws_conn_create(s, fd, a);
    if (rc == WS_EFDSET) {
        /* The backend cannot watch it (select: never let it near an
           fd_set). */
        refuse_busy(s, fd);
        ws_server_error(s, NULL, rc,
                        "accept: descriptor %d is beyond what the %s "
                        "backend can watch",
                        fd, ws_loop_backend_name(s->loop));
    } else if (rc < 0) {
        ws_net_close(fd);
        ws_server_error(s, NULL, rc, "accept: %s", ws_strerror(rc));
    }
}

/* The listener accepted a connection. */
static void on_accept(void *arg, int fd, const struct ws_net_addr *peer)
{
    adopt(arg, fd, peer);
    ws_conn_settle(arg); /* on_error may have sent or closed */
}

/* accept() failed; out of descriptors, the listeners already pause. */
static void on_accept_error(void *arg, int err, int pause_ms)
{
    if (pause_ms > 0)
        ws_server_error(arg, NULL, WS_ESYS, "accept: %s; pausing for %d ms",
                        strerror(err), pause_ms);
    else
        ws_server_error(arg, NULL, WS_ESYS, "accept: %s", strerror(err));
    ws_conn_settle(arg);
}

/*
 * The codes ws_server_listen() documents, from the listener's: its own
 * (WS_ENOTFOUND, WS_EADDRINUSE, WS_EACCES, WS_EFDSET, WS_ENOMEM) pass
 * through, the rest of the system's are WS_ESYS (the text in s->error
 * names the cause).
 */
static int listen_error(int err)
{
    switch (err) {
    case WS_EADDRINUSE:
    case WS_EACCES:
    case WS_ENOTFOUND:
    case WS_ENOMEM:
    case WS_EFDSET:
        return err;
    case -EPERM:
        return WS_EACCES;
    case -EMFILE:
        return WS_EFDSET;
    default:
        return WS_ESYS;
    }
}

int ws_server_listen(struct ws_server *s)
{
    struct ws_net_listener_config lc;
    int rc;

    if (s == NULL)
        return WS_EINVAL;
    if (s->listener.n > 0)
        return WS_ESTATE; /* listening already */
    if (s->shutting_down && !s->shut_down)
        return WS_ESTATE; /* what it accepted would only be ended */
    lc = (struct ws_net_listener_config){
        .host = strcmp(s->host, "*") == 0 ? NULL : s->host,
        .port = s->port,
        .backlog = s->cfg.backlog,
        .reuse_port = s->cfg.reuse_port != 0,
        /* Frames are written whole and at once; Nagle's algorithm would
           only hold the last segment of each back until the peer's
           delayed ACK. */
        .nodelay = true,
        .on_accept = on_accept,
        .on_error = on_accept_error,
        .arg = s,
    };
    s->error[0] = '\0';
    if (s->tls && !ws_tls_loaded(s->tls)) {
        rc = ws_tls_reload(s->tls, NULL, s->error, sizeof(s->error));
        if (rc < 0)
            return rc;
    }
    rc = ws_net_listener_open(&s->listener, s->loop, &lc, s->error,
                              sizeof(s->error));
    if (rc < 0)
        return listen_error(rc);
    ws_server_shutdown_reset(s); /* a finished one: the server starts anew */
    return 0;
}

int ws_server_unlisten(struct ws_server *s)
{
    if (s == NULL)
        return WS_EINVAL;
    ws_net_listener_close(&s->listener);
    return 0;
}

int ws_server_tls_reload(struct ws_server *s, const struct ws_tls_config *tls)
{
    if (s == NULL)
        return WS_EINVAL;
    if (s->tls == NULL)
        return WS_ESTATE;
    s->error[0] = '\0';
    return ws_tls_reload(s->tls, tls, s->error, sizeof(s->error));
}

const char *ws_server_last_error(const struct ws_server *s)
{
    return s ? s->error : create_error;
}

int ws_server_port(const struct ws_server *s)
{
    if (s == NULL || s->listener.n == 0)
        return -1;
    return ws_net_local_port(s->listener.fds[0]);
}

/* True when sends or closes made outside any event still wait to be
   written or torn down, or a shutdown asked for waits to begin. */
static bool work_pending(const struct ws_server *s)
{
    return s->flush_list != NULL || s->kill_list != NULL ||
           s->input_list != NULL || ws_server_shutdown_pending(s);
}

/*
 * Finish what the application queued between iterations (a send from its
 * own code, not from a callback), so it is written without waiting for an
 * unrelated event.
 */
static bool settle_pending(struct ws_server *s)
{
    bool pending = work_pending(s);

    ws_conn_settle(s);
    ws_conn_read_queued(s);
    ws_server_shutdown_step(s);
    ws_conn_free_dead(s);
    return pending;
}

int ws_server_run_once(struct ws_server *s, int timeout_ms)
{
    int rc;

    if (s == NULL)
        return WS_EINVAL;
    if (s->socket_cb)
        return WS_ESTATE; /* the application polls (embed.c) */
    if (s->depth > 0)
        return WS_EBUSY;
    if (settle_pending(s))
        timeout_ms = 0;
    rc = ws_loop_run_once(s->loop, timeout_ms);
    ws_conn_settle(s); /* the connections' events leave it to here */
    /* A shutdown asked for during the iteration (from a signal, another
       thread or a callback) begins here, between events. */
    ws_server_shutdown_step(s);
    ws_conn_free_dead(s);
    return rc;
}

int ws_server_run(struct ws_server *s)
{
    if (s == NULL)
        return WS_EINVAL;
    if (s->socket_cb)
        return WS_ESTATE;
    if (s->depth > 0)
        return WS_EBUSY;
    while (!ws_loop_stopped(s->loop) && !s->shut_down) {
        int rc = ws_server_run_once(s, -1);

        if (rc < 0)
            return rc;
    }
    ws_loop_clear_stop(s->loop);
    return 0;
}

void ws_server_stop(struct ws_server *s)
{
    if (s)
        ws_loop_stop(s->loop);
}

int ws_server_fdset(struct ws_server *s, fd_set *r, fd_set *w, int *max_fd)
{
    if (s == NULL || max_fd == NULL)
        return WS_EINVAL;
    return ws_loop_fdset(s->loop, r, w, max_fd);
}

int ws_server_timeout(struct ws_server *s, long *timeout_ms)
{
    if (s == NULL || timeout_ms == NULL)
        return WS_EINVAL;
    *timeout_ms = work_pending(s) ? 0 : ws_loop_timeout(s->loop);
    return 0;
}

int ws_server_process(struct ws_server *s, const fd_set *r, const fd_set *w)
{
    int rc;

    if (s == NULL)
        return WS_EINVAL;
    if (s->socket_cb)
        return WS_ESTATE;
    if (s->depth > 0)
        return WS_EBUSY;
    settle_pending(s);
    rc = ws_loop_process(s->loop, r, w);
    ws_conn_settle(s);
    ws_server_shutdown_step(s);
    ws_conn_free_dead(s);
    return rc;
}

/* ws_server_process() for one descriptor the application's poller
   reported (embed.c has the rest of the per-descriptor embedding). */
int ws_server_socket_action(struct ws_server *s, int fd, int events)
{
    int rc;

    if (s == NULL || fd < -1 || (fd < 0 && events != 0) ||
        (events & ~(WS_WATCH_READ | WS_WATCH_WRITE)) != 0)
        return WS_EINVAL;
    if (s->socket_cb == NULL)
        return WS_ESTATE;
    if (s->depth > 0 || s->in_action || s->in_embed_cb)
        return WS_EBUSY;
    ws_server_embed_begin(s, fd);
    settle_pending(s);
    rc = ws_loop_action(s->loop, fd, events);
    ws_conn_settle(s);
    ws_server_shutdown_step(s);
    ws_conn_free_dead(s);
    ws_server_embed_end(s);
    return rc;
}

const char *ws_server_backend(const struct ws_server *s)
{
    return s ? ws_loop_backend_name(s->loop) : "";
}

size_t ws_server_conn_count(const struct ws_server *s)
{
    return s ? s->nopen : 0;
}

int ws_server_destroy(struct ws_server *s)
{
    if (s == NULL)
        return WS_EINVAL;
    if (s->depth > 0 || s->in_embed_cb)
        return WS_EBUSY;
    ws_server_embed_free(s);
    ws_conn_close_all(s);
    free_server(s);
    return 0;
}
