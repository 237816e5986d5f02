/*
 * raw_echo.c - the benchmark's ceiling: a plain TCP echo server on one
 * epoll loop, no protocol at all. It keeps no per-connection memory except
 * for bytes the peer is slow to take back.
 *   raw_echo [--host H] [--port P]   (default 127.0.0.1:9002)
 */
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

#define BUF_SIZE (256u << 10)
#define READS_PER_WAKE 4

/* Bytes a connection could not write back yet. */
struct pending {
    unsigned char *buf; /* owned; NULL when nothing is pending */
    size_t len, off;
};

struct server {
    int ep, lfd;
    struct pending *pend; /* owned; indexed by fd */
    size_t npend;
    unsigned char *buf; /* owned; the shared read buffer */
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
static void drop(struct server *s, int fd)
{
    free(s->pend[fd].buf);
    s->pend[fd] = (struct pending){0};
    close(fd);
}

/* Accept every waiting connection. */
static void on_accept(struct server *s)
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

/* Keep the unwritten rest of n bytes and wait for writability. */
static int defer(struct server *s, int fd, const unsigned char *p, size_t n)
{
    struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};

    s->pend[fd].buf = malloc(n);
    if (s->pend[fd].buf == NULL)
        return -1;
    memcpy(s->pend[fd].buf, p, n);
    s->pend[fd].len = n;
    s->pend[fd].off = 0;
    return epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &e);
}

/* Write p[0..n) back; the rest goes to the pending buffer. */
static int echo(struct server *s, int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return defer(s, fd, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fd is readable: echo what arrived. */
static void on_read(struct server *s, int fd)
{
    for (int i = 0; i < READS_PER_WAKE && s->pend[fd].buf == NULL; i++) {
        ssize_t n = recv(fd, s->buf, BUF_SIZE, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0 || echo(s, fd, s->buf, (size_t)n) < 0) {
            drop(s, fd);
            return;
        }
        if ((size_t)n < BUF_SIZE)
            return;
    }
}

/* fd is writable: flush its pending bytes, then read again. */
static void on_write(struct server *s, int fd)
{
    struct pending *p = &s->pend[fd];
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};

    while (p->off < p->len) {
        ssize_t w = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);

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
static void serve(struct server *s)
{
    struct epoll_event ev[512];

    while (!stop_flag) {
        int n = epoll_wait(s->ep, ev, 512, -1);

        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;

            if (fd == s->lfd)
                on_accept(s);
            else if (s->pend[fd].buf != NULL)
                on_write(s, fd);
            else
                on_read(s, fd);
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

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "9002";
    struct server s = {.ep = -1};
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
    s.buf = malloc(BUF_SIZE);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    s.lfd = listen_on(host, port);
    e.data.fd = s.lfd;
    if (s.pend == NULL || s.buf == NULL || s.ep < 0 || s.lfd < 0 ||
        epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &e) < 0) {
        fprintf(stderr, "raw_echo: cannot listen on %s:%s\n", host, port);
        return 1;
    }
    printf("raw_echo listening on %s port %s\n", host, port);
    fflush(stdout);
    serve(&s);
    return 0;
}
