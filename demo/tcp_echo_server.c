/*
 * tcp_echo_server.c - a multi-client TCP echo server on the library's
 * select() loop: every byte a client sends comes back to it, and many
 * clients are served at once. Written on the socket layer (net/) alone.
 *   tcp_echo_server [--host H] [--port P] [--quiet]   (127.0.0.1:7000)
 * SIGINT/SIGTERM stop it: exit 0, every socket closed, everything freed.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/buf.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/neterr.h"
#include "net/sock.h"
#include "ws/ws.h"

#define READ_CHUNK 16384
#define QUEUE_MAX (1024 * 1024)   /* unsent echo; stop reading above it */
#define WRITE_BUDGET (256 * 1024) /* per wake-up, so no client starves */

struct server;

/* One connected client. */
struct client {
    struct server *srv;
    int fd;            /* owned */
    bool eof;          /* peer shut down its half */
    struct ws_buf out; /* owned: read, not yet echoed */
    char peer[WS_NET_ADDRSTRLEN];
    struct client *prev, *next;
};

struct server {
    struct ws_loop *loop;            /* owned */
    struct ws_net_listener listener; /* owned listening sockets */
    struct client *clients;          /* owned list */
    size_t nclients;
    bool quiet;
};

/* The loop the signal handler stops; set once before handlers exist. */
static struct ws_loop *stop_loop;

static void on_signal(int sig)
{
    (void)sig;
    ws_loop_stop(stop_loop); /* async-signal-safe */
}

/* Unwatch, close and free c. */
static void client_close(struct client *c, const char *why)
{
    struct server *s = c->srv;

    ws_loop_unwatch(s->loop, c->fd);
    ws_net_close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nclients--;
    if (!s->quiet)
        printf("%s disconnected (%s), %zu client%s\n", c->peer, why,
               s->nclients, s->nclients == 1 ? "" : "s");
    ws_buf_free(&c->out);
    free(c);
}

/* Write queued echo until the socket is full or the budget is spent;
   returns 0 or -errno. */
static int client_flush(struct client *c)
{
    size_t done = 0;

    while (ws_buf_size(&c->out) > 0 && done < WRITE_BUDGET) {
        ssize_t n =
            ws_net_write(c->fd, ws_buf_head(&c->out), ws_buf_size(&c->out));
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return (int)n;
        ws_buf_consume(&c->out, (size_t)n);
        done += (size_t)n;
    }
    return 0;
}

/* Read once, straight into the output queue: the bytes to echo. Returns
   0 (eof set at end of stream) or -errno. */
static int client_read(struct client *c)
{
    ssize_t n;

    if (ws_buf_reserve(&c->out, READ_CHUNK, QUEUE_MAX + READ_CHUNK) < 0)
        return -ENOMEM;
    n = ws_net_read(c->fd, ws_buf_tail(&c->out), READ_CHUNK);
    if (n == -EAGAIN)
        return 0;
    if (n < 0)
        return (int)n;
    if (n == 0)
        c->eof = true;
    ws_buf_commit(&c->out, (size_t)n);
    return 0;
}

/* Watch for what c needs next: input while its queue has room, output
   while it is not empty. A finished client is closed. */
static void client_update(struct client *c)
{
    size_t queued = ws_buf_size(&c->out);
    int events = 0;

    if (!c->eof && queued < QUEUE_MAX)
        events |= WS_IO_READ;
    if (queued > 0)
        events |= WS_IO_WRITE;
    if (events == 0) {
        client_close(c, "end of stream");
        return;
    }
    ws_buf_shrink(&c->out, READ_CHUNK);
    ws_loop_set_events(c->srv->loop, c->fd, events);
}

/* A client is readable or writable. */
static void on_client(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct client *c = arg;
    char why[160];
    int rc = 0;

    (void)loop;
    (void)fd;
    if (events & WS_IO_READ)
        rc = client_read(c);
    if (rc == 0)
        rc = client_flush(c);
    if (rc < 0) {
        ws_net_errfmt(why, sizeof(why), "echo", c->peer, rc);
        client_close(c, why);
        return;
    }
    client_update(c);
}

/* Take ownership of a freshly accepted fd. */
static void client_add(struct server *s, int fd, const struct ws_net_addr *pa)
{
    struct client *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        ws_net_close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    ws_net_addr_format((const struct sockaddr *)&pa->ss, pa->len, c->peer,
                       sizeof(c->peer));
    rc = ws_loop_watch(s->loop, fd, WS_IO_READ, on_client, c);
    if (rc < 0) {
        /* WS_EFDSET: select() cannot watch this fd; refuse the client. */
        fprintf(stderr, "tcp_echo_server: refusing %s: %s\n", c->peer,
                ws_strerror(rc));
        ws_net_close(fd);
        free(c);
        return;
    }
    c->next = s->clients;
    if (s->clients != NULL)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    if (!s->quiet)
        printf("%s connected, %zu client%s\n", c->peer, s->nclients,
               s->nclients == 1 ? "" : "s");
}

/* The listener accepted a connection. */
static void on_accept(void *arg, int fd, const struct ws_net_addr *peer)
{
    struct server *s = arg;

    client_add(s, fd, peer);
}

/* accept() failed; out of descriptors, the listener already pauses. */
static void on_accept_error(void *arg, int err, int pause_ms)
{
    char line[160];

    (void)arg;
    ws_net_errfmt(line, sizeof(line), "accept", NULL, -err);
    if (pause_ms > 0)
        fprintf(stderr, "tcp_echo_server: %s; pausing %d ms\n", line, pause_ms);
    else
        fprintf(stderr, "tcp_echo_server: %s\n", line);
}

/* Close every client and listener and free the loop. */
static void server_free(struct server *s)
{
    while (s->clients != NULL)
        client_close(s->clients, "server stopping");
    if (s->loop != NULL) {
        ws_net_listener_close(&s->listener);
        ws_loop_destroy(s->loop);
    }
}

/* Create the loop, listen on host:port and watch the listeners. Returns
   0, or -1 after printing the one-line reason. */
static int server_open(struct server *s, const char *host, const char *port)
{
    struct ws_net_listener_config lc = {.host = host,
                                        .port = port,
                                        .backlog = SOMAXCONN,
                                        .on_accept = on_accept,
                                        .on_error = on_accept_error,
                                        .arg = s};
    char err[256], addr[WS_NET_ADDRSTRLEN];
    int rc = ws_loop_create(&s->loop);

    if (rc < 0) {
        fprintf(stderr, "tcp_echo_server: loop: %s\n", ws_strerror(rc));
        return -1;
    }
    if (ws_net_listener_open(&s->listener, s->loop, &lc, err, sizeof(err)) <
        0) {
        fprintf(stderr, "tcp_echo_server: %s\n", err);
        return -1;
    }
    for (int i = 0; i < s->listener.n; i++) {
        ws_net_listener_addr(&s->listener, i, addr, sizeof(addr));
        printf("tcp_echo_server: listening on %s\n", addr);
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_echo_server [--host HOST] [--port PORT] "
                    "[--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct server s = {0};
    const char *host = "127.0.0.1", *port = "7000";
    struct sigaction sa;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--quiet") == 0)
            s.quiet = true;
        else
            usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (server_open(&s, host, port) < 0) {
        server_free(&s);
        return 1;
    }
    stop_loop = s.loop;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = ws_loop_run(s.loop);
    if (rc < 0)
        fprintf(stderr, "tcp_echo_server: loop: %s\n", ws_strerror(rc));
    server_free(&s);
    printf("tcp_echo_server: stopped\n");
    return rc < 0 ? 1 : 0;
}
