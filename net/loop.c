/*
 * loop.c - the event loop: a watcher table indexed by fd on top of one
 * polling backend, a binary min-heap of caller-owned timers, a monotonic
 * ms clock and a self-pipe that lets ws_loop_stop() and ws_loop_wake() wake
 * a blocked poll.
 * It never reads or writes the watched descriptors and never frees a timer.
 */
#include "net/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/backend.h"
#include "net/error.h"
#include "net/loop_impl.h"

/* Map a backend's -errno to a WS_E* code. */
static int loop_backend_error(int rc)
{
    return rc == -ENOMEM ? WS_ENOMEM : WS_ESYS;
}

/*
 * Grow the watcher table so that fd fits: by a quarter, or to fd + 1 if
 * that is more. The kernel hands out the lowest free fd, so the table is
 * in use almost to its end; growing by a quarter keeps the unused tail,
 * which every idle connection pays for, under a fifth of it (doubling
 * leaves up to half), and growth stays amortised O(1).
 */
static int loop_grow(struct ws_loop *loop, int fd)
{
    size_t old = (size_t)loop->nwatchers;
    size_t n = old + old / 4;
    void *p;

    if (n < 32)
        n = 32;
    if (n <= (size_t)fd)
        n = (size_t)fd + 1;
    /* The caller checked fd < fd_limit, so this still fits fd. */
    if (n > (size_t)loop->fd_limit)
        n = (size_t)loop->fd_limit;
    if (n > SIZE_MAX / sizeof(*loop->watchers))
        return WS_ENOMEM;
    p = realloc(loop->watchers, n * sizeof(*loop->watchers));
    if (p == NULL)
        return WS_ENOMEM;
    loop->watchers = p;
    memset(loop->watchers + old, 0, (n - old) * sizeof(*loop->watchers));
    loop->nwatchers = (int)n;
    return 0;
}

/* Move fd's backend interest from old to new, all or nothing. */
static int loop_set_interest(struct ws_loop *loop, int fd, int old, int new)
{
    int add = new & ~old;
    int del = old & ~new;
    int rc;

    /* External mode: the application's poller holds the interest, and is
       told only of changes (loop_external.c). */
    if (loop->interest_cb) {
        if (old != new)
            loop->interest_cb(loop, fd, new, loop->interest_arg);
        return 0;
    }
    if (add) {
        rc = ws_backend_add(loop->backend, fd, add);
        if (rc < 0)
            return loop_backend_error(rc);
    }
    if (del) {
        rc = ws_backend_del(loop->backend, fd, del);
        if (rc < 0) {
            if (add)
                ws_backend_del(loop->backend, fd, add);
            return loop_backend_error(rc);
        }
    }
    return 0;
}

/* The index of cb in the loop's callback table, adding it if it is new;
   a negative WS_E* code if the table cannot take it. */
static int loop_cb_index(struct ws_loop *loop, ws_io_cb cb)
{
    int cap = loop->cbs_cap ? loop->cbs_cap * 2 : 8;
    void *p;

    for (int i = 0; i < loop->ncbs; i++) {
        if (loop->cbs[i] == cb)
            return i;
    }
    /* Entries are never removed: a callback is a function of the program,
       so the table stays as small as the program's set of them. */
    if (loop->ncbs == LOOP_MAX_CBS)
        return WS_ENOMEM;
    if (loop->ncbs == loop->cbs_cap) {
        p = realloc(loop->cbs, (size_t)cap * sizeof(*loop->cbs));
        if (p == NULL)
            return WS_ENOMEM;
        loop->cbs = p;
        loop->cbs_cap = cap;
    }
    loop->cbs[loop->ncbs] = cb;
    return loop->ncbs++;
}

