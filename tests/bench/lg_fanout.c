/*
 * lg_fanout.c - the load generator's --fanout mode: N connections, all of
 * them subscribers of one room (the server subscribes each on open), the
 * first P of them publishers, together sending P x R messages a second at
 * even intervals (publisher k % P sends message k). The server sends each
 * message to every connection, the sender included. Every message carries
 * its publisher, its sequence number and its send time; every delivery is
 * checked byte for byte and in order per publisher (no loss, no duplicate)
 * and timed from publish to delivery. With several --port, connection i
 * is on port i % n, and so is publisher i: a delivery to a connection on
 * another port than its publisher's crossed between instances (a Redis
 * bridge, say), and is also timed apart. No TLS, no compression.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg.h"

/* The payload's head: "PPPPPPPP SSSSSSSSSSSSSSSS TTTTTTTTTTTTTTTT " in
   hex (publisher, sequence number, send time in ns), then filler. */
#define FAN_HEAD 43
#define TX_CAP (64u << 10) /* a publisher's unsent frames, at most */
#define SYNC_WAIT_NS 60000000000ull

/* A publisher's frames not yet taken by its socket. */
struct fan_tx {
    uint8_t *buf; /* owned; TX_CAP bytes */
    size_t len, off;
};

/* The message a connection is receiving, and what it got so far. */
struct fan_rx {
    uint8_t head[FAN_HEAD];
    uint32_t pub;
    uint64_t seq, sent;
    uint64_t got;  /* deliveries in order */
    uint64_t lost; /* skipped in the order: never to come */
};

/* The fan-out state: one per load generator, owned by struct lg. */
struct lg_fanout {
    long conns, pubs;
    struct fan_tx *tx;      /* owned; one per publisher */
    struct fan_rx *rx;      /* owned; one per connection */
    uint32_t *next;         /* owned; conns x pubs: the next seq expected */
    uint64_t *published;    /* owned; messages sent, per publisher */
    uint8_t *pattern;       /* owned; the filler, 26 + size bytes */
    uint64_t k;             /* messages scheduled so far */
    uint64_t sent, skipped; /* published; not sent (a full buffer) */
    uint64_t window, total; /* deliveries in the load window; in all */
    uint64_t dups, gaps;    /* deliveries twice or out of order; skipped */
    uint64_t late;          /* not there when the grace period ended */
    uint64_t cross;         /* deliveries from a publisher on another port */
    struct lg_stats lat_local, lat_cross; /* owned; split by the above */
    uint64_t rng;                         /* masks */
};

int lg_fanout_new(struct lg *g)
{
    struct lg_fanout *f = calloc(1, sizeof(*f));
    size_t n = (size_t)g->o.conns;

    g->fan = f;
    if (f == NULL || lg_random(&f->rng, sizeof(f->rng)) < 0)
        return -1;
    f->rng |= 1;
    f->conns = g->o.conns;
    f->pubs = g->o.publishers;
    f->tx = calloc((size_t)f->pubs, sizeof(*f->tx));
    f->rx = calloc(n, sizeof(*f->rx));
    f->next = calloc(n * (size_t)f->pubs, sizeof(*f->next));
    f->published = calloc((size_t)f->pubs, sizeof(*f->published));
    f->pattern = malloc(26 + g->o.size);
    if (f->tx == NULL || f->rx == NULL || f->next == NULL ||
        f->published == NULL || f->pattern == NULL)
        return -1;
    for (size_t i = 0; i < 26 + g->o.size; i++)
        f->pattern[i] = (uint8_t)('a' + i % 26);
    for (long i = 0; i < f->pubs; i++) {
        f->tx[i].buf = malloc(TX_CAP);
        if (f->tx[i].buf == NULL)
            return -1;
    }
    return 0;
}

void lg_fanout_free(struct lg *g)
{
    struct lg_fanout *f = g->fan;

    if (f == NULL)
        return;
    for (long i = 0; f->tx && i < f->pubs; i++)
        free(f->tx[i].buf);
    free(f->tx);
    free(f->rx);
    free(f->next);
    free(f->published);
    free(f->pattern);
    lg_stats_free(&f->lat_local);
    lg_stats_free(&f->lat_cross);
    free(f);
    g->fan = NULL;
}

