/*
 * test_loop_external.c - unit tests for the loop's external mode
 * (net/loop_external.c) over either linked backend: the exact sequence of
 * interest changes told (descriptors watched before the switch, adds,
 * modifications, idle masks, removals before close, nothing for an
 * unchanged mask), dispatch of reported readiness (masked by interest,
 * stale and unknown reports harmless, timers), the timers hook, and every
 * error code. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"
#include "ws/ws.h"

#define MAX_CHANGES 64
#define IO_RW (WS_IO_READ | WS_IO_WRITE)

/* One interest change the loop told. */
struct change {
    int fd;
    int events;
    bool open; /* the descriptor was still open when told */
};

/* Everything the hooks saw. */
struct seen {
    struct change ch[MAX_CHANGES];
    int n;
    int timers; /* timers hook calls */
};

/* The per-test state: a loop and what its hooks saw. */
struct fx {
    struct ws_loop *loop;
    struct seen seen;
};

static void on_interest(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct seen *s = arg;

    (void)loop;
    assert_true(s->n < MAX_CHANGES);
    s->ch[s->n++] = (struct change){fd, events, fcntl(fd, F_GETFD) >= 0};
}

static void on_timers(struct ws_loop *loop, void *arg)
{
    struct seen *s = arg;

    (void)loop;
    s->timers++;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL || ws_loop_create(&f->loop) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ws_loop_destroy(f->loop);
    free(f);
    return 0;
}

/* Switch f's loop to external mode; the self-pipe is its one change. */
static int go_external(struct fx *f)
{
    assert_int_equal(ws_loop_set_external(f->loop, on_interest, &f->seen), 0);
    assert_int_equal(f->seen.n, 1);
    assert_int_equal(f->seen.ch[0].events, WS_IO_READ);
    f->seen.n = 0;
    return 0;
}

/* Assert that the changes told since the last call are exactly want. */
static void expect(struct fx *f, const struct change *want, int n)
{
    for (int i = 0; i < n && i < f->seen.n; i++) {
        assert_int_equal(f->seen.ch[i].fd, want[i].fd);
        assert_int_equal(f->seen.ch[i].events, want[i].events);
    }
    assert_int_equal(f->seen.n, n);
    f->seen.n = 0;
}

/* A watched descriptor's callback: counts, records, may act on others. */
struct fctx {
    int calls;
    int last_events;
    int unwatch_fd;  /* unwatched by the callback, -1 for none */
    int write_fd;    /* wants WS_IO_WRITE from the callback, -1 for none */
    int nested_rc;   /* what a nested ws_loop_action() returned */
    bool try_nested; /* call ws_loop_action() from inside */
};

