/*
 * lg_conn.c - one load generator connection: non-blocking connect, the
 * RFC 6455 §4.1 client handshake, pipelined masked frames out, and every
 * echoed byte checked against what was sent. Raw mode skips the
 * handshake and the framing; with --tls the bytes go through lg_tls.c.
 * Never blocks; never waits on one peer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

#define READS_PER_WAKE 8 /* fairness between connections */
#define WRITES_PER_WAKE 16
#define MAX_IOV 64
#define HS_CAP 4096 /* largest response head we accept */

/* CLOCK_MONOTONIC in ns. */
uint64_t lg_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The variant that message seq of connection c carries. */
static const struct msg *msg_for(const struct lg *g, const struct conn *c,
                                 uint64_t seq)
{
    return &g->msgs[((uint64_t)(c - g->conns) + seq) % g->nmsgs];
}

/* Change c's epoll interest to ev and what TLS needs besides, skipping
   the call when unchanged. */
static void set_events(struct lg *g, struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.data.ptr = c};

    c->want = ev;
    ev |= lg_tls_events(c->tls);
    if (c->events == ev)
        return;
    c->events = e.events = ev;
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* recv() or SSL_read(): bytes, 0 at the end, or -1 with errno. */
static ssize_t io_read(struct conn *c, void *buf, size_t n)
{
    return c->tls ? lg_tls_read(c->tls, buf, n) : recv(c->fd, buf, n, 0);
}

/* sendmsg() or SSL_write(): bytes taken, or -1 with errno. */
static ssize_t io_write(struct conn *c, struct iovec *iov, int n)
{
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};

    return c->tls ? lg_tls_write(c->tls, iov, n)
                  : sendmsg(c->fd, &mh, MSG_NOSIGNAL);
}

/* Whether c still owns a socket. */
bool lg_conn_live(const struct conn *c)
{
    return c->state != C_NEW && c->state != C_DONE;
}

/* Close c for good; counter (may be NULL) is the error to count. */
void lg_conn_end(struct lg *g, struct conn *c, uint64_t *counter)
{
    if (!lg_conn_live(c))
        return;
    if (c->state < C_OPEN)
        g->pending--;
    else
        g->open--;
    if (c->state == C_CLOSING)
        g->closing--;
    if (counter == NULL && g->o.rate && c->state == C_CLOSING) {
        /* A cycle counts once the server has closed its side properly. */
        if (c->rx_seq > 0 && (g->o.raw || c->got_close))
            lg_rate_count(g, c);
        else
            counter = &g->err.closed;
    }
    if (counter)
        (*counter)++;
    g->outstanding -= c->tx_seq + (c->tx_off > 0) - c->rx_seq;
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
    free(c->hs);
    c->hs = NULL;
    lg_tls_free(c->tls);
    c->tls = NULL;
}

int lg_conn_port(const struct lg *g, const struct conn *c)
{
    return (int)((c - g->conns) % g->o.nports);
}

/* Open one socket and start its non-blocking connect. */
void lg_conn_start(struct lg *g, struct conn *c)
{
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    const struct addrinfo *ai = g->ai[lg_conn_port(g, c)];
    int one = 1, fd;

    g->started++;
    c->t_start = lg_now_ns();
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g->err.connect++;
        c->state = C_DONE;
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = C_CONNECTING;
    c->want = c->events = EPOLLOUT;
    g->pending++;
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &e) < 0 ||
        (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS))
        lg_conn_end(g, c, &g->err.connect);
}

/* The handshake or raw connect is done: c may carry messages now. */
static void conn_open(struct lg *g, struct conn *c)
{
    c->state = C_OPEN;
    g->pending--;
    g->established++;
    g->open++;
    set_events(g, c, EPOLLIN);
    if (g->sending) /* --connect-rate: the echo goes out at once */
        lg_conn_flush(g, c);
}

/* Write the rest of the upgrade request. */
static void hs_send(struct lg *g, struct conn *c)
{
    while (c->hs_off < c->hs_len) {
        struct iovec iov = {c->hs + c->hs_off, c->hs_len - c->hs_off};
        ssize_t n = io_write(c, &iov, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            lg_conn_end(g, c, &g->err.handshake);
            return;
        }
        c->hs_off += (size_t)n;
    }
    c->hs_len = c->hs_off = 0;
    c->state = C_HS_RECV;
    set_events(g, c, EPOLLIN);
}