/* Register or update fd's watcher and its backend interest. */
int ws_loop_watch(struct ws_loop *loop, int fd, int events, ws_io_cb cb,
                  void *arg)
{
    struct ws_watcher *w;
    int cbi;
    int rc;

    if (fd < 0 || (events & ~WS_IO_BOTH) || (events && cb == NULL))
        return WS_EINVAL;
    if (events == 0) {
        ws_loop_unwatch(loop, fd);
        return 0;
    }
    /* select() must never see such an fd: FD_SET would write past the
       fd_set. */
    if (fd >= loop->fd_limit)
        return WS_EFDSET;
    if (fd >= loop->nwatchers) {
        rc = loop_grow(loop, fd);
        if (rc < 0)
            return rc;
    }
    /* Before the backend: nothing to undo if the table is full. */
    cbi = loop_cb_index(loop, cb);
    if (cbi < 0)
        return cbi;
    w = &loop->watchers[fd];
    rc = loop_set_interest(loop, fd, w->active ? w->events : 0, events);
    if (rc < 0)
        return rc;
    w->cb = (uint16_t)cbi;
    w->arg = arg;
    w->events = events;
    w->active = true;
    return 0;
}

/* Change the event mask of an existing watcher. */
int ws_loop_set_events(struct ws_loop *loop, int fd, int events)
{
    struct ws_watcher *w;
    int rc;

    if (fd < 0 || fd >= loop->nwatchers || (events & ~WS_IO_BOTH))
        return WS_EINVAL;
    w = &loop->watchers[fd];
    if (!w->active)
        return WS_EINVAL;
    rc = loop_set_interest(loop, fd, w->events, events);
    if (rc < 0)
        return rc;
    w->events = events;
    return 0;
}

/* Remove fd's watcher so that no pending event reaches it. */
void ws_loop_unwatch(struct ws_loop *loop, int fd)
{
    struct ws_watcher *w;

    if (fd < 0 || fd >= loop->nwatchers)
        return;
    w = &loop->watchers[fd];
    if (!w->active)
        return;
    /* Removing interest cannot fail for select; for other backends the fd
       may already be closed, which removed it anyway. */
    (void)loop_set_interest(loop, fd, w->events, 0);
    w->cb = 0;
    w->arg = NULL;
    w->events = 0;
    w->active = false;
    w->gen++;
}

uint64_t ws_loop_now(const struct ws_loop *loop)
{
    return loop->now_ms;
}

/* Read CLOCK_MONOTONIC into the loop's ms clock. */
void ws_loop_update_time(struct ws_loop *loop)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        loop->now_ms =
            (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Heap order: earlier due time first, then earlier start. */
static bool timer_before(const struct ws_timer *a, const struct ws_timer *b)
{
    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    return a->start_id < b->start_id;
}

static void heap_place(struct ws_loop *loop, struct ws_timer *t, size_t i)
{
    loop->heap[i] = t;
    t->heap_slot = (uint32_t)(i + 1); /* the heap holds < 2^32 - 1 timers */
}

/* Move the timer at i towards the root while it sorts before its parent;
   returns its final position. */
static size_t heap_up(struct ws_loop *loop, size_t i)
{
    struct ws_timer *t = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, loop->heap[parent], i);
        i = parent;
    }
    heap_place(loop, t, i);
    return i;
}

/* Move the timer at i towards the leaves while a child sorts before it. */
static void heap_down(struct ws_loop *loop, size_t i)
{
    struct ws_timer *t = loop->heap[i];
    size_t n = loop->heap_len;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_place(loop, loop->heap[c], i);
        i = c;
    }
    heap_place(loop, t, i);
}

/* Restore heap order around i after its key changed in either direction. */
static void heap_fix(struct ws_loop *loop, size_t i)
{
    heap_down(loop, heap_up(loop, i));
}

/* Take an armed timer out of the heap, wherever it is, in O(log n). */
static void heap_remove(struct ws_loop *loop, struct ws_timer *t)
{
    size_t i = t->heap_slot - 1;
    struct ws_timer *last = loop->heap[--loop->heap_len];

    t->heap_slot = 0;
    if (last == t)
        return;
    heap_place(loop, last, i);
    heap_fix(loop, i);
}

/* Make room for one more timer in the heap, growing it by a quarter: a
   server arms one timer per connection, so the slack is paid for per
   connection, as with the watcher table. */
