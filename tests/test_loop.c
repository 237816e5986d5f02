/*
 * test_loop.c - unit tests for net/loop.c over the linked backend: timer
 * order and re-entrancy, fd readiness with socketpairs, removal during
 * dispatch, more ready fds than a batch, watcher table growth, stop and
 * wake from a signal handler, the FD_SETSIZE limit (select only), the
 * embedding calls and the backend's own poll cap. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net/backend.h"
#include "net/loop.h"
#include "ws/ws.h"

#define MAX_LOG 1024

/* The order in which callbacks ran. */
struct log {
    int ids[MAX_LOG];
    int n;
};

/* One test timer and what its callback should do. */
struct tctx {
    struct ws_timer t;
    int id;
    int fired;
    int stop_after;          /* stop itself at this many firings */
    int restart_until;       /* restart itself (1 ms) until this many */
    struct ws_timer *victim; /* stopped by the callback */
    bool stop_loop;          /* ws_loop_stop() from the callback */
    struct log *log;
};

/* One watched descriptor and what its callback should do. */
struct fctx {
    int fd;
    int calls;
    int last_events;
    int unwatch_fd;    /* unwatched by the callback, -1 for none */
    int reuse_from;    /* then dup2(reuse_from, unwatch_fd) and watch it */
    int watch_new;     /* fd the callback starts watching, -1 for none */
    struct fctx *peer; /* context given to the fds watched in the callback */
    struct log *log;
};

static int setup_loop(void **state)
{
    struct ws_loop *loop;

    if (ws_loop_create(&loop) != 0)
        return -1;
    *state = loop;
    return 0;
}

static int teardown_loop(void **state)
{
    ws_loop_destroy(*state);
    return 0;
}

static void log_add(struct log *log, int id)
{
    if (log != NULL && log->n < MAX_LOG)
        log->ids[log->n++] = id;
}

static void timer_cb(struct ws_loop *loop, struct ws_timer *t)
{
    struct tctx *c = WS_TIMER_OWNER(t, struct tctx, t);

    c->fired++;
    log_add(c->log, c->id);
    if (c->stop_after && c->fired >= c->stop_after)
        ws_loop_timer_stop(loop, t);
    if (c->restart_until && c->fired < c->restart_until)
        assert_int_equal(ws_loop_timer_start(loop, t, 1, 0, timer_cb), 0);
    if (c->victim != NULL)
        ws_loop_timer_stop(loop, c->victim);
    if (c->stop_loop)
        ws_loop_stop(loop);
}

static void start(struct ws_loop *loop, struct tctx *c, uint64_t timeout,
                  uint32_t repeat)
{
    assert_int_equal(
        ws_loop_timer_start(loop, &c->t, timeout, repeat, timer_cb), 0);
    assert_true(ws_timer_armed(&c->t));
}

/* Run the loop until *count reaches target or max_ms pass. */
static void run_until(struct ws_loop *loop, const int *count, int target,
                      int max_ms)
{
    uint64_t end;

    ws_loop_update_time(loop);
    end = ws_loop_now(loop) + (uint64_t)max_ms;
    while (*count < target && ws_loop_now(loop) < end)
        assert_true(ws_loop_run_once(loop, 10) >= 0);
}

/* Run the loop for ms milliseconds. */
static void run_for(struct ws_loop *loop, int ms)
{
    int never = 0;

    run_until(loop, &never, 1, ms);
}

/* Only select refuses fds at or above FD_SETSIZE. */
static bool is_select(const struct ws_loop *loop)
{
    return strcmp(ws_loop_backend_name(loop), "select") == 0;
}

static void test_backend_name(void **state)
{
    const char *name = ws_loop_backend_name(*state);

    assert_true(strcmp(name, "select") == 0 || strcmp(name, "epoll") == 0);
}

static void test_timer_one_shot(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1};
    uint64_t t0;

    ws_loop_update_time(loop);
    t0 = ws_loop_now(loop);
    start(loop, &c, 20, 0);
    run_until(loop, &c.fired, 1, 2000);
    assert_int_equal(c.fired, 1);
    assert_false(ws_timer_armed(&c.t));
    assert_true(ws_loop_now(loop) - t0 >= 20);
    run_for(loop, 30);
    assert_int_equal(c.fired, 1);
}

static void test_timer_order(void **state)
{
    struct ws_loop *loop = *state;
    struct log log = {0};
    struct tctx c[3] = {
        {.id = 3, .log = &log}, {.id = 1, .log = &log}, {.id = 2, .log = &log}};

    start(loop, &c[0], 30, 0);
    start(loop, &c[1], 10, 0);
    start(loop, &c[2], 20, 0);
    run_until(loop, &log.n, 3, 2000);
    assert_int_equal(log.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(log.ids[i], i + 1);
}

static void test_timer_equal_due_fifo(void **state)
{
    struct ws_loop *loop = *state;
    struct log log = {0};
    struct tctx c[5];

    for (int i = 0; i < 5; i++) {
        c[i] = (struct tctx){.id = i, .log = &log};
        start(loop, &c[i], 0, 0);
    }
    assert_int_equal(ws_loop_run_once(loop, 0), 5);
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.ids[i], i);
}

