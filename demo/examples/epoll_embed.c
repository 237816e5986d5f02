/*
 * epoll_embed.c - the application owns an epoll loop and the server is
 * one more thing in it, descriptor by descriptor: the server says which
 * of its descriptors to watch for what (on_socket), epoll says which are
 * ready, ws_server_socket_action() handles them. Beside them, the
 * application's own: text typed on stdin goes to every client, and a
 * timerfd prints "timer N" every 500 ms. Clients get their messages
 * echoed. Usage: epoll_embed [PORT]   (default 9001). End of input, Ctrl-C
 * or SIGTERM stops it.
 */
#define _POSIX_C_SOURCE 200809L /* POSIX calls under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ws/ws.h"

#define PERIOD_NS 500000000L

static volatile sig_atomic_t stop;
static int epfd = -1;

/* epoll_wait() is never restarted after a signal handler (EINTR), so
   the loop sees stop at once unless it lands just before the wait; then
   the next timerfd tick catches it (epoll_pwait() closes that gap). */
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    (void)user_data;
    ws_conn_send(c, type, data, len);
}

/* The server's interest in fd changed: mirror it in epoll. 0 removes it;
   a change for an fd epoll does not have yet is an add. */
static void on_socket(struct ws_server *srv, int fd, int events, void *arg)
{
    struct epoll_event ev = {.data.fd = fd};

    (void)srv;
    (void)arg;
    ev.events = ((events & WS_WATCH_READ) ? EPOLLIN : 0) |
                ((events & WS_WATCH_WRITE) ? EPOLLOUT : 0);
    if (events == 0)
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    else if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
             (errno != ENOENT || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0))
        stop = 1; /* no memory for it: give up */
}

/* What epoll reported, in the server's terms: an error or a hang-up is
   both, so that the server finds it whatever it waits for. */
static int server_events(uint32_t ev)
{
    if (ev & (EPOLLERR | EPOLLHUP))
        return WS_WATCH_READ | WS_WATCH_WRITE;
    return ((ev & EPOLLIN) ? WS_WATCH_READ : 0) |
           ((ev & EPOLLOUT) ? WS_WATCH_WRITE : 0);
}

/* Stdin is readable: broadcast what came (as text, so it must be UTF-8). */
static void read_stdin(struct ws_server *srv)
{
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n <= 0 && !(n < 0 && errno == EINTR))
        stop = 1; /* end of input, or an error */
    else if (n > 0 && ws_server_broadcast(srv, WS_TEXT, buf, (size_t)n) < 0)
        fprintf(stderr, "epoll_embed: not sent: not UTF-8\n");
}

/* Our own timer ticked (perhaps more than once since we last looked). */
static void tick(int tfd, unsigned long *ticks)
{
    uint64_t n;

    if (read(tfd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
        printf("timer %lu\n", *ticks += n);
        fflush(stdout);
    }
}

/* Watch one of our own descriptors for reading. */
static int watch_own(int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? WS_ESYS : 0;
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_message = on_message};
    struct itimerspec period = {{0, PERIOD_NS}, {0, PERIOD_NS}};
    struct ws_server *srv = NULL;
    unsigned long ticks = 0;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int rc;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    rc =
        epfd < 0 || tfd < 0 ? WS_ESYS : ws_server_create(&srv, &cfg, &cb, NULL);
    /* 1. Before listening: from now on the server tells on_socket. */
    if (rc == 0)
        rc = ws_server_socket_callback(srv, on_socket, NULL);
    if (rc == 0 && (rc = ws_server_listen(srv)) == 0 &&
        (rc = watch_own(STDIN_FILENO)) == 0 && (rc = watch_own(tfd)) == 0 &&
        timerfd_settime(tfd, 0, &period, NULL) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "epoll_embed: listening on port %d\n",
                ws_server_port(srv));
    }
    while (rc >= 0 && !stop) {
        struct epoll_event evs[64];
        long ms;
        int n;

        /* 2. Sleep no longer than the server allows (-1: no deadline). */
        ws_server_timeout(srv, &ms);
        n = epoll_wait(epfd, evs, 64, (int)ms);
        if (n < 0) {
            rc = errno == EINTR ? 0 : WS_ESYS;
            continue;
        }
        /* 3. Each ready descriptor to its owner, then the server once
           more for the time that passed: its timers that are due, and
           what our own handlers queued (the broadcast from stdin). */
        for (int i = 0; i < n && rc >= 0; i++) {
            int fd = evs[i].data.fd;

            if (fd == STDIN_FILENO)
                read_stdin(srv);
            else if (fd == tfd)
                tick(tfd, &ticks);
            else
                rc = ws_server_socket_action(srv, fd,
                                             server_events(evs[i].events));
        }
        if (rc >= 0)
            rc = ws_server_socket_action(srv, -1, 0);
    }
    if (rc < 0)
        fprintf(stderr, "epoll_embed: %s\n", ws_strerror(rc));
    ws_server_destroy(srv); /* tells on_socket of each removal */
    close(tfd);
    close(epfd);
    return rc < 0;
}