/* The byte stream is there (TCP, or TLS on it): open a raw connection,
   or send the upgrade request (RFC 6455 §4.1). */
static void start_upgrade(struct lg *g, struct conn *c)
{
    char key[LG_KEY_LEN + 1];
    int n;

    if (g->o.raw) {
        conn_open(g, c);
        return;
    }
    c->hs = malloc(HS_CAP);
    if (c->hs == NULL || lg_handshake_key(key, c->accept) < 0) {
        lg_conn_end(g, c, &g->err.handshake);
        return;
    }
    if (g->o.deflate != LG_DEFLATE_NONE && c->z == NULL) {
        c->z = malloc(sizeof(*c->z));
        if (c->z == NULL ||
            lg_z_init(c->z, g->o.deflate, g->o.inflight, g->o.size) < 0) {
            lg_conn_end(g, c, &g->err.handshake);
            return;
        }
    }
    n = snprintf(c->hs, HS_CAP,
                 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 g->o.path, g->o.host, g->o.ports[lg_conn_port(g, c)], key,
                 lg_deflate_offer(g->o.deflate));
    c->hs_len = (size_t)n;
    c->hs_off = 0;
    c->state = C_HS_SEND;
    hs_send(g, c);
}

/* Take the TLS handshake one step further. */
static void tls_step(struct lg *g, struct conn *c)
{
    uint32_t want = 0;
    int rc = lg_tls_handshake(c->tls, &want);

    if (rc < 0) {
        lg_conn_end(g, c, &g->err.handshake);
    } else if (rc == 0) {
        set_events(g, c, want);
    } else {
        if (g->tls_desc[0] == '\0')
            lg_tls_describe(c->tls, g->tls_desc, sizeof(g->tls_desc));
        start_upgrade(g, c);
    }
}

/* The connect finished: check it, then start TLS or the upgrade. */
static void on_connected(struct lg *g, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        lg_conn_end(g, c, &g->err.connect);
        return;
    }
    if (g->tls == NULL) {
        start_upgrade(g, c);
        return;
    }
    c->tls = lg_tls_new(g->tls, c->fd);
    if (c->tls == NULL) {
        lg_conn_end(g, c, &g->err.handshake);
        return;
    }
    c->state = C_TLS;
    tls_step(g, c);
}

static int consume(struct lg *g, struct conn *c, const uint8_t *p, size_t n);

/* Read until the 101 response head is whole (TLS may hold more of it
   than the socket shows) and return where it ends, or NULL. */
static const char *hs_read(struct lg *g, struct conn *c)
{
    for (;;) {
        ssize_t n = io_read(c, c->hs + c->hs_len, HS_CAP - 1 - c->hs_len);
        const char *end;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return NULL;
        if (n <= 0) {
            lg_conn_end(g, c, &g->err.handshake);
            return NULL;
        }
        c->hs_len += (size_t)n;
        c->hs[c->hs_len] = '\0';
        end = strstr(c->hs, "\r\n\r\n");
        if (end)
            return end;
        if (c->hs_len == HS_CAP - 1) {
            lg_conn_end(g, c, &g->err.handshake);
            return NULL;
        }
    }
}

static void conn_read(struct lg *g, struct conn *c);

/* Read the 101 response head; bytes after it belong to the frame parser. */
static void hs_recv(struct lg *g, struct conn *c)
{
    const char *why, *end = hs_read(g, c);
    size_t head, rest;
    char saved;

    if (end == NULL)
        return;
    head = (size_t)(end - c->hs) + 4;
    saved = c->hs[head]; /* the first frame byte, if it came along */
    c->hs[head] = '\0';
    if (lg_handshake_check(c->hs, head - 2, c->accept, c->z != NULL, &why) <
            0 ||
        (c->z && lg_z_answer(c->z, c->hs) < 0 &&
         (why = "permessage-deflate not accepted") != NULL)) {
        if (g->reported++ < 3) /* one line each would flood the pipe */
            fprintf(stderr, "loadgen: handshake: %s\n", why);
        lg_conn_end(g, c, &g->err.handshake);
        return;
    }
    rest = c->hs_len - head;
    c->hs[head] = saved;
    memcpy(g->rbuf, c->hs + head, rest);
    free(c->hs);
    c->hs = NULL;
    conn_open(g, c);
    if (rest > 0 && consume(g, c, g->rbuf, rest) < 0)
        return;
    if (c->tls && lg_conn_live(c))
        conn_read(g, c); /* what OpenSSL read ahead, past the head */
}