static void test_timer_repeating(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1};
    int seen;

    start(loop, &c, 5, 5);
    run_until(loop, &c.fired, 4, 2000);
    assert_int_equal(c.fired, 4);
    assert_true(ws_timer_armed(&c.t));
    ws_loop_timer_stop(loop, &c.t);
    assert_false(ws_timer_armed(&c.t));
    seen = c.fired;
    run_for(loop, 30);
    assert_int_equal(c.fired, seen);
}

static void test_timer_stop_in_own_callback(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1, .stop_after = 3};

    start(loop, &c, 2, 2);
    run_until(loop, &c.fired, 3, 2000);
    assert_int_equal(c.fired, 3);
    assert_false(ws_timer_armed(&c.t));
    run_for(loop, 30);
    assert_int_equal(c.fired, 3);
    assert_int_equal(ws_loop_timeout(loop), -1);
}

static void test_timer_restart_in_own_callback(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1, .restart_until = 5};

    start(loop, &c, 1, 0);
    run_until(loop, &c.fired, 5, 2000);
    assert_int_equal(c.fired, 5);
    assert_false(ws_timer_armed(&c.t));
    run_for(loop, 20);
    assert_int_equal(c.fired, 5);
}

/* Restart with timeout 0 from its own callback. */
static void zero_restart_cb(struct ws_loop *loop, struct ws_timer *t)
{
    WS_TIMER_OWNER(t, struct tctx, t)->fired++;
    assert_int_equal(ws_loop_timer_start(loop, t, 0, 0, zero_restart_cb), 0);
}

static void test_timer_restart_zero_does_not_spin(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1};

    assert_int_equal(ws_loop_timer_start(loop, &c.t, 0, 0, zero_restart_cb), 0);
    /* Each pass runs it once; the restarted timer waits for the next. */
    assert_int_equal(ws_loop_run_once(loop, 0), 1);
    assert_int_equal(ws_loop_run_once(loop, 0), 1);
    assert_int_equal(c.fired, 2);
    ws_loop_timer_stop(loop, &c.t);
}

static void test_timer_stop_other(void **state)
{
    struct ws_loop *loop = *state;
    struct log log = {0};
    struct tctx a = {.id = 1, .log = &log};
    struct tctx b = {.id = 2, .log = &log};
    struct tctx c = {.id = 3, .log = &log};

    /* c is due together with a but started later: a runs first and stops
       it within the same pass; b is stopped long before it is due. */
    start(loop, &a, 5, 0);
    start(loop, &c, 5, 0);
    start(loop, &b, 10000, 0);
    a.victim = &c.t;
    run_until(loop, &a.fired, 1, 2000);
    assert_false(ws_timer_armed(&c.t));
    a.victim = &b.t;
    start(loop, &a, 1, 0);
    run_until(loop, &a.fired, 2, 2000);
    assert_false(ws_timer_armed(&b.t));
    assert_int_equal(ws_loop_timeout(loop), -1);
    run_for(loop, 20);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 0);
    assert_int_equal(log.n, 2);
}

static void test_timer_stop_harmless(void **state)
{
    struct ws_loop *loop = *state;
    struct ws_timer t = {0};
    struct tctx c = {.id = 1};

    ws_loop_timer_stop(loop, &t);
    start(loop, &c, 1000, 0);
    ws_loop_timer_stop(loop, &c.t);
    ws_loop_timer_stop(loop, &c.t);
    assert_false(ws_timer_armed(&c.t));
    assert_int_equal(ws_loop_timeout(loop), -1);
    assert_int_equal(ws_loop_timer_start(loop, &t, 1, 0, NULL), WS_EINVAL);
    assert_false(ws_timer_armed(&t));
}

static void test_timer_rearm_armed(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1};
    long left;

    start(loop, &c, 10000, 0);
    start(loop, &c, 5, 0);
    left = ws_loop_timeout(loop);
    assert_true(left >= 0 && left <= 5);
    run_until(loop, &c.fired, 1, 2000);
    assert_int_equal(c.fired, 1);
    assert_int_equal(ws_loop_timeout(loop), -1);
}

#define NRANDOM 500

static void test_timer_many_random(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c[NRANDOM];
    struct log log = {0};
    unsigned seed = 12345;
    int expect = 0;

    for (int i = 0; i < NRANDOM; i++) {
        c[i] = (struct tctx){.id = i, .log = &log};
        start(loop, &c[i], (uint64_t)(rand_r(&seed) % 40), 0);
    }
    /* Stop every seventh timer, from anywhere in the heap. */
    for (int i = 0; i < NRANDOM; i++) {
        if (i % 7 == 0)
            ws_loop_timer_stop(loop, &c[i].t);
        else
            expect++;
    }
    run_until(loop, &log.n, expect, 3000);
    assert_int_equal(log.n, expect);
    /* All started at the same loop time: due order is (timeout, start). */
    for (int i = 1; i < log.n; i++) {
        const struct ws_timer *p = &c[log.ids[i - 1]].t;
        const struct ws_timer *q = &c[log.ids[i]].t;
        assert_true(p->due_ms < q->due_ms ||
                    (p->due_ms == q->due_ms && log.ids[i - 1] < log.ids[i]));
    }
    for (int i = 0; i < NRANDOM; i++) {
        assert_int_equal(c[i].fired, i % 7 == 0 ? 0 : 1);
        assert_false(ws_timer_armed(&c[i].t));
    }
}

