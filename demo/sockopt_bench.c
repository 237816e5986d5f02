/*
 * sockopt_bench.c - a loopback experiment that shows what socket options
 * do: for each option set it measures bulk throughput and the round-trip
 * time of small write-write-read requests (the pattern where Nagle's
 * algorithm meets delayed ACKs), then prints one table. Both ends run in
 * this process, driven by poll(); the run is bounded by --seconds.
 *   sockopt_bench [--host H] [--seconds S]          (127.0.0.1, 3 s)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/connect.h"
#include "net/neterr.h"
#include "net/sock.h"
#include "net/sockopt.h"

#define CHUNK (64 * 1024)
#define MAX_SAMPLES 100000
#define HEAD_BYTES 8 /* a request is a header write, then a body write */
#define BODY_BYTES 56
#define GRACE_US 100000 /* for the last round trip of a row */

/* One option set of the table. */
struct row {
    const char *label;
    int bufsize; /* SO_SNDBUF and SO_RCVBUF on both ends; 0: kernel's */
    int nodelay; /* WS_NET_ON or 0 */
};

static const struct row rows[] = {
    {"defaults", 0, 0},
    {"TCP_NODELAY", 0, WS_NET_ON},
    {"buffers 4 KiB", 4096, 0},
    {"buffers 64 KiB", 65536, 0},
    {"buffers 1 MiB", 1 << 20, 0},
    {"4 KiB + NODELAY", 4096, WS_NET_ON},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* One measured row. */
struct result {
    int sndbuf, rcvbuf; /* read back: client send, server receive */
    int nodelay;
    double mbps;
    long long p50_us, p99_us;
    int rounds;
};

/* A connected pair on loopback, both ends non-blocking. */
struct pair {
    int lfd, cfd, sfd;
};

/* CLOCK_MONOTONIC in µs. */
static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds left until deadline (µs), at least 0. */
static int ms_left(long long deadline)
{
    long long left = (deadline - now_us()) / 1000;

    return left > 0 ? (int)left : 0;
}

/* Connect a client to the listener and accept it, both with o applied.
   Returns 0, or -1 with err set. */
static int pair_connect(struct pair *p, const char *host,
                        const struct ws_net_sockopts *o, char *err,
                        size_t errlen)
{
    struct ws_net_connect_req req = {.host = host, .timeout_ms = 2000};
    char port[16];

    snprintf(port, sizeof(port), "%d", ws_net_local_port(p->lfd));
    req.port = port;
    req.opts = o;
    p->cfd = ws_net_connect(&req, NULL, err, errlen);
    if (p->cfd < 0)
        return -1;
    if (ws_net_wait(p->lfd, 0, 2000) <= 0 ||
        (p->sfd = ws_net_accept(p->lfd, NULL)) < 0) {
        snprintf(err, errlen, "accept %s: no connection arrived", host);
        return -1;
    }
    return ws_net_sockopts_apply(p->sfd, o, err, errlen) < 0 ? -1 : 0;
}

static void pair_close(struct pair *p)
{
    ws_net_close(p->cfd);
    ws_net_close(p->sfd);
    p->cfd = p->sfd = -1;
}

/* Send from cfd to sfd as fast as both go until deadline; MB/s. */
static double run_bulk(const struct pair *p, long long deadline)
{
    static char buf[CHUNK];
    long long start = now_us(), total = 0;

    while (now_us() < deadline) {
        struct pollfd pf[2] = {{.fd = p->cfd, .events = POLLOUT},
                               {.fd = p->sfd, .events = POLLIN}};
        if (poll(pf, 2, ms_left(deadline)) <= 0)
            continue;
        if (pf[0].revents & POLLOUT)
            ws_net_write(p->cfd, buf, sizeof(buf));
        if (pf[1].revents & POLLIN) {
            ssize_t n = ws_net_read(p->sfd, buf, sizeof(buf));
            total += n > 0 ? n : 0;
        }
    }
    return (double)total / (double)(now_us() - start);
}

/* Read exactly len bytes from fd before deadline; 0 or -1. */
static int read_full(int fd, char *buf, size_t len, long long deadline)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = ws_net_read(fd, buf + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || n != -EAGAIN ||
                 ws_net_wait(fd, 0, ms_left(deadline)) <= 0)
            return -1;
    }
    return 0;
}

/* One request as two writes, the server's one-byte answer; the round
   trip in µs, or -1 when the deadline came first. */
