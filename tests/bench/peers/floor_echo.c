/*
 * floor_echo.c - the least an RFC 6455 echo server does, as a floor for
 * the benchmark. After the opening handshake (§4.2.2), each client frame
 * gets its header parsed (§5.2), its payload unmasked (§5.3) and, if text,
 * checked as UTF-8 (§8.1), and its echo framed and written, with this
 * library's codecs and the same paths ws_echo takes through them: the
 * fused unmask and check where it applies, replies to small messages
 * gathered into one write, a large one written straight from the payload.
 *
 * Nothing else: no API or callbacks, no limits, no fragments (the load
 * generator sends none) and no control frames (a close or a ping ends the
 * connection). So what ws_echo costs beyond this is the library's, and
 * what this costs beyond raw_echo is the protocol's, on this machine.
 *   floor_echo [--host H] [--port P]   (default 127.0.0.1:9002)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/handshake.h"
#include "tests/bench/peers/peer_loop.h"
#include "ws/conn.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/session.h"
#include "ws/utf8.h"
#include "ws/ws.h"

/* What ws_echo reads with nothing pending: 512 KiB and a frame header,
   several large frames in one read (ws/conn.h, WS_READ_SHARED). */
#define READ_SIZE ((512u << 10) + WS_FRAME_MAX_HEADER)
#define MAX_REQUEST 8192u      /* the opening handshake's bytes */
#define MAX_FRAME (256u << 20) /* beyond: the connection is dropped */
#define REPLY_BUF (256u << 10) /* small replies gathered per read */

/* A connection's bytes that a read left cut: a request or a frame. */
struct conn {
    bool open;          /* the handshake is done */
    unsigned char *buf; /* owned; NULL when nothing is cut */
    size_t have, need;  /* bytes in buf; bytes to read before trying again */
};

static struct conn *conns; /* owned; indexed by fd */
static size_t nconns;
static unsigned char *shared;  /* owned: reads with nothing cut land here */
static unsigned char *replies; /* owned: REPLY_BUF */
static size_t nreplies;

/* fd's state, the table grown to hold it; NULL when out of memory. */
static struct conn *conn_of(int fd)
{
    if ((size_t)fd >= nconns) {
        size_t n = (size_t)fd * 2 + 16;
        struct conn *t = realloc(conns, n * sizeof(*t));

        if (t == NULL)
            return NULL;
        memset(t + nconns, 0, (n - nconns) * sizeof(*t));
        conns = t;
        nconns = n;
    }
    return &conns[fd];
}

static void on_drop(int fd)
{
    if ((size_t)fd >= nconns)
        return;
    free(conns[fd].buf);
    conns[fd] = (struct conn){0};
}

/* Write the gathered replies. */
static int flush_replies(struct ws_peer *p, int fd)
{
    struct iovec iov = {replies, nreplies};

    if (nreplies == 0)
        return 0;
    nreplies = 0;
    return ws_peer_send(p, fd, &iov, 1);
}

/* Gather the 101 answering the whole upgrade request of n bytes at req
   (the load generator's: the key header spelt as RFC 6455 §4.1 spells
   it; this is not a general HTTP parser). */
static int answer_upgrade(const char *req, size_t n)
{
    static const char name[] = "\r\nSec-WebSocket-Key:";
    const char *key = memmem(req, n, name, sizeof(name) - 1), *end;
    char accept[WS_ACCEPT_KEY_LEN + 1], resp[256];
    ssize_t len;

    if (key == NULL)
        return -1;
    key += sizeof(name) - 1;
    while (*key == ' ')
        key++;
    end = memmem(key, n - (size_t)(key - req), "\r\n", 2);
    if (end == NULL ||
        ws_handshake_accept_key(key, (size_t)(end - key), accept) < 0)
        return -1;
    len = ws_handshake_write_101(resp, sizeof(resp), accept, NULL);
    if (len < 0)
        return -1;
    memcpy(replies + nreplies, resp, (size_t)len);
    nreplies += (size_t)len;
    return 0;
}

/* Unmask and check a text payload as ws/session.c's unmask_and_check()
   does: the fused pass, then the rest. */
static int unmask_and_check(const struct ws_frame_header *h, uint8_t *pl)
{
    size_t len = (size_t)h->payload_len, i = 0;
    struct ws_utf8 v;

    if (h->opcode != WS_OP_TEXT) {
        ws_mask(pl, len, h->mask, 0);
        return 0;
    }
    ws_utf8_reset(&v);
    if (len >= WS_UTF8_UNMASK_MIN)
        i = ws_utf8_unmask_prefix(&v, pl, len, h->mask, 0);
    ws_mask(pl + i, len - i, h->mask, i);
    if (ws_utf8_feed(&v, pl + i, len - i, NULL) < 0 || !ws_utf8_complete(&v))
        return -1;
    return 0;
}

/* Echo one whole frame's payload: gathered if small, else written
   straight from where it lies, header and payload in one sendmsg. */