/* Try to re-enter the loop from its own callback. */
static void nested_cb(struct ws_loop *loop, struct ws_timer *t)
{
    WS_TIMER_OWNER(t, struct tctx, t)->fired++;
    ws_loop_stop(loop);
    assert_int_equal(ws_loop_run_once(loop, 0), WS_EBUSY);
    assert_int_equal(ws_loop_run(loop), WS_EBUSY);
    assert_int_equal(ws_loop_process(loop, NULL, NULL), WS_EBUSY);
    assert_true(ws_loop_stopped(loop));
}

static void test_nested_run_refused(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1};

    assert_int_equal(ws_loop_timer_start(loop, &c.t, 0, 0, nested_cb), 0);
    assert_int_equal(ws_loop_run_once(loop, 0), 1);
    assert_int_equal(c.fired, 1);
    assert_int_equal(ws_loop_timer_start(loop, &c.t, 0, 0, nested_cb), 0);
    assert_int_equal(ws_loop_process(loop, NULL, NULL), 1);
    assert_int_equal(c.fired, 2);
    /* Usable again afterwards. */
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
}

static void test_timeout(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx a = {.id = 1};
    struct tctx b = {.id = 2};
    long left;

    assert_int_equal(ws_loop_timeout(loop), -1);
    start(loop, &a, 50, 0);
    left = ws_loop_timeout(loop);
    assert_true(left > 0 && left <= 50);
    start(loop, &b, 0, 0);
    assert_int_equal(ws_loop_timeout(loop), 0);
    ws_loop_timer_stop(loop, &a.t);
    ws_loop_timer_stop(loop, &b.t);
    assert_int_equal(ws_loop_timeout(loop), -1);
}

/* A socketpair, both ends non-blocking. */
static void make_pair(int sv[2])
{
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

static void close_pair(int sv[2])
{
    close(sv[0]);
    close(sv[1]);
}

static void io_cb(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct fctx *c = arg;

    assert_int_equal(fd, c->fd);
    c->calls++;
    c->last_events = events;
    log_add(c->log, fd);
    if (c->unwatch_fd >= 0)
        ws_loop_unwatch(loop, c->unwatch_fd);
    if (c->unwatch_fd >= 0 && c->reuse_from >= 0) {
        /* Same fd number, different file: as accept() may hand out. */
        assert_int_equal(dup2(c->reuse_from, c->unwatch_fd), c->unwatch_fd);
        c->peer->fd = c->unwatch_fd;
        assert_int_equal(
            ws_loop_watch(loop, c->unwatch_fd, WS_IO_READ, io_cb, c->peer), 0);
    }
    if (c->watch_new >= 0) {
        c->peer->fd = c->watch_new;
        assert_int_equal(
            ws_loop_watch(loop, c->watch_new, WS_IO_READ, io_cb, c->peer), 0);
    }
}

/* A context for fd that does nothing but count. */
static struct fctx fctx_plain(int fd)
{
    return (struct fctx){
        .fd = fd, .unwatch_fd = -1, .reuse_from = -1, .watch_new = -1};
}

static void test_fd_read(void **state)
{
    struct ws_loop *loop = *state;
    int sv[2];
    struct fctx c;

    make_pair(sv);
    c = fctx_plain(sv[0]);
    assert_int_equal(ws_loop_watch(loop, sv[0], WS_IO_READ, io_cb, &c), 0);
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last_events, WS_IO_READ);
    ws_loop_unwatch(loop, sv[0]);
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 1);
    close_pair(sv);
}

