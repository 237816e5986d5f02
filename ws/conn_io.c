/*
 * conn_io.c - a connection's bytes through its transport: reads into the
 * server's shared buffer (or the connection's own while a frame or
 * request is incomplete) handed to the HTTP phase or the session; the
 * output queue written as the socket takes it, a large frame straight
 * from its payload; the linger after our FIN. The only code that reads or
 * writes a connection's socket, and only through srv->transport.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/conn.h"

#define READS_PER_WAKE 4            /* fairness: reads per readiness event */
#define WRITE_PER_WAKE (1u << 20)   /* fairness: bytes per flush */
#define READ_PAUSE_BYTES (1u << 20) /* stop reading while this much waits */
#define IDLE_BUF_KEEP 0u            /* idle connections keep no buffers */
#define SPARE_OUT_MAX 16384u        /* the largest output buffer kept spare */
/* Pieces (own bytes, shared frames) per gather write. */
#define WRITE_IOV 64

/* Whether c wants to read now: not while a large reply waits (backpressure)
   and not once the session has stopped taking input. */
static bool wants_read(const struct ws_conn *c)
{
    switch (c->phase) {
    case WS_CONN_HTTP:
        return !c->close_after_write && ws_conn_queued(c) < READ_PAUSE_BYTES;
    case WS_CONN_WS:
        return !ws_session_finished(&c->session) &&
               ws_conn_queued(c) < READ_PAUSE_BYTES;
    case WS_CONN_LINGER:
        return true;
    default:
        return false;
    }
}

/*
 * Input the transport holds (TLS records read ahead, or decrypted and not
 * yet taken) raises no readiness: a connection that stopped reading with
 * some there (its read budget spent, or output backpressure) is queued to
 * read again before the loop next waits, instead of stalling until the
 * peer sends more.
 */
static void queue_input(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (c->queued_input)
        return;
    c->queued_input = true;
    c->input_next = s->input_list;
    s->input_list = c;
}

void ws_conn_unqueue_input(struct ws_conn *c)
{
    struct ws_conn **p = &c->srv->input_list;

    if (!c->queued_input)
        return;
    while (*p != c)
        p = &(*p)->input_next;
    *p = c->input_next;
    c->queued_input = false;
}

/* Watch exactly the events c needs now (as its transport translates
   them). Not while c waits on the flush list: its flush, at the end of
   the loop iteration, decides with the output written (an echo would
   otherwise add and drop write interest, two epoll_ctl calls, for every
   message). */
static void update_interest(struct ws_conn *c)
{
    int want = 0;

    if (c->phase == WS_CONN_DEAD || c->queued_flush)
        return;
    if (wants_read(c))
        want |= WS_IO_READ;
    if (ws_conn_queued(c) > 0)
        want |= WS_IO_WRITE;
    if ((want & WS_IO_READ) && c->more_input)
        queue_input(c);
    ws_loop_set_events(c->srv->loop, c->tr.fd,
                       c->srv->transport->events(&c->tr, want));
}

/*
 * The server keeps one emptied output buffer for the next connection that
 * queues output: echoing small messages then costs no malloc and free per
 * event, and an idle connection still holds no buffer. Borrowed before a
 * send, handed back (or freed) once the output is empty again.
 */
void ws_conn_out_borrow(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (c->out.data == NULL && s->spare_out.data != NULL) {
        c->out = s->spare_out;
        s->spare_out = (struct ws_buf){0};
    }
}

void ws_conn_out_release(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    if (ws_conn_queued(c) > 0)
        return;
    if (s->spare_out.data == NULL && c->out.cap <= SPARE_OUT_MAX) {
        ws_buf_clear(&c->out);
        s->spare_out = c->out;
        c->out = (struct ws_buf){0};
        return;
    }
    ws_buf_shrink(&c->out, IDLE_BUF_KEEP);
}

