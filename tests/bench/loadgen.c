/*
 * loadgen.c - the benchmark load generator: N WebSocket (or raw TCP echo)
 * client connections on one non-blocking epoll loop, K messages in flight
 * on each, every echo verified byte for byte, one JSON line of results.
 * It never runs longer than the connect timeout + D + the grace period.
 *   loadgen --port P [--host H] [--conns N] [--inflight K] [--size S]
 *           [--type text|binary] [--seconds D] [--raw] [--idle]
 * Text payloads are valid UTF-8 with --non-ascii percent (default 10) of
 * the characters 2 to 4 bytes long.
 */
#include <errno.h>
#include <limits.h>
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lg_proto.h"
#include "lg_stats.h"

#define RBUF_SIZE (256u << 10) /* one read buffer shared by every conn */
#define READS_PER_WAKE 8       /* fairness between connections */
#define WRITES_PER_WAKE 16
#define MAX_IOV 64
#define HS_CAP 4096 /* largest response head we accept */
#define CLOSE_WAIT_NS 1000000000ull

enum phase { PH_CONNECT, PH_LOAD, PH_DRAIN, PH_HOLD, PH_CLOSE };
enum cstate {
    C_NEW,
    C_CONNECTING,
    C_HS_SEND,
    C_HS_RECV,
    C_OPEN,
    C_CLOSING,
    C_DONE
};

struct opts {
    const char *host, *port, *path;
    long conns, inflight, batch, non_ascii;
    size_t size;
    bool binary, raw, idle;
    double seconds, grace, connect_timeout;
};

/* One pre-built message: the bytes to send and the payload to expect. */
struct msg {
    uint8_t *frame; /* owned; equals payload in raw mode */
    size_t frame_len;
    uint8_t *payload; /* owned */
};

struct conn {
    int fd;
    uint8_t state;   /* enum cstate */
    uint32_t events; /* current epoll interest */
    char *hs;        /* owned; handshake request, then response head */
    size_t hs_len, hs_off;
    char accept[LG_ACCEPT_LEN + 1];
    uint64_t tx_seq; /* messages written completely */
    size_t tx_off;   /* bytes of message tx_seq written */
    uint64_t rx_seq; /* echoes verified completely */
    size_t rx_off;   /* payload bytes of echo rx_seq verified */
    uint64_t frame_left;
    bool in_frame, in_msg, data_fin, ctl;
    uint8_t hdr[LG_MAX_HEADER], hdr_len;
    uint8_t ctl_in[125], ctl_in_len, ctl_op;
    uint8_t ctl_out[LG_MAX_HEADER + 125], ctl_out_len, ctl_out_off;
    uint64_t *sent_ns; /* owned; ring of K send times */
};

struct errs {
    uint64_t connect, handshake, verify, closed, lost;
};

struct lg {
    struct opts o;
    int ep;
    struct addrinfo *ai;
    struct conn *conns; /* owned; o.conns of them */
    struct msg *msgs;   /* owned; nmsgs variants */
    size_t nmsgs;
    uint8_t *rbuf;
    enum phase phase;
    bool sending;
    long started, pending, established, closing, open;
    int reported; /* handshake failures described on stderr so far */
    uint64_t now, t_load, t_end, outstanding, window_msgs, total_msgs;
    struct lg_stats lat;
    struct errs err;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* CLOCK_MONOTONIC in ns. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--host H] [--conns N] [--inflight K]\n"
            "         [--size S] [--type text|binary] [--seconds D] [--raw]\n"
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
    else if (strcmp(name, "--port") == 0)
        o->port = v;
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
    else if (strcmp(name, "--seconds") == 0)
        o->seconds = number(v, 0);
    else if (strcmp(name, "--grace") == 0)
        o->grace = number(v, 0);
    else if (strcmp(name, "--connect-timeout") == 0)
        o->connect_timeout = number(v, 0);
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
                       .size = 16,
                       .seconds = 3,
                       .grace = 3,
                       .connect_timeout = 30};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0)
            o->raw = true;
        else if (strcmp(argv[i], "--idle") == 0)
            o->idle = true;
        else if (i + 1 >= argc || option_value(o, argv[i], argv[i + 1]) < 0)
            usage();
        else
            i++;
    }
    if (o->port == NULL || o->conns > 1000000 || o->inflight > 1000000 ||
        o->non_ascii > 100 || o->size > (256u << 20))
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