static void test_fd_write_and_set_events(void **state)
{
    struct ws_loop *loop = *state;
    int sv[2];
    struct fctx c;

    make_pair(sv);
    c = fctx_plain(sv[0]);
    assert_int_equal(ws_loop_watch(loop, sv[0], WS_IO_WRITE, io_cb, &c), 0);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.last_events, WS_IO_WRITE);
    /* Idle: registered, but not called. */
    assert_int_equal(ws_loop_set_events(loop, sv[0], 0), 0);
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
    /* Both wanted, only writable. */
    assert_int_equal(ws_loop_set_events(loop, sv[0], WS_IO_READ | WS_IO_WRITE),
                     0);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.last_events, WS_IO_WRITE);
    /* Both wanted and both ready: one call with both bits. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.last_events, WS_IO_READ | WS_IO_WRITE);
    assert_int_equal(c.calls, 3);
    ws_loop_unwatch(loop, sv[0]);
    assert_int_equal(ws_loop_set_events(loop, sv[0], WS_IO_READ), WS_EINVAL);
    close_pair(sv);
}

static void test_fd_unwatch_in_callback(void **state)
{
    struct ws_loop *loop = *state;
    int a[2], b[2];
    struct fctx ca, cb;

    make_pair(a);
    make_pair(b);
    ca = fctx_plain(a[0]);
    cb = fctx_plain(b[0]);
    ca.unwatch_fd = b[0];
    cb.unwatch_fd = a[0];
    assert_int_equal(ws_loop_watch(loop, a[0], WS_IO_READ, io_cb, &ca), 0);
    assert_int_equal(ws_loop_watch(loop, b[0], WS_IO_READ, io_cb, &cb), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    /* Both are ready in this iteration; whichever runs first removes the
       other, which must then not be called. */
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(ca.calls + cb.calls, 1);
    ws_loop_unwatch(loop, a[0]);
    ws_loop_unwatch(loop, b[0]);
    close_pair(a);
    close_pair(b);
}

static void test_fd_reused_in_same_iteration(void **state)
{
    struct ws_loop *loop = *state;
    int a[2], b[2], idle[2];
    struct fctx ca, cb, cnew;

    make_pair(a);
    make_pair(b);
    make_pair(idle);
    cnew = fctx_plain(-1);
    ca = fctx_plain(a[0]);
    cb = fctx_plain(b[0]);
    /* The first callback closes the other fd and reuses its number for a
       socket with nothing to read; the stale readiness must not reach the
       new watcher. */
    ca.unwatch_fd = b[0];
    ca.reuse_from = idle[0];
    ca.peer = &cnew;
    cb.unwatch_fd = a[0];
    cb.reuse_from = idle[0];
    cb.peer = &cnew;
    assert_int_equal(ws_loop_watch(loop, a[0], WS_IO_READ, io_cb, &ca), 0);
    assert_int_equal(ws_loop_watch(loop, b[0], WS_IO_READ, io_cb, &cb), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(ca.calls + cb.calls, 1);
    assert_int_equal(cnew.calls, 0);
    assert_int_equal(cnew.fd, ca.calls ? b[0] : a[0]);
    ws_loop_unwatch(loop, a[0]);
    ws_loop_unwatch(loop, b[0]);
    close_pair(a);
    close_pair(b);
    close_pair(idle);
}

static void test_fd_watch_new_in_callback(void **state)
{
    struct ws_loop *loop = *state;
    int a[2], b[2];
    int high = 600;
    struct fctx ca, cnew;

    make_pair(a);
    make_pair(b);
    if (dup2(b[0], high) != high) {
        close_pair(a);
        close_pair(b);
        skip();
    }
    cnew = fctx_plain(-1);
    ca = fctx_plain(a[0]);
    ca.watch_new = high;
    ca.peer = &cnew;
    assert_int_equal(ws_loop_watch(loop, a[0], WS_IO_READ, io_cb, &ca), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    /* Watching fd 600 grows the table from inside dispatch; it is called
       from the next iteration on. */
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(cnew.calls, 0);
    ws_loop_unwatch(loop, a[0]);
    assert_int_equal(ws_loop_run_once(loop, 1000), 1);
    assert_int_equal(cnew.calls, 1);
    assert_int_equal(cnew.fd, high);
    ws_loop_unwatch(loop, high);
    close(high);
    close_pair(a);
    close_pair(b);
}

static void test_watch_errors(void **state)
{
    struct ws_loop *loop = *state;
    struct fctx c = fctx_plain(0);

    assert_int_equal(ws_loop_watch(loop, -1, WS_IO_READ, io_cb, &c), WS_EINVAL);
    assert_int_equal(ws_loop_watch(loop, 3, 4, io_cb, &c), WS_EINVAL);
    assert_int_equal(ws_loop_watch(loop, 3, WS_IO_READ, NULL, &c), WS_EINVAL);
    assert_int_equal(ws_loop_set_events(loop, -1, WS_IO_READ), WS_EINVAL);
    assert_int_equal(ws_loop_set_events(loop, 100000, WS_IO_READ), WS_EINVAL);
    if (!is_select(loop)) {
        /* No fd_set limit; an fd that is not open is refused by epoll. */
        assert_int_equal(
            ws_loop_watch(loop, FD_SETSIZE + 5000, WS_IO_READ, io_cb, &c),
            WS_ESYS);
        return;
    }
    /* The limit is checked on the number alone, before any fd_set. */
    assert_int_equal(ws_loop_watch(loop, FD_SETSIZE, WS_IO_READ, io_cb, &c),
                     WS_EFDSET);
    assert_int_equal(
        ws_loop_watch(loop, FD_SETSIZE + 5000, WS_IO_READ, io_cb, &c),
        WS_EFDSET);
    assert_int_equal(ws_loop_watch(loop, FD_SETSIZE - 1, WS_IO_READ, io_cb, &c),
                     0);
    ws_loop_unwatch(loop, FD_SETSIZE - 1);
    /* Removing what is not watched is harmless. */
    ws_loop_unwatch(loop, FD_SETSIZE + 5000);
    ws_loop_unwatch(loop, -1);
    assert_int_equal(ws_loop_watch(loop, 7, 0, NULL, NULL), 0);
}

static void test_fd_setsize_real_fd(void **state)
{
    struct ws_loop *loop = *state;
    struct rlimit old, rl;
    struct fctx c = fctx_plain(FD_SETSIZE);
    int sv[2];

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    if (rl.rlim_cur <= FD_SETSIZE && rl.rlim_max > FD_SETSIZE) {
        rl.rlim_cur = FD_SETSIZE + 1;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    make_pair(sv);
    if (dup2(sv[0], FD_SETSIZE) != FD_SETSIZE) {
        print_message("skipped: cannot open fd %d: %s\n", FD_SETSIZE,
                      strerror(errno));
        close_pair(sv);
        (void)setrlimit(RLIMIT_NOFILE, &old);
        skip();
    }
    if (is_select(loop)) {
        assert_int_equal(ws_loop_watch(loop, FD_SETSIZE, WS_IO_READ, io_cb, &c),
                         WS_EFDSET);
        assert_int_equal(write(sv[1], "x", 1), 1);
        assert_int_equal(ws_loop_run_once(loop, 0), 0);
    } else {
        /* Without an fd_set the high fd is watched like any other. */
        assert_int_equal(ws_loop_watch(loop, FD_SETSIZE, WS_IO_READ, io_cb, &c),
                         0);
        assert_int_equal(write(sv[1], "x", 1), 1);
        assert_int_equal(ws_loop_run_once(loop, 1000), 1);
        assert_int_equal(c.calls, 1);
        assert_int_equal(c.last_events, WS_IO_READ);
        ws_loop_unwatch(loop, FD_SETSIZE);
    }
    close(FD_SETSIZE);
    close_pair(sv);
    (void)setrlimit(RLIMIT_NOFILE, &old);
}

/* Raise the soft fd limit to at least want if the hard one allows; *old
   gets the limit to restore. Returns whether the soft limit is now at
   least want. */
static bool raise_nofile(rlim_t want, struct rlimit *old)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
    rl = *old;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want &&
        (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want)) {
        rl.rlim_cur = want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want;
}

/* n new fds for one file, each watched for reading with its own context;
   returns how many it opened (fewer when fds run out or, for select,
   reach FD_SETSIZE). */
static int watch_dups(struct ws_loop *loop, int src, struct fctx *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);

        if (fd < 0 || fd >= ws_loop_fd_limit(loop)) {
            if (fd >= 0)
                close(fd);
            return i;
        }
        ctx[i] = fctx_plain(fd);
        assert_int_equal(ws_loop_watch(loop, fd, WS_IO_READ, io_cb, &ctx[i]),
                         0);
    }
    return n;
}

