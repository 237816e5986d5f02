/*
 * loop_external.c - the loop's external mode: the application's poller
 * (epoll, libevent, libuv) takes the place of the backend. The loop still
 * owns the watcher table and the timers; it tells the application each
 * change of interest and dispatches what the application reports ready.
 * It never polls, and never reads or writes a watched descriptor.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "net/error.h"
#include "net/loop_impl.h"

/* The largest fd + 1 the process could open: the hard descriptor limit,
   as the epoll backend uses (the application may raise the soft one),
   and never less than the table already covers. */
static int external_fd_limit(const struct ws_loop *loop)
{
    struct rlimit rl;
    int limit = INT_MAX;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < (rlim_t)INT_MAX)
        limit = (int)rl.rlim_max;
    if (limit < loop->fd_limit)
        limit = loop->fd_limit;
    return limit;
}

int ws_loop_set_external(struct ws_loop *loop, ws_loop_interest_cb cb,
                         void *arg)
{
    if (cb == NULL)
        return WS_EINVAL;
    if (loop->backend == NULL)
        return WS_ESTATE;
    if (loop->busy)
        return WS_EBUSY;
    /* Freeing the backend drops all of its interest at once (epoll's
       descriptor is closed); nothing of it is needed again. */
    ws_backend_free(loop->backend);
    loop->backend = NULL;
    loop->fd_limit = external_fd_limit(loop);
    loop->interest_cb = cb;
    loop->interest_arg = arg;
    /* The application starts knowing nothing: tell it what is watched
       already (the self-pipe, and whatever the owner watched before). */
    for (int fd = 0; fd < loop->nwatchers; fd++) {
        const struct ws_watcher *w = &loop->watchers[fd];

        if (w->active && w->events != 0)
            cb(loop, fd, w->events, arg);
    }
    return 0;
}

bool ws_loop_is_external(const struct ws_loop *loop)
{
    return loop->interest_cb != NULL;
}

/* Dispatch one reported descriptor (if still watched) and the timers. */
int ws_loop_action(struct ws_loop *loop, int fd, int events)
{
    int n = 0;

    if (fd < -1 || (events & ~WS_IO_BOTH) || (fd < 0 && events != 0))
        return WS_EINVAL;
    if (loop->interest_cb == NULL)
        return WS_ESTATE;
    /* The ready list below is the one a running dispatch reads. */
    if (loop->busy)
        return WS_EBUSY;
    ws_loop_update_time(loop);
    /* Masked by the interest: the application may report more than it
       was asked for (epoll's EPOLLERR, or a batch polled before a change
       of interest), and a watcher must only hear what it asked for. */
    if (fd >= 0 && fd < loop->nwatchers && loop->watchers[fd].active &&
        (events & loop->watchers[fd].events) != 0) {
        loop->ready[0].fd = fd;
        loop->ready[0].events = events & loop->watchers[fd].events;
        n = 1;
    }
    return ws_loop_dispatch_ready(loop, n);
}

void ws_loop_set_timers_hook(struct ws_loop *loop, ws_loop_timers_cb cb,
                             void *arg)
{
    loop->timers_cb = cb;
    loop->timers_arg = arg;
}
