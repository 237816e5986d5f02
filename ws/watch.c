/*
 * watch.c - descriptors of the application's own on the server's loop (a
 * broker's connection, a pipe of its own): each watch is a small record
 * on a list the server frees at destroy, and its callback runs as any
 * other, with the re-entrancy guard held and the connections' queues
 * settled after it.
 */
#include <stdlib.h>

#include "ws/conn.h"

struct ws_server_watch {
    struct ws_server *srv;
    int fd;
    ws_watch_cb cb;
    void *arg;
    struct ws_server_watch *next;
};

static void on_ready(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct ws_server_watch *w = arg;
    struct ws_server *s = w->srv;

    (void)loop;
    WS_CALLBACK(s, w->cb(s, fd, events, w->arg));
    ws_conn_settle(s);
}

static struct ws_server_watch **find(struct ws_server *s, int fd)
{
    struct ws_server_watch **p = &s->watches;

    while (*p && (*p)->fd != fd)
        p = &(*p)->next;
    return p;
}

int ws_server_watch(struct ws_server *s, int fd, int events, ws_watch_cb cb,
                    void *arg)
{
    struct ws_server_watch *w;
    int rc;

    if (s == NULL || fd < 0 || cb == NULL ||
        (events & ~(WS_WATCH_READ | WS_WATCH_WRITE)) != 0)
        return WS_EINVAL;
    if (*find(s, fd) != NULL)
        return WS_EBUSY;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return WS_ENOMEM;
    *w = (struct ws_server_watch){s, fd, cb, arg, s->watches};
    rc = ws_loop_watch(s->loop, fd, events, on_ready, w);
    if (rc < 0) {
        free(w);
        return rc;
    }
    s->watches = w;
    return 0;
}

int ws_server_watch_events(struct ws_server *s, int fd, int events)
{
    if (s == NULL || (events & ~(WS_WATCH_READ | WS_WATCH_WRITE)) != 0)
        return WS_EINVAL;
    if (*find(s, fd) == NULL)
        return WS_ESTATE;
    return ws_loop_set_events(s->loop, fd, events);
}

int ws_server_unwatch(struct ws_server *s, int fd)
{
    struct ws_server_watch **p, *w;

    if (s == NULL)
        return WS_EINVAL;
    p = find(s, fd);
    if (*p == NULL)
        return WS_ESTATE;
    w = *p;
    *p = w->next;
    ws_loop_unwatch(s->loop, fd);
    free(w);
    return 0;
}

void ws_server_watches_free(struct ws_server *s)
{
    while (s->watches) {
        struct ws_server_watch *w = s->watches;

        s->watches = w->next;
        ws_loop_unwatch(s->loop, w->fd);
        free(w);
    }
}