static long long one_round(const struct pair *p, long long deadline)
{
    char req[HEAD_BYTES + BODY_BYTES], ack = 'k';
    long long t0 = now_us();

    memset(req, 'r', sizeof(req));
    /* The second small write waits for the ACK of the first while Nagle
       is on, and the receiver delays that ACK: the classic stall. */
    if (ws_net_write(p->cfd, req, HEAD_BYTES) != HEAD_BYTES ||
        ws_net_write(p->cfd, req + HEAD_BYTES, BODY_BYTES) != BODY_BYTES)
        return -1;
    if (read_full(p->sfd, req, sizeof(req), deadline) < 0 ||
        ws_net_write(p->sfd, &ack, 1) != 1 ||
        read_full(p->cfd, &ack, 1, deadline) < 0)
        return -1;
    return now_us() - t0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

/* Round trips until deadline; fills the latency fields of r. */
static void run_latency(const struct pair *p, long long deadline,
                        long long *samples, struct result *r)
{
    int n = 0;

    /* A round started in time may finish a little late: with Nagle on,
       the stall being measured (about 40 ms) can straddle the deadline. */
    while (n < MAX_SAMPLES && now_us() < deadline) {
        long long us = one_round(p, deadline + GRACE_US);
        if (us < 0)
            break;
        samples[n++] = us;
    }
    r->rounds = n;
    if (n == 0)
        return;
    qsort(samples, (size_t)n, sizeof(*samples), cmp_ll);
    r->p50_us = samples[(n - 1) * 50 / 100];
    r->p99_us = samples[(n - 1) * 99 / 100];
}

/* Measure one option set for row_us: bulk for the first half on one
   connection, round trips for the second half on a fresh one. Returns 0,
   or -1 with err set. */
static int run_row(const char *host, const struct row *row, long long row_us,
                   long long *samples, struct result *r, char *err,
                   size_t errlen)
{
    struct ws_net_sockopts o = {.sndbuf = row->bufsize,
                                .rcvbuf = row->bufsize,
                                .nodelay = row->nodelay};
    /* Buffer sizes go on the listener before connections arrive: the
       accepted sockets inherit them, and the window scale is fixed in the
       handshake. */
    struct ws_net_bind_req b = {.host = host, .backlog = 4, .opts = &o};
    struct pair p = {.lfd = -1, .cfd = -1, .sfd = -1};
    struct ws_net_sockopts got;
    long long start = now_us();
    int rc = -1;

    memset(r, 0, sizeof(*r));
    if (ws_net_bind(&b, &p.lfd, 1, err, errlen) < 0)
        return -1;
    if (pair_connect(&p, host, &o, err, errlen) < 0)
        goto out;
    if (ws_net_sockopts_read(p.cfd, &got) == 0) {
        r->sndbuf = got.sndbuf;
        r->nodelay = got.nodelay;
    }
    if (ws_net_sockopts_read(p.sfd, &got) == 0)
        r->rcvbuf = got.rcvbuf;
    r->mbps = run_bulk(&p, start + row_us / 2);
    pair_close(&p);
    if (pair_connect(&p, host, &o, err, errlen) < 0)
        goto out;
    run_latency(&p, start + row_us, samples, r);
    rc = 0;
out:
    pair_close(&p);
    ws_net_close(p.lfd);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: sockopt_bench [--host HOST] [--seconds S]\n");
    exit(2);
}

/* Parse argv; the defaults stay where no option is given. */
static void parse_args(int argc, char **argv, const char **host,
                       double *seconds)
{
    char *end;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            *host = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            *seconds = strtod(argv[++i], &end);
            if (*end != '\0' || !(*seconds >= 0.1 && *seconds <= 600))
                usage();
        } else {
            usage();
        }
    }
}

/* Print the table's header lines. */
static void print_header(const char *host, double row_s)
{
    printf("sockopt_bench: %s, %zu option sets, %.2f s each: bulk "
           "transfer, then write-write-read round trips (%d + %d bytes, "
           "1 byte back)\n",
           host, NROWS, row_s, HEAD_BYTES, BODY_BYTES);
    /* "µs" is two bytes for one column: widths are one larger there. */
    printf("%-16s %10s %10s %7s %9s %10s %10s %7s\n", "option set", "SO_SNDBUF",
           "SO_RCVBUF", "NODELAY", "MB/s", "p50 µs", "p99 µs", "rounds");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    double seconds = 3.0;
    long long *samples;
    struct result r;
    char err[256];

    parse_args(argc, argv, &host, &seconds);
    samples = malloc(MAX_SAMPLES * sizeof(*samples));
    if (samples == NULL) {
        fprintf(stderr, "sockopt_bench: out of memory\n");
        return 1;
    }
    print_header(host, seconds / (double)NROWS);
    for (size_t i = 0; i < NROWS; i++) {
        long long row_us = (long long)(seconds * 1e6) / (long long)NROWS;
        if (run_row(host, &rows[i], row_us, samples, &r, err, sizeof(err))) {
            fprintf(stderr, "sockopt_bench: %s\n", err);
            free(samples);
            return 1;
        }
        printf("%-16s %10d %10d %7s %9.1f %9lld %9lld %7d\n", rows[i].label,
               r.sndbuf, r.rcvbuf, r.nodelay == WS_NET_ON ? "on" : "off",
               r.mbps, r.p50_us, r.p99_us, r.rounds);
        fflush(stdout);
    }
    printf("Buffer sizes are read back: the kernel doubles what is set and "
           "caps it\n(net.core.wmem_max, rmem_max); unset buffers grow by "
           "themselves.\n");
    free(samples);
    return 0;
}
