/*
 * loadgen.c - the benchmark load generator: N WebSocket (or raw TCP echo)
 * client connections on one non-blocking epoll loop, K messages in flight
 * on each, every echo verified byte for byte, one JSON line of results.
 * It never runs longer than the connect timeout + D + the grace period.
 *   loadgen --port P [--port P2 ...] [--host H] [--conns N] [--inflight K]
 *           [--size S] [--type text|binary|json] [--seconds D] [--raw]
 *           [--idle] [--deflate none|nocontext|context]
 *           [--tls [--tls-ca FILE]]
 *           [--connect-rate]
 *           [--fanout [--publishers P] [--rate R] [--sync]]
 * Text payloads are valid UTF-8 with --non-ascii percent (default 10) of
 * the characters 2 to 4 bytes long; json ones chat-like JSON objects.
 * --deflate offers permessage-deflate (RFC 7692) asking both sides to keep
 * no context, or letting both keep it, and reports the bytes of the
 * server's frames per echo. --tls makes every connection a TLS 1.3 client
 * (lg_tls.c), checking the server's certificate only with --tls-ca.
 * --connect-rate keeps N connections cycling instead (lg_rate.c): each
 * connects, upgrades, echoes one message, closes, and starts again; it
 * reports whole cycles per second. --fanout (lg_fanout.c) makes every
 * connection a subscriber of one room and the first P publishers of R
 * messages a second each, checks every delivery (in order per publisher,
 * no loss, no duplicate) and reports deliveries per second and the
 * latency from publish to delivery; --sync waits for a line on stdin once
 * all are connected and again after the results line. With --port given
 * more than once, connection i goes to the i % n-th port (instances of a
 * server bridged together, say), and --fanout times the deliveries that
 * crossed from one port to another apart.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg.h"

#define CLOSE_WAIT_NS 1000000000ull

static volatile sig_atomic_t stop_flag;

/* SIGTERM/SIGINT: end the current phase (the idle hold, usually). */
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Whether a signal asked the current phase to end (lg_rate.c asks). */
bool lg_stop_requested(void)
{
    return stop_flag != 0;
}

/* Print the command line summary and exit with status 2. */
static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--port P2 ...] [--host H] [--conns N]\n"
            "         [--inflight K] [--size S] [--type text|binary|json]\n"
            "         [--seconds D] [--raw]\n"
            "         [--deflate none|nocontext|context] [--tls]\n"
            "         [--tls-ca FILE] [--connect-rate]\n"
            "         [--fanout [--publishers P] [--rate R] [--sync]]\n"
            "         [--idle] [--path /] [--batch B] [--grace G]\n"
            "         [--connect-timeout T] [--non-ascii PERCENT]\n");
    exit(2);
}

/* Read a positive number from s or exit with the usage. */
static double number(const char *s, double min)
{
    char *end;
    double v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || v < min)
        usage();
    return v;
}

/* Apply one option that takes a value; 0, or -1 when name is unknown. */
static int option_value(struct opts *o, const char *name, const char *v)
{
    if (strcmp(name, "--host") == 0)
        o->host = v;
    else if (strcmp(name, "--port") == 0 && o->nports < LG_MAX_PORTS)
        o->ports[o->nports++] = v;
    else if (strcmp(name, "--path") == 0)
        o->path = v;
    else if (strcmp(name, "--conns") == 0)
        o->conns = (long)number(v, 1);
    else if (strcmp(name, "--inflight") == 0)
        o->inflight = (long)number(v, 1);
    else if (strcmp(name, "--non-ascii") == 0)
        o->non_ascii = (long)number(v, 0);
    else if (strcmp(name, "--batch") == 0)
        o->batch = (long)number(v, 1);
    else if (strcmp(name, "--size") == 0)
        o->size = (size_t)number(v, 1);
    else if (strcmp(name, "--type") == 0 && strcmp(v, "text") == 0)
        o->binary = false;
    else if (strcmp(name, "--type") == 0 && strcmp(v, "binary") == 0)
        o->binary = true;
    else if (strcmp(name, "--type") == 0 && strcmp(v, "json") == 0)
        o->json = true;
    else if (strcmp(name, "--deflate") == 0 && strcmp(v, "none") == 0)
        o->deflate = LG_DEFLATE_NONE;
    else if (strcmp(name, "--deflate") == 0 && strcmp(v, "nocontext") == 0)
        o->deflate = LG_DEFLATE_NOCONTEXT;
    else if (strcmp(name, "--deflate") == 0 && strcmp(v, "context") == 0)
        o->deflate = LG_DEFLATE_CONTEXT;
    else if (strcmp(name, "--seconds") == 0)
        o->seconds = number(v, 0);
    else if (strcmp(name, "--grace") == 0)
        o->grace = number(v, 0);
    else if (strcmp(name, "--connect-timeout") == 0)
        o->connect_timeout = number(v, 0);
    else if (strcmp(name, "--tls-ca") == 0)
        o->ca = v;
    else if (strcmp(name, "--publishers") == 0)
        o->publishers = (long)number(v, 1);
    else if (strcmp(name, "--rate") == 0)
        o->rate_per_s = number(v, 0.001);
    else
        return -1;
    return 0;
}