/* Build the message variants: distinct payloads, each with its own mask. */
static int build_msgs(struct lg *g)
{
    uint64_t seed;
    uint8_t op = g->o.binary ? 0x2 : 0x1;

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
        lg_payload_fill(m->payload, g->o.size, !g->o.binary,
                        (int)g->o.non_ascii, &seed);
        if (g->o.raw) {
            m->frame = m->payload;
            m->frame_len = g->o.size;
            continue;
        }
        m->frame = malloc(g->o.size + LG_MAX_HEADER);
        if (m->frame == NULL)
            return -1;
        m->frame_len =
            lg_frame_write(m->frame, op, m->payload, g->o.size, mask);
    }
    return 0;
}

/* The variant that message seq of connection c carries. */
static const struct msg *msg_for(const struct lg *g, const struct conn *c,
                                 uint64_t seq)
{
    return &g->msgs[((uint64_t)(c - g->conns) + seq) % g->nmsgs];
}

/* Change c's epoll interest to ev, skipping the call when unchanged. */
static void set_events(struct lg *g, struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};

    if (c->events == ev)
        return;
    c->events = ev;
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Whether c still owns a socket. */
static bool conn_live(const struct conn *c)
{
    return c->state != C_NEW && c->state != C_DONE;
}

/* Close c for good; counter (may be NULL) is the error to count. */
static void conn_end(struct lg *g, struct conn *c, uint64_t *counter)
{
    if (!conn_live(c))
        return;
    if (c->state < C_OPEN)
        g->pending--;
    else
        g->open--;
    if (c->state == C_CLOSING)
        g->closing--;
    if (counter)
        (*counter)++;
    g->outstanding -= c->tx_seq + (c->tx_off > 0) - c->rx_seq;
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
    free(c->hs);
    c->hs = NULL;
}

/* Open one socket and start its non-blocking connect. */
static void conn_start(struct lg *g, struct conn *c)
{
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    int one = 1, fd;

    g->started++;
    fd =
        socket(g->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g->err.connect++;
        c->state = C_DONE;
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = C_CONNECTING;
    c->events = EPOLLOUT;
    g->pending++;
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &e) < 0 ||
        (connect(fd, g->ai->ai_addr, g->ai->ai_addrlen) < 0 &&
         errno != EINPROGRESS))
        conn_end(g, c, &g->err.connect);
}

/* The handshake or raw connect is done: c may carry messages now. */
static void conn_open(struct lg *g, struct conn *c)
{
    c->state = C_OPEN;
    g->pending--;
    g->established++;
    g->open++;
    set_events(g, c, EPOLLIN);
}

/* Write the rest of the upgrade request. */
static void hs_send(struct lg *g, struct conn *c)
{
    while (c->hs_off < c->hs_len) {
        ssize_t n =
            send(c->fd, c->hs + c->hs_off, c->hs_len - c->hs_off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            conn_end(g, c, &g->err.handshake);
            return;
        }
        c->hs_off += (size_t)n;
    }
    c->hs_len = c->hs_off = 0;
    c->state = C_HS_RECV;
    set_events(g, c, EPOLLIN);
}

/* The connect finished: check it, then send the upgrade (RFC 6455 §4.1). */
static void on_connected(struct lg *g, struct conn *c)
{
    char key[LG_KEY_LEN + 1];
    int err = 0;
    socklen_t len = sizeof(err);
    int n;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        conn_end(g, c, &g->err.connect);
        return;
    }
    if (g->o.raw) {
        conn_open(g, c);
        return;
    }
    c->hs = malloc(HS_CAP);
    if (c->hs == NULL || lg_handshake_key(key, c->accept) < 0) {
        conn_end(g, c, &g->err.handshake);
        return;
    }
    n = snprintf(c->hs, HS_CAP,
                 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 g->o.path, g->o.host, g->o.port, key);
    c->hs_len = (size_t)n;
    c->hs_off = 0;
    c->state = C_HS_SEND;
    hs_send(g, c);
}