/* Unwatch and close what watch_dups opened. */
static void unwatch_dups(struct ws_loop *loop, struct fctx *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        /* Before close: epoll keeps a dup registered while any fd of the
           file is open. */
        ws_loop_unwatch(loop, ctx[i].fd);
        close(ctx[i].fd);
    }
}

/*
 * More fds stay ready than one iteration dispatches (epoll takes a smaller
 * batch per poll than WS_LOOP_BATCH, and here there are more than
 * WS_LOOP_BATCH): no iteration makes more than WS_LOOP_BATCH calls, and
 * every fd is called within a few iterations, although the ones called
 * first stay ready all along. select only has FD_SETSIZE, which is at
 * most WS_LOOP_BATCH, so there they all come in one iteration.
 */
static void test_fd_more_ready_than_batch(void **state)
{
    struct ws_loop *loop = *state;
    int want = is_select(loop) ? FD_SETSIZE - 64 : WS_LOOP_BATCH + 300;
    struct rlimit old;
    struct fctx *ctx = calloc((size_t)want, sizeof(*ctx));
    int sv[2], n, iters = 0, done = 0;

    assert_non_null(ctx);
    if (!raise_nofile((rlim_t)want + 64, &old)) {
        print_message("skipped: cannot open %d fds\n", want + 64);
        free(ctx);
        skip();
    }
    make_pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    n = watch_dups(loop, sv[0], ctx, want);
    assert_int_equal(n, want);
    while (done < n && iters < 20) {
        int rc = ws_loop_run_once(loop, 1000);

        assert_true(rc > 0 && rc <= WS_LOOP_BATCH);
        iters++;
        done = 0;
        for (int i = 0; i < n; i++)
            done += ctx[i].calls > 0;
    }
    assert_int_equal(done, n);
    if (!is_select(loop))
        assert_true(iters > 1);
    for (int i = 0; i < n; i++)
        assert_int_equal(ctx[i].last_events, WS_IO_READ);
    unwatch_dups(loop, ctx, n);
    close_pair(sv);
    free(ctx);
    (void)setrlimit(RLIMIT_NOFILE, &old);
}

