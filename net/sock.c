/*
 * sock.c - TCP and UDP socket helpers: bind and listen on every resolved
 * address, accept, and read/write/sendto/recvfrom wrappers that retry
 * EINTR. Every failure returns the negated errno of the failing call at
 * once. It must never raise SIGPIPE, change a signal disposition, block,
 * or know anything about HTTP or WebSocket.
 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/addr.h"
#include "net/neterr.h"
#include "net/sockopt.h"
#include "net/error.h"

/* The current errno, negated, with EWOULDBLOCK folded into EAGAIN. */
static int sock_errno(void)
{
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* Format an IPv6 address as "[addr%scope]:port". */
static void sock_format_v6(const struct sockaddr_in6 *in6, char *out,
                           size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    char scope[IF_NAMESIZE + 16] = "";
    char ifname[IF_NAMESIZE];

    if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    if (in6->sin6_scope_id != 0) {
        if (if_indextoname(in6->sin6_scope_id, ifname) != NULL)
            snprintf(scope, sizeof(scope), "%%%s", ifname);
        else
            snprintf(scope, sizeof(scope), "%%%u",
                     (unsigned)in6->sin6_scope_id);
    }
    snprintf(out, cap, "[%s%s]:%u", host, scope,
             (unsigned)ntohs(in6->sin6_port));
}

/* Format an AF_INET or AF_INET6 address with its port. */
void ws_net_addr_format(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t cap)
{
    char host[INET_ADDRSTRLEN];

    if (out == NULL || cap == 0)
        return;
    if (sa != NULL && sa->sa_family == AF_INET &&
        len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) == NULL)
            snprintf(host, sizeof(host), "?");
        snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6 &&
               len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        sock_format_v6((const void *)sa, out, cap);
    } else {
        snprintf(out, cap, "(address family %d)", sa ? sa->sa_family : -1);
    }
}

/* Read the bound port back with getsockname(). */
int ws_net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int port;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    port = ws_net_sockaddr_port((const struct sockaddr *)&ss);
    return port < 0 ? -EAFNOSUPPORT : port;
}

/* Create, configure and bind one socket for a (and listen when it is a
   stream socket); returns the fd or -errno (err filled). */
static int sock_bind_one(const struct ws_net_addr *a,
                         const struct ws_net_bind_req *req, int backlog,
                         char *err, size_t errlen)
{
    char addr[WS_NET_ADDRSTRLEN];
    const char *op = "socket";
    int one = 1;
    int fd, rc;

    fd = socket(a->ss.ss_family, req->socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        goto fail;
    if (req->opts != NULL) {
        rc = ws_net_sockopts_apply(fd, req->opts, err, errlen);
        if (rc < 0) {
            ws_net_close(fd);
            return rc;
        }
    }
    /* V6ONLY lets "::" and "0.0.0.0" listen on the same port side by
       side, whatever the system default (bindv6only) says. */
    op = "setsockopt IPV6_V6ONLY";
    if (a->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    op = "bind";
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        goto fail;
    op = "listen";
    if (req->socktype == SOCK_STREAM && listen(fd, backlog) < 0)
        goto fail;
    return fd;

fail:
    rc = -errno;
    if (fd >= 0)
        ws_net_close(fd);
    ws_net_addr_format((const struct sockaddr *)&a->ss, a->len, addr,
                       sizeof(addr));
    ws_net_errfmt(err, errlen, op, addr, rc);
    return rc;
}

/* Bind every address of addrs[0..n) into fds; returns the count or the
   first error, with the sockets opened so far closed again. */
static int sock_bind_all(struct ws_net_addr *addrs, int n,
                         const struct ws_net_bind_req *req, int backlog,
                         int *fds, int max, char *err, size_t errlen)
{
    int count = 0, skipped = 0, bound_port = 0;

    for (int i = 0; i < n && count < max; i++) {
        int fd;
        /* Port 0: every further address takes the port the kernel chose
           for the first, so that one number reaches all of them. */
        if (bound_port > 0)
            ws_net_addr_set_port(&addrs[i], bound_port);
        fd = sock_bind_one(&addrs[i], req, backlog, err, errlen);
        /* A family the kernel lacks (no IPv6) is no reason to fail. */
        if (fd == -EAFNOSUPPORT) {
            skipped = fd;
            continue;
        }
        if (fd < 0) {
            while (count > 0)
                ws_net_close(fds[--count]);
            return fd;
        }
        if (count == 0 &&
            ws_net_sockaddr_port((const struct sockaddr *)&addrs[i].ss) == 0) {
            int p = ws_net_local_port(fd);
            bound_port = p > 0 ? p : 0;
        }
        fds[count++] = fd;
    }
    if (count == 0)
        return skipped < 0 ? skipped : WS_ENOTFOUND;
    return count;
}

/* Resolve req's host and bind with an explicit listen() backlog. */
static int sock_bind(const struct ws_net_bind_req *req, int backlog, int *fds,
                     int max, char *err, size_t errlen)
{
    struct ws_net_addr addrs[WS_NET_MAXADDRS];
    struct ws_net_query q;
    int n;

    if (req == NULL || fds == NULL || max < 1)
        return -EINVAL;
    if (req->socktype != SOCK_STREAM && req->socktype != SOCK_DGRAM)
        return -EINVAL;
    memset(&q, 0, sizeof(q));
    q.host = req->host;
    q.port = req->port;
    q.socktype = req->socktype;
    q.passive = 1;
    n = ws_net_resolve(&q, addrs, WS_NET_MAXADDRS, err, errlen);
    if (n < 0)
        return n;
    n = sock_bind_all(addrs, n, req, backlog, fds, max, err, errlen);
    if (n > 0 && err != NULL && errlen > 0)
        err[0] = '\0';
    return n;
}

/* Bind (and listen) on every address req->host resolves to. */
int ws_net_bind(const struct ws_net_bind_req *req, int *fds, int max, char *err,
                size_t errlen)
{
    struct ws_net_bind_req r;

    if (req == NULL)
        return -EINVAL;
    r = *req;
    if (r.socktype == 0)
        r.socktype = SOCK_STREAM;
    return sock_bind(&r, r.backlog > 0 ? r.backlog : SOMAXCONN, fds, max, err,
                     errlen);
}

/* Listen on every address host:port resolves to, up to max. */
int ws_net_tcp_listen(const char *host, const char *port, int backlog, int *fds,
                      int max, char *err, size_t errlen)
{
    struct ws_net_sockopts opts;
    struct ws_net_bind_req req;

    if (port == NULL)
        return -EINVAL;
    memset(&opts, 0, sizeof(opts));
    opts.reuseaddr = WS_NET_ON;
    memset(&req, 0, sizeof(req));
    req.host = host;
    req.port = port;
    req.socktype = SOCK_STREAM;
    req.opts = &opts;
    /* The backlog goes to listen() as given: 0 is a legal, tiny queue. */
    return sock_bind(&req, backlog, fds, max, err, errlen);
}

/* Bind a datagram socket on every address host:port resolves to. */
int ws_net_udp_bind(const char *host, const char *port, int *fds, int max,
                    char *err, size_t errlen)
{
    struct ws_net_bind_req req;

    memset(&req, 0, sizeof(req));
    req.host = host;
    req.port = port;
    req.socktype = SOCK_DGRAM;
    return sock_bind(&req, 0, fds, max, err, errlen);
}

/* Accept one connection as a non-blocking close-on-exec socket. */
int ws_net_accept(int listen_fd, struct ws_net_addr *peer)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    for (;;) {
        len = sizeof(ss);
        fd = accept4(listen_fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno != EINTR)
            return sock_errno();
    }
    if (peer != NULL) {
        memset(peer, 0, sizeof(*peer));
        if (len > sizeof(peer->ss))
            len = sizeof(peer->ss);
        memcpy(&peer->ss, &ss, len);
        peer->len = len;
    }
    return fd;
}

/* read(), retrying EINTR. */
ssize_t ws_net_read(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return sock_errno();
    }
}