static int consume(struct lg *g, struct conn *c, const uint8_t *p, size_t n);

/* Read the 101 response head; bytes after it belong to the frame parser. */
static void hs_recv(struct lg *g, struct conn *c)
{
    ssize_t n = recv(c->fd, c->hs + c->hs_len, HS_CAP - 1 - c->hs_len, 0);
    const char *why, *end;
    size_t head, rest;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_end(g, c, &g->err.handshake);
        return;
    }
    c->hs_len += (size_t)n;
    c->hs[c->hs_len] = '\0';
    end = strstr(c->hs, "\r\n\r\n");
    if (end == NULL) {
        if (c->hs_len == HS_CAP - 1)
            conn_end(g, c, &g->err.handshake);
        return;
    }
    head = (size_t)(end - c->hs) + 4;
    if (lg_handshake_check(c->hs, head - 2, c->accept, &why) < 0) {
        if (g->reported++ < 3) /* one line each would flood the pipe */
            fprintf(stderr, "loadgen: handshake: %s\n", why);
        conn_end(g, c, &g->err.handshake);
        return;
    }
    rest = c->hs_len - head;
    memcpy(g->rbuf, c->hs + head, rest);
    free(c->hs);
    c->hs = NULL;
    conn_open(g, c);
    if (rest > 0)
        consume(g, c, g->rbuf, rest);
}

/* Queue a masked control frame; 0, or -1 while one is still unsent. */
static int queue_ctl(struct conn *c, uint8_t op, const uint8_t *p, size_t n)
{
    uint8_t mask[4];

    if (c->ctl_out_off < c->ctl_out_len || lg_random(mask, 4) < 0)
        return -1;
    c->ctl_out_len = (uint8_t)lg_frame_write(c->ctl_out, op, p, n, mask);
    c->ctl_out_off = 0;
    return 0;
}

/* May the bytes of message seq (offset off already written) go out now? */
static bool may_send(const struct lg *g, const struct conn *c, uint64_t seq)
{
    if (seq == c->tx_seq && c->tx_off > 0)
        return true; /* never leave a frame half written */
    return g->sending && c->state == C_OPEN &&
           seq - c->rx_seq < (uint64_t)g->o.inflight;
}

/* Gather what c may write now: a pending control frame, then messages. */
static int build_iov(const struct lg *g, struct conn *c, struct iovec *iov)
{
    uint64_t seq = c->tx_seq;
    size_t off = c->tx_off;
    int n = 0;

    if (off == 0 && c->ctl_out_off < c->ctl_out_len)
        iov[n++] = (struct iovec){c->ctl_out + c->ctl_out_off,
                                  (size_t)(c->ctl_out_len - c->ctl_out_off)};
    while (n < MAX_IOV && may_send(g, c, seq)) {
        const struct msg *m = msg_for(g, c, seq);

        iov[n++] = (struct iovec){m->frame + off, m->frame_len - off};
        off = 0;
        seq++;
    }
    return n;
}

/* Account for w bytes written in the order build_iov() gathered them. */
static void advance(struct lg *g, struct conn *c, size_t w)
{
    if (c->tx_off == 0 && c->ctl_out_off < c->ctl_out_len) {
        size_t left = (size_t)(c->ctl_out_len - c->ctl_out_off);
        size_t take = w < left ? w : left;

        c->ctl_out_off = (uint8_t)(c->ctl_out_off + take);
        w -= take;
    }
    while (w > 0) {
        const struct msg *m = msg_for(g, c, c->tx_seq);
        size_t take = m->frame_len - c->tx_off;

        if (c->tx_off == 0) {
            c->sent_ns[c->tx_seq % (uint64_t)g->o.inflight] = g->now;
            g->outstanding++;
        }
        if (take > w)
            take = w;
        c->tx_off += take;
        w -= take;
        if (c->tx_off == m->frame_len) {
            c->tx_seq++;
            c->tx_off = 0;
        }
    }
}

