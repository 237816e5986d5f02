/*
 * embed_epoll.c - a server driven from an epoll loop this program owns
 * (ws_echo --embed epoll): the library says which descriptors to watch
 * for what, epoll says which are ready, ws_server_socket_action() handles
 * each, and ws_server_timeout() bounds each wait. Uses only ws/ws.h.
 */
#include "demo/embed_epoll.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BATCH 256

struct ws_embed_epoll {
    struct ws_server *srv;
    int epfd;
    int error; /* an epoll_ctl that failed (-errno), else 0 */
};

/* The library's interest in fd changed: mirror it in epoll. 0 removes;
   otherwise a modification, or an add for an fd epoll does not have. */
static void on_socket(struct ws_server *s, int fd, int events, void *arg)
{
    struct ws_embed_epoll *e = arg;
    struct epoll_event ev = {0};

    (void)s;
    if (events == 0) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    ev.events = ((events & WS_WATCH_READ) ? EPOLLIN : 0) |
                ((events & WS_WATCH_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return;
    if (errno == ENOENT && epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return;
    /* The library cannot be told now (this runs inside its calls): the
       loop stops at its next turn. */
    e->error = -errno;
}

int ws_embed_epoll_attach(struct ws_server *s, struct ws_embed_epoll **out)
{
    struct ws_embed_epoll *e = calloc(1, sizeof(*e));
    int rc;

    *out = NULL;
    if (e == NULL)
        return WS_ENOMEM;
    e->srv = s;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        free(e);
        return WS_ESYS;
    }
    rc = ws_server_socket_callback(s, on_socket, e);
    if (rc == 0 && e->error < 0)
        rc = WS_ESYS;
    if (rc < 0) {
        close(e->epfd);
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* What epoll reported, as the library's bits: an error or a hang-up is
   both, so that whichever the descriptor is watched for finds it. */
static int ready_bits(uint32_t ev)
{
    int bits = 0;

    if (ev & (EPOLLERR | EPOLLHUP))
        return WS_WATCH_READ | WS_WATCH_WRITE;
    if (ev & (EPOLLIN | EPOLLRDHUP))
        bits |= WS_WATCH_READ;
    if (ev & EPOLLOUT)
        bits |= WS_WATCH_WRITE;
    return bits;
}

/* One wait and its dispatch; 0 or a negative WS_E* code. */
static int turn(struct ws_embed_epoll *e)
{
    struct epoll_event evs[BATCH];
    long ms;
    int n;

    ws_server_timeout(e->srv, &ms);
    n = epoll_wait(e->epfd, evs, BATCH, ms > INT_MAX ? INT_MAX : (int)ms);
    if (n < 0)
        return errno == EINTR ? 0 : WS_ESYS;
    /* Nothing ready: only time passed (a timer of the server's is due). */
    if (n == 0)
        return ws_server_socket_action(e->srv, -1, 0) < 0 ? WS_ESYS : 0;
    for (int i = 0; i < n; i++) {
        int rc = ws_server_socket_action(e->srv, evs[i].data.fd,
                                         ready_bits(evs[i].events));

        if (rc < 0)
            return rc;
    }
    return 0;
}

int ws_embed_epoll_run(struct ws_embed_epoll *e, volatile sig_atomic_t *signals)
{
    while (!ws_server_done(e->srv) && *signals < 2) {
        int rc = turn(e);

        if (rc == 0 && e->error < 0)
            rc = WS_ESYS;
        if (rc < 0)
            return rc;
    }
    return 0;
}

void ws_embed_epoll_free(struct ws_embed_epoll *e)
{
    if (e == NULL)
        return;
    close(e->epfd);
    free(e);
}
