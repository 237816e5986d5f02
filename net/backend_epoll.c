/*
 * backend_epoll.c - the Linux epoll polling backend, level-triggered like
 * select so the loop sees the same readiness. It keeps each fd's interest
 * mask so that add and del can pick EPOLL_CTL_ADD, MOD or DEL, and keeps
 * no state about callbacks: the loop owns the watcher table.
 */
#include "net/backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net/loop.h"

/* Ready descriptors taken per epoll_wait(); more wait for the next call,
   and level triggering reports them again then. */
#define EPOLL_BATCH 256

struct ws_backend {
    int epfd;             /* owned, close-on-exec */
    int fd_limit;         /* hard RLIMIT_NOFILE at create, at most INT_MAX */
    unsigned char *masks; /* owned; WS_IO_* interest indexed by fd */
    int nmasks;           /* entries in masks */
    struct epoll_event events[EPOLL_BATCH];
};

/* The largest fd + 1 this process could ever open: the hard limit, since
   the soft one may be raised after the loop is created. */
static int epoll_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
        rl.rlim_max > INT_MAX)
        return INT_MAX;
    return (int)rl.rlim_max;
}

/* Allocate a backend around a new epoll instance. */
struct ws_backend *ws_backend_create(void)
{
    struct ws_backend *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        int saved = errno;
        free(b);
        errno = saved;
        return NULL;
    }
    b->fd_limit = epoll_fd_limit();
    return b;
}

void ws_backend_free(struct ws_backend *b)
{
    if (b == NULL)
        return;
    close(b->epfd);
    free(b->masks);
    free(b);
}

int ws_backend_fd_limit(const struct ws_backend *b)
{
    return b->fd_limit;
}

/* Grow the mask table so that fd fits, by a quarter or to fd + 1 as the
   loop grows its watcher table; new entries have no interest. */
static int epoll_grow(struct ws_backend *b, int fd)
{
    size_t old = (size_t)b->nmasks;
    size_t n = old + old / 4;
    unsigned char *p;

    if (n < 64)
        n = 64;
    if (n <= (size_t)fd)
        n = (size_t)fd + 1;
    /* The caller checked fd < fd_limit <= INT_MAX. */
    if (n > (size_t)b->fd_limit)
        n = (size_t)b->fd_limit;
    p = realloc(b->masks, n);
    if (p == NULL)
        return -ENOMEM;
    memset(p + old, 0, n - old);
    b->masks = p;
    b->nmasks = (int)n;
    return 0;
}

/* Turn a WS_IO_* mask into epoll's; EPOLLERR and EPOLLHUP are implied. */
static uint32_t epoll_bits(int mask)
{
    uint32_t bits = 0;

    if (mask & WS_IO_READ)
        bits |= EPOLLIN | EPOLLRDHUP;
    if (mask & WS_IO_WRITE)
        bits |= EPOLLOUT;
    return bits;
}

/*
 * Tell the kernel that fd's interest moved from old to new (both nonzero).
 * The kernel drops an fd from the set when its file is closed, so it may
 * disagree with our mask: MOD then fails with ENOENT and ADD with EEXIST,
 * and the other operation brings it back in line.
 */
static int epoll_change(struct ws_backend *b, int fd, int old, int new)
{
    struct epoll_event ev;
    int op = old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    memset(&ev, 0, sizeof(ev));
    ev.events = epoll_bits(new);
    ev.data.fd = fd;
    if (epoll_ctl(b->epfd, op, fd, &ev) == 0)
        return 0;
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else
        return -errno;
    return epoll_ctl(b->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

/* Add events to fd's interest with ADD or MOD. */
int ws_backend_add(struct ws_backend *b, int fd, int events)
{
    int old;
    int rc;

    if (fd < 0 || fd >= b->fd_limit)
        return -EINVAL;
    if (fd >= b->nmasks) {
        rc = epoll_grow(b, fd);
        if (rc < 0)
            return rc;
    }
    old = b->masks[fd];
    if ((old | events) == old)
        return 0;
    rc = epoll_change(b, fd, old, old | events);
    if (rc < 0)
        return rc;
    b->masks[fd] = (unsigned char)(old | events);
    return 0;
}

/* Remove events from fd's interest with MOD, or DEL once none is left. */
int ws_backend_del(struct ws_backend *b, int fd, int events)
{
    struct epoll_event ev;
    int old;
    int new;
    int rc = 0;

    if (fd < 0)
        return -EINVAL;
    if (fd >= b->nmasks)
        return 0;
    old = b->masks[fd];
    new = old & ~events;
    if (new == old)
        return 0;
    if (new == 0) {
        /* An fd closed before it is unwatched has already left the set:
           EBADF if the number is free, ENOENT if it was reused. */
        memset(&ev, 0, sizeof(ev));
        if (epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT &&
            errno != EBADF)
            rc = -errno;
    } else {
        rc = epoll_change(b, fd, old, new);
        /* A closed fd watches nothing, so less interest is already true;
           the next add re-registers it if the number comes back. */
        if (rc == -EBADF)
            rc = 0;
    }
    if (rc < 0)
        return rc;
    b->masks[fd] = (unsigned char)new;
    return 0;
}

/* Map one epoll result to WS_IO_* bits within fd's current interest. */
static int epoll_ready(const struct ws_backend *b, int fd, uint32_t bits)
{
    int ev = 0;

    if (fd < 0 || fd >= b->nmasks)
        return 0;
    if (bits & (EPOLLIN | EPOLLRDHUP))
        ev |= WS_IO_READ;
    if (bits & EPOLLOUT)
        ev |= WS_IO_WRITE;
    /* An error or hang-up is reported to every direction the owner waits
       on, so its next read or write sees it. */
    if (bits & (EPOLLERR | EPOLLHUP))
        ev |= WS_IO_READ | WS_IO_WRITE;
    return ev & b->masks[fd];
}

/* Wait with epoll_wait() and report at most max ready fds. */
int ws_backend_poll(struct ws_backend *b, int timeout_ms,
                    struct ws_backend_event *out, int max)
{
    int n;
    int count = 0;

    if (max < 1)
        return -EINVAL;
    n = epoll_wait(b->epfd, b->events, max < EPOLL_BATCH ? max : EPOLL_BATCH,
                   timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        int fd = b->events[i].data.fd;
        int ev = epoll_ready(b, fd, b->events[i].events);
        if (ev == 0)
            continue;
        out[count].fd = fd;
        out[count].events = ev;
        count++;
    }
    return count;
}

const char *ws_backend_name(void)
{
    return "epoll";
}