/* Write iov[0..n) through the transport: the bytes taken, 0 when the
   socket takes none now, or a negative code (broken). */
static ssize_t write_vec(struct ws_conn *c, const struct iovec *iov, int n)
{
    ssize_t w = c->srv->transport->writev(&c->tr, iov, n);

    return w == WS_EAGAIN ? 0 : w;
}

/*
 * Our last bytes are out: send FIN and wait (bounded) for the peer's, so
 * that unread input does not turn our close into a reset that could
 * destroy the close frame in flight (RFC 6455 §7.1.1: the server closes
 * the TCP connection first).
 */
static void begin_linger(struct ws_conn *c)
{
    c->srv->transport->shutdown(&c->tr);
    c->phase = WS_CONN_LINGER;
    ws_buf_clear(&c->in);
    ws_conn_timer(c, c->srv->cfg.close_timeout_ms);
}

/* The output queue is empty: hand its buffer back, tell a paused
   producer, and end the connection if that was its last word. */
static void drained(struct ws_conn *c)
{
    struct ws_server *s = c->srv;

    ws_conn_out_release(c);
    if (c->drain_armed) {
        c->drain_armed = false;
        if (s->cb.on_drain && c->phase == WS_CONN_WS)
            WS_CALLBACK(s, s->cb.on_drain(c, s->user_data));
    }
    if (c->close_after_write ||
        (c->phase == WS_CONN_WS && ws_session_finished(&c->session)))
        begin_linger(c);
}

/* The transport failed with code (not the peer's end of stream): tell
   on_error why when the code is a TLS one, and end c. */
static void broken(struct ws_conn *c, ssize_t code)
{
    if (code == WS_ETLS) {
        char why[200];

        c->srv->transport->why(&c->tr, why, sizeof(why));
        ws_server_error(c->srv, c, WS_ETLS, "tls: %s: %s", ws_conn_peer(c),
                        why);
    }
    ws_conn_end(c);
}

/* Write what the socket takes, up to the per-wake budget: own bytes and
   shared frames in their order, several in one gather write. */
static void flush(struct ws_conn *c)
{
    size_t budget = WRITE_PER_WAKE;

    ws_conn_uncork(c);

    while (ws_conn_queued(c) > 0 && budget > 0) {
        struct iovec iov[WRITE_IOV];
        int n = ws_outq_iov(c->shared, &c->out, iov, WRITE_IOV, budget);
        ssize_t w = write_vec(c, iov, n);

        if (w == 0)
            break;
        if (w < 0) {
            broken(c, w); /* the peer may have closed after its close */
            return;
        }
        ws_outq_consume(&c->shared, &c->out, (size_t)w);
        c->session.out_shared = ws_outq_bytes(c->shared);
        budget -= (size_t)w;
    }
    if (ws_conn_queued(c) == 0)
        drained(c);
    ws_conn_show_threads(c);
    update_interest(c);
}

int ws_conn_queue_shared(struct ws_conn *c, uint8_t opcode,
                         struct ws_shared *frame)
{
    int rc;

    ws_conn_uncork(c); /* frames c's input produced go first */
    rc = ws_session_share_check(&c->session, &c->out, opcode);

    if (rc == 0 &&
        (rc = ws_outq_push(&c->shared, &c->out, ws_shared_ref(frame))) < 0)
        ws_shared_release(frame);
    if (rc == 0)
        c->session.out_shared = ws_outq_bytes(c->shared);
    return rc;
}

void ws_conn_flush(struct ws_conn *c)
{
    if (c->phase != WS_CONN_DEAD && !c->queued_kill)
        flush(c);
}

/* Header and payload in one gather write, from where they lie: the bytes
   the socket took (0 when none, or when it is broken: the next flush
   finds that, as for any send). */
