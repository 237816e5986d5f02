/*
 * connect.c - outgoing connections: resolve, create a non-blocking socket,
 * apply the caller's options, connect() and wait for the outcome with
 * poll() under a time limit, trying each resolved address in turn. It must
 * never block beyond the caller's limit, raise SIGPIPE or keep state.
 */
#include "net/connect.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/addr.h"
#include "net/neterr.h"
#include "net/sockopt.h"
#include "net/error.h"

/* CLOCK_MONOTONIC in ms. */
static long long connect_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd with poll(), restarting after EINTR with the time left. */
int ws_net_wait(int fd, int for_write, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = for_write ? POLLOUT : POLLIN};
    long long deadline = connect_now_ms() + timeout_ms;

    for (;;) {
        long long left = deadline - connect_now_ms();
        int rc;

        if (timeout_ms < 0)
            left = -1;
        else if (left < 0)
            left = 0;
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Wait for a connect() in progress on fd and return its outcome: 0,
   -ETIMEDOUT (after timeout_ms) or the connection's -errno. */
static int connect_finish(int fd, int timeout_ms)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    int rc = ws_net_wait(fd, 1, timeout_ms);

    if (rc == 0)
        return -ETIMEDOUT;
    if (rc < 0)
        return rc;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

/* Connect one socket to a; returns the fd, or -errno with err filled. */
static int connect_one(const struct ws_net_addr *a,
                       const struct ws_net_connect_req *req, int socktype,
                       int timeout_ms, char *err, size_t errlen)
{
    char addr[WS_NET_ADDRSTRLEN];
    int fd, rc;

    ws_net_addr_format((const struct sockaddr *)&a->ss, a->len, addr,
                       sizeof(addr));
    fd = socket(a->ss.ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        ws_net_errfmt(err, errlen, "socket", addr, rc);
        return rc;
    }
    rc = req->opts ? ws_net_sockopts_apply(fd, req->opts, err, errlen) : 0;
    if (rc < 0)
        goto fail_quiet;
    rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
    /* Non-blocking: EINPROGRESS (or EINTR, after which the connection
       also goes on) means wait for writability, then read SO_ERROR. */
    if (rc < 0 && errno != EINPROGRESS && errno != EINTR)
        rc = -errno;
    else if (rc < 0)
        rc = connect_finish(fd, timeout_ms);
    if (rc == 0)
        return fd;
    if (rc == -ETIMEDOUT && timeout_ms >= 0)
        ws_net_errfmt_timeout(err, errlen, "connect", addr, timeout_ms);
    else
        ws_net_errfmt(err, errlen, "connect", addr, rc);
fail_quiet:
    ws_net_close(fd);
    return rc;
}

/* Resolve, then connect to each address in turn until one accepts. */
int ws_net_connect(const struct ws_net_connect_req *req,
                   struct ws_net_addr *peer, char *err, size_t errlen)
{
    struct ws_net_addr addrs[WS_NET_MAXADDRS];
    struct ws_net_query q;
    int socktype, timeout_ms, n, fd = -EINVAL;

    if (req == NULL || req->host == NULL || req->port == NULL) {
        ws_net_errfmt(err, errlen, "connect", NULL, -EINVAL);
        return -EINVAL;
    }
    socktype = req->socktype != 0 ? req->socktype : SOCK_STREAM;
    timeout_ms =
        req->timeout_ms != 0 ? req->timeout_ms : WS_NET_CONNECT_TIMEOUT_MS;
    memset(&q, 0, sizeof(q));
    q.host = req->host;
    q.port = req->port;
    q.socktype = socktype;
    n = ws_net_resolve(&q, addrs, WS_NET_MAXADDRS, err, errlen);
    if (n < 0)
        return n;
    /* The last failure is the one reported: with "localhost" that is
       usually 127.0.0.1, tried after ::1. */
    for (int i = 0; i < n; i++) {
        fd = connect_one(&addrs[i], req, socktype, timeout_ms, err, errlen);
        if (fd >= 0) {
            if (peer != NULL)
                *peer = addrs[i];
            if (err != NULL && errlen > 0)
                err[0] = '\0';
            break;
        }
    }
    return fd;
}