ssize_t ws_net_readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt == 1)
        return ws_net_read(fd, iov[0].iov_base, iov[0].iov_len);
    for (;;) {
        ssize_t n = readv(fd, iov, iovcnt);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return sock_errno();
    }
}

/* send() with MSG_NOSIGNAL, retrying EINTR. */
ssize_t ws_net_write(int fd, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return sock_errno();
    }
}

/* sendmsg() with MSG_NOSIGNAL over iov, retrying EINTR. */
ssize_t ws_net_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg;

    if (iovcnt < 0)
        return -EINVAL;
    memset(&msg, 0, sizeof(msg));
    /* sendmsg does not write through msg_iov; the cast only drops const. */
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    for (;;) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return sock_errno();
    }
}

/* sendto() with MSG_NOSIGNAL, retrying EINTR. */
ssize_t ws_net_sendto(int fd, const void *buf, size_t len,
                      const struct ws_net_addr *to)
{
    const struct sockaddr *sa = to ? (const struct sockaddr *)&to->ss : NULL;
    socklen_t salen = to ? to->len : 0;

    for (;;) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, sa, salen);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return sock_errno();
    }
}

/* recvfrom(), retrying EINTR, with the sender stored in from. */
ssize_t ws_net_recvfrom(int fd, void *buf, size_t len, struct ws_net_addr *from)
{
    struct sockaddr_storage ss;
    socklen_t sslen;

    for (;;) {
        ssize_t n;
        sslen = sizeof(ss);
        n = recvfrom(fd, buf, len, 0, (struct sockaddr *)&ss, &sslen);
        if (n >= 0) {
            if (from != NULL) {
                memset(from, 0, sizeof(*from));
                memcpy(&from->ss, &ss, sslen < sizeof(ss) ? sslen : sizeof(ss));
                from->len = sslen < sizeof(ss) ? sslen : sizeof(ss);
            }
            return n;
        }
        if (errno != EINTR)
            return sock_errno();
    }
}

/* shutdown(), reporting -errno. */
int ws_net_shutdown(int fd, int how)
{
    return shutdown(fd, how) < 0 ? -errno : 0;
}

/* Set O_NONBLOCK unless already set. */
int ws_net_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -errno;
    if ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK))
        return -errno;
    return 0;
}

/* Set FD_CLOEXEC unless already set. */
int ws_net_set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags < 0)
        return -errno;
    if ((flags & FD_CLOEXEC) == 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC))
        return -errno;
    return 0;
}

/* Turn TCP_NODELAY on or off. */
int ws_net_set_nodelay(int fd, int on)
{
    int v = on ? 1 : 0;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) < 0)
        return -errno;
    return 0;
}

/* close() without disturbing errno. */
void ws_net_close(int fd)
{
    int saved = errno;

    /* No retry on EINTR: Linux has released the fd by then, and a retry
       could close a descriptor another thread just opened. */
    if (fd >= 0)
        close(fd);
    errno = saved;
}