static int heap_reserve(struct ws_loop *loop)
{
    size_t cap = loop->heap_cap + loop->heap_cap / 4;
    void *p;

    if (loop->heap_len < loop->heap_cap)
        return 0;
    if (cap < 16)
        cap = 16;
    /* heap_slot is 32 bits wide: a timer costs memory in its owner, so
       no real program comes near this. */
    if (cap > SIZE_MAX / sizeof(*loop->heap) ||
        loop->heap_len >= UINT32_MAX - 1)
        return WS_ENOMEM;
    p = realloc(loop->heap, cap * sizeof(*loop->heap));
    if (p == NULL)
        return WS_ENOMEM;
    loop->heap = p;
    loop->heap_cap = cap;
    return 0;
}

/* Give t a new due time and start order and put it where it belongs; an
   armed timer moves in place, so re-arming never allocates. */
static void timer_arm(struct ws_loop *loop, struct ws_timer *t,
                      uint64_t timeout_ms)
{
    uint64_t now = loop->now_ms;

    t->due_ms = timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + timeout_ms;
    t->start_id = loop->next_timer_id++;
    if (ws_timer_armed(t)) {
        heap_fix(loop, t->heap_slot - 1);
        return;
    }
    heap_place(loop, t, loop->heap_len++);
    heap_up(loop, loop->heap_len - 1);
}

/* The first due time, UINT64_MAX with no timer armed. */
static uint64_t loop_first_due(const struct ws_loop *loop)
{
    return loop->heap_len ? loop->heap[0]->due_ms : UINT64_MAX;
}

bool ws_loop_first_due(const struct ws_loop *loop, uint64_t *due_ms)
{
    *due_ms = loop_first_due(loop);
    return loop->heap_len > 0;
}

/* Tell the timers hook if a start or stop moved the first due time. */
static void loop_timers_moved(struct ws_loop *loop, uint64_t before)
{
    if (loop->timers_cb && loop_first_due(loop) != before)
        loop->timers_cb(loop, loop->timers_arg);
}

/* Arm or re-arm t; only a new entry may need heap room. */
int ws_loop_timer_start(struct ws_loop *loop, struct ws_timer *t,
                        uint64_t timeout_ms, uint32_t repeat_ms, ws_timer_cb cb)
{
    uint64_t before = loop_first_due(loop);

    if (cb == NULL)
        return WS_EINVAL;
    if (!ws_timer_armed(t) && heap_reserve(loop) < 0)
        return WS_ENOMEM;
    t->repeat_ms = repeat_ms;
    t->cb = cb;
    timer_arm(loop, t, timeout_ms);
    loop_timers_moved(loop, before);
    return 0;
}

/* Disarm t wherever it is in the heap. */
void ws_loop_timer_stop(struct ws_loop *loop, struct ws_timer *t)
{
    uint64_t before = loop_first_due(loop);

    if (!ws_timer_armed(t))
        return;
    heap_remove(loop, t);
    loop_timers_moved(loop, before);
}

/* Run every timer that was due when the pass began; returns the count. */
static int loop_run_timers(struct ws_loop *loop)
{
    /* Timers (re)started by a callback get an id at or above first_new
       and wait for the next pass, so that a timer restarting itself with
       timeout 0 cannot keep this loop spinning forever. */
    uint64_t first_new = loop->next_timer_id;
    int calls = 0;

    while (loop->heap_len > 0) {
        struct ws_timer *t = loop->heap[0];
        if (t->due_ms > loop->now_ms || t->start_id >= first_new)
            break;
        /* Re-arm a repeating timer before its callback: stopping or
           restarting it there then simply overrides this. */
        if (t->repeat_ms > 0)
            timer_arm(loop, t, t->repeat_ms);
        else
            heap_remove(loop, t);
        t->cb(loop, t);
        calls++;
    }
    return calls;
}

/* Milliseconds until the first timer is due, 0 if overdue, -1 if none. */
static long loop_next_timer(const struct ws_loop *loop)
{
    uint64_t due;

    if (loop->heap_len == 0)
        return -1;
    due = loop->heap[0]->due_ms;
    if (due <= loop->now_ms)
        return 0;
    if (due - loop->now_ms > INT_MAX)
        return INT_MAX;
    return (long)(due - loop->now_ms);
}

/* Read the self-pipe empty; the flags (the stop flag, or the owner's)
   carry the meaning. */
static void loop_drain_pipe(struct ws_loop *loop, int fd, int events, void *arg)
{
    char tmp[64];

    (void)loop;
    (void)events;
    (void)arg;
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
}

