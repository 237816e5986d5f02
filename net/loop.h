/*
 * loop.h - the event loop: readiness watchers per descriptor, timers, and
 * run/stop. It knows nothing about HTTP or WebSocket. All calls but
 * ws_loop_stop() and ws_loop_wake() belong to the loop's thread.
 */
#ifndef WS_NET_LOOP_H
#define WS_NET_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

enum { WS_IO_READ = 1, WS_IO_WRITE = 2 };

/* The most ready descriptors one iteration dispatches; the backend may
   take fewer per poll. More wait for the next iteration: readiness is
   level-triggered, and successive polls reach every ready descriptor. */
#define WS_LOOP_BATCH (FD_SETSIZE > 1024 ? FD_SETSIZE : 1024)

struct ws_loop;

/* Called when fd is ready; events is a mask of WS_IO_READ/WS_IO_WRITE. */
typedef void (*ws_io_cb)(struct ws_loop *loop, int fd, int events, void *arg);

struct ws_timer;
/* Called when t is due; t's owner is found from t (WS_TIMER_OWNER). */
typedef void (*ws_timer_cb)(struct ws_loop *loop, struct ws_timer *t);

/*
 * A timer, owned by the caller, embedded in a larger struct and
 * zero-filled before first use. The loop only keeps a pointer to it while
 * it is armed, so the owner must stop it before freeing it. No argument
 * pointer: a server holds one timer per connection, so the callback finds
 * its owner from where the timer is embedded (as the Linux kernel's
 * timer_list does).
 */
struct ws_timer {
    uint64_t due_ms;   /* loop clock, set by ws_loop_timer_start */
    uint64_t start_id; /* start order, FIFO among equal due_ms; internal */
    ws_timer_cb cb;
    uint32_t repeat_ms; /* 0: one-shot */
    uint32_t heap_slot; /* 1 + position in the loop's heap, 0: not armed */
};

/* The struct of the given type whose member t is. */
#define WS_TIMER_OWNER(t, type, member)                                        \
    ((type *)(void *)((char *)(t)-offsetof(type, member)))

/* Whether t is armed. */
static inline bool ws_timer_armed(const struct ws_timer *t)
{
    return t->heap_slot != 0;
}

/*
 * Create a loop with the backend the build selected. Opens a self-pipe so
 * that ws_loop_stop() can wake it. Returns 0 and sets *out, or WS_ENOMEM,
 * WS_ESYS, WS_EFDSET (the self-pipe got an fd the backend cannot watch).
 */
int ws_loop_create(struct ws_loop **out);

/* Free the loop (not the watched descriptors, which the caller owns). */
void ws_loop_destroy(struct ws_loop *loop);

/* The backend's name ("select", "epoll"), or "external" once
   ws_loop_set_external() took its place. */
const char *ws_loop_backend_name(const struct ws_loop *loop);

/* One more than the largest descriptor the backend can watch (FD_SETSIZE
   for select). */
int ws_loop_fd_limit(const struct ws_loop *loop);

/*
 * Set the events watched on fd to events (0 removes the watcher) with cb
 * and arg. Returns 0, WS_EFDSET for fd >= the backend's limit (FD_SETSIZE
 * for select: such an fd must never reach an fd_set), WS_EINVAL for
 * fd < 0, unknown event bits or a NULL cb with events, WS_ENOMEM (also
 * once 65536 distinct callbacks have been watched: the loop keeps each
 * distinct cb once, for the life of the loop), or WS_ESYS if the backend
 * refused fd. On error the watcher does not change.
 */
int ws_loop_watch(struct ws_loop *loop, int fd, int events, ws_io_cb cb,
                  void *arg);

/* Change only the event mask of an existing watcher (0 keeps the watcher
   registered but idle). Returns 0, WS_EINVAL if fd is not watched or
   events has unknown bits, WS_ESYS if the backend refused. */
int ws_loop_set_events(struct ws_loop *loop, int fd, int events);

/* Remove fd's watcher, if any. Safe from inside any callback: a removed
   watcher is never called again, even later in the same iteration. */
void ws_loop_unwatch(struct ws_loop *loop, int fd);

/* The loop's monotonic clock in ms, updated once per iteration. */
uint64_t ws_loop_now(const struct ws_loop *loop);

/* Refresh the clock from CLOCK_MONOTONIC. */
void ws_loop_update_time(struct ws_loop *loop);

/*
 * Arm t to fire after timeout_ms, then every repeat_ms (0: once). An armed
 * timer is re-armed. Returns 0, WS_EINVAL (cb NULL) or WS_ENOMEM (never
 * for an armed timer). A timer may be started or stopped from inside its
 * own callback; a repeating timer is already re-armed when its callback
 * runs, and a stop or start there overrides that. Timers with the same due
 * time fire in the order they were started.
 */
int ws_loop_timer_start(struct ws_loop *loop, struct ws_timer *t,
                        uint64_t timeout_ms, uint32_t repeat_ms,
                        ws_timer_cb cb);