/* Queue a masked control frame; 0, or -1 while one is still unsent. */
int lg_conn_queue_ctl(struct conn *c, uint8_t op, const uint8_t *p, size_t n)
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
           seq - c->rx_seq < (uint64_t)g->o.inflight &&
           (!g->o.rate || seq == 0); /* one echo per cycle */
}

/* The frame of message seq: the pre-built one, or with context kept the
   one compressed for c, built in send order into a ring of K (message seq
   is echoed before seq + K is built, so its slot is free again). */
static const uint8_t *frame_of(const struct lg *g, struct conn *c, uint64_t seq,
                               size_t *len)
{
    const struct msg *m = msg_for(g, c, seq);
    struct lg_z *z = c->z;
    uint64_t k = (uint64_t)g->o.inflight;

    if (g->o.deflate != LG_DEFLATE_CONTEXT) {
        *len = m->frame_len;
        return m->frame;
    }
    for (; z->built <= seq; z->built++) {
        const struct msg *b = msg_for(g, c, z->built);

        z->ring_len[z->built % k] =
            lg_z_frame(&z->tx, z->tx_reset, z->ring[z->built % k],
                       g->o.binary ? 0x2 : 0x1, b->payload, g->o.size);
    }
    *len = z->ring_len[seq % k];
    return z->ring[seq % k];
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
        size_t len;
        const uint8_t *f = frame_of(g, c, seq, &len);

        iov[n++] = (struct iovec){(uint8_t *)f + off, len - off};
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
        size_t len;
        size_t take = (frame_of(g, c, c->tx_seq, &len), len) - c->tx_off;

        if (c->tx_off == 0) {
            c->sent_ns[c->tx_seq % (uint64_t)g->o.inflight] = g->now;
            g->outstanding++;
        }
        if (take > w)
            take = w;
        c->tx_off += take;
        w -= take;
        if (c->tx_off == len) {
            c->tx_seq++;
            c->tx_off = 0;
        }
    }
}