/* xorshift64: the frame masks (RFC 6455 §5.3 asks for unpredictable ones
   from a browser; the server under test does not care). */
static uint32_t next_mask(struct lg_fanout *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (uint32_t)(f->rng >> 16);
}

/* The filler of message (pub, seq) from payload offset off on. */
static const uint8_t *filler(const struct lg_fanout *f, uint64_t pub,
                             uint64_t seq, size_t off)
{
    return f->pattern + (pub + seq) % 26 + off;
}

/* Write v as n hex digits and a space at p; returns p + n + 1. */
static uint8_t *put_hex(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 4)
        p[i] = (uint8_t) "0123456789abcdef"[v & 15];
    p[n] = ' ';
    return p + n + 1;
}

/* Read n hex digits and a space at p into *v; 0, or -1 when they are
   not. */
static int get_hex(const uint8_t *p, int n, uint64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        uint8_t ch = p[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                         : -1;

        if (d < 0)
            return -1;
        *v = *v << 4 | (uint64_t)d;
    }
    return p[n] == ' ' ? 0 : -1;
}

/* Write message seq of publisher pub, stamped now, as a masked frame at
   out (room for size + LG_MAX_HEADER bytes); its length. */
static size_t build_frame(struct lg *g, long pub, uint64_t seq, uint8_t *out)
{
    struct lg_fanout *f = g->fan;
    uint32_t m = next_mask(f);
    uint8_t mask[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16),
                       (uint8_t)(m >> 24)};
    size_t h = lg_frame_header(out, g->o.binary ? 0x2 : 0x1, g->o.size, mask);
    uint8_t *p = out + h;

    put_hex(put_hex(put_hex(p, (uint64_t)pub, 8), seq, 16), lg_now_ns(), 16);
    memcpy(p + FAN_HEAD, filler(f, (uint64_t)pub, seq, FAN_HEAD),
           g->o.size - FAN_HEAD);
    for (size_t i = 0; i < g->o.size; i++)
        p[i] ^= mask[i & 3];
    return h + g->o.size;
}

/* Write buf[*off..len) until done (1), the socket is full (0), or an
   error (-1). */
static int put(int fd, const uint8_t *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return -1;
        *off += (size_t)n;
    }
    return 1;
}

/* The rest of c's control frame. */
static int put_ctl(struct conn *c)
{
    size_t off = c->ctl_out_off;
    int rc = put(c->fd, c->ctl_out, c->ctl_out_len, &off);

    c->ctl_out_off = (uint8_t)off;
    return rc;
}

int lg_fanout_flush(struct lg *g, struct conn *c)
{
    struct lg_fanout *f = g->fan;
    long i = c - g->conns;
    struct fan_tx *t = i < f->pubs ? &f->tx[i] : NULL;
    int rc = 1;

    /* Frames never interleave: a control frame already started goes
       first, one not started waits for the queued messages. */
    if (c->ctl_out_off > 0 && c->ctl_out_off < c->ctl_out_len)
        rc = put_ctl(c);
    if (rc == 1 && t && t->off < t->len) {
        rc = put(c->fd, t->buf, t->len, &t->off);
        if (rc == 1)
            t->len = t->off = 0;
    }
    if (rc == 1 && c->ctl_out_off < c->ctl_out_len)
        rc = put_ctl(c);
    return rc < 0 ? -1 : rc == 0;
}

/* Queue message k (publisher k % P) and write it. */
static void publish_one(struct lg *g)
{
    struct lg_fanout *f = g->fan;
    long pub = (long)(f->k++ % (uint64_t)f->pubs);
    struct conn *c = &g->conns[pub];
    struct fan_tx *t = &f->tx[pub];

    if (c->state != C_OPEN) {
        f->skipped++;
        return;
    }
    if (t->len + g->o.size + LG_MAX_HEADER > TX_CAP && t->off > 0) {
        memmove(t->buf, t->buf + t->off, t->len - t->off);
        t->len -= t->off;
        t->off = 0;
    }
    if (t->len + g->o.size + LG_MAX_HEADER > TX_CAP) {
        f->skipped++; /* the server is not reading: the rate is not met */
        return;
    }
    t->len += build_frame(g, pub, f->published[pub]++, t->buf + t->len);
    f->sent++;
    lg_conn_flush(g, c);
}