/* Remember each ready fd's watcher generation before any callback runs. */
static void loop_snapshot(struct ws_loop *loop, int n)
{
    for (int i = 0; i < n; i++)
        loop->ready_gen[i] = loop->watchers[loop->ready[i].fd].gen;
}

/* Call the watchers of the first n ready entries; returns the count of
   application callbacks. */
static int loop_dispatch(struct ws_loop *loop, int n)
{
    int calls = 0;

    for (int i = 0; i < n; i++) {
        int fd = loop->ready[i].fd;
        /* Re-read the table each time: a callback may have unwatched this
           fd, closed it and watched a new one under the same number (the
           generation differs), or grown and moved the table. */
        struct ws_watcher *w = &loop->watchers[fd];
        int ev = loop->ready[i].events & w->events;

        if (!w->active || w->gen != loop->ready_gen[i] || ev == 0)
            continue;
        loop->cbs[w->cb](loop, fd, ev, w->arg);
        if (fd != loop->pipe_rd)
            calls++;
    }
    return calls;
}

/* Dispatch the first n ready entries, then the due timers; returns the
   number of application callbacks. */
int ws_loop_dispatch_ready(struct ws_loop *loop, int n)
{
    int calls;

    loop_snapshot(loop, n);
    loop->busy = true;
    calls = loop_dispatch(loop, n);
    calls += loop_run_timers(loop);
    loop->busy = false;
    return calls;
}

/* Poll once, bounded by the next timer, then dispatch. */
int ws_loop_run_once(struct ws_loop *loop, int timeout_ms)
{
    long next;
    int n;

    /* The application polls for an external loop. */
    if (loop->backend == NULL)
        return WS_ESTATE;
    /* A nested poll would overwrite the ready list being dispatched. */
    if (loop->busy)
        return WS_EBUSY;
    ws_loop_update_time(loop);
    next = loop_next_timer(loop);
    if (next >= 0 && (timeout_ms < 0 || next < timeout_ms))
        timeout_ms = (int)next;
    n = ws_backend_poll(loop->backend, timeout_ms, loop->ready, WS_LOOP_BATCH);
    if (n < 0)
        return WS_ESYS;
    ws_loop_update_time(loop);
    return ws_loop_dispatch_ready(loop, n);
}

