/*
 * udp_echo_server.c - a UDP echo server on the library's select() loop:
 * every datagram goes back to its sender. --drop-rate simulates loss (each
 * datagram is dropped with that probability) so that a client's timeouts
 * and retries can be seen at work; --seed makes the drops repeatable.
 *   udp_echo_server [--host H] [--port P] [--drop-rate R] [--seed N>0]
 *                   [--verbose]                       (127.0.0.1:7000)
 * SIGINT/SIGTERM stop it: exit 0, sockets closed, everything freed.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"
#include "net/neterr.h"
#include "net/sock.h"
#include "ws/ws.h"

#define MAX_SOCKETS 8
#define DGRAM_MAX 65536
#define RECV_BUDGET 64 /* datagrams per wake-up, so no socket starves */

struct server {
    struct ws_loop *loop; /* owned */
    int fds[MAX_SOCKETS]; /* owned */
    int n;
    double drop_rate; /* 0..1 */
    uint64_t rng;     /* xorshift64 state, never 0 */
    unsigned long received, echoed, dropped;
    bool verbose;
    unsigned char buf[DGRAM_MAX];
};

/* The loop the signal handler stops; set once before handlers exist. */
static struct ws_loop *stop_loop;

static void on_signal(int sig)
{
    (void)sig;
    ws_loop_stop(stop_loop); /* async-signal-safe */
}

/* A uniform number in [0, 1) from xorshift64 (Marsaglia, 2003). */
static double next_random(struct server *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng >> 11) / (double)(UINT64_C(1) << 53);
}

/* Spread a seed over all 64 bits (splitmix64, Steele et al. 2014):
   xorshift started from a small number gives small numbers for a while,
   which would make the first datagrams always dropped. */
static uint64_t mix_seed(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x != 0 ? x : 1;
}

/* Echo one datagram of len bytes back to from, unless the simulated loss
   takes it. */
static void echo_one(struct server *s, int fd, size_t len,
                     const struct ws_net_addr *from)
{
    char peer[WS_NET_ADDRSTRLEN], line[160];
    ssize_t n;

    s->received++;
    ws_net_addr_format((const struct sockaddr *)&from->ss, from->len, peer,
                       sizeof(peer));
    if (s->drop_rate > 0 && next_random(s) < s->drop_rate) {
        s->dropped++;
        if (s->verbose)
            printf("dropped %zu bytes from %s (simulated loss)\n", len, peer);
        return;
    }
    n = ws_net_sendto(fd, s->buf, len, from);
    if (n < 0) {
        /* UDP promises nothing: a full socket buffer is one more loss. */
        s->dropped++;
        ws_net_errfmt(line, sizeof(line), "sendto", peer, (int)n);
        fprintf(stderr, "udp_echo_server: %s\n", line);
        return;
    }
    s->echoed++;
    if (s->verbose)
        printf("echoed %zu bytes to %s\n", len, peer);
}

/* A socket is readable: echo what is queued, up to a budget. */
static void on_readable(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct server *s = arg;
    struct ws_net_addr from;

    (void)loop;
    (void)events;
    for (int i = 0; i < RECV_BUDGET; i++) {
        ssize_t n = ws_net_recvfrom(fd, s->buf, sizeof(s->buf), &from);
        /* EAGAIN: all done. Other errors (an ICMP error for an earlier
           reply, ECONNREFUSED) concern one peer only; keep serving. */
        if (n == -EAGAIN)
            return;
        if (n >= 0)
            echo_one(s, fd, (size_t)n, &from);
    }
}

/* Bind host:port, watch every socket and print where. Returns 0, or -1
   after printing the one-line reason. */
static int server_open(struct server *s, const char *host, const char *port)
{
    char err[256], addr[WS_NET_ADDRSTRLEN];
    int rc = ws_loop_create(&s->loop);

    if (rc < 0) {
        fprintf(stderr, "udp_echo_server: loop: %s\n", ws_strerror(rc));
        return -1;
    }
    rc = ws_net_udp_bind(host, port, s->fds, MAX_SOCKETS, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "udp_echo_server: %s\n", err);
        return -1;
    }
    s->n = rc;
    for (int i = 0; i < s->n; i++) {
        struct ws_net_addr a = {.len = sizeof(a.ss)};
        rc = ws_loop_watch(s->loop, s->fds[i], WS_IO_READ, on_readable, s);
        if (rc < 0) {
            fprintf(stderr, "udp_echo_server: watch: %s\n", ws_strerror(rc));
            return -1;
        }
        getsockname(s->fds[i], (struct sockaddr *)&a.ss, &a.len);
        ws_net_addr_format((struct sockaddr *)&a.ss, a.len, addr, sizeof(addr));
        printf("udp_echo_server: listening on %s (drop rate %.2f)\n", addr,
               s->drop_rate);
    }
    return 0;
}

/* Close the sockets and free the loop. */
static void server_free(struct server *s)
{
    for (int i = 0; i < s->n; i++) {
        ws_loop_unwatch(s->loop, s->fds[i]);
        ws_net_close(s->fds[i]);
    }
    if (s->loop != NULL)
        ws_loop_destroy(s->loop);
}

static void usage(void)
{
    fprintf(stderr, "usage: udp_echo_server [--host HOST] [--port PORT] "
                    "[--drop-rate 0..1] [--seed N] [--verbose]\n");
    exit(2);
}

/* Parse argv into s, host and port. */
static void parse_args(int argc, char **argv, struct server *s,
                       const char **host, const char **port)
{
    char *end;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            *host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            *port = argv[++i];
        } else if (strcmp(argv[i], "--drop-rate") == 0 && i + 1 < argc) {
            s->drop_rate = strtod(argv[++i], &end);
            if (*end != '\0' || !(s->drop_rate >= 0 && s->drop_rate <= 1))
                usage();
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            s->rng = strtoull(argv[++i], &end, 10);
            if (*end != '\0')
                usage();
        } else if (strcmp(argv[i], "--verbose") == 0) {
            s->verbose = true;
        } else {
            usage();
        }
    }
}

int main(int argc, char **argv)
{
    /* Static: the datagram buffer is 64 KiB. */
    static struct server s;
    const char *host = "127.0.0.1", *port = "7000";
    struct sigaction sa;
    int rc;

    parse_args(argc, argv, &s, &host, &port);
    if (s.rng == 0)
        s.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s.rng = mix_seed(s.rng);
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
        fprintf(stderr, "udp_echo_server: loop: %s\n", ws_strerror(rc));
    server_free(&s);
    printf("udp_echo_server: stopped: %lu received, %lu echoed, %lu dropped\n",
           s.received, s.echoed, s.dropped);
    return rc < 0 ? 1 : 0;
}