/* Fill o from the command line, with the defaults first. */
static void parse_args(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){.host = "127.0.0.1",
                       .path = "/",
                       .conns = 1,
                       .inflight = 1,
                       .batch = 256,
                       .non_ascii = 10,
                       .seconds = 3,
                       .publishers = 1,
                       .rate_per_s = 100,
                       .grace = 3,
                       .connect_timeout = 30};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0)
            o->raw = true;
        else if (strcmp(argv[i], "--idle") == 0)
            o->idle = true;
        else if (strcmp(argv[i], "--tls") == 0)
            o->tls = true;
        else if (strcmp(argv[i], "--connect-rate") == 0)
            o->rate = true;
        else if (strcmp(argv[i], "--fanout") == 0)
            o->fanout = true;
        else if (strcmp(argv[i], "--sync") == 0)
            o->sync = true;
        else if (i + 1 >= argc || option_value(o, argv[i], argv[i + 1]) < 0)
            usage();
        else
            i++;
    }
    if (o->size == 0) /* not given: 16 B, or 64 B with --fanout */
        o->size = o->fanout ? 64 : 16;
    if (o->nports == 0 || o->conns > 1000000 || o->inflight > 1000000 ||
        o->non_ascii > 100 || o->size > (256u << 20) || (o->ca && !o->tls) ||
        (o->rate && (o->idle || o->deflate != LG_DEFLATE_NONE)))
        usage();
    /* Fan-out payloads carry a 43-byte head (lg_fanout.c); plain TCP. */
    if (o->fanout &&
        (o->raw || o->idle || o->tls || o->rate || o->json ||
         o->deflate != LG_DEFLATE_NONE || o->publishers > o->conns ||
         o->size < 48 || o->size > (64u << 10)))
        usage();
}

