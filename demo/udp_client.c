/*
 * udp_client.c - a UDP request/reply client that copes with loss: each
 * message goes out as "SEQ MESSAGE", and a reply counts only if it carries
 * the same sequence number (late duplicates of earlier replies are
 * ignored). No reply within the timeout means send again, waiting twice
 * as long each time (up to 8 times the first wait); after the last retry
 * it says that it gives up and exits 1.
 *   udp_client [--timeout MS] [--retries N] [--verbose] HOST PORT
 *              MESSAGE [MESSAGE...]            (500 ms, 3 retries)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/connect.h"
#include "net/neterr.h"
#include "net/sock.h"

#define DGRAM_MAX 65507 /* the most a UDP/IPv4 datagram carries */
#define BACKOFF_CAP 8   /* the longest wait, in first waits */

struct client {
    int fd;         /* owned; connected to the server */
    int timeout_ms; /* first wait */
    int retries;
    bool verbose;
    unsigned seq; /* of the request in flight */
    char peer[WS_NET_ADDRSTRLEN];
    char last_err[160]; /* the last error a recv reported */
    char buf[DGRAM_MAX + 1];
};

/* CLOCK_MONOTONIC in ms. */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* If buf[0..n) answers request seq, print its message and return 1. */
static int match_reply(struct client *c, size_t n)
{
    char *end;
    unsigned long got;

    c->buf[n] = '\0';
    got = strtoul(c->buf, &end, 10);
    if (end == c->buf || *end != ' ' || got != c->seq) {
        if (c->verbose)
            fprintf(stderr,
                    "udp_client: ignoring a reply that is not for "
                    "#%u (stale or foreign)\n",
                    c->seq);
        return 0;
    }
    printf("%.*s\n", (int)(n - (size_t)(end + 1 - c->buf)), end + 1);
    fflush(stdout);
    return 1;
}

/* Wait up to wait_ms for the reply to the request in flight. Returns 1
   (printed), 0 (timed out) or -1 (fatal, printed). */
static int await_reply(struct client *c, int wait_ms)
{
    long long deadline = now_ms() + wait_ms;
    long long left;

    while ((left = deadline - now_ms()) > 0) {
        int rc = ws_net_wait(c->fd, 0, (int)left);
        ssize_t n;
        if (rc <= 0)
            return rc;
        n = ws_net_recvfrom(c->fd, c->buf, DGRAM_MAX, NULL);
        if (n >= 0 && match_reply(c, (size_t)n))
            return 1;
        /* ECONNREFUSED: an ICMP "port unreachable" for an earlier
           datagram. Nobody listens there now; maybe later, so wait on. */
        if (n < 0 && n != -EAGAIN)
            ws_net_errfmt(c->last_err, sizeof(c->last_err), "recv", c->peer,
                          (int)n);
    }
    return 0;
}

/* Send msg as request c->seq until a reply comes or the retries are
   spent. Returns 0, or -1 after printing why. */
static int request(struct client *c, const char *msg)
{
    long long start = now_ms();
    int wait_ms = c->timeout_ms, attempts = c->retries + 1;
    int len = snprintf(c->buf, sizeof(c->buf), "%u %s", c->seq, msg);

    if (len < 0 || len > DGRAM_MAX) {
        fprintf(stderr,
                "udp_client: message #%u is too long for one "
                "datagram\n",
                c->seq);
        return -1;
    }
    for (int attempt = 1; attempt <= attempts; attempt++) {
        char line[256];
        ssize_t n = ws_net_sendto(c->fd, c->buf, (size_t)len, NULL);
        int rc = 0;
        if (n < 0)
            ws_net_errfmt(c->last_err, sizeof(c->last_err), "send", c->peer,
                          (int)n);
        else
            rc = await_reply(c, wait_ms);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        snprintf(line, sizeof(line),
                 "no reply to #%u within %d ms (attempt %d of %d)", c->seq,
                 wait_ms, attempt, attempts);
        if (attempt < attempts)
            fprintf(stderr, "udp_client: %s, retrying\n", line);
        if (wait_ms <= c->timeout_ms * (BACKOFF_CAP / 2))
            wait_ms *= 2;
        /* The request is rebuilt: await_reply() used the buffer. */
        len = snprintf(c->buf, sizeof(c->buf), "%u %s", c->seq, msg);
    }
    fprintf(stderr,
            "udp_client: giving up: no reply from %s to #%u after %d "
            "attempts in %lld ms%s%s\n",
            c->peer, c->seq, attempts, now_ms() - start,
            c->last_err[0] ? "; last error: " : "", c->last_err);
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: udp_client [--timeout MS] [--retries N] "
                    "[--verbose] HOST PORT MESSAGE [MESSAGE...]\n");
    exit(2);
}

/* Parse the options before HOST; returns the index of HOST. */
static int parse_args(int argc, char **argv, struct client *c)
{
    int i = 1;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            c->timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--retries") == 0 && i + 1 < argc)
            c->retries = atoi(argv[++i]);
        else if (strcmp(argv[i], "--verbose") == 0)
            c->verbose = true;
        else
            usage();
    }
    if (argc - i < 3 || c->timeout_ms <= 0 || c->timeout_ms > 600000 ||
        c->retries < 0 || c->retries > 1000)
        usage();
    return i;
}

int main(int argc, char **argv)
{
    /* Static: the datagram buffer is 64 KiB. */
    static struct client c = {.fd = -1, .timeout_ms = 500, .retries = 3};
    struct ws_net_connect_req req = {.socktype = SOCK_DGRAM};
    struct ws_net_addr peer;
    char err[256];
    int i = parse_args(argc, argv, &c);
    int rc = 0;

    req.host = argv[i];
    req.port = argv[i + 1];
    c.fd = ws_net_connect(&req, &peer, err, sizeof(err));
    if (c.fd < 0) {
        fprintf(stderr, "udp_client: %s\n", err);
        return 1;
    }
    ws_net_addr_format((struct sockaddr *)&peer.ss, peer.len, c.peer,
                       sizeof(c.peer));
    for (int k = i + 2; rc == 0 && k < argc; k++) {
        c.seq++;
        c.last_err[0] = '\0';
        rc = request(&c, argv[k]);
    }
    ws_net_close(c.fd);
    return rc < 0 ? 1 : 0;
}