static void fd_cb(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct fctx *c = arg;

    (void)fd;
    c->calls++;
    c->last_events = events;
    if (c->unwatch_fd >= 0)
        ws_loop_unwatch(loop, c->unwatch_fd);
    if (c->write_fd >= 0)
        assert_int_equal(ws_loop_set_events(loop, c->write_fd, IO_RW), 0);
    if (c->try_nested)
        c->nested_rc = ws_loop_action(loop, -1, 0);
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void close_pair(int sv[2])
{
    close(sv[0]);
    close(sv[1]);
}

static void test_switch_tells_watched(void **state)
{
    struct fx *f = *state;
    struct fctx c = {.unwatch_fd = -1, .write_fd = -1};
    int a[2], b[2];

    pair(a);
    pair(b);
    /* Before the switch: a both ways, b registered but idle. */
    assert_int_equal(ws_loop_watch(f->loop, a[0], IO_RW, fd_cb, &c), 0);
    assert_int_equal(ws_loop_watch(f->loop, b[0], WS_IO_READ, fd_cb, &c), 0);
    assert_int_equal(ws_loop_set_events(f->loop, b[0], 0), 0);
    assert_false(ws_loop_is_external(f->loop));
    assert_int_equal(ws_loop_set_external(f->loop, on_interest, &f->seen), 0);
    assert_true(ws_loop_is_external(f->loop));
    assert_string_equal(ws_loop_backend_name(f->loop), "external");
    /* The self-pipe (opened first, so the lowest fd) and a; b is idle. */
    assert_int_equal(f->seen.n, 2);
    assert_true(f->seen.ch[0].fd < a[0]);
    assert_int_equal(f->seen.ch[0].events, WS_IO_READ);
    assert_int_equal(f->seen.ch[1].fd, a[0]);
    assert_int_equal(f->seen.ch[1].events, IO_RW);
    f->seen.n = 0;
    /* b waking up is an add for the application. */
    assert_int_equal(ws_loop_set_events(f->loop, b[0], WS_IO_READ), 0);
    expect(f, (struct change[]){{b[0], WS_IO_READ, true}}, 1);
    ws_loop_unwatch(f->loop, a[0]);
    ws_loop_unwatch(f->loop, b[0]);
    close_pair(a);
    close_pair(b);
}

static void test_exact_sequence(void **state)
{
    struct fx *f = *state;
    struct fctx c = {.unwatch_fd = -1, .write_fd = -1};
    int a[2];
    const int R = WS_IO_READ, W = WS_IO_WRITE, RW = IO_RW;

    go_external(f);
    pair(a);
    assert_int_equal(ws_loop_watch(f->loop, a[0], R, fd_cb, &c), 0);
    assert_int_equal(ws_loop_watch(f->loop, a[0], R, fd_cb, &c), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], RW), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], RW), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], W), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], 0), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], 0), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], R), 0);
    ws_loop_unwatch(f->loop, a[0]);
    ws_loop_unwatch(f->loop, a[0]);
    assert_int_equal(ws_loop_watch(f->loop, a[0], 0, fd_cb, &c), 0);
    /* Registered idle, then removed: never told at all. */
    assert_int_equal(ws_loop_watch(f->loop, a[0], R, fd_cb, &c), 0);
    assert_int_equal(ws_loop_set_events(f->loop, a[0], 0), 0);
    ws_loop_unwatch(f->loop, a[0]);
    expect(f,
           (struct change[]){{a[0], R, true},
                             {a[0], RW, true},
                             {a[0], W, true},
                             {a[0], 0, true},
                             {a[0], R, true},
                             {a[0], 0, true},
                             {a[0], R, true},
                             {a[0], 0, true}},
           8);
    close_pair(a);
}

static void test_action_dispatch(void **state)
{
    struct fx *f = *state;
    struct fctx c = {.unwatch_fd = -1, .write_fd = -1};
    int a[2];

    go_external(f);
    pair(a);
    assert_int_equal(ws_loop_watch(f->loop, a[0], WS_IO_READ, fd_cb, &c), 0);
    /* Nothing is polled: readiness is what the caller reports. */
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_READ), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last_events, WS_IO_READ);
    /* Masked by the interest: writability it did not ask for is not
       passed on, and a report of only that makes no call. */
    assert_int_equal(ws_loop_action(f->loop, a[0], IO_RW), 1);
    assert_int_equal(c.last_events, WS_IO_READ);
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_WRITE), 0);
    assert_int_equal(c.calls, 2);
    /* Idle: reports are ignored. */
    assert_int_equal(ws_loop_set_events(f->loop, a[0], 0), 0);
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_READ), 0);
    /* A report that crossed the unwatch, and fds never watched (inside
       and beyond the table), are harmless. */
    ws_loop_unwatch(f->loop, a[0]);
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_READ), 0);
    assert_int_equal(ws_loop_action(f->loop, a[1], WS_IO_READ), 0);
    assert_int_equal(ws_loop_action(f->loop, 100000, WS_IO_READ), 0);
    assert_int_equal(ws_loop_action(f->loop, a[0], 0), 0);
    assert_int_equal(c.calls, 2);
    close_pair(a);
}

static void test_callback_changes_interest(void **state)
{
    struct fx *f = *state;
    int a[2], b[2];
    struct fctx cb_ = {.unwatch_fd = -1, .write_fd = -1};
    struct fctx ca = {.unwatch_fd = -1, .write_fd = -1};

    go_external(f);
    pair(a);
    pair(b);
    ca.unwatch_fd = b[0];
    ca.write_fd = a[0];
    assert_int_equal(ws_loop_watch(f->loop, a[0], WS_IO_READ, fd_cb, &ca), 0);
    assert_int_equal(ws_loop_watch(f->loop, b[0], WS_IO_READ, fd_cb, &cb_), 0);
    f->seen.n = 0;
    /* Told from inside the dispatch, in the order the callback made
       them; b's stale report afterwards reaches nobody. */
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_READ), 1);
    expect(f, (struct change[]){{b[0], 0, true}, {a[0], IO_RW, true}}, 2);
    assert_int_equal(ws_loop_action(f->loop, b[0], WS_IO_READ), 0);
    assert_int_equal(cb_.calls, 0);
    ws_loop_unwatch(f->loop, a[0]);
    close_pair(a);
    close_pair(b);
}