/* ws_loop_process() takes a whole fd_set in one call. */
static void test_embed_process_full_set(void **state)
{
    struct ws_loop *loop = *state;
    int want = FD_SETSIZE - 64;
    struct rlimit old;
    struct fctx *ctx = calloc((size_t)want, sizeof(*ctx));
    fd_set r;
    int sv[2], n;

    assert_non_null(ctx);
    if (!raise_nofile((rlim_t)FD_SETSIZE, &old)) {
        free(ctx);
        skip();
    }
    make_pair(sv);
    n = watch_dups(loop, sv[0], ctx, want);
    assert_int_equal(n, want);
    FD_ZERO(&r);
    for (int i = 0; i < n; i++) {
        assert_true(ctx[i].fd < FD_SETSIZE);
        FD_SET(ctx[i].fd, &r);
    }
    assert_int_equal(ws_loop_process(loop, &r, NULL), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(ctx[i].calls, 1);
    unwatch_dups(loop, ctx, n);
    close_pair(sv);
    free(ctx);
    (void)setrlimit(RLIMIT_NOFILE, &old);
}

/* What a numbered callback saw. */
struct nctx {
    int fd;
    int calls;
    int last_cb;
    int last_events;
};

static void numbered(int fd, int events, void *arg, int k)
{
    struct nctx *c = arg;

    assert_int_equal(fd, c->fd);
    c->calls++;
    c->last_cb = k;
    c->last_events = events;
}

/* Ten distinct callbacks, more than the loop's first callback table
   holds, each recording its number. */
#define NUMBERED_CB(k)                                                         \
    static void numbered_cb_##k(struct ws_loop *loop, int fd, int events,      \
                                void *arg)                                     \
    {                                                                          \
        (void)loop;                                                            \
        numbered(fd, events, arg, k);                                          \
    }
NUMBERED_CB(0)
NUMBERED_CB(1)
NUMBERED_CB(2)
NUMBERED_CB(3)
NUMBERED_CB(4)
NUMBERED_CB(5)
NUMBERED_CB(6)
NUMBERED_CB(7)
NUMBERED_CB(8)
NUMBERED_CB(9)
#undef NUMBERED_CB

static const ws_io_cb numbered_cbs[] = {
    numbered_cb_0, numbered_cb_1, numbered_cb_2, numbered_cb_3, numbered_cb_4,
    numbered_cb_5, numbered_cb_6, numbered_cb_7, numbered_cb_8, numbered_cb_9,
};
#define NCB (int)(sizeof(numbered_cbs) / sizeof(numbered_cbs[0]))

/* Check that watcher j of the first n was called once more, with its own
   callback, arg and events; an idle one not at all. */
static void check_ladder(const struct nctx *ctx, const int *before, int n,
                         int idle)
{
    for (int j = 0; j < n; j++) {
        if (j == idle) {
            assert_int_equal(ctx[j].calls, before[j]);
            continue;
        }
        assert_int_equal(ctx[j].calls, before[j] + 1);
        assert_int_equal(ctx[j].last_cb, j % NCB);
        assert_int_equal(ctx[j].last_events, j == 1 ? WS_IO_WRITE : WS_IO_READ);
    }
}

/*
 * Watchers at ever higher fds grow the table step by step (and the
 * callback table past its first size): after each step every earlier
 * watcher still has its callback, arg and events, an idle one stays idle,
 * and set_events still finds them all.
 */
static void test_watcher_growth_keeps_earlier(void **state)
{
    static const int at[] = {40,  52,  70,  95,  130, 180,
                             250, 340, 460, 620, 800, 1000};
    enum { N = sizeof(at) / sizeof(at[0]) };
    struct ws_loop *loop = *state;
    struct nctx ctx[N];
    int before[N];
    struct rlimit old;
    int sv[2], n;

    if (!raise_nofile((rlim_t)FD_SETSIZE, &old))
        skip();
    make_pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    memset(ctx, 0, sizeof(ctx));
    for (n = 0; n < N; n++) {
        /* The lowest free fd at or above at[n]: readable, and writable. */
        int fd = fcntl(sv[0], F_DUPFD_CLOEXEC, at[n]);
        int events = n == 1 ? WS_IO_WRITE : WS_IO_READ;

        if (fd < 0 || fd >= ws_loop_fd_limit(loop))
            break;
        ctx[n].fd = fd;
        assert_int_equal(
            ws_loop_watch(loop, fd, events, numbered_cbs[n % NCB], &ctx[n]), 0);
        if (n == 2)
            assert_int_equal(ws_loop_set_events(loop, fd, 0), 0);
        for (int j = 0; j <= n; j++)
            before[j] = ctx[j].calls;
        assert_int_equal(ws_loop_run_once(loop, 1000), n >= 2 ? n : n + 1);
        check_ladder(ctx, before, n + 1, 2);
    }
    assert_true(n >= 8);
    /* The idle one wakes up with its old callback; the first changes to
       another callback. */
    assert_int_equal(ws_loop_set_events(loop, ctx[2].fd, WS_IO_READ), 0);
    assert_int_equal(
        ws_loop_watch(loop, ctx[0].fd, WS_IO_READ, numbered_cbs[7], &ctx[0]),
        0);
    assert_int_equal(ws_loop_run_once(loop, 1000), n);
    assert_int_equal(ctx[0].last_cb, 7);
    assert_int_equal(ctx[2].calls, 1);
    assert_int_equal(ctx[2].last_cb, 2);
    for (int j = 0; j < n; j++) {
        ws_loop_unwatch(loop, ctx[j].fd);
        close(ctx[j].fd);
    }
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
    close_pair(sv);
    (void)setrlimit(RLIMIT_NOFILE, &old);
}

