/*
 * tcp_client.c - a TCP client for line-based servers such as
 * tcp_echo_server: connect, send each message (or each line of stdin)
 * with a newline, print each reply line, then close with an orderly
 * shutdown(SHUT_WR) and read until the server closes too.
 *   tcp_client [--timeout MS] [--verbose] HOST PORT [MESSAGE...]
 * Exit 0 on success, 1 with one line on stderr on any error, 2 on usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/buf.h"
#include "net/connect.h"
#include "net/neterr.h"
#include "net/sock.h"

#define READ_CHUNK 4096
#define REPLY_MAX (16 * 1024 * 1024)

/* One connection and what its messages need. */
struct client {
    int fd; /* owned */
    int timeout_ms;
    struct ws_buf in; /* owned: received, not yet printed */
    char peer[WS_NET_ADDRSTRLEN];
    char err[256];
};

/* Send all of buf, waiting (bounded) while the socket is full; returns 0
   or -1 with c->err set. */
static int send_all(struct client *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = ws_net_write(c->fd, buf, len);
        int rc = 1;
        if (n == -EAGAIN)
            rc = ws_net_wait(c->fd, 1, c->timeout_ms);
        else if (n < 0)
            rc = (int)n;
        if (rc == 0)
            ws_net_errfmt_timeout(c->err, sizeof(c->err), "send", c->peer,
                                  c->timeout_ms);
        else if (rc < 0)
            ws_net_errfmt(c->err, sizeof(c->err), "send", c->peer, rc);
        if (rc <= 0)
            return -1;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* Read once, waiting up to the time limit; returns the count (0 at end of
   stream) or -1 with c->err set. */
static ssize_t recv_some(struct client *c)
{
    ssize_t n;
    int rc;

    if (ws_buf_reserve(&c->in, READ_CHUNK, REPLY_MAX) < 0) {
        snprintf(c->err, sizeof(c->err), "recv %s: reply too long", c->peer);
        return -1;
    }
    for (;;) {
        n = ws_net_read(c->fd, ws_buf_tail(&c->in), ws_buf_space(&c->in));
        if (n >= 0) {
            ws_buf_commit(&c->in, (size_t)n);
            return n;
        }
        rc = n == -EAGAIN ? ws_net_wait(c->fd, 0, c->timeout_ms) : (int)n;
        if (rc == 0)
            ws_net_errfmt_timeout(c->err, sizeof(c->err), "recv", c->peer,
                                  c->timeout_ms);
        else if (rc < 0)
            ws_net_errfmt(c->err, sizeof(c->err), "recv", c->peer, rc);
        if (rc <= 0)
            return -1;
    }
}

/* The length of the first `lines` lines in the input, or 0 if they have
   not all arrived. */
static size_t lines_ready(const struct client *c, size_t lines)
{
    const char *p = (const char *)ws_buf_head(&c->in);
    size_t len = ws_buf_size(&c->in);

    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n' && --lines == 0)
            return i + 1;
    return 0;
}

/* Send msg plus a newline and print the reply: as many lines as were
   sent. Returns 0 or -1 with c->err set. */
static int exchange(struct client *c, const char *msg, size_t len)
{
    size_t lines = 1, reply;
    ssize_t n;

    for (size_t i = 0; i < len; i++)
        lines += msg[i] == '\n';
    if (send_all(c, msg, len) < 0 || send_all(c, "\n", 1) < 0)
        return -1;
    while ((reply = lines_ready(c, lines)) == 0) {
        n = recv_some(c);
        if (n < 0)
            return -1;
        if (n == 0) {
            snprintf(c->err, sizeof(c->err),
                     "recv %s: connection closed by the server before the "
                     "reply",
                     c->peer);
            return -1;
        }
    }
    fwrite(ws_buf_head(&c->in), 1, reply, stdout);
    fflush(stdout);
    ws_buf_consume(&c->in, reply);
    return 0;
}

/* Send every line of stdin, without its newline, through exchange(). */
static int exchange_stdin(struct client *c)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        rc = exchange(c, line, (size_t)n);
    }
    free(line);
    return rc;
}

/* Orderly close: shut down our half, print whatever else arrives until
   the server closes its half. Returns 0 or -1 with c->err set. */
static int finish(struct client *c)
{
    ssize_t n;
    int rc = ws_net_shutdown(c->fd, SHUT_WR);

    if (rc < 0) {
        ws_net_errfmt(c->err, sizeof(c->err), "shutdown", c->peer, rc);
        return -1;
    }
    while ((n = recv_some(c)) > 0) {
        fwrite(ws_buf_head(&c->in), 1, ws_buf_size(&c->in), stdout);
        ws_buf_clear(&c->in);
    }
    fwrite(ws_buf_head(&c->in), 1, ws_buf_size(&c->in), stdout);
    return n < 0 ? -1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_client [--timeout MS] [--verbose] HOST PORT "
                    "[MESSAGE...]\n"
                    "  with no MESSAGE, each line of stdin is one\n");
    exit(2);
}

/* Parse the options before HOST; returns the index of HOST. */
static int parse_args(int argc, char **argv, int *timeout_ms, bool *verbose)
{
    int i = 1;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            *timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--verbose") == 0)
            *verbose = true;
        else if (strcmp(argv[i], "--") == 0)
            return i + 1;
        else
            usage();
    }
    if (argc - i < 2 || *timeout_ms <= 0)
        usage();
    return i;
}

int main(int argc, char **argv)
{
    struct client c = {.fd = -1, .timeout_ms = 5000};
    struct ws_net_connect_req req = {.socktype = SOCK_STREAM};
    struct ws_net_addr peer;
    bool verbose = false;
    int i = parse_args(argc, argv, &c.timeout_ms, &verbose);
    int rc = 0;

    req.host = argv[i];
    req.port = argv[i + 1];
    req.timeout_ms = c.timeout_ms;
    c.fd = ws_net_connect(&req, &peer, c.err, sizeof(c.err));
    if (c.fd < 0) {
        fprintf(stderr, "tcp_client: %s\n", c.err);
        return 1;
    }
    ws_net_addr_format((struct sockaddr *)&peer.ss, peer.len, c.peer,
                       sizeof(c.peer));
    if (verbose)
        fprintf(stderr, "tcp_client: connected to %s\n", c.peer);
    if (i + 2 == argc)
        rc = exchange_stdin(&c);
    for (int k = i + 2; rc == 0 && k < argc; k++)
        rc = exchange(&c, argv[k], strlen(argv[k]));
    if (rc == 0)
        rc = finish(&c);
    if (rc < 0)
        fprintf(stderr, "tcp_client: %s\n", c.err);
    else if (verbose)
        fprintf(stderr, "tcp_client: closed %s\n", c.peer);
    ws_net_close(c.fd);
    ws_buf_free(&c.in);
    fflush(stdout);
    return rc < 0 ? 1 : 0;
}