/* A test timer and what its callback did or saw. */
struct counted {
    struct ws_timer t;
    int fired;
    int rc;
};

/* A one-shot test timer's callback. */
static void count_timer(struct ws_loop *loop, struct ws_timer *t)
{
    (void)loop;
    WS_TIMER_OWNER(t, struct counted, t)->fired++;
}

static void test_action_runs_timers(void **state)
{
    struct fx *f = *state;
    struct counted now = {0}, later = {0};

    go_external(f);
    assert_int_equal(ws_loop_timer_start(f->loop, &now.t, 0, 0, count_timer),
                     0);
    assert_int_equal(
        ws_loop_timer_start(f->loop, &later.t, 60000, 0, count_timer), 0);
    assert_int_equal(ws_loop_action(f->loop, -1, 0), 1);
    assert_int_equal(now.fired, 1);
    assert_int_equal(later.fired, 0);
    assert_int_equal(ws_loop_action(f->loop, -1, 0), 0);
    ws_loop_timer_stop(f->loop, &later.t);
}

static void test_self_pipe_wakes(void **state)
{
    struct fx *f = *state;
    int pipe_rd;
    fd_set r;
    struct timeval tv = {.tv_sec = 1};

    assert_int_equal(ws_loop_set_external(f->loop, on_interest, &f->seen), 0);
    pipe_rd = f->seen.ch[0].fd;
    ws_loop_wake(f->loop);
    /* What the application's poller would see. */
    FD_ZERO(&r);
    FD_SET(pipe_rd, &r);
    assert_int_equal(select(pipe_rd + 1, &r, NULL, NULL, &tv), 1);
    /* Drained by the loop, and not counted as an application callback. */
    assert_int_equal(ws_loop_action(f->loop, pipe_rd, WS_IO_READ), 0);
    tv = (struct timeval){0};
    FD_ZERO(&r);
    FD_SET(pipe_rd, &r);
    assert_int_equal(select(pipe_rd + 1, &r, NULL, NULL, &tv), 0);
}

static void test_destroy_tells_pipe_before_close(void **state)
{
    struct fx *f = *state;
    int pipe_rd;

    go_external(f);
    ws_loop_destroy(f->loop);
    f->loop = NULL;
    assert_int_equal(f->seen.n, 1);
    pipe_rd = f->seen.ch[0].fd;
    assert_true(pipe_rd >= 0);
    assert_int_equal(f->seen.ch[0].events, 0);
    assert_true(f->seen.ch[0].open);
    assert_true(fcntl(pipe_rd, F_GETFD) < 0);      /* closed after */
    assert_int_equal(ws_loop_create(&f->loop), 0); /* for teardown */
}