/* Disarm t; harmless when it is not armed. */
void ws_loop_timer_stop(struct ws_loop *loop, struct ws_timer *t);

/*
 * Wait up to timeout_ms (-1 forever, capped by the next timer) and
 * dispatch ready descriptors (at most WS_LOOP_BATCH) and due timers.
 * Returns the number of callbacks made, WS_ESYS if the backend failed, or
 * WS_EBUSY when called from inside one of this loop's callbacks.
 */
int ws_loop_run_once(struct ws_loop *loop, int timeout_ms);

/* Run until ws_loop_stop(). Returns 0, WS_ESYS, or WS_EBUSY (called from
   a callback). */
int ws_loop_run(struct ws_loop *loop);

/* Make ws_loop_run() return. Async-signal-safe: sets a flag and writes one
   byte to the self-pipe. */
void ws_loop_stop(struct ws_loop *loop);

/* Wake a blocked poll without asking the loop to stop, so that the loop's
   owner looks at a flag of its own (a shutdown request). Async-signal-safe
   and callable from any thread: it writes one byte to the self-pipe. */
void ws_loop_wake(struct ws_loop *loop);

/* True once ws_loop_stop() was called (cleared when ws_loop_run starts). */
bool ws_loop_stopped(const struct ws_loop *loop);

/* Forget a stop request, for callers that drive ws_loop_run_once(). */
void ws_loop_clear_stop(struct ws_loop *loop);

/*
 * Embedding: add the watched descriptors to the caller's sets (bits are
 * only added) and raise *max_fd. Returns 0.
 */
int ws_loop_fdset(struct ws_loop *loop, fd_set *r, fd_set *w, int *max_fd);

/* Milliseconds until the next timer is due (0 if overdue), -1 if none. */
long ws_loop_timeout(struct ws_loop *loop);

/* Dispatch the descriptors marked in r/w (either may be NULL) and due
   timers. Returns the number of callbacks made, or WS_EBUSY when called
   from inside one of this loop's callbacks. */
int ws_loop_process(struct ws_loop *loop, const fd_set *r, const fd_set *w);

/* The first armed timer's due time in *due_ms (loop clock), or false (and
   UINT64_MAX) when no timer is armed. */
bool ws_loop_first_due(const struct ws_loop *loop, uint64_t *due_ms);

/*
 * External mode (loop_external.c): the caller's poller instead of the
 * backend, for embedding in an epoll, libevent or libuv loop.
 */

/* fd's interest is now events (WS_IO_*; 0: none, forget fd). */
typedef void (*ws_loop_interest_cb)(struct ws_loop *loop, int fd, int events,
                                    void *arg);

/*
 * Switch the loop to external mode for good: the backend is freed, and
 * from now on cb is told each change of a descriptor's interest instead
 * (with the new full mask; never a call for an unchanged mask, and 0 from
 * ws_loop_unwatch() and from a mask set to 0, so before the owner closes
 * the descriptor). The descriptors watched now (the self-pipe at least)
 * are told before this returns, in fd order. cb may be called from any
 * loop call that changes interest, callbacks included, and must not call
 * into the loop. ws_loop_fd_limit() becomes the process's hard descriptor
 * limit. ws_loop_run(), ws_loop_run_once(), ws_loop_fdset() and
 * ws_loop_process() return WS_ESTATE from now on. Returns 0, WS_EINVAL
 * (cb NULL), WS_ESTATE (external already) or WS_EBUSY (from a callback).
 */
int ws_loop_set_external(struct ws_loop *loop, ws_loop_interest_cb cb,
                         void *arg);

/* True once ws_loop_set_external() succeeded. */
bool ws_loop_is_external(const struct ws_loop *loop);

/*
 * External mode: fd became ready for events (WS_IO_*, level-triggered),
 * or fd is -1 (events 0) when only time has passed. Refreshes the clock,
 * calls fd's watcher with events & its interest (nothing for an fd not
 * watched: a report that crossed an unwatch is harmless), then every
 * timer that is due. Returns the number of callbacks made, WS_EINVAL (fd
 * below -1, unknown event bits, events with fd -1), WS_ESTATE (not
 * external) or WS_EBUSY (from one of this loop's callbacks).
 */
int ws_loop_action(struct ws_loop *loop, int fd, int events);

/* Called after a ws_loop_timer_start() or ws_loop_timer_stop() moved the
   first due time (also from callbacks); not when timers fire, which only
   ws_loop_action() and the other dispatchers do: their caller looks at
   ws_loop_first_due() after them. */
typedef void (*ws_loop_timers_cb)(struct ws_loop *loop, void *arg);

/* Set (cb NULL: clear) the timers hook; any mode. */
void ws_loop_set_timers_hook(struct ws_loop *loop, ws_loop_timers_cb cb,
                             void *arg);

#endif