static size_t write_frame_now(struct ws_conn *c, const uint8_t *hdr,
                              size_t hlen, const void *payload, size_t plen)
{
    struct iovec iov[2] = {
        {.iov_base = (void *)(uintptr_t)hdr, .iov_len = hlen},
        {.iov_base = (void *)(uintptr_t)payload, .iov_len = plen},
    };
    ssize_t w = write_vec(c, iov, 2);

    return w > 0 ? (size_t)w : 0;
}

/*
 * A large frame while nothing waits before it: header and payload go out
 * in one gather write from where they lie, and only what the socket did
 * not take is copied into the queue. The session checks and builds the
 * header; the decision and the write are the connection's.
 */
static int send_direct(struct ws_conn *c, uint8_t opcode, const void *data,
                       size_t len, bool text_valid)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    ssize_t hlen =
        ws_session_frame_begin(&c->session, opcode, data, len, text_valid, hdr);

    if (hlen < 0)
        return (int)hlen;
    return ws_session_frame_rest(
        &c->session, &c->out, hdr, (size_t)hlen, data, len,
        write_frame_now(c, hdr, (size_t)hlen, data, len));
}

/* Whether a data frame may go out before the loop's flush: nothing waits
   before it (so it may wait whole if the socket takes none of it). */
static bool nothing_waits(const struct ws_conn *c)
{
    return ws_conn_queued(c) == 0 && c->session.state == WS_SESSION_OPEN;
}

/* Whether a frame may be written from where its payload lies, now or
   corked: nothing waits and it goes uncompressed. */
static bool unqueued_ok(const struct ws_conn *c, uint8_t opcode, size_t len)
{
    return nothing_waits(c) && !ws_session_compresses(&c->session, opcode, len);
}

/* Whether a large frame is written at once from where it lies. */
static bool direct_ok(const struct ws_conn *c, uint8_t opcode, size_t len)
{
    return len >= WS_CONN_DIRECT_MIN && unqueued_ok(c, opcode, len);
}

/* The same for a large message that goes compressed: its frame is
   written from the compressor's output. */
static bool deflated_direct_ok(const struct ws_conn *c, uint8_t opcode,
                               size_t len)
{
    return len >= WS_CONN_DIRECT_MIN && nothing_waits(c) &&
           ws_session_compresses(&c->session, opcode, len);
}

/*
 * A large message compressed while nothing waits: its frame goes out from
 * the compressor's output in one gather write, and only what the socket
 * did not take is copied into the queue (the compressor's output is
 * reused by the next message). One that compressed to little is queued,
 * so that several such leave in one write.
 */
static int send_deflated(struct ws_conn *c, uint8_t opcode, const void *data,
                         size_t len, bool text_valid)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    const uint8_t *payload;
    size_t plen;
    ssize_t hlen =
        ws_session_deflated_begin(&c->session, &c->out, opcode, data, len,
                                  text_valid, hdr, &payload, &plen);

    if (hlen < 0)
        return (int)hlen;
    return ws_session_deflated_rest(
        &c->session, &c->out, hdr, (size_t)hlen, payload, plen,
        plen >= WS_CONN_DIRECT_MIN
            ? write_frame_now(c, hdr, (size_t)hlen, payload, plen)
            : 0);
}

/* Whether data[0..len) lies inside span k (an empty span holds none). */
static bool in_span(const struct ws_cork_span *k, const void *data, size_t len)
{
    uintptr_t p = (uintptr_t)data, lo = (uintptr_t)k->lo, hi = (uintptr_t)k->hi;

    return lo < hi && p >= lo && p <= hi && len <= hi - p;
}

/* Whether the frame may wait for the end of c's input: data lies in that
   input, which stays where it is until then, and there is room. */
static bool corkable(const struct ws_conn *c, const void *data, size_t len)
{
    const struct ws_server *s = c->srv;

    /* Inside the input, not merely past its start: a message assembled
       from fragments lies in the session's own buffer, which is freed
       once delivered. The frames before it count as queued: past the
       cap, the send goes the usual way and meets it. */
    return s->cork == c &&
           (in_span(&s->cork_in[0], data, len) ||
            in_span(&s->cork_in[1], data, len)) &&
           s->ncorked < WS_CORK_MAX &&
           ws_conn_corked_bytes(c) <= s->cfg.max_output_bytes;
}

