/*
 * transport_plain.c - the plain TCP socket behind the transport interface:
 * each call is one system call through net/sock.c (EINTR retried, no
 * SIGPIPE). It keeps nothing of its own, so pending() is always 0 and the
 * events it watches are those the owner wants.
 */
#include "net/transport.h"

#include <sys/socket.h>

#include "net/error.h"
#include "net/sock.h"

static int plain_open(struct ws_transport *t, int fd, void *ctx)
{
    (void)ctx;
    t->fd = fd;
    return 0;
}

static ssize_t plain_readv(struct ws_transport *t, const struct iovec *iov,
                           int n)
{
    return ws_net_readv(t->fd, iov, n);
}

static ssize_t plain_writev(struct ws_transport *t, const struct iovec *iov,
                            int n)
{
    if (n == 1)
        return ws_net_write(t->fd, iov[0].iov_base, iov[0].iov_len);
    return ws_net_writev(t->fd, iov, n);
}

static int plain_shutdown(struct ws_transport *t)
{
    return ws_net_shutdown(t->fd, SHUT_WR);
}

static size_t plain_pending(const struct ws_transport *t)
{
    (void)t;
    return 0;
}

static int plain_events(const struct ws_transport *t, int want)
{
    (void)t;
    return want;
}

static int plain_ready(const struct ws_transport *t, int events)
{
    (void)t;
    return events;
}

static void plain_why(const struct ws_transport *t, char *buf, size_t n)
{
    (void)t;
    if (n > 0)
        buf[0] = '\0';
}

static void plain_close(struct ws_transport *t)
{
    if (t->fd >= 0)
        ws_net_close(t->fd);
    t->fd = -1;
}

const struct ws_transport_ops ws_transport_plain = {
    .name = "plain",
    .open = plain_open,
    .readv = plain_readv,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .pending = plain_pending,
    .events = plain_events,
    .ready = plain_ready,
    .why = plain_why,
    .close = plain_close,
};
