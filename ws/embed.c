/*
 * embed.c - the per-descriptor embedding (ws_server_socket_callback()):
 * the loop's interest changes passed on to the application's callback,
 * and the deadline its timer must hold, told only when it changes. The
 * iteration itself is ws_server_socket_action() in server.c, beside
 * ws_server_process(), whose steps it repeats. Never polls.
 */
#include "ws/conn.h"

_Static_assert((int)WS_WATCH_READ == (int)WS_IO_READ &&
                   (int)WS_WATCH_WRITE == (int)WS_IO_WRITE,
               "the public event bits are the loop's");

/* The loop's interest in fd changed: tell the application. */
static void on_interest(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct ws_server *s = arg;
    bool nested = s->in_embed_cb;

    (void)loop;
    s->in_embed_cb = true;
    s->socket_cb(s, fd, events, s->socket_arg);
    s->in_embed_cb = nested;
}

/*
 * Tell the deadline callback if the deadline differs from the one told.
 * Three kinds, so that one deadline is told once: none; now (work queued
 * for the next iteration, which no timer stands for); or a timer's due
 * time, kept absolute, so that the same timer is not told again as the
 * clock moves on (an overdue one stays what it was, told as 0).
 */
static void deadline_update(struct ws_server *s)
{
    long ms;
    uint64_t due;
    bool have = ws_loop_first_due(s->loop, &due);
    enum ws_told want;

    if (s->deadline_cb == NULL)
        return;
    ws_server_timeout(s, &ms); /* refreshes the clock */
    if (ms < 0)
        want = WS_TOLD_NONE;
    else if (have && (ms > 0 || due <= ws_loop_now(s->loop)))
        want = WS_TOLD_AT;
    else
        want = WS_TOLD_NOW;
    if (want == s->told && (want != WS_TOLD_AT || due == s->told_due))
        return;
    s->told = want;
    s->told_due = due;
    s->in_embed_cb = true;
    s->deadline_cb(s, want == WS_TOLD_NONE ? -1 : ms, s->deadline_arg);
    s->in_embed_cb = false;
}

/* A loop timer start or stop moved the first due time. */
static void on_timers(struct ws_loop *loop, void *arg)
{
    struct ws_server *s = arg;

    (void)loop;
    /* Inside an iteration the end of it tells, once. */
    if (!s->in_action)
        deadline_update(s);
}

int ws_server_socket_callback(struct ws_server *s, ws_socket_cb cb, void *arg)
{
    int rc;

    if (s == NULL || cb == NULL)
        return WS_EINVAL;
    if (s->socket_cb || s->listener.n > 0 || s->nconns > 0)
        return WS_ESTATE;
    if (s->depth > 0 || s->in_embed_cb)
        return WS_EBUSY;
    /* Set first: switching tells the descriptors watched already. */
    s->socket_cb = cb;
    s->socket_arg = arg;
    rc = ws_loop_set_external(s->loop, on_interest, s);
    if (rc < 0) {
        s->socket_cb = NULL;
        s->socket_arg = NULL;
        return rc;
    }
    ws_loop_set_timers_hook(s->loop, on_timers, s);
    /* No fd_set is involved any more: the default is epoll's. */
    if (s->max_conns_default)
        s->cfg.max_connections = (size_t)ws_loop_fd_limit(s->loop) - 24;
    return 0;
}

int ws_server_deadline_callback(struct ws_server *s, ws_deadline_cb cb,
                                void *arg)
{
    if (s == NULL)
        return WS_EINVAL;
    if (s->socket_cb == NULL)
        return WS_ESTATE;
    if (s->in_embed_cb)
        return WS_EBUSY;
    /* A new callback holds no timer yet. */
    s->deadline_cb = cb;
    s->deadline_arg = arg;
    s->told = WS_TOLD_NONE;
    if (!s->in_action)
        deadline_update(s);
    return 0;
}

void ws_server_embed_begin(struct ws_server *s, int fd)
{
    s->in_action = true;
    /* The application's one-shot timer fired: it holds none now, so the
       deadline is told again even if it did not change (a timer that
       fired before the loop's clock reached it). */
    if (fd < 0)
        s->told = WS_TOLD_NONE;
}

void ws_server_embed_end(struct ws_server *s)
{
    s->in_action = false;
    deadline_update(s);
}

void ws_server_embed_poke(struct ws_server *s)
{
    if (s->deadline_cb && !s->in_action)
        deadline_update(s);
}

void ws_server_embed_free(struct ws_server *s)
{
    if (s->deadline_cb && s->told != WS_TOLD_NONE) {
        s->in_embed_cb = true;
        s->deadline_cb(s, -1, s->deadline_arg);
    }
    /* The teardowns that follow move timers: nobody holds one now. */
    s->deadline_cb = NULL;
    s->told = WS_TOLD_NONE;
    s->in_embed_cb = false;
    if (s->loop)
        ws_loop_set_timers_hook(s->loop, NULL, NULL);
}