/* Whether the frame is worth corking: one of WS_CORK_MIN bytes or more,
   or any once one is corked (queueing it would write those first: one
   write more for the read). */
static bool cork_worth(const struct ws_conn *c, size_t len)
{
    return len >= WS_CORK_MIN || (c->srv->cork == c && c->srv->ncorked > 0);
}

/* Check the frame and keep its header and payload for ws_conn_uncork(). */
static int cork_frame(struct ws_conn *c, uint8_t opcode, const void *data,
                      size_t len, bool text_valid)
{
    struct ws_server *s = c->srv;
    struct ws_corked *k = &s->corked[s->ncorked];
    ssize_t hlen = ws_session_frame_begin(&c->session, opcode, data, len,
                                          text_valid, k->hdr);

    if (hlen < 0)
        return (int)hlen;
    k->hlen = (size_t)hlen;
    k->data = data;
    k->len = len;
    s->ncorked++;
    return 0;
}

size_t ws_conn_corked_bytes(const struct ws_conn *c)
{
    const struct ws_server *s = c->srv;
    size_t n = 0;

    for (size_t i = 0; s->cork == c && i < s->ncorked; i++)
        n += s->corked[i].hlen + s->corked[i].len;
    return n;
}

/*
 * The corked frames in one gather write; what the socket did not take is
 * queued, and before it what the session queued meanwhile (a pong, a
 * close), which came after them. Nothing else can be queued meanwhile:
 * every other send uncorks first, and no shared frame waits (a frame is
 * corked only when nothing is queued, and sharing uncorks).
 */
void ws_conn_uncork(struct ws_conn *c)
{
    struct ws_server *s = c->srv;
    struct iovec iov[2 * WS_CORK_MAX];
    size_t n = s->ncorked, left;
    struct ws_buf later;
    ssize_t w;
    int rc = 0;

    if (s->cork != c || n == 0)
        return;
    s->ncorked = 0;
    if (c->queued_kill || c->phase == WS_CONN_DEAD)
        return; /* being torn down: its output goes with it */
    for (size_t i = 0; i < n; i++) {
        iov[2 * i] = (struct iovec){s->corked[i].hdr, s->corked[i].hlen};
        iov[2 * i + 1] = (struct iovec){(void *)(uintptr_t)s->corked[i].data,
                                        s->corked[i].len};
    }
    /* A broken connection is found by the next flush, as for any send. */
    w = write_vec(c, iov, (int)(2 * n));
    left = w > 0 ? (size_t)w : 0;
    later = c->out;
    c->out = (struct ws_buf){0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct ws_corked *k = &s->corked[i];
        size_t took = left < k->hlen + k->len ? left : k->hlen + k->len;

        rc = ws_session_frame_rest(&c->session, &c->out, k->hdr, k->hlen,
                                   k->data, k->len, took);
        left -= took;
    }
    if (ws_buf_size(&c->out) == 0) {
        ws_buf_free(&c->out);
        c->out = later;
    } else if (rc == 0 && ws_buf_size(&later) > 0) {
        rc = ws_buf_append(&c->out, ws_buf_head(&later), ws_buf_size(&later),
                           SIZE_MAX);
        ws_buf_free(&later);
    } else {
        ws_buf_free(&later);
    }
    if (rc < 0)
        ws_conn_kill(c, WS_CLOSE_ABNORMAL);
    ws_conn_after_session(c);
}

