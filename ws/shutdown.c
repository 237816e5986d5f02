/*
 * shutdown.c - the graceful shutdown (ws_server_shutdown()): asked for
 * from any thread or a signal handler, carried out by the loop thread
 * between iterations: the listeners closed, every connection told (1001,
 * or 503 before the upgrade), the peers' answers awaited up to
 * close_timeout_ms, then ws_server_run() returns. Never reads or writes a
 * socket itself: the connection's files do.
 */
#include "ws/conn.h"

/* close_timeout_ms has passed since the shutdown began: whatever is left
   did not answer its close (or did not read what was queued before it). */
static void on_deadline(struct ws_loop *loop, struct ws_timer *t)
{
    struct ws_server *s = WS_TIMER_OWNER(t, struct ws_server, shutdown_timer);
    struct ws_conn *c;

    (void)loop;
    /* ws_conn_end() only queues: the walk stays valid. */
    for (size_t i = 0; (c = ws_conn_walk(s, &i)) != NULL;)
        ws_conn_end(c);
    ws_conn_settle(s);
}

/*
 * Begin: in this order, so that nothing new arrives while the old is told
 * to go, and so that a peer gets everything that was meant for it before
 * its close:
 *  1. run what other threads posted before they asked (it is queued
 *     ahead of the closes);
 *  2. close the listeners (new connections are refused by the system);
 *  3. tell every connection (ws_conn_going_away());
 *  4. arm the one deadline for all of them.
 */
static void begin(struct ws_server *s)
{
    struct ws_conn *c;

    s->shutting_down = true;
    ws_post_run(s);
    ws_net_listener_close(&s->listener);
    /* The deadlines count from now: this may run before an iteration
       has read the clock (ws_server_run_once() settles first), and the
       loop's clock is then as old as the last poll. */
    ws_loop_update_time(s->loop);
    /* Nothing is torn down before the settle: the walk stays valid. */
    for (size_t i = 0; (c = ws_conn_walk(s, &i)) != NULL;)
        ws_conn_going_away(c);
    ws_loop_timer_start(s->loop, &s->shutdown_timer,
                        (uint64_t)s->cfg.close_timeout_ms, 0, on_deadline);
    ws_conn_settle(s);
}

bool ws_server_shutdown_pending(const struct ws_server *s)
{
    return !s->shutting_down && atomic_load(&s->shutdown_asks) > 0;
}

void ws_server_shutdown_step(struct ws_server *s)
{
    if (ws_server_shutdown_pending(s))
        begin(s);
    if (s->shutting_down && !s->shut_down && s->nconns == 0) {
        s->shut_down = true;
        ws_loop_timer_stop(s->loop, &s->shutdown_timer);
    }
}

void ws_server_shutdown(struct ws_server *s)
{
    if (s == NULL)
        return;
    /* Async-signal-safe: a lock-free atomic add and a write(). The first
       call asks for the graceful shutdown; any later one stops the loop
       at once, as ws_server_stop() does (a second Ctrl-C). */
    if (atomic_fetch_add(&s->shutdown_asks, 1) == 0)
        ws_loop_wake(s->loop);
    else
        ws_loop_stop(s->loop);
}

int ws_server_done(const struct ws_server *s)
{
    return s != NULL && s->shut_down;
}

void ws_server_shutdown_reset(struct ws_server *s)
{
    if (!s->shut_down)
        return;
    s->shutting_down = false;
    s->shut_down = false;
    atomic_store(&s->shutdown_asks, 0);
}