/*
 * The backend contract: a poll stores at most max events and never
 * writes past them, and successive polls with everything still ready
 * reach every fd (select resumes after a cut-short scan, epoll rotates its
 * ready list), so a small max starves neither low fds nor high ones.
 */
static void test_backend_poll_cap_is_fair(void **state)
{
    enum { N = 10, MAX = 3 };
    struct ws_backend *b = ws_backend_create();
    struct ws_backend_event out[MAX + 1];
    int sv[2], fds[N], seen[N] = {0};

    (void)state;
    assert_non_null(b);
    make_pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    for (int i = 0; i < N; i++) {
        fds[i] = fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(ws_backend_add(b, fds[i], WS_IO_READ), 0);
    }
    assert_int_equal(ws_backend_poll(b, 0, out, 0), -EINVAL);
    /* ceil(N / MAX) polls, each full, cover all N. */
    for (int p = 0; p < (N + MAX - 1) / MAX; p++) {
        out[MAX].fd = -7;
        assert_int_equal(ws_backend_poll(b, 1000, out, MAX), MAX);
        assert_int_equal(out[MAX].fd, -7);
        for (int k = 0; k < MAX; k++) {
            int i = 0;

            while (i < N && fds[i] != out[k].fd)
                i++;
            assert_true(i < N);
            assert_int_equal(out[k].events, WS_IO_READ);
            seen[i]++;
        }
    }
    for (int i = 0; i < N; i++)
        assert_true(seen[i] >= 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ws_backend_del(b, fds[i], WS_IO_READ), 0);
        close(fds[i]);
    }
    assert_int_equal(ws_backend_poll(b, 0, out, MAX), 0);
    ws_backend_free(b);
    close_pair(sv);
}

static struct ws_loop *volatile sig_loop;

static void on_alarm(int sig)
{
    (void)sig;
    ws_loop_stop(sig_loop);
}

static void test_stop_from_signal(void **state)
{
    struct ws_loop *loop = *state;
    struct sigaction sa, old_sa;
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    struct itimerval off = {0};
    struct tctx guard = {.id = 1, .stop_loop = true};

    sig_loop = loop;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old_sa), 0);
    /* The guard ends the test if the signal never stops the loop. */
    start(loop, &guard, 5000, 0);
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    assert_int_equal(ws_loop_run(loop), 0);
    assert_true(ws_loop_stopped(loop));
    assert_int_equal(guard.fired, 0);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    ws_loop_timer_stop(loop, &guard.t);
    sig_loop = NULL;
}

static void test_stop_from_timer(void **state)
{
    struct ws_loop *loop = *state;
    struct tctx c = {.id = 1, .stop_loop = true};

    /* A stop before run is forgotten: run clears the flag. */
    ws_loop_stop(loop);
    assert_true(ws_loop_stopped(loop));
    start(loop, &c, 10, 0);
    assert_int_equal(ws_loop_run(loop), 0);
    assert_int_equal(c.fired, 1);
    assert_true(ws_loop_stopped(loop));
}

/* A wake from a signal handler ends a blocked poll (long before the guard
   timer) without stopping the loop; errno is kept, also with the pipe
   full. */
static void on_alarm_wake(int sig)
{
    (void)sig;
    ws_loop_wake(sig_loop);
}

static void test_wake_from_signal(void **state)
{
    struct ws_loop *loop = *state;
    struct sigaction sa, old_sa;
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    struct itimerval off = {0};
    struct tctx guard = {.id = 1};

    sig_loop = loop;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm_wake;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old_sa), 0);
    start(loop, &guard, 5000, 0);
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    assert_int_equal(ws_loop_run_once(loop, -1), 0);
    assert_false(ws_loop_stopped(loop));
    assert_int_equal(guard.fired, 0);
    for (int i = 0; i < 100000; i++) {
        errno = 1234;
        ws_loop_wake(loop);
        assert_int_equal(errno, 1234);
    }
    assert_int_equal(ws_loop_run_once(loop, -1), 0); /* the pipe drained */
    assert_false(ws_loop_stopped(loop));
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    ws_loop_timer_stop(loop, &guard.t);
    sig_loop = NULL;
}

