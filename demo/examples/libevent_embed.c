/*
 * libevent_embed.c - the server inside a libevent 2 event_base: one event
 * per descriptor the server asks for (on_socket), and one timer event for
 * the deadline it tells (on_deadline), so libevent's loop never asks the
 * server anything. Beside them, the application's own: text typed on
 * stdin goes to every client, and a timer prints "timer N" every 500 ms.
 * Clients get their messages echoed. Usage: libevent_embed [PORT]
 * (default 9001). End of input, Ctrl-C or SIGTERM stops it. Build with
 * pkg-config --cflags --libs ws libevent.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "ws/ws.h"

struct app {
    struct event_base *base;
    struct ws_server *srv;
    struct event *deadline; /* the server's one timer */
    struct event **by_fd;   /* the server's descriptors' events */
    int nfds;
    int rc; /* why the loop was broken, or 0 */
};

/* Leave the loop, keeping the first error. */
static void give_up(struct app *a, int rc)
{
    if (a->rc == 0)
        a->rc = rc;
    event_base_loopbreak(a->base);
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    (void)user_data;
    ws_conn_send(c, type, data, len);
}

/* One of the server's descriptors is ready (libevent is level-triggered,
   as the server wants). */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    int events = ((what & EV_READ) ? WS_WATCH_READ : 0) |
                 ((what & EV_WRITE) ? WS_WATCH_WRITE : 0);
    int rc = ws_server_socket_action(a->srv, fd, events);

    if (rc < 0)
        give_up(a, rc);
}

/* The server's interest in fd changed: replace fd's event (0: none). */
static void on_socket(struct ws_server *srv, int fd, int events, void *arg)
{
    struct app *a = arg;
    short what = EV_PERSIST | ((events & WS_WATCH_READ) ? EV_READ : 0) |
                 ((events & WS_WATCH_WRITE) ? EV_WRITE : 0);

    (void)srv;
    if (fd >= a->nfds) {
        void *p = realloc(a->by_fd, (size_t)(fd + 64) * sizeof(*a->by_fd));

        if (p == NULL) {
            give_up(a, WS_ENOMEM);
            return;
        }
        a->by_fd = p;
        while (a->nfds < fd + 64)
            a->by_fd[a->nfds++] = NULL;
    }
    if (a->by_fd[fd])
        event_free(a->by_fd[fd]);
    a->by_fd[fd] = events ? event_new(a->base, fd, what, on_ready, a) : NULL;
    if (a->by_fd[fd])
        event_add(a->by_fd[fd], NULL);
}

/* The server's deadline moved: hold it in our one timer (-1: none). */
static void on_deadline(struct ws_server *srv, long ms, void *arg)
{
    struct app *a = arg;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    (void)srv;
    if (ms < 0)
        evtimer_del(a->deadline);
    else
        evtimer_add(a->deadline, &tv);
}

/* The deadline came: the server runs its timers (and says the next). */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;

    int rc = ws_server_socket_action(a->srv, -1, 0);

    (void)fd;
    (void)what;
    if (rc < 0)
        give_up(a, rc);
}

/* Stdin is readable: broadcast what came (as text, so it must be UTF-8);
   the server tells on_deadline to write it at once. */
static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    (void)what;
    if (n <= 0)
        event_base_loopbreak(a->base); /* end of input, or an error */
    else if (ws_server_broadcast(a->srv, WS_TEXT, buf, (size_t)n) < 0)
        fprintf(stderr, "libevent_embed: not sent: not UTF-8\n");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    static unsigned long ticks;

    (void)fd;
    (void)what;
    (void)arg;
    printf("timer %lu\n", ++ticks);
    fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(((struct app *)arg)->base);
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_message = on_message};
    struct app a = {.base = event_base_new()};
    struct timeval period = {0, 500000};
    struct event *own[4];
    int rc = a.base ? ws_server_create(&a.srv, &cfg, &cb, NULL) : WS_ENOMEM;

    if (rc < 0) {
        fprintf(stderr, "libevent_embed: %s\n", ws_strerror(rc));
        return 1;
    }
    a.deadline = evtimer_new(a.base, on_timer, &a);
    own[0] =
        event_new(a.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, &a);
    own[1] = event_new(a.base, -1, EV_PERSIST, on_tick, &a);
    own[2] = evsignal_new(a.base, SIGINT, on_signal, &a);
    own[3] = evsignal_new(a.base, SIGTERM, on_signal, &a);
    for (int i = 0; i < 4; i++)
        event_add(own[i], i == 1 ? &period : NULL);
    /* Before listening: the server tells on_socket and on_deadline. */
    rc = ws_server_socket_callback(a.srv, on_socket, &a);
    if (rc == 0)
        rc = ws_server_deadline_callback(a.srv, on_deadline, &a);
    if (rc == 0 && (rc = ws_server_listen(a.srv)) == 0) {
        fprintf(stderr, "libevent_embed: listening on port %d\n",
                ws_server_port(a.srv));
        event_base_dispatch(a.base);
        rc = a.rc;
    }
    if (rc < 0)
        fprintf(stderr, "libevent_embed: %s\n", ws_strerror(rc));
    ws_server_destroy(a.srv); /* frees each event through on_socket */
    for (int i = 0; i < 4; i++)
        event_free(own[i]);
    event_free(a.deadline);
    free(a.by_fd);
    event_base_free(a.base);
    return rc < 0;
}
