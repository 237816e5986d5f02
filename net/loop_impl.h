/*
 * loop_impl.h - the loop's own structures, shared by the loop's two files
 * only: loop.c (watchers, timers, the backend's poll) and loop_external.c
 * (the application's poller in place of the backend). Nothing outside
 * net/loop*.c includes it.
 */
#ifndef WS_NET_LOOP_IMPL_H
#define WS_NET_LOOP_IMPL_H

#include <stdatomic.h>

#include "net/backend.h"
#include "net/loop.h"

#define WS_IO_BOTH (WS_IO_READ | WS_IO_WRITE)

/* Why WS_LOOP_BATCH is enough: the backends are level-triggered and fair
   over successive polls (epoll_wait rotates through a longer ready list;
   select's scan resumes where a cut-short one stopped), so the rest wait
   an iteration and none starves. It is at least FD_SETSIZE because
   ws_loop_process() collects a whole fd_set at once. */
_Static_assert(WS_LOOP_BATCH >= FD_SETSIZE, "ready must hold an fd_set");

/*
 * One per fd number up to the highest watched, so every connection pays
 * for one: 16 bytes on LP64. The callback is an index into the loop's
 * table of distinct callbacks (a program has a handful) rather than an
 * 8-byte pointer that would pad the struct to 24.
 */
struct ws_watcher {
    void *arg;
    unsigned gen;   /* bumped on removal; tells a reused fd from its past */
    uint16_t cb;    /* index into loop->cbs; meaningful while active */
    uint8_t events; /* current interest (WS_IO_*); 0 keeps an idle one */
    bool active;    /* registered with ws_loop_watch */
};

_Static_assert(sizeof(struct ws_watcher) <= sizeof(void *) + 8,
               "a watcher is its arg and 8 bytes");

/* Distinct callbacks a loop can hold: the watcher's index is 16 bits. */
#define LOOP_MAX_CBS (UINT16_MAX + 1)

struct ws_loop {
    struct ws_backend *backend;  /* owned; NULL in external mode */
    struct ws_watcher *watchers; /* owned; indexed by fd */
    int nwatchers;               /* entries in watchers */
    int fd_limit;                /* from the backend, or loop_external.c */
    ws_io_cb *cbs;               /* owned; every callback ever watched */
    int ncbs;
    int cbs_cap;
    struct ws_timer **heap; /* owned array; the timers are not */
    size_t heap_len;
    size_t heap_cap;
    uint64_t next_timer_id; /* start order: FIFO among equal due times */
    uint64_t now_ms;
    int pipe_rd; /* self-pipe, both ends owned */
    int pipe_wr;
    bool busy; /* callbacks running: no nested run_once/process */
    /* Lock-free, so both async-signal-safe and free of data races when
       another thread stops the loop (C11 7.17.5; sig_atomic_t is only
       the former). */
    atomic_int stop_flag;
    _Static_assert(ATOMIC_INT_LOCK_FREE == 2, "stop_flag must be lock-free");
    /* External mode (loop_external.c): set, it takes every interest
       change in place of the backend. */
    ws_loop_interest_cb interest_cb;
    void *interest_arg;
    ws_loop_timers_cb timers_cb; /* told when the first due time moves */
    void *timers_arg;
    /* One poll's results, and each one's watcher gen at poll time. Sized
       by the batch, not by the fds: a table per fd would cost every idle
       connection 12 bytes for what one poll uses. */
    struct ws_backend_event ready[WS_LOOP_BATCH];
    unsigned ready_gen[WS_LOOP_BATCH];
};

/* loop.c: dispatch the first n entries of loop->ready, then the due
   timers; the number of application callbacks. */
int ws_loop_dispatch_ready(struct ws_loop *loop, int n);

#endif