/* Raise RLIMIT_NOFILE so that need descriptors fit (root may raise max). */
static void raise_fd_limit(rlim_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        struct rlimit want = {need, need};

        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* Build the message variants: distinct payloads, each with its own mask;
   without context they are compressed once here, each on its own. */
static int build_msgs(struct lg *g)
{
    uint64_t seed;
    uint8_t op = g->o.binary ? 0x2 : 0x1;
    z_stream zs = {0};

    if (g->o.deflate == LG_DEFLATE_NOCONTEXT &&
        deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    g->nmsgs = g->o.size <= 4096 ? 16 : 4;
    g->msgs = calloc(g->nmsgs, sizeof(*g->msgs));
    if (g->msgs == NULL || lg_random(&seed, sizeof(seed)) < 0)
        return -1;
    seed |= 1; /* xorshift needs a non-zero state */
    for (size_t i = 0; i < g->nmsgs; i++) {
        struct msg *m = &g->msgs[i];
        uint8_t mask[4];

        m->payload = malloc(g->o.size);
        if (m->payload == NULL || lg_random(mask, sizeof(mask)) < 0)
            return -1;
        if (g->o.json)
            lg_payload_json(m->payload, g->o.size, &seed);
        else
            lg_payload_fill(m->payload, g->o.size, !g->o.binary,
                            (int)g->o.non_ascii, &seed);
        if (g->o.raw) {
            m->frame = m->payload;
            m->frame_len = g->o.size;
            continue;
        }
        m->frame = malloc(lg_z_frame_cap(g->o.size));
        if (m->frame == NULL)
            return -1;
        if (g->o.deflate == LG_DEFLATE_NOCONTEXT)
            m->frame_len =
                lg_z_frame(&zs, true, m->frame, op, m->payload, g->o.size);
        else
            m->frame_len =
                lg_frame_write(m->frame, op, m->payload, g->o.size, mask);
    }
    if (g->o.deflate == LG_DEFLATE_NOCONTEXT)
        deflateEnd(&zs);
    return 0;
}

/* Wait up to ms for events and handle them. */
void lg_poll(struct lg *g, int ms)
{
    struct epoll_event ev[1024];
    int n = epoll_wait(g->ep, ev, 1024, ms);

    for (int i = 0; i < n; i++)
        lg_conn_event(g, ev[i].data.ptr, ev[i].events);
}

/* Is the current phase finished before its deadline? */
static bool phase_done(const struct lg *g)
{
    switch (g->phase) {
    case PH_CONNECT:
        return g->started == g->o.conns && g->pending == 0;
    case PH_DRAIN:
        return g->outstanding == 0;
    case PH_CLOSE:
        return g->closing == 0;
    case PH_LOAD:
    case PH_HOLD:
        return g->open == 0; /* the server closed every connection */
    default:
        return false;
    }
}

/* Milliseconds from now to deadline, rounded up, at most 100. */
static int ms_until(uint64_t now, uint64_t deadline)
{
    uint64_t ms = (deadline - now) / 1000000 + 1;

    return ms > 100 ? 100 : (int)ms;
}

/* Run the loop in phase p until it is done, a signal, or deadline. */
static void run_phase(struct lg *g, enum phase p, uint64_t deadline)
{
    g->phase = p;
    while (!stop_flag && !phase_done(g)) {
        uint64_t now = lg_now_ns();

        if (now >= deadline)
            break;
        while (p == PH_CONNECT && g->started < g->o.conns &&
               g->pending < g->o.batch)
            lg_conn_start(g, &g->conns[g->started]);
        lg_poll(g, ms_until(now, deadline));
    }
}

/* Connections not open when the connect phase ends count as errors. */
static void give_up_connects(struct lg *g)
{
    for (long i = 0; i < g->o.conns; i++) {
        struct conn *c = &g->conns[i];

        if (c->state == C_NEW)
            g->err.connect++;
        else if (c->state < C_OPEN)
            lg_conn_end(g, c, &g->err.connect);
    }
}

/* Start the load: every open connection sends its first K messages. */
static void start_load(struct lg *g)
{
    g->sending = true;
    g->t_load = lg_now_ns();
    g->phase = PH_LOAD;
    for (long i = 0; i < g->o.conns; i++) {
        if (g->conns[i].state == C_OPEN)
            lg_conn_flush(g, &g->conns[i]);
    }
}

/* Say goodbye (a close frame, close_notify or a TCP FIN), then wait. */
static void close_all(struct lg *g)
{
    g->sending = false;
    for (long i = 0; i < g->o.conns; i++) {
        struct conn *c = &g->conns[i];

        if (c->state != C_OPEN)
            lg_conn_end(g, c, NULL);
        else
            lg_conn_close(g, c);
    }
    run_phase(g, PH_CLOSE, lg_now_ns() + CLOSE_WAIT_NS);
    for (long i = 0; i < g->o.conns; i++)
        lg_conn_end(g, &g->conns[i], NULL);
}

/* Set up the addresses, epoll, buffers, messages and connections. */
static int setup(struct lg *g)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};

    for (int i = 0; i < g->o.nports; i++) {
        int rc = getaddrinfo(g->o.host, g->o.ports[i], &hints, &g->ai[i]);

        if (rc != 0) {
            fprintf(stderr, "loadgen: %s port %s: %s\n", g->o.host,
                    g->o.ports[i], gai_strerror(rc));
            return -1;
        }
    }
    if (g->o.tls) {
        g->tls = lg_tls_ctx_new(g->o.ca, g->o.idle);
        if (g->tls == NULL)
            return -1;
    }
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->rbuf = malloc(RBUF_SIZE);
    g->zbuf = malloc(ZBUF_SIZE);
    g->conns = calloc((size_t)g->o.conns, sizeof(*g->conns));
    if (g->ep < 0 || g->rbuf == NULL || g->zbuf == NULL || g->conns == NULL ||
        build_msgs(g) < 0 || (g->o.fanout && lg_fanout_new(g) < 0))
        return -1;
    for (long i = 0; i < g->o.conns; i++) {
        g->conns[i].fd = -1;
        g->conns[i].sent_ns =
            calloc((size_t)g->o.inflight, sizeof(*g->conns[i].sent_ns));
        if (g->conns[i].sent_ns == NULL)
            return -1;
    }
    return 0;
}

/* Free everything setup() made. */
static void teardown(struct lg *g)
{
    for (long i = 0; g->conns && i < g->o.conns; i++) {
        free(g->conns[i].sent_ns);
        if (g->conns[i].z) {
            lg_z_free(g->conns[i].z, g->o.inflight);
            free(g->conns[i].z);
        }
    }
    for (size_t i = 0; g->msgs && i < g->nmsgs; i++) {
        if (g->msgs[i].frame != g->msgs[i].payload)
            free(g->msgs[i].frame);
        free(g->msgs[i].payload);
    }
    free(g->msgs);
    lg_fanout_free(g);
    free(g->conns);
    free(g->rbuf);
    free(g->zbuf);
    lg_stats_free(&g->lat);
    SSL_CTX_free(g->tls);
    if (g->ep >= 0)
        close(g->ep);
    for (int i = 0; i < LG_MAX_PORTS; i++) {
        if (g->ai[i])
            freeaddrinfo(g->ai[i]);
    }
}