/* Write what c may write until the socket is full or nothing is left. */
static void conn_flush(struct lg *g, struct conn *c)
{
    struct iovec iov[MAX_IOV];

    for (int round = 0; round < WRITES_PER_WAKE && conn_live(c); round++) {
        struct msghdr mh = {.msg_iov = iov};
        ssize_t w;

        mh.msg_iovlen = (size_t)build_iov(g, c, iov);
        if (mh.msg_iovlen == 0) {
            set_events(g, c, EPOLLIN);
            return;
        }
        g->now = now_ns();
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            conn_end(g, c, &g->err.closed);
            return;
        }
        advance(g, c, (size_t)w);
    }
    if (conn_live(c))
        set_events(g, c, EPOLLIN | EPOLLOUT);
}

/* Echo rx_seq is complete and verified. */
static void message_done(struct lg *g, struct conn *c)
{
    uint64_t sent = c->sent_ns[c->rx_seq % (uint64_t)g->o.inflight];

    if (g->phase == PH_LOAD) {
        g->window_msgs++;
        lg_stats_add(&g->lat, g->now - sent);
    }
    g->total_msgs++;
    g->outstanding--;
    c->rx_seq++;
    c->rx_off = 0;
}

/* Compare n echoed payload bytes with what message rx_seq carried. */
static int verify(struct lg *g, struct conn *c, const uint8_t *p, size_t n)
{
    bool sent = c->rx_seq < c->tx_seq ||
                (g->o.raw && c->rx_seq == c->tx_seq && c->tx_off > 0);
    const struct msg *m = msg_for(g, c, c->rx_seq);

    if (!sent || c->rx_off + n > g->o.size ||
        memcmp(p, m->payload + c->rx_off, n) != 0) {
        conn_end(g, c, &g->err.verify);
        return -1;
    }
    c->rx_off += n;
    return 0;
}

/* Raw TCP: the echo is the byte stream we sent, message after message. */
static int consume_raw(struct lg *g, struct conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = g->o.size - c->rx_off;

        if (take > n)
            take = n;
        if (verify(g, c, p, take) < 0)
            return -1;
        p += take;
        n -= take;
        if (c->rx_off == g->o.size)
            message_done(g, c);
    }
    return 0;
}

/* A whole control frame from the server (RFC 6455 §5.5). */
static int on_control(struct lg *g, struct conn *c)
{
    if (c->ctl_op == 0x9) { /* §5.5.2: answer a ping with a pong */
        queue_ctl(c, 0xA, c->ctl_in, c->ctl_in_len);
        conn_flush(g, c);
    } else if (c->ctl_op == 0x8) {
        /* The server closed: expected only after our own close. */
        conn_end(g, c, c->state == C_CLOSING ? NULL : &g->err.closed);
        return -1;
    }
    return 0;
}

/* The payload of the current frame is complete. */
static int end_frame(struct lg *g, struct conn *c)
{
    c->in_frame = false;
    if (c->ctl)
        return on_control(g, c);
    if (!c->data_fin)
        return 0;
    c->in_msg = false;
    if (c->rx_off != g->o.size) {
        conn_end(g, c, &g->err.verify);
        return -1;
    }
    message_done(g, c);
    return 0;
}

/* A frame header arrived: check the opcode against the message order. */
static int start_frame(struct lg *g, struct conn *c, const struct lg_frame *f)
{
    uint8_t want = g->o.binary ? 0x2 : 0x1;

    c->ctl = f->opcode >= 0x8;
    if (c->ctl) {
        c->ctl_op = f->opcode;
        c->ctl_in_len = 0;
    } else if ((f->opcode == 0x0) != c->in_msg ||
               (f->opcode != 0x0 && f->opcode != want)) {
        conn_end(g, c, &g->err.verify); /* §5.4 order, or wrong type */
        return -1;
    } else {
        c->in_msg = true;
        c->data_fin = f->fin;
    }
    c->frame_left = f->len;
    c->in_frame = true;
    return f->len == 0 ? end_frame(g, c) : 0;
}