/* Iterate until the stop flag is set. */
int ws_loop_run(struct ws_loop *loop)
{
    /* Checked before the flag is cleared: a refused nested call must not
       cancel a stop asked for earlier in the same iteration. */
    if (loop->backend == NULL)
        return WS_ESTATE;
    if (loop->busy)
        return WS_EBUSY;
    atomic_store(&loop->stop_flag, 0);
    while (!atomic_load(&loop->stop_flag)) {
        int rc = ws_loop_run_once(loop, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Wake the poll through the self-pipe. */
void ws_loop_wake(struct ws_loop *loop)
{
    /* Async-signal-safe: write() alone; errno is kept for the code the
       signal interrupted. A full pipe (EAGAIN) already guarantees a
       wake-up. */
    int saved = errno;
    ssize_t rc = write(loop->pipe_wr, "", 1);

    (void)rc;
    errno = saved;
}

/* Set the stop flag and wake the poll. */
void ws_loop_stop(struct ws_loop *loop)
{
    /* The flag first: the woken loop must see it (a lock-free atomic
       store, async-signal-safe like the write). */
    atomic_store(&loop->stop_flag, 1);
    ws_loop_wake(loop);
}

bool ws_loop_stopped(const struct ws_loop *loop)
{
    return atomic_load(&loop->stop_flag) != 0;
}

void ws_loop_clear_stop(struct ws_loop *loop)
{
    atomic_store(&loop->stop_flag, 0);
}

/* The number of table entries that may be used with an fd_set. */
static int loop_fdset_limit(const struct ws_loop *loop)
{
    return loop->nwatchers < FD_SETSIZE ? loop->nwatchers : FD_SETSIZE;
}

/* Add every watched fd below FD_SETSIZE to the caller's sets. */
int ws_loop_fdset(struct ws_loop *loop, fd_set *r, fd_set *w, int *max_fd)
{
    int limit = loop_fdset_limit(loop);

    if (loop->backend == NULL)
        return WS_ESTATE;
    for (int fd = 0; fd < limit; fd++) {
        const struct ws_watcher *wt = &loop->watchers[fd];
        if (!wt->active || wt->events == 0)
            continue;
        if (r && (wt->events & WS_IO_READ))
            FD_SET(fd, r);
        if (w && (wt->events & WS_IO_WRITE))
            FD_SET(fd, w);
        if (max_fd && fd > *max_fd)
            *max_fd = fd;
    }
    return 0;
}

/* Refresh the clock and report the wait until the next timer. */
long ws_loop_timeout(struct ws_loop *loop)
{
    ws_loop_update_time(loop);
    return loop_next_timer(loop);
}

/* Dispatch from the caller's select() results, then due timers. */
int ws_loop_process(struct ws_loop *loop, const fd_set *r, const fd_set *w)
{
    int limit = loop_fdset_limit(loop);
    int n = 0;

    if (loop->backend == NULL)
        return WS_ESTATE;
    if (loop->busy)
        return WS_EBUSY;
    ws_loop_update_time(loop);
    /* Collect first and dispatch afterwards, as run_once does, so that the
       generation check covers fds closed and reused by callbacks. limit is
       at most FD_SETSIZE, so ready has room for every fd. */
    for (int fd = 0; fd < limit; fd++) {
        const struct ws_watcher *wt = &loop->watchers[fd];
        int ev = 0;
        if (!wt->active)
            continue;
        if (r && FD_ISSET(fd, r))
            ev |= WS_IO_READ;
        if (w && FD_ISSET(fd, w))
            ev |= WS_IO_WRITE;
        ev &= wt->events;
        if (ev == 0)
            continue;
        loop->ready[n].fd = fd;
        loop->ready[n].events = ev;
        n++;
    }
    return ws_loop_dispatch_ready(loop, n);
}

const char *ws_loop_backend_name(const struct ws_loop *loop)
{
    return loop->backend ? ws_backend_name() : "external";
}

int ws_loop_fd_limit(const struct ws_loop *loop)
{
    return loop->fd_limit;
}

/* Open the non-blocking self-pipe and watch its read end. */
static int loop_open_pipe(struct ws_loop *loop)
{
    int fds[2];
    int rc;

    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return errno == ENOMEM ? WS_ENOMEM : WS_ESYS;
    loop->pipe_rd = fds[0];
    loop->pipe_wr = fds[1];
    rc = ws_loop_watch(loop, fds[0], WS_IO_READ, loop_drain_pipe, NULL);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        loop->pipe_rd = -1;
        loop->pipe_wr = -1;
    }
    return rc;
}

/* Allocate the loop, its backend and its self-pipe. */
int ws_loop_create(struct ws_loop **out)
{
    struct ws_loop *loop;
    int rc;

    *out = NULL;
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return WS_ENOMEM;
    loop->pipe_rd = -1;
    loop->pipe_wr = -1;
    loop->backend = ws_backend_create();
    if (loop->backend == NULL) {
        rc = errno == ENOMEM ? WS_ENOMEM : WS_ESYS;
        goto fail_loop;
    }
    loop->fd_limit = ws_backend_fd_limit(loop->backend);
    rc = loop_open_pipe(loop);
    if (rc < 0)
        goto fail_backend;
    ws_loop_update_time(loop);
    *out = loop;
    return 0;

fail_backend:
    ws_backend_free(loop->backend);
    free(loop->watchers);
    free(loop->cbs);
fail_loop:
    free(loop);
    return rc;
}

/* Close the self-pipe and free everything the loop owns. */
void ws_loop_destroy(struct ws_loop *loop)
{
    if (loop == NULL)
        return;
    /* Armed timers are not touched: their owners may already have freed
       them, and the contract makes stopping them the owners' job. An
       external poller is told the self-pipe is gone before it closes. */
    if (loop->pipe_rd >= 0) {
        ws_loop_unwatch(loop, loop->pipe_rd);
        close(loop->pipe_rd);
    }
    if (loop->pipe_wr >= 0)
        close(loop->pipe_wr);
    if (loop->backend)
        ws_backend_free(loop->backend);
    free(loop->watchers);
    free(loop->cbs);
    free(loop->heap);
    free(loop);
}