/* The error counters as JSON members. */
void lg_print_errors(const struct lg *g)
{
    const struct errs *e = &g->err;

    printf("\"errors\":%llu,\"err_connect\":%llu,\"err_handshake\":%llu,"
           "\"err_verify\":%llu,\"err_closed\":%llu,\"err_lost\":%llu",
           (unsigned long long)(e->connect + e->handshake + e->verify +
                                e->closed + e->lost),
           (unsigned long long)e->connect, (unsigned long long)e->handshake,
           (unsigned long long)e->verify, (unsigned long long)e->closed,
           (unsigned long long)e->lost);
}

/* The idle mode's line: how many connections are held, and the errors. */
static void print_idle(const struct lg *g, const char *phase, long open)
{
    printf("{\"mode\":\"idle\",\"phase\":\"%s\",\"raw\":%s,\"tls\":\"%s\","
           "\"conns\":%ld,\"established\":%ld,\"open\":%ld,",
           phase, g->o.raw ? "true" : "false", g->tls_desc, g->o.conns,
           g->established, open);
    lg_print_errors(g);
    printf("}\n");
    fflush(stdout);
}

/* The CPU seconds this process has used. */
double lg_self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The load mode's line: rates, latency percentiles and errors. */
static void print_load(struct lg *g)
{
    double secs = (double)(g->t_end - g->t_load) / 1e9;
    double rate = secs > 0 ? (double)g->window_msgs / secs : 0;

    printf("{\"mode\":\"%s\",\"tls\":\"%s\",\"conns\":%ld,\"established\":%ld,"
           "\"inflight\":%ld,\"size\":%zu,\"type\":\"%s\",\"seconds\":%.3f,"
           "\"msgs\":%llu,\"msgs_total\":%llu,\"msgs_per_s\":%.1f,"
           "\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"client_cpu_s\":%.3f,"
           "\"wire_bytes_per_msg\":%.1f,",
           g->o.raw ? "raw" : "ws", g->tls_desc, g->o.conns, g->established,
           g->o.inflight, g->o.size,
           g->o.binary ? "binary"
           : g->o.json ? "json"
                       : "text",
           secs, (unsigned long long)g->window_msgs,
           (unsigned long long)g->total_msgs, rate,
           rate * (double)g->o.size / 1e6, lg_stats_quantile(&g->lat, 0.5),
           lg_stats_quantile(&g->lat, 0.99), lg_stats_quantile(&g->lat, 0.999),
           lg_stats_quantile(&g->lat, 1.0), lg_self_cpu(),
           g->total_msgs ? (double)g->wire_rx / (double)g->total_msgs : 0.0);
    lg_print_errors(g);
    printf("}\n");
    fflush(stdout);
}

/* Count the connections still open. */
static long count_open(const struct lg *g)
{
    long n = 0;

    for (long i = 0; i < g->o.conns; i++)
        n += g->conns[i].state == C_OPEN;
    return n;
}

/* Hold the idle connections for D seconds or until SIGTERM/SIGINT. */
static void run_idle(struct lg *g)
{
    print_idle(g, "established", count_open(g));
    run_phase(g, PH_HOLD, lg_now_ns() + (uint64_t)(g->o.seconds * 1e9));
    print_idle(g, "end", count_open(g));
}

/* Send for D seconds, then wait up to the grace period for the echoes. */
static void run_load(struct lg *g)
{
    if (g->established == 0) {
        g->t_load = g->t_end = lg_now_ns();
        return;
    }
    start_load(g);
    run_phase(g, PH_LOAD, g->t_load + (uint64_t)(g->o.seconds * 1e9));
    g->t_end = lg_now_ns();
    g->sending = false;
    run_phase(g, PH_DRAIN, lg_now_ns() + (uint64_t)(g->o.grace * 1e9));
    g->err.lost = g->outstanding;
}

int main(int argc, char **argv)
{
    struct lg g = {.ep = -1};
    struct sigaction sa = {.sa_handler = on_signal};
    uint64_t t0;

    parse_args(&g.o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    raise_fd_limit((rlim_t)g.o.conns + 64);
    if (setup(&g) < 0) {
        fprintf(stderr, "loadgen: setup failed: %s\n", strerror(errno));
        teardown(&g);
        return 1;
    }
    if (g.o.rate) {
        lg_rate_run(&g);
        teardown(&g);
        return 0;
    }
    t0 = lg_now_ns();
    run_phase(&g, PH_CONNECT, t0 + (uint64_t)(g.o.connect_timeout * 1e9));
    give_up_connects(&g);
    if (g.o.idle)
        run_idle(&g);
    else if (g.fan)
        lg_fanout_run(&g);
    else
        run_load(&g);
    close_all(&g);
    if (!g.o.idle && !g.fan)
        print_load(&g);
    teardown(&g);
    return 0;
}