/* Take header bytes into the stash; returns bytes used, or -1. */
static ssize_t take_header(struct lg *g, struct conn *c, const uint8_t *p,
                           size_t n)
{
    size_t old = c->hdr_len;
    size_t copy = n < LG_MAX_HEADER - old ? n : LG_MAX_HEADER - old;
    struct lg_frame f;
    int h;

    memcpy(c->hdr + old, p, copy);
    h = lg_frame_parse(c->hdr, old + copy, &f);
    if (h < 0) {
        conn_end(g, c, &g->err.verify);
        return -1;
    }
    if (h == 0) {
        c->hdr_len = (uint8_t)(old + copy);
        return (ssize_t)copy;
    }
    c->hdr_len = 0;
    if (start_frame(g, c, &f) < 0)
        return -1;
    return (ssize_t)((size_t)h - old);
}

/* Take payload bytes of the current frame; returns bytes used, or -1. */
static ssize_t take_payload(struct lg *g, struct conn *c, const uint8_t *p,
                            size_t n)
{
    size_t take = c->frame_left < n ? (size_t)c->frame_left : n;

    if (c->ctl) {
        memcpy(c->ctl_in + c->ctl_in_len, p, take);
        c->ctl_in_len = (uint8_t)(c->ctl_in_len + take);
    } else if (verify(g, c, p, take) < 0) {
        return -1;
    }
    c->frame_left -= take;
    if (c->frame_left == 0 && end_frame(g, c) < 0)
        return -1;
    return (ssize_t)take;
}

/* Feed n received bytes to c's parser; -1 when c was closed. */
static int consume(struct lg *g, struct conn *c, const uint8_t *p, size_t n)
{
    if (g->o.raw)
        return consume_raw(g, c, p, n);
    while (n > 0) {
        ssize_t used =
            c->in_frame ? take_payload(g, c, p, n) : take_header(g, c, p, n);

        if (used < 0)
            return -1;
        p += used;
        n -= (size_t)used;
    }
    return 0;
}

/* c is readable: read and verify, then top up its messages in flight. */
static void conn_read(struct lg *g, struct conn *c)
{
    for (int i = 0; i < READS_PER_WAKE; i++) {
        ssize_t n = recv(c->fd, g->rbuf, RBUF_SIZE, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_end(g, c, c->state == C_CLOSING ? NULL : &g->err.closed);
            return;
        }
        g->now = now_ns();
        if (consume(g, c, g->rbuf, (size_t)n) < 0)
            return;
        if ((size_t)n < RBUF_SIZE)
            break;
    }
    if (c->state == C_OPEN && g->sending)
        conn_flush(g, c);
}

/* Dispatch one readiness event by connection state. */
static void on_event(struct lg *g, struct conn *c, uint32_t ev)
{
    switch (c->state) {
    case C_CONNECTING:
        on_connected(g, c);
        break;
    case C_HS_SEND:
        hs_send(g, c);
        break;
    case C_HS_RECV:
        hs_recv(g, c);
        break;
    case C_OPEN:
    case C_CLOSING:
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
            conn_read(g, c);
        if (conn_live(c) && (ev & EPOLLOUT))
            conn_flush(g, c);
        break;
    default:
        break;
    }
}

/* Wait up to ms for events and handle them. */
static void poll_once(struct lg *g, int ms)
{
    struct epoll_event ev[1024];
    int n = epoll_wait(g->ep, ev, 1024, ms);

    for (int i = 0; i < n; i++)
        on_event(g, ev[i].data.ptr, ev[i].events);
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
        uint64_t now = now_ns();

        if (now >= deadline)
            break;
        while (p == PH_CONNECT && g->started < g->o.conns &&
               g->pending < g->o.batch)
            conn_start(g, &g->conns[g->started]);
        poll_once(g, ms_until(now, deadline));
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
            conn_end(g, c, &g->err.connect);
    }
}

/* Start the load: every open connection sends its first K messages. */
static void start_load(struct lg *g)
{
    g->sending = true;
    g->t_load = now_ns();
    g->phase = PH_LOAD;
    for (long i = 0; i < g->o.conns; i++) {
        if (g->conns[i].state == C_OPEN)
            conn_flush(g, &g->conns[i]);
    }
}