static void test_timers_hook(void **state)
{
    struct fx *f = *state;
    struct counted ca = {0}, cb = {0}, cc = {0};
    struct ws_timer *a = &ca.t, *b = &cb.t, *c = &cc.t;
    uint64_t due;

    ws_loop_set_timers_hook(f->loop, on_timers, &f->seen);
    assert_false(ws_loop_first_due(f->loop, &due));
    assert_int_equal(ws_loop_timer_start(f->loop, a, 10000, 0, count_timer), 0);
    assert_int_equal(f->seen.timers, 1);
    assert_true(ws_loop_first_due(f->loop, &due));
    assert_int_equal(due, a->due_ms);
    /* Later than the first: the first due time does not move. */
    assert_int_equal(ws_loop_timer_start(f->loop, b, 20000, 0, count_timer), 0);
    assert_int_equal(f->seen.timers, 1);
    assert_int_equal(ws_loop_timer_start(f->loop, c, 0, 0, count_timer), 0);
    assert_int_equal(f->seen.timers, 2);
    ws_loop_timer_stop(f->loop, b);
    ws_loop_timer_stop(f->loop, b);
    assert_int_equal(f->seen.timers, 2);
    /* Firing is not a start or stop: the dispatcher's caller looks. */
    assert_int_equal(ws_loop_run_once(f->loop, 0), 1);
    assert_int_equal(f->seen.timers, 2);
    ws_loop_timer_stop(f->loop, a);
    assert_int_equal(f->seen.timers, 3);
    assert_false(ws_loop_first_due(f->loop, &due));
    ws_loop_set_timers_hook(f->loop, NULL, NULL);
    assert_int_equal(ws_loop_timer_start(f->loop, a, 1, 0, count_timer), 0);
    assert_int_equal(f->seen.timers, 3);
    ws_loop_timer_stop(f->loop, a);
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    struct fctx c = {.unwatch_fd = -1, .write_fd = -1, .try_nested = true};
    fd_set r;
    int max_fd = -1, a[2];

    assert_int_equal(ws_loop_action(f->loop, -1, 0), WS_ESTATE);
    assert_int_equal(ws_loop_set_external(f->loop, NULL, NULL), WS_EINVAL);
    go_external(f);
    assert_int_equal(ws_loop_set_external(f->loop, on_interest, &f->seen),
                     WS_ESTATE);
    assert_int_equal(ws_loop_action(f->loop, -2, 0), WS_EINVAL);
    assert_int_equal(ws_loop_action(f->loop, -1, WS_IO_READ), WS_EINVAL);
    assert_int_equal(ws_loop_action(f->loop, 0, 4), WS_EINVAL);
    /* The loop's own polling is gone. */
    FD_ZERO(&r);
    assert_int_equal(ws_loop_run_once(f->loop, 0), WS_ESTATE);
    assert_int_equal(ws_loop_run(f->loop), WS_ESTATE);
    assert_int_equal(ws_loop_fdset(f->loop, &r, NULL, &max_fd), WS_ESTATE);
    assert_int_equal(ws_loop_process(f->loop, &r, NULL), WS_ESTATE);
    assert_int_equal(f->seen.n, 0);
    /* A nested action would overwrite the ready entry being dispatched. */
    pair(a);
    assert_int_equal(ws_loop_watch(f->loop, a[0], WS_IO_READ, fd_cb, &c), 0);
    assert_int_equal(ws_loop_action(f->loop, a[0], WS_IO_READ), 1);
    assert_int_equal(c.nested_rc, WS_EBUSY);
    ws_loop_unwatch(f->loop, a[0]);
    close_pair(a);
}

/* ws_loop_set_external() from inside a dispatch of the loop's own. */
static void switch_cb(struct ws_loop *loop, struct ws_timer *t)
{
    WS_TIMER_OWNER(t, struct counted, t)->rc =
        ws_loop_set_external(loop, on_interest, NULL);
}

static void test_switch_from_callback_refused(void **state)
{
    struct fx *f = *state;
    struct counted t = {.rc = 1};

    assert_int_equal(ws_loop_timer_start(f->loop, &t.t, 0, 0, switch_cb), 0);
    assert_int_equal(ws_loop_run_once(f->loop, 0), 1);
    assert_int_equal(t.rc, WS_EBUSY);
    assert_false(ws_loop_is_external(f->loop));
}

/* No fd_set is involved: descriptors at and past FD_SETSIZE are fine,
   with the select build too. */
static void test_fd_beyond_fd_setsize(void **state)
{
    struct fx *f = *state;
    struct fctx c = {.unwatch_fd = -1, .write_fd = -1};
    struct rlimit rl;
    int big = FD_SETSIZE + 10, a[2];

    go_external(f);
    assert_true(ws_loop_fd_limit(f->loop) >= FD_SETSIZE);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max <= (rlim_t)big) {
        skip();
        return;
    }
    assert_true(ws_loop_fd_limit(f->loop) > big);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    pair(a);
    assert_int_equal(dup2(a[0], big), big);
    assert_int_equal(ws_loop_watch(f->loop, big, WS_IO_READ, fd_cb, &c), 0);
    expect(f, (struct change[]){{big, WS_IO_READ, true}}, 1);
    assert_int_equal(ws_loop_action(f->loop, big, WS_IO_READ), 1);
    ws_loop_unwatch(f->loop, big);
    expect(f, (struct change[]){{big, 0, true}}, 1);
    close(big);
    close_pair(a);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_switch_tells_watched),
        T(test_exact_sequence),
        T(test_action_dispatch),
        T(test_callback_changes_interest),
        T(test_action_runs_timers),
        T(test_self_pipe_wakes),
        T(test_destroy_tells_pipe_before_close),
        T(test_timers_hook),
        T(test_errors),
        T(test_switch_from_callback_refused),
        T(test_fd_beyond_fd_setsize),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
