/*
 * timer.c - the public timers: each wraps a loop timer, runs its callback
 * with the re-entrancy guard held, writes what the callback queued, and
 * may be stopped (and freed) from inside its own callback. The server
 * keeps a list of them so that destroy frees what the application did not.
 */
#include <stdlib.h>

#include "ws/conn.h"

struct ws_server_timer {
    struct ws_timer t; /* the loop's */
    struct ws_server *srv;
    void (*cb)(struct ws_server_timer *t, void *arg);
    void *arg;
    bool in_cb;   /* its callback is running */
    bool stopped; /* stopped inside its callback: free after it */
    struct ws_server_timer *prev, *next; /* srv->timers */
};

/* Unlink t from its server's list and free it. */
static void timer_free(struct ws_server_timer *t)
{
    struct ws_server *s = t->srv;

    ws_loop_timer_stop(s->loop, &t->t);
    if (t->prev)
        t->prev->next = t->next;
    else
        s->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}

/* The loop timer fired: run the application's callback. */
static void on_fire(struct ws_loop *loop, struct ws_timer *lt)
{
    struct ws_server_timer *t = WS_TIMER_OWNER(lt, struct ws_server_timer, t);
    struct ws_server *s = t->srv;

    (void)loop;
    t->in_cb = true;
    WS_CALLBACK(s, t->cb(t, t->arg));
    t->in_cb = false;
    /* The loop does not touch its timer after the callback returns, so
       freeing here is safe. */
    if (t->stopped)
        timer_free(t);
    ws_conn_settle(s);
}

int ws_server_timer_start(struct ws_server *s, struct ws_server_timer **out,
                          unsigned timeout_ms, unsigned repeat_ms,
                          void (*cb)(struct ws_server_timer *t, void *arg),
                          void *arg)
{
    struct ws_server_timer *t;
    int rc;

    if (s == NULL || out == NULL || cb == NULL)
        return WS_EINVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return WS_ENOMEM;
    t->srv = s;
    t->cb = cb;
    t->arg = arg;
    rc = ws_loop_timer_start(s->loop, &t->t, timeout_ms, repeat_ms, on_fire);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->next = s->timers;
    if (s->timers)
        s->timers->prev = t;
    s->timers = t;
    *out = t;
    return 0;
}

void ws_server_timer_stop(struct ws_server_timer *t)
{
    if (t == NULL)
        return;
    if (t->in_cb) {
        ws_loop_timer_stop(t->srv->loop, &t->t);
        t->stopped = true;
        return;
    }
    timer_free(t);
}

void ws_server_timers_free(struct ws_server *s)
{
    while (s->timers)
        timer_free(s->timers);
}
