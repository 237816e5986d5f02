/*
 * sock.c - TCP socket helpers: resolve and listen, accept, socket options,
 * and read/write wrappers that retry EINTR. Every failure returns the
 * negated errno of the failing call at once. It must never raise SIGPIPE,
 * change a signal disposition, or know anything about HTTP or WebSocket.
 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ws/ws.h"

/* The current errno, negated, with EWOULDBLOCK folded into EAGAIN. */
static int sock_errno(void)
{
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* The port of an AF_INET or AF_INET6 address, or -1. */
static int sock_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(
            ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return -1;
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
    port = sock_addr_port((const struct sockaddr *)&ss);
    return port < 0 ? -EAFNOSUPPORT : port;
}

/* Write "op addr: cause" into err, if the caller gave a buffer. */
static void sock_err(char *err, size_t errlen, const char *op, const char *addr,
                     const char *cause)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s %s: %s", op, addr, cause);
}

/* Create, configure, bind and listen one socket for ai, on port instead
   of ai's port when port > 0; returns the fd or -errno (err filled). */
static int sock_listen_one(const struct addrinfo *ai, int port, int backlog,
                           char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char addr[WS_NET_ADDRSTRLEN];
    const char *op = "socket";
    int one = 1;
    int fd, rc;

    if (ai->ai_addrlen > sizeof(ss))
        return -EINVAL;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (port > 0 && ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    if (port > 0 && ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0)
        goto fail;
    op = "setsockopt SO_REUSEADDR";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    /* V6ONLY lets "::" and "0.0.0.0" listen on the same port side by
       side, whatever the system default (bindv6only) says. */
    op = "setsockopt IPV6_V6ONLY";
    if (ai->ai_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    op = "bind";
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0)
        goto fail;
    op = "listen";
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;

fail:
    rc = -errno;
    if (fd >= 0)
        ws_net_close(fd);
    ws_net_addr_format((struct sockaddr *)&ss, ai->ai_addrlen, addr,
                       sizeof(addr));
    sock_err(err, errlen, op, addr, strerror(-rc));
    return rc;
}

/* Resolve host:port for listening; returns 0 or WS_ENOTFOUND (err
   filled). */
static int sock_resolve(const char *host, const char *port,
                        struct addrinfo **res, char *err, size_t errlen)
{
    struct addrinfo hints;
    char addr[WS_NET_ADDRSTRLEN + 256];
    const char *cause;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, res);
    if (rc == 0)
        return 0;
    cause = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
    if (host == NULL)
        snprintf(addr, sizeof(addr), "*:%s", port);
    else if (strchr(host, ':') != NULL)
        snprintf(addr, sizeof(addr), "[%s]:%s", host, port);
    else
        snprintf(addr, sizeof(addr), "%s:%s", host, port);
    sock_err(err, errlen, "resolve", addr, cause);
    return WS_ENOTFOUND;
}

/* Listen on every address host:port resolves to, up to max. */
int ws_net_tcp_listen(const char *host, const char *port, int backlog, int *fds,
                      int max, char *err, size_t errlen)
{
    struct addrinfo *res;
    int n = 0;
    int rc, fd;
    int skipped = 0;
    int bound_port = 0;

    if (fds == NULL || max < 1 || port == NULL)
        return -EINVAL;
    if (host != NULL && strcmp(host, "*") == 0)
        host = NULL;
    rc = sock_resolve(host, port, &res, err, errlen);
    if (rc < 0)
        return rc;
    for (const struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        fd = sock_listen_one(ai, bound_port, backlog, err, errlen);
        /* A family the kernel lacks (no IPv6) is no reason to fail. */
        if (fd == -EAFNOSUPPORT) {
            skipped = fd;
            continue;
        }
        if (fd < 0) {
            while (n > 0)
                ws_net_close(fds[--n]);
            freeaddrinfo(res);
            return fd;
        }
        /* Port 0: every further address takes the port the kernel chose
           for the first, so that one number reaches all listeners. */
        if (n == 0 && sock_addr_port(ai->ai_addr) == 0) {
            int p = ws_net_local_port(fd);
            bound_port = p > 0 ? p : 0;
        }
        fds[n++] = fd;
    }
    freeaddrinfo(res);
    if (n == 0)
        return skipped < 0 ? skipped : WS_ENOTFOUND;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return n;
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