static void test_stop_keeps_errno_with_full_pipe(void **state)
{
    struct ws_loop *loop = *state;

    /* Far more bytes than a pipe holds, so most writes fail. */
    for (int i = 0; i < 100000; i++) {
        errno = 1234;
        ws_loop_stop(loop);
        assert_int_equal(errno, 1234);
    }
    /* Draining the pipe is not an application callback. */
    assert_int_equal(ws_loop_run_once(loop, 1000), 0);
    assert_int_equal(ws_loop_run_once(loop, 0), 0);
}

static void test_embed_fdset(void **state)
{
    struct ws_loop *loop = *state;
    fd_set r, w;
    int max_fd = -1;
    int sv[2];

    make_pair(sv);
    FD_ZERO(&r);
    FD_ZERO(&w);
    assert_int_equal(ws_loop_fdset(loop, &r, &w, &max_fd), 0);
    /* Only the internal self-pipe so far. */
    assert_true(max_fd >= 0);
    assert_true(FD_ISSET(max_fd, &r));
    assert_int_equal(ws_loop_watch(loop, sv[0], WS_IO_WRITE, io_cb, NULL), 0);
    FD_SET(0, &w); /* the caller's own bits are kept */
    assert_int_equal(ws_loop_fdset(loop, &r, &w, &max_fd), 0);
    assert_true(max_fd >= sv[0]);
    assert_true(FD_ISSET(sv[0], &w));
    assert_false(FD_ISSET(sv[0], &r));
    assert_true(FD_ISSET(0, &w));
    ws_loop_unwatch(loop, sv[0]);
    close_pair(sv);
}

static void test_embed_process(void **state)
{
    struct ws_loop *loop = *state;
    struct timeval tv = {.tv_sec = 1};
    struct fctx c;
    struct tctx t = {.id = 1};
    fd_set r, w;
    int max_fd = -1;
    int sv[2], other[2];

    make_pair(sv);
    make_pair(other);
    c = fctx_plain(sv[0]);
    assert_int_equal(ws_loop_watch(loop, sv[0], WS_IO_READ, io_cb, &c), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    FD_ZERO(&r);
    FD_ZERO(&w);
    assert_int_equal(ws_loop_fdset(loop, &r, &w, &max_fd), 0);
    assert_int_equal(ws_loop_timeout(loop), -1);
    assert_true(select(max_fd + 1, &r, &w, NULL, &tv) >= 1);
    assert_true(FD_ISSET(sv[0], &r));
    /* Bits the loop did not ask for are ignored: an fd it does not watch,
       and write readiness on a read-only watcher. */
    FD_SET(other[0], &r);
    FD_SET(sv[0], &w);
    assert_int_equal(ws_loop_process(loop, &r, &w), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last_events, WS_IO_READ);
    /* Due timers run from process too; either set may be NULL. */
    start(loop, &t, 0, 0);
    assert_int_equal(ws_loop_timeout(loop), 0);
    assert_int_equal(ws_loop_process(loop, NULL, NULL), 1);
    assert_int_equal(t.fired, 1);
    ws_loop_unwatch(loop, sv[0]);
    FD_ZERO(&r);
    FD_SET(sv[0], &r);
    assert_int_equal(ws_loop_process(loop, &r, NULL), 0);
    close_pair(sv);
    close_pair(other);
}

static void test_embed_stop(void **state)
{
    struct ws_loop *loop = *state;
    struct timeval tv = {.tv_sec = 1};
    fd_set r;
    int max_fd = -1;

    ws_loop_stop(loop);
    FD_ZERO(&r);
    assert_int_equal(ws_loop_fdset(loop, &r, NULL, &max_fd), 0);
    /* The self-pipe wakes the caller's select. */
    assert_int_equal(select(max_fd + 1, &r, NULL, NULL, &tv), 1);
    assert_int_equal(ws_loop_process(loop, &r, NULL), 0);
    assert_true(ws_loop_stopped(loop));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_loop, teardown_loop)
    const struct CMUnitTest tests[] = {
        T(test_backend_name),
        T(test_timer_one_shot),
        T(test_timer_order),
        T(test_timer_equal_due_fifo),
        T(test_timer_repeating),
        T(test_timer_stop_in_own_callback),
        T(test_timer_restart_in_own_callback),
        T(test_timer_restart_zero_does_not_spin),
        T(test_timer_stop_other),
        T(test_timer_stop_harmless),
        T(test_timer_rearm_armed),
        T(test_timer_many_random),
        T(test_nested_run_refused),
        T(test_timeout),
        T(test_fd_read),
        T(test_fd_write_and_set_events),
        T(test_fd_unwatch_in_callback),
        T(test_fd_reused_in_same_iteration),
        T(test_fd_watch_new_in_callback),
        T(test_watch_errors),
        T(test_fd_setsize_real_fd),
        T(test_fd_more_ready_than_batch),
        T(test_watcher_growth_keeps_earlier),
        T(test_stop_from_signal),
        T(test_stop_from_timer),
        T(test_wake_from_signal),
        T(test_stop_keeps_errno_with_full_pipe),
        T(test_embed_fdset),
        T(test_embed_process),
        T(test_embed_stop),
        T(test_embed_process_full_set),
        cmocka_unit_test(test_backend_poll_cap_is_fair),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
