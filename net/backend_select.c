/*
 * backend_select.c - the select() polling backend: master read and write
 * fd_sets, copied before each call. It must never put an fd at or above
 * FD_SETSIZE into an fd_set (that writes past the set), and keeps no state
 * about callbacks: the loop owns the watcher table.
 */
#include "net/backend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/time.h>

#include "net/loop.h"

struct ws_backend {
    fd_set rset; /* master read interest */
    fd_set wset; /* master write interest */
    int max_fd;  /* highest fd in either set, -1 when both are empty */
    int resume;  /* first fd of the next scan: the ready fd a full batch
                    left out, or 0 */
};

/* Allocate a backend with empty master sets. */
struct ws_backend *ws_backend_create(void)
{
    struct ws_backend *b = malloc(sizeof(*b));

    if (b == NULL)
        return NULL;
    FD_ZERO(&b->rset);
    FD_ZERO(&b->wset);
    b->max_fd = -1;
    b->resume = 0;
    return b;
}

void ws_backend_free(struct ws_backend *b)
{
    free(b);
}

int ws_backend_fd_limit(const struct ws_backend *b)
{
    (void)b;
    return FD_SETSIZE;
}

/* Set fd's bits in the master sets, refusing fds beyond FD_SETSIZE. */
int ws_backend_add(struct ws_backend *b, int fd, int events)
{
    if (fd < 0 || fd >= FD_SETSIZE)
        return -EINVAL;
    if (events & WS_IO_READ)
        FD_SET(fd, &b->rset);
    if (events & WS_IO_WRITE)
        FD_SET(fd, &b->wset);
    if (events && fd > b->max_fd)
        b->max_fd = fd;
    return 0;
}

/* Clear fd's bits and lower max_fd past fds with no interest. */
int ws_backend_del(struct ws_backend *b, int fd, int events)
{
    if (fd < 0 || fd >= FD_SETSIZE)
        return -EINVAL;
    if (events & WS_IO_READ)
        FD_CLR(fd, &b->rset);
    if (events & WS_IO_WRITE)
        FD_CLR(fd, &b->wset);
    while (b->max_fd >= 0 && !FD_ISSET(b->max_fd, &b->rset) &&
           !FD_ISSET(b->max_fd, &b->wset))
        b->max_fd--;
    return 0;
}

/* The WS_IO_* bits set for fd in the result sets. */
static int select_ready(int fd, const fd_set *r, const fd_set *w)
{
    return (FD_ISSET(fd, r) ? WS_IO_READ : 0) |
           (FD_ISSET(fd, w) ? WS_IO_WRITE : 0);
}

/*
 * Wait with select() on copies of the master sets and report at most max
 * ready fds, in ascending order from b->resume, wrapping around. A scan
 * that fills out remembers the first ready fd it left out and the next
 * one starts there: select is level-triggered, so that fd is reported
 * again, and low fds that are always ready cannot starve high ones.
 */
int ws_backend_poll(struct ws_backend *b, int timeout_ms,
                    struct ws_backend_event *out, int max)
{
    fd_set r = b->rset;
    fd_set w = b->wset;
    struct timeval tv;
    struct timeval *tvp = NULL;
    int span = b->max_fd + 1;
    int start = b->resume < span ? b->resume : 0;
    int n;
    int count = 0;

    if (max < 1)
        return -EINVAL;
    if (timeout_ms >= 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        tvp = &tv;
    }
    n = select(span, &r, &w, NULL, tvp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    b->resume = 0;
    /* n counts bits, so an fd ready both ways counts twice: count < n only
       ends the scan early once every ready fd is out. */
    for (int k = 0; k < span && count < n; k++) {
        int fd = start + k < span ? start + k : start + k - span;
        int ev = select_ready(fd, &r, &w);
        if (ev == 0)
            continue;
        if (count == max) {
            b->resume = fd;
            break;
        }
        out[count].fd = fd;
        out[count].events = ev;
        count++;
    }
    return count;
}

const char *ws_backend_name(void)
{
    return "select";
}