int ws_conn_send_frame(struct ws_conn *c, uint8_t opcode, const void *data,
                       size_t len, bool text_valid)
{
    if (cork_worth(c, len) && unqueued_ok(c, opcode, len) &&
        corkable(c, data, len))
        return cork_frame(c, opcode, data, len, text_valid);
    ws_conn_uncork(c); /* frames c's input produced go first */
    if (direct_ok(c, opcode, len))
        return send_direct(c, opcode, data, len, text_valid);
    if (deflated_direct_ok(c, opcode, len))
        return send_deflated(c, opcode, data, len, text_valid);
    if (text_valid)
        return ws_session_send_valid(&c->session, &c->out, opcode, data, len);
    return ws_session_send(&c->session, &c->out, opcode, data, len);
}

/* Feed input to the session. */
static bool input_ws(struct ws_conn *c, uint8_t *p, size_t len, size_t *used)
{
    *used = ws_session_feed(&c->session, p, len, &c->out);
    ws_conn_after_session(c);
    return *used > 0;
}

/* Hand p[0..len) (p[len] writable) to the layer that owns the connection
   now; returns the bytes consumed. Bytes after the upgrade request go on
   to the session. */
static size_t process_input(struct ws_conn *c, uint8_t *p, size_t len)
{
    size_t pos = 0;
    bool progress = true;

    while (progress && pos < len && !c->queued_kill) {
        size_t used = 0;

        if (c->phase == WS_CONN_HTTP)
            progress = ws_conn_input_http(c, p + pos, len - pos, &used);
        else if (c->phase == WS_CONN_WS)
            progress = input_ws(c, p + pos, len - pos, &used);
        else
            progress = false;
        pos += used;
    }
    return pos;
}

/* Cork c's sends whose payload lies in p[0..len) or q[0..qlen):
   they wait for cork_end(), so that the replies to several messages read
   at once leave in one write. */
static void cork_begin(struct ws_conn *c, const uint8_t *p, size_t len,
                       const uint8_t *q, size_t qlen)
{
    struct ws_server *s = c->srv;

    s->cork = c;
    s->cork_in[0] = (struct ws_cork_span){p, p + len};
    s->cork_in[1] = (struct ws_cork_span){q, q + qlen};
}

static void cork_end(struct ws_conn *c)
{
    ws_conn_uncork(c);
    c->srv->cork = NULL;
}

/* process_input() with c's sends of what p holds corked. */
static size_t process_corked(struct ws_conn *c, uint8_t *p, size_t len)
{
    size_t used;

    cork_begin(c, p, len, NULL, 0);
    used = process_input(c, p, len);
    cork_end(c);
    return used;
}

/* Read into n pieces through the transport. */
static ssize_t read_vec(struct ws_conn *c, const struct iovec *iov, int n)
{
    return c->srv->transport->readv(&c->tr, iov, n);
}

/* Read up to len bytes through the transport. */
static ssize_t read_into(struct ws_conn *c, void *buf, size_t len)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};

    return read_vec(c, &iov, 1);
}

/* Read and discard: after our FIN we wait only for the peer's. */
static void drain(struct ws_conn *c)
{
    uint8_t scratch[4096];

    /* Past the budget only what the transport holds is read. */
    for (int i = 0;
         i < READS_PER_WAKE || c->srv->transport->pending(&c->tr) > 0; i++) {
        ssize_t n = read_into(c, scratch, sizeof(scratch));

        if (n == WS_EAGAIN)
            return;
        if (n <= 0) {
            ws_conn_end(c);
            return;
        }
    }
}

/* The most c->in may hold: a frame header, the frame the session awaits
   whole (up to 1 MiB) or, before the upgrade, part of a request, on top
   of a shared read's worth. */
static size_t input_cap(const struct ws_conn *c)
{
    size_t cap = WS_READ_SHARED + 2 * WS_FRAME_MAX_HEADER;

    if (c->phase == WS_CONN_HTTP)
        cap += c->srv->cfg.max_header_bytes;
    if (c->phase == WS_CONN_WS)
        cap += ws_session_need(&c->session);
    return cap;
}