static int echo_frame(struct ws_peer *p, int fd,
                      const struct ws_frame_header *h, uint8_t *pl)
{
    size_t len = (size_t)h->payload_len;
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    ssize_t hlen =
        ws_frame_header_write(hdr, sizeof(hdr), true, h->opcode, len, NULL);
    struct iovec iov[2] = {{hdr, (size_t)hlen}, {pl, len}};

    if (hlen < 0)
        return -1;
    if (len >= WS_CONN_DIRECT_MIN)
        return flush_replies(p, fd) < 0 ? -1 : ws_peer_send(p, fd, iov, 2);
    if (nreplies + (size_t)hlen + len > REPLY_BUF && flush_replies(p, fd) < 0)
        return -1;
    memcpy(replies + nreplies, hdr, (size_t)hlen);
    memcpy(replies + nreplies + hlen, pl, len);
    nreplies += (size_t)hlen + len;
    return 0;
}

/*
 * Take what is whole in buf[0..n): the request, then frame after frame.
 * Returns the bytes taken, or -1 to drop the connection.
 */
static ssize_t take(struct ws_peer *p, int fd, struct conn *c, uint8_t *buf,
                    size_t n)
{
    size_t pos = 0;

    if (!c->open) {
        const uint8_t *end = memmem(buf, n, "\r\n\r\n", 4);

        if (end == NULL)
            return n < MAX_REQUEST ? 0 : -1;
        pos = (size_t)(end - buf) + 4;
        if (answer_upgrade((const char *)buf, pos) < 0)
            return -1;
        c->open = true;
    }
    while (pos < n) {
        struct ws_frame_header h;
        int rc =
            ws_frame_header_parse(buf + pos, n - pos, WS_FRAME_FROM_CLIENT, &h);

        if (rc == WS_EAGAIN || (rc > 0 && h.payload_len > n - pos - rc))
            break;
        if (rc < 0 || !h.fin || h.payload_len > MAX_FRAME ||
            (h.opcode != WS_OP_TEXT && h.opcode != WS_OP_BINARY))
            return -1;
        if (unmask_and_check(&h, buf + pos + rc) < 0 ||
            echo_frame(p, fd, &h, buf + pos + rc) < 0)
            return -1;
        pos += (size_t)rc + (size_t)h.payload_len;
    }
    return flush_replies(p, fd) < 0 ? -1 : (ssize_t)pos;
}

/* How many bytes c must hold before n cut bytes at buf can go on: the
   whole frame when its header is there, else a header's worth. */
static size_t need_for(const struct conn *c, const uint8_t *buf, size_t n)
{
    struct ws_frame_header h;
    int rc;

    if (!c->open)
        return n + 1024 < MAX_REQUEST ? n + 1024 : MAX_REQUEST;
    rc = ws_frame_header_parse(buf, n, WS_FRAME_FROM_CLIENT, &h);
    if (rc > 0 && h.payload_len <= MAX_FRAME)
        return (size_t)rc + (size_t)h.payload_len;
    return WS_FRAME_MAX_HEADER > n ? WS_FRAME_MAX_HEADER : n + 1;
}

/* Keep the n cut bytes at buf in c's own buffer, sized for all it needs. */
static int keep(struct conn *c, const uint8_t *buf, size_t n)
{
    size_t need = need_for(c, buf, n);
    unsigned char *b = malloc(need);

    if (b == NULL)
        return -1;
    memmove(b, buf, n);
    free(c->buf);
    c->buf = b;
    c->have = n;
    c->need = need;
    return 0;
}

/* After a read into c's own buffer: go on once it holds what it needed. */
static int take_kept(struct ws_peer *p, int fd, struct conn *c)
{
    uint8_t *b = c->buf;
    ssize_t used;

    if (c->have < c->need)
        return 0;
    used = take(p, fd, c, b, c->have);
    if (used < 0)
        return -1;
    c->buf = NULL;
    if ((size_t)used < c->have && keep(c, b + used, c->have - (size_t)used) < 0)
        used = -1;
    free(b);
    return used < 0 ? -1 : 0;
}

/* fd is readable: read what is cut to its end, else into the shared
   buffer, and echo every whole frame. */
static int on_read(struct ws_peer *p, int fd)
{
    struct conn *c = conn_of(fd);

    for (int i = 0;
         c != NULL && i < WS_PEER_READS_PER_WAKE && !ws_peer_blocked(p, fd);
         i++) {
        uint8_t *dst = c->buf ? c->buf + c->have : shared;
        size_t want = c->buf ? c->need - c->have : READ_SIZE;
        ssize_t n = recv(fd, dst, want, 0), used;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        if (dst != shared) {
            c->have += (size_t)n;
            if (take_kept(p, fd, c) < 0)
                return -1;
        } else {
            used = take(p, fd, c, shared, (size_t)n);
            if (used < 0 || ((size_t)used < (size_t)n &&
                             keep(c, shared + used, (size_t)n - used) < 0))
                return -1;
        }
        if ((size_t)n < want)
            return 0;
    }
    return c != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    shared = malloc(READ_SIZE);
    replies = malloc(REPLY_BUF);
    if (shared == NULL || replies == NULL)
        return 1;
    return ws_peer_main(argc, argv, "floor_echo", on_read, on_drop);
}
