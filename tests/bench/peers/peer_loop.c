/*
 * peer_loop.c - the epoll loop of the benchmark's own echo peers: see
 * peer_loop.h. It keeps no per-connection memory except for bytes the
 * peer is slow to take back.
 */
#include "tests/bench/peers/peer_loop.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes a connection could not write back yet. */
struct pending {
    unsigned char *buf; /* owned; NULL when nothing is pending */
    size_t len, off;
};

struct ws_peer {
    int ep, lfd;
    struct pending *pend; /* owned; indexed by fd */
    size_t npend;
    struct ws_peer_ops ops;
};

static volatile sig_atomic_t stop_flag;

/* SIGTERM/SIGINT: leave the loop. */
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Resolve host:port and listen on the first address that works. */
static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai, *p;
    int fd = -1, one = 1;

    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    for (p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, p->ai_addr, p->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* Close fd and drop what it still had to write. */
static void drop(struct ws_peer *s, int fd)
{
    free(s->pend[fd].buf);
    s->pend[fd] = (struct pending){0};
    if (s->ops.drop)
        s->ops.drop(fd);
    close(fd);
}

/* Accept every waiting connection. */
static void on_accept(struct ws_peer *s)
{
    for (;;) {
        int one = 1;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event e = {.events = EPOLLIN};

        if (fd < 0)
            return; /* EAGAIN, or a transient error: wait for the next */
        if ((size_t)fd >= s->npend) {
            close(fd);
            continue;
        }
        e.data.fd = fd;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0)
            close(fd);
    }
}

/* Keep the bytes of iov[0..n) past the first skip, after any already
   kept, and wait for writability. */
static int defer(struct ws_peer *s, int fd, const struct iovec *iov, int n,
                 size_t skip)
{
    struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
    struct pending *p = &s->pend[fd];
    unsigned char *grown;
    size_t total = 0;

    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (skip >= total)
        return 0;
    grown = realloc(p->buf, p->len + total - skip);
    if (grown == NULL)
        return -1;
    p->buf = grown;
    for (int i = 0; i < n; i++) {
        size_t from = skip < iov[i].iov_len ? skip : iov[i].iov_len;

        memcpy(p->buf + p->len, (const char *)iov[i].iov_base + from,
               iov[i].iov_len - from);
        p->len += iov[i].iov_len - from;
        skip -= from;
    }
    return epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &e);
}

/* Write iov[0..n) with the program's write, piece by piece, keeping what
   it does not take. */
static int send_each(struct ws_peer *s, int fd, const struct iovec *iov, int n)
{
    size_t done = 0;

    for (int i = 0; i < n; i++) {
        size_t off = 0;

        while (off < iov[i].iov_len) {
            ssize_t w = s->ops.write(fd, (const char *)iov[i].iov_base + off,
                                     iov[i].iov_len - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return defer(s, fd, iov, n, done);
            if (w < 0)
                return -1;
            off += (size_t)w;
            done += (size_t)w;
        }
    }
    return 0;
}

int ws_peer_send(struct ws_peer *s, int fd, const struct iovec *iov, int n)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)n};
    size_t total = 0;
    ssize_t w;

    if (ws_peer_blocked(s, fd)) /* behind what waits, in order */
        return defer(s, fd, iov, n, 0);
    if (s->ops.write)
        return send_each(s, fd, iov, n);
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    do
        w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    if (w < 0)
        w = 0;
    return (size_t)w < total ? defer(s, fd, iov, n, (size_t)w) : 0;
}

int ws_peer_blocked(const struct ws_peer *s, int fd)
{
    return s->pend[fd].buf != NULL;
}

/* fd is writable: flush its pending bytes, then read again. */
static void on_write(struct ws_peer *s, int fd)
{
    struct pending *p = &s->pend[fd];
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};

    while (p->off < p->len) {
        ssize_t w =
            s->ops.write
                ? s->ops.write(fd, p->buf + p->off, p->len - p->off)
                : send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            drop(s, fd);
            return;
        }
        p->off += (size_t)w;
    }
    free(p->buf);
    *p = (struct pending){0};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &e);
}

/* Run the loop until SIGINT or SIGTERM. */
static void serve(struct ws_peer *s)
{
    struct epoll_event ev[512];

    while (!stop_flag) {
        int n = epoll_wait(s->ep, ev, 512, -1);

        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;

            if (fd == s->lfd)
                on_accept(s);
            else if (ws_peer_blocked(s, fd))
                on_write(s, fd);
            else if (s->ops.read(s, fd) < 0)
                drop(s, fd);
        }
    }
}

/* Size the per-fd table to the descriptor limit, raised as far as allowed. */
static size_t fd_table_size(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur > (1u << 20) ? (1u << 20) : (size_t)rl.rlim_cur;
}

int ws_peer_main(int argc, char **argv, const char *name,
                 ws_peer_read_fn on_read, ws_peer_drop_fn on_drop)
{
    struct ws_peer_ops ops = {.read = on_read, .drop = on_drop};

    return ws_peer_run(argc, argv, name, &ops);
}

int ws_peer_run(int argc, char **argv, const char *name,
                const struct ws_peer_ops *ops)
{
    const char *host = "127.0.0.1", *port = "9002";
    struct ws_peer s = {.ep = -1, .ops = *ops};
    struct epoll_event e = {.events = EPOLLIN};
    struct sigaction sa = {.sa_handler = on_signal};

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = argv[i + 1];
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    s.npend = fd_table_size();
    s.pend = calloc(s.npend, sizeof(*s.pend));
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    s.lfd = listen_on(host, port);
    e.data.fd = s.lfd;
    if (s.pend == NULL || s.ep < 0 || s.lfd < 0 ||
        epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &e) < 0) {
        fprintf(stderr, "%s: cannot listen on %s:%s\n", name, host, port);
        return 1;
    }
    printf("%s listening on %s port %s\n", name, host, port);
    fflush(stdout);
    serve(&s);
    /* Connections still open go with the process; the table does not. */
    free(s.pend);
    close(s.lfd);
    close(s.ep);
    return 0;
}