/* Whether input left over now would ever be consumed. */
static bool takes_input(const struct ws_conn *c)
{
    if (c->queued_kill)
        return false;
    if (c->phase == WS_CONN_HTTP)
        return !c->close_after_write;
    return c->phase == WS_CONN_WS && !ws_session_finished(&c->session);
}

/*
 * Keep the n bytes at p that a read into the server's shared buffer left
 * unconsumed (a partial frame or request) in c's own buffer, with room for
 * all of a frame the session awaits whole.
 */
static int keep_input(struct ws_conn *c, const uint8_t *p, size_t n)
{
    size_t need = c->phase == WS_CONN_WS ? ws_session_need(&c->session) : 0;
    size_t room = (need > n ? need : n) + 1;

    if (n == 0 || !takes_input(c))
        return 0;
    if (ws_buf_reserve(&c->in, room, input_cap(c)) < 0)
        return WS_ENOMEM;
    memcpy(ws_buf_tail(&c->in), p, n);
    ws_buf_commit(&c->in, n);
    return 0;
}

/* Room for n more bytes in c->in and one past them, which the session
   borrows for a NUL; false (c killed) when there is none. */
static bool reserve_in(struct ws_conn *c, size_t n)
{
    if (ws_buf_reserve(&c->in, n + 1, input_cap(c)) == 0)
        return true;
    ws_conn_kill(c, WS_CLOSE_ABNORMAL);
    return false;
}

/*
 * With nothing pending, the bytes go to the server's shared buffer, are
 * processed there, and only what is left over is copied to c's own: a
 * connection between messages holds no buffer, and small messages cost no
 * allocation. A transport that returns a record per read (TLS) fills the
 * buffer on from what it holds, so that a message of up to a chunk
 * arrives whole there, as from a plain socket.
 */
static ssize_t read_shared(struct ws_conn *c, size_t *asked)
{
    struct ws_server *s = c->srv;
    size_t used;
    ssize_t n;

    /* A few chunks and a frame header more: a message of a chunk's size
       arrives whole in one read. The last byte is for the NUL. */
    *asked = WS_READ_SHARED - 1;
    n = read_into(c, s->read_buf, *asked);
    if (n <= 0)
        return n;
    used = process_corked(c, s->read_buf, (size_t)n);
    if (keep_input(c, s->read_buf + used, (size_t)n - used) < 0)
        ws_conn_kill(c, WS_CLOSE_ABNORMAL);
    return n;
}

/*
 * The rest of a frame the session awaits whole (ws_session_need), read
 * exactly to its end into c's own buffer, so that the buffer is empty
 * once the frame is taken and the next frame starts at its front, never
 * moved to make it contiguous; and in the same call whatever follows it,
 * into the shared buffer: the frame's end and the messages behind it cost
 * one system call, not one each. The frame goes first, then what
 * followed, under one cork, so that their replies leave in one write;
 * only an incomplete tail is kept.
 */
static ssize_t read_rest(struct ws_conn *c, size_t rest, size_t *asked)
{
    struct ws_server *s = c->srv;
    struct iovec iov[2];
    size_t first, more, used = 0;
    ssize_t n;

    if (!reserve_in(c, rest))
        return WS_EAGAIN;
    iov[0] = (struct iovec){.iov_base = ws_buf_tail(&c->in), .iov_len = rest};
    iov[1] =
        (struct iovec){.iov_base = s->read_buf, .iov_len = WS_READ_SHARED - 1};
    *asked = rest + iov[1].iov_len;
    n = read_vec(c, iov, 2);
    if (n <= 0)
        return n;
    first = (size_t)n < rest ? (size_t)n : rest;
    more = (size_t)n - first;
    ws_buf_commit(&c->in, first);
    cork_begin(c, ws_buf_head(&c->in), ws_buf_size(&c->in), s->read_buf, more);
    ws_buf_consume(&c->in,
                   process_input(c, ws_buf_head(&c->in), ws_buf_size(&c->in)));
    /* What followed waits behind anything the frame left unconsumed. */
    if (more > 0 && ws_buf_size(&c->in) == 0)
        used = process_input(c, s->read_buf, more);
    /* Uncorked before the tail is kept: c->in may move then. */
    cork_end(c);
    if (keep_input(c, s->read_buf + used, more - used) < 0)
        ws_conn_kill(c, WS_CLOSE_ABNORMAL);
    return n;
}