int lg_fanout_piece(struct lg *g, struct conn *c, const uint8_t *p, size_t n)
{
    struct lg_fanout *f = g->fan;
    struct fan_rx *rx = &f->rx[c - g->conns];
    size_t off = c->rx_off;

    if (off + n > g->o.size)
        return -1;
    if (off < FAN_HEAD) {
        size_t take = n < FAN_HEAD - off ? n : FAN_HEAD - off;
        uint64_t pub, seq, sent;

        memcpy(rx->head + off, p, take);
        off += take;
        p += take;
        n -= take;
        if (off == FAN_HEAD) {
            if (get_hex(rx->head, 8, &pub) < 0 ||
                get_hex(rx->head + 9, 16, &seq) < 0 ||
                get_hex(rx->head + 26, 16, &sent) < 0 ||
                pub >= (uint64_t)f->pubs || seq >= f->published[pub])
                return -1; /* not a message we sent */
            rx->pub = (uint32_t)pub;
            rx->seq = seq;
            rx->sent = sent;
        }
    }
    if (n > 0 && memcmp(p, filler(f, rx->pub, rx->seq, off), n) != 0)
        return -1;
    c->rx_off = off + n;
    return 0;
}

int lg_fanout_end(struct lg *g, struct conn *c)
{
    struct lg_fanout *f = g->fan;
    long i = c - g->conns;
    struct fan_rx *rx = &f->rx[i];
    uint32_t *want = &f->next[(size_t)i * (size_t)f->pubs + rx->pub];
    uint64_t lat;

    if (c->rx_off != g->o.size)
        return -1;
    c->rx_off = 0;
    if (rx->seq < *want) {
        f->dups++; /* a second copy, or one that overtook another */
        return 0;
    }
    rx->lost += rx->seq - *want; /* skipped ones are lost */
    f->gaps += rx->seq - *want;
    *want = (uint32_t)rx->seq + 1;
    rx->got++;
    f->total++;
    if (g->phase == PH_LOAD)
        f->window++;
    lat = g->now - rx->sent;
    lg_stats_add(&g->lat, lat);
    if (g->o.nports == 1)
        return 0; /* one server: all are local, g->lat has them */
    /* Publisher p is connection p, so its port is the same function. */
    if (i % g->o.nports != (long)(rx->pub % (uint32_t)g->o.nports)) {
        f->cross++;
        lg_stats_add(&f->lat_cross, lat);
    } else {
        lg_stats_add(&f->lat_local, lat);
    }
    return 0;
}

/* Deliveries that open connections still wait for (lost ones aside). */
static uint64_t missing(const struct lg *g)
{
    uint64_t n = 0;

    for (long i = 0; i < g->o.conns; i++) {
        if (g->conns[i].state == C_OPEN)
            n += g->fan->sent - g->fan->rx[i].got - g->fan->rx[i].lost;
    }
    return n;
}

/* With --sync, serve the loop until a line (or EOF) comes on stdin, so
   that run.py can read the server's memory and CPU at this point. */
static void wait_go(struct lg *g)
{
    uint64_t deadline = lg_now_ns() + SYNC_WAIT_NS;
    char buf[64];

    while (g->o.sync && !lg_stop_requested() && lg_now_ns() < deadline) {
        struct pollfd in = {.fd = 0, .events = POLLIN};

        if (poll(&in, 1, 0) != 0) {
            if (read(0, buf, sizeof(buf)) < 0 && errno == EINTR)
                continue;
            return;
        }
        lg_poll(g, 20);
    }
}

/* Milliseconds until the next message is due (0 when it is), at most
   until the deadline and at most 100. */
static int until_due(const struct lg *g, uint64_t now, uint64_t deadline)
{
    double per_s = (double)g->o.publishers * g->o.rate_per_s;
    uint64_t due = g->t_load + (uint64_t)((double)g->fan->k * 1e9 / per_s);
    uint64_t at = due < deadline ? due : deadline;

    if (at <= now)
        return 0;
    return at - now >= 100000000 ? 100 : (int)((at - now + 999999) / 1000000);
}

/* Publish at the rate for D seconds: every message that is due goes out
   between polls (late ones at once, so that the count is kept). */