/* Write what c may write until the socket is full or nothing is left. */
void lg_conn_flush(struct lg *g, struct conn *c)
{
    struct iovec iov[MAX_IOV];

    if (g->fan) { /* --fanout: lg_fanout.c owns what goes out */
        int rc = lg_fanout_flush(g, c);

        if (rc < 0)
            lg_conn_end(g, c, &g->err.closed);
        else
            set_events(g, c, rc ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return;
    }

    for (int round = 0; round < WRITES_PER_WAKE && lg_conn_live(c); round++) {
        int n = build_iov(g, c, iov);
        ssize_t w;

        if (n == 0 && !lg_tls_pending(c->tls)) {
            set_events(g, c, EPOLLIN);
            return;
        }
        g->now = lg_now_ns();
        w = io_write(c, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            lg_conn_end(g, c, &g->err.closed);
            return;
        }
        advance(g, c, (size_t)w);
    }
    if (lg_conn_live(c))
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
    if (g->o.rate && c->state == C_OPEN)
        lg_conn_close(g, c); /* the one echo of the cycle is back */
}

/* Compare n echoed payload bytes with what message rx_seq carried. */
static int verify(struct lg *g, struct conn *c, const uint8_t *p, size_t n)
{
    bool sent = c->rx_seq < c->tx_seq ||
                (g->o.raw && c->rx_seq == c->tx_seq && c->tx_off > 0);
    const struct msg *m = msg_for(g, c, c->rx_seq);

    if (g->fan) { /* a delivery, not an echo */
        if (lg_fanout_piece(g, c, p, n) == 0)
            return 0;
        lg_conn_end(g, c, &g->err.verify);
        return -1;
    }
    if (!sent || c->rx_off + n > g->o.size ||
        memcmp(p, m->payload + c->rx_off, n) != 0) {
        lg_conn_end(g, c, &g->err.verify);
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
        lg_conn_queue_ctl(c, 0xA, c->ctl_in, c->ctl_in_len);
        lg_conn_flush(g, c);
    } else if (c->ctl_op == 0x8) {
        /* The server closed: expected only after our own close. */
        if (g->o.rate && c->state == C_CLOSING) {
            c->got_close = true; /* §7.1.1: the server closes TCP first */
            return 0;
        }
        lg_conn_end(g, c, c->state == C_CLOSING ? NULL : &g->err.closed);
        return -1;
    }
    return 0;
}

/* lg_z_inflate()'s check: an inflated piece of the echo. */
struct piece_ctx {
    struct lg *g;
    struct conn *c;
};

static int check_piece(void *ctx, const uint8_t *p, size_t n)
{
    struct piece_ctx *pc = ctx;

    return verify(pc->g, pc->c, p, n);
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
    if (c->z && c->z->rx_compressed &&
        lg_z_inflate(c->z, NULL, 0, true, g->zbuf, ZBUF_SIZE, check_piece,
                     &(struct piece_ctx){g, c}) < 0) {
        if (lg_conn_live(c))
            lg_conn_end(g, c, &g->err.verify);
        return -1;
    }
    if (g->fan && lg_fanout_end(g, c) == 0)
        return 0;
    if (g->fan || c->rx_off != g->o.size) {
        lg_conn_end(g, c, &g->err.verify);
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
    /* RFC 7692 §6.1: RSV1 only on the first frame of a data message. */
    if (f->rsv1 && (c->ctl || f->opcode == 0x0)) {
        lg_conn_end(g, c, &g->err.verify);
        return -1;
    }
    if (!c->ctl && f->opcode != 0x0 && c->z)
        c->z->rx_compressed = f->rsv1;
    if (!c->ctl)
        g->wire_rx += f->header_len + f->len;
    if (c->ctl) {
        c->ctl_op = f->opcode;
        c->ctl_in_len = 0;
    } else if ((f->opcode == 0x0) != c->in_msg ||
               (f->opcode != 0x0 && f->opcode != want)) {
        lg_conn_end(g, c, &g->err.verify); /* §5.4 order, or wrong type */
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
    h = lg_frame_parse(c->hdr, old + copy, c->z != NULL, &f);
    if (h < 0) {
        lg_conn_end(g, c, &g->err.verify);
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
    } else if (c->z && c->z->rx_compressed) {
        if (lg_z_inflate(c->z, p, take, false, g->zbuf, ZBUF_SIZE, check_piece,
                         &(struct piece_ctx){g, c}) < 0) {
            if (lg_conn_live(c)) /* bad data, not a bad piece */
                lg_conn_end(g, c, &g->err.verify);
            return -1;
        }
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
    /* TLS reads on until EAGAIN: OpenSSL may hold what epoll cannot see. */
    for (int i = 0; i < READS_PER_WAKE || c->tls; i++) {
        ssize_t n = io_read(c, g->rbuf, RBUF_SIZE);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            lg_conn_end(g, c, c->state == C_CLOSING ? NULL : &g->err.closed);
            return;
        }
        g->now = lg_now_ns();
        if (consume(g, c, g->rbuf, (size_t)n) < 0)
            return;
        if ((size_t)n < RBUF_SIZE && c->tls == NULL)
            break;
    }
    if (c->state == C_OPEN && g->sending && g->fan == NULL)
        lg_conn_flush(g, c); /* fan-out publishers send by the clock */
}

/* Start the closing handshake of open connection c. */
void lg_conn_close(struct lg *g, struct conn *c)
{
    static const uint8_t normal[2] = {0x03, 0xE8}; /* 1000 */

    c->state = C_CLOSING;
    g->closing++;
    if (!g->o.raw) {
        if (lg_conn_queue_ctl(c, 0x8, normal, 2) == 0)
            lg_conn_flush(g, c);
    } else if (c->tls) {
        lg_tls_close_notify(c->tls);
    } else {
        shutdown(c->fd, SHUT_WR);
    }
}

/* Dispatch one readiness event by connection state. */
void lg_conn_event(struct lg *g, struct conn *c, uint32_t ev)
{
    ev = lg_tls_remap(c->tls, ev);
    /* A write left pending in a state that does not write (the upgrade
       request, while the response is awaited) goes out first. */
    if (lg_tls_pending(c->tls) && (ev & (EPOLLOUT | EPOLLIN)) &&
        c->state != C_OPEN && c->state != C_CLOSING &&
        lg_tls_write(c->tls, NULL, 0) < 0 && errno != EAGAIN) {
        lg_conn_end(g, c, &g->err.handshake);
        return;
    }
    switch (c->state) {
    case C_CONNECTING:
        on_connected(g, c);
        break;
    case C_TLS:
        tls_step(g, c);
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
        if (lg_conn_live(c) && (ev & EPOLLOUT))
            lg_conn_flush(g, c);
        break;
    default:
        break;
    }
    if (c->tls && lg_conn_live(c))
        set_events(g, c, c->want); /* TLS's needs may have changed */
}