/*
 * One read and what follows it: into the shared buffer when nothing is
 * pending, into c's own to the end of a frame the session awaits whole
 * (and on into the shared one), or on after a partial request or frame
 * header. Returns the bytes read (asked: how many could have been), 0 for
 * end of stream, or a negative code.
 */
static ssize_t read_some(struct ws_conn *c, size_t *asked)
{
    size_t have = ws_buf_size(&c->in), used;
    size_t need = c->phase == WS_CONN_WS ? ws_session_need(&c->session) : 0;
    ssize_t n;

    if (have == 0)
        return read_shared(c, asked);
    if (need > have)
        return read_rest(c, need - have, asked);
    *asked = WS_READ_CHUNK;
    if (!reserve_in(c, *asked))
        return WS_EAGAIN;
    n = read_into(c, ws_buf_tail(&c->in), *asked);
    if (n <= 0)
        return n;
    ws_buf_commit(&c->in, (size_t)n);
    used = process_corked(c, ws_buf_head(&c->in), ws_buf_size(&c->in));
    ws_buf_consume(&c->in, used);
    return n;
}

/* Read what the socket has, up to the per-wake budget, and process it. A
   short read means the socket is empty for now, unless the transport
   holds bytes that readiness will not report: those are read on, or
   queued (queue_input) when the budget or backpressure stops the reads. */
static void readable(struct ws_conn *c)
{
    const struct ws_transport_ops *tr = c->srv->transport;
    ssize_t n = WS_EAGAIN;
    bool read_any = false;

    if (c->phase == WS_CONN_LINGER) {
        drain(c);
        return;
    }
    for (int i = 0; i < READS_PER_WAKE && wants_read(c); i++) {
        size_t asked;

        n = read_some(c, &asked);
        read_any = true;
        if (n == WS_EAGAIN)
            break;
        if (n <= 0) {
            if (n == 0)
                ws_conn_end(c); /* end of stream */
            else
                broken(c, n);
            return;
        }
        c->last_rx_ms = (uint32_t)ws_loop_now(c->srv->loop);
        if (c->queued_kill || ((size_t)n < asked && tr->pending(&c->tr) == 0))
            break;
    }
    if (read_any) /* else what the transport holds is unchanged */
        c->more_input = n > 0 && !c->queued_kill && tr->pending(&c->tr) > 0;
    if (ws_buf_size(&c->in) == 0)
        ws_buf_shrink(&c->in, IDLE_BUF_KEEP);
    update_interest(c);
}

void ws_conn_read_queued(struct ws_server *s)
{
    struct ws_conn *list = s->input_list;

    s->input_list = NULL;
    while (list) {
        struct ws_conn *c = list;

        list = c->input_next;
        c->queued_input = false;
        if (c->phase != WS_CONN_DEAD && !c->queued_kill)
            readable(c);
    }
    ws_conn_settle(s);
}

void ws_conn_on_io(struct ws_loop *loop, int fd, int events, void *arg)
{
    struct ws_conn *c = arg;

    (void)loop;
    (void)fd;
    events = c->srv->transport->ready(&c->tr, events);
    if ((events & WS_IO_WRITE) && !c->queued_kill)
        flush(c);
    if ((events & WS_IO_READ) && !c->queued_kill && c->phase != WS_CONN_DEAD)
        readable(c);
    /* No settle here: the server settles once after every ready
       connection had its turn, so that what several of them published
       to one subscriber leaves in one write, not one write each. */
}