static void run_load(struct lg *g)
{
    uint64_t deadline, now;

    g->sending = true;
    g->phase = PH_LOAD;
    g->t_load = now = lg_now_ns();
    deadline = g->t_load + (uint64_t)(g->o.seconds * 1e9);
    while (!lg_stop_requested() && now < deadline) {
        while (until_due(g, now, deadline) == 0 && now < deadline)
            publish_one(g);
        lg_poll(g, until_due(g, now, deadline));
        now = lg_now_ns();
    }
    g->t_end = now;
    g->sending = false;
}

/* Wait up to the grace period for every delivery to come. */
static void drain(struct lg *g)
{
    uint64_t deadline = lg_now_ns() + (uint64_t)(g->o.grace * 1e9);

    g->phase = PH_DRAIN;
    while (!lg_stop_requested() && lg_now_ns() < deadline && missing(g) > 0)
        lg_poll(g, 10);
}

/* The phase line run.py waits for: connections held, and the errors. */
static void print_phase(const struct lg *g, const char *phase)
{
    printf("{\"mode\":\"fanout\",\"phase\":\"%s\",\"conns\":%ld,"
           "\"established\":%ld,\"open\":%ld,",
           phase, g->o.conns, g->established, g->open);
    lg_print_errors(g);
    printf("}\n");
    fflush(stdout);
}

/* The latency of one class of deliveries as JSON members "p50_<name>_us"
   and so on, and a comma. */
static void print_class(struct lg_stats *s, const char *name)
{
    printf("\"p50_%s_us\":%.1f,\"p99_%s_us\":%.1f,\"p999_%s_us\":%.1f,", name,
           lg_stats_quantile(s, 0.5), name, lg_stats_quantile(s, 0.99), name,
           lg_stats_quantile(s, 0.999));
}

/* The results line: deliveries, their rate and latency, and the checks. */
static void print_fanout(struct lg *g)
{
    struct lg_fanout *f = g->fan;
    double secs = (double)(g->t_end - g->t_load) / 1e9;
    long open = 0;

    for (long i = 0; i < g->o.conns; i++)
        open += g->conns[i].state == C_OPEN;
    printf(
        "{\"mode\":\"fanout\",\"phase\":\"done\",\"conns\":%ld,"
        "\"established\":%ld,\"open\":%ld,\"publishers\":%ld,"
        "\"rate\":%.1f,\"size\":%zu,\"seconds\":%.3f,\"published\":%llu,"
        "\"skipped\":%llu,\"published_per_s\":%.1f,\"deliveries\":%llu,"
        "\"deliveries_total\":%llu,\"deliveries_expected\":%llu,"
        "\"deliveries_per_s\":%.1f,\"dups\":%llu,\"undelivered\":%llu,"
        "\"p50_us\":%.1f,"
        "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
        "\"client_cpu_s\":%.3f,",
        g->o.conns, g->established, open, f->pubs, g->o.rate_per_s, g->o.size,
        secs, (unsigned long long)f->sent, (unsigned long long)f->skipped,
        secs > 0 ? (double)f->sent / secs : 0.0, (unsigned long long)f->window,
        (unsigned long long)f->total,
        (unsigned long long)(f->sent * (uint64_t)open),
        secs > 0 ? (double)f->window / secs : 0.0, (unsigned long long)f->dups,
        (unsigned long long)f->late, lg_stats_quantile(&g->lat, 0.5),
        lg_stats_quantile(&g->lat, 0.99), lg_stats_quantile(&g->lat, 0.999),
        lg_stats_quantile(&g->lat, 1.0), lg_self_cpu());
    printf("\"ports\":%d,\"deliveries_cross\":%llu,", g->o.nports,
           (unsigned long long)f->cross);
    print_class(g->o.nports == 1 ? &g->lat : &f->lat_local, "local");
    print_class(&f->lat_cross, "cross");
    lg_print_errors(g);
    printf("}\n");
    fflush(stdout);
}

void lg_fanout_run(struct lg *g)
{
    print_phase(g, "subscribed");
    wait_go(g);
    run_load(g);
    drain(g);
    /* Lost: skipped in a connection's sequence (TCP keeps the order, so a
       later one came instead). Late ones may still be queued in a server
       that could not keep up: counted apart, not as errors. */
    g->err.lost = g->fan->gaps;
    g->err.verify += g->fan->dups;
    g->fan->late = missing(g);
    print_fanout(g);
    wait_go(g);
}