/* Say goodbye: a close frame (RFC 6455 §7.1.2) or a TCP FIN, then wait. */
static void close_all(struct lg *g)
{
    static const uint8_t normal[2] = {0x03, 0xE8}; /* 1000 */

    g->sending = false;
    for (long i = 0; i < g->o.conns; i++) {
        struct conn *c = &g->conns[i];

        if (c->state != C_OPEN) {
            conn_end(g, c, NULL);
            continue;
        }
        c->state = C_CLOSING;
        g->closing++;
        if (g->o.raw)
            shutdown(c->fd, SHUT_WR);
        else if (queue_ctl(c, 0x8, normal, 2) == 0)
            conn_flush(g, c);
    }
    run_phase(g, PH_CLOSE, now_ns() + CLOSE_WAIT_NS);
    for (long i = 0; i < g->o.conns; i++)
        conn_end(g, &g->conns[i], NULL);
}

/* Set up the address, epoll, buffers, messages and connections. */
static int setup(struct lg *g)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(g->o.host, g->o.port, &hints, &g->ai);

    if (rc != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", g->o.host, gai_strerror(rc));
        return -1;
    }
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->rbuf = malloc(RBUF_SIZE);
    g->conns = calloc((size_t)g->o.conns, sizeof(*g->conns));
    if (g->ep < 0 || g->rbuf == NULL || g->conns == NULL || build_msgs(g) < 0)
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
    for (long i = 0; g->conns && i < g->o.conns; i++)
        free(g->conns[i].sent_ns);
    for (size_t i = 0; g->msgs && i < g->nmsgs; i++) {
        if (g->msgs[i].frame != g->msgs[i].payload)
            free(g->msgs[i].frame);
        free(g->msgs[i].payload);
    }
    free(g->msgs);
    free(g->conns);
    free(g->rbuf);
    lg_stats_free(&g->lat);
    if (g->ep >= 0)
        close(g->ep);
    if (g->ai)
        freeaddrinfo(g->ai);
}

/* The error counters as JSON members. */
static void print_errors(const struct lg *g)
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
    printf("{\"mode\":\"idle\",\"phase\":\"%s\",\"raw\":%s,\"conns\":%ld,"
           "\"established\":%ld,\"open\":%ld,",
           phase, g->o.raw ? "true" : "false", g->o.conns, g->established,
           open);
    print_errors(g);
    printf("}\n");
    fflush(stdout);
}

/* The CPU seconds this process has used. */
static double self_cpu(void)
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

    printf("{\"mode\":\"%s\",\"conns\":%ld,\"established\":%ld,"
           "\"inflight\":%ld,\"size\":%zu,\"type\":\"%s\",\"seconds\":%.3f,"
           "\"msgs\":%llu,\"msgs_total\":%llu,\"msgs_per_s\":%.1f,"
           "\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"client_cpu_s\":%.3f,",
           g->o.raw ? "raw" : "ws", g->o.conns, g->established, g->o.inflight,
           g->o.size, g->o.binary ? "binary" : "text", secs,
           (unsigned long long)g->window_msgs,
           (unsigned long long)g->total_msgs, rate,
           rate * (double)g->o.size / 1e6, lg_stats_quantile(&g->lat, 0.5),
           lg_stats_quantile(&g->lat, 0.99), lg_stats_quantile(&g->lat, 0.999),
           lg_stats_quantile(&g->lat, 1.0), self_cpu());
    print_errors(g);
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
    run_phase(g, PH_HOLD, now_ns() + (uint64_t)(g->o.seconds * 1e9));
    print_idle(g, "end", count_open(g));
}

/* Send for D seconds, then wait up to the grace period for the echoes. */
static void run_load(struct lg *g)
{
    if (g->established == 0) {
        g->t_load = g->t_end = now_ns();
        return;
    }
    start_load(g);
    run_phase(g, PH_LOAD, g->t_load + (uint64_t)(g->o.seconds * 1e9));
    g->t_end = now_ns();
    g->sending = false;
    run_phase(g, PH_DRAIN, now_ns() + (uint64_t)(g->o.grace * 1e9));
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
    t0 = now_ns();
    run_phase(&g, PH_CONNECT, t0 + (uint64_t)(g.o.connect_timeout * 1e9));
    give_up_connects(&g);
    if (g.o.idle) {
        run_idle(&g);
    } else {
        run_load(&g);
    }
    close_all(&g);
    if (!g.o.idle)
        print_load(&g);
    teardown(&g);
    return 0;
}
