/*
 * session.c - the RFC 6455 protocol state machine for one connection after
 * the handshake: frame order (§5.4), control frames (§5.5), UTF-8 text
 * (§5.6, §8.1), closing (§7) and the limits. It never reads or writes a
 * socket: bytes come in through ws_session_feed(), frames go out into a
 * caller's buffer. This file is the receiving side; session_send.c the
 * sending side and the queueing both use (session_out.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ws/session.h"
#include "ws/mask.h"
#include "ws/session_out.h"
#include "ws/ws.h"

/* Inside this file only: data that is not valid DEFLATE (RFC 7692 gives
   no code; the payload is invalid data, 1007), kept apart from WS_EUTF8
   so that the close frame says which. Below every code of net/error.h. */
#define BAD_DEFLATE (-4999)

/* Bytes kept by an idle message buffer between messages. */
#define WS_SESSION_MSG_KEEP 4096u

/* The most a frame's first bytes reserve for the rest of it: a frame
   declared larger grows its buffer as the bytes arrive, so a header alone
   cannot make the session allocate much. */
#define WS_SESSION_RESERVE (1u << 20)

/* Map a codec error to the RFC 6455 §7.4.1 close code that reports it. */
static uint16_t close_code_for(int err)
{
    switch (err) {
    case WS_EUTF8:
    case BAD_DEFLATE:
        return WS_CLOSE_INVALID_DATA;
    case WS_ETOOBIG:
        return WS_CLOSE_TOO_BIG;
    case WS_ENOMEM:
        return WS_CLOSE_INTERNAL_ERROR;
    default:
        return WS_CLOSE_PROTOCOL_ERROR;
    }
}

void ws_session_init(struct ws_session *s, const struct ws_session_config *cfg,
                     void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->state = WS_SESSION_OPEN;
    s->cfg = cfg;
    s->ctx = ctx;
}

void ws_session_set_deflate(struct ws_session *s, struct ws_deflate *z)
{
    ws_deflate_free(s->z);
    s->z = z;
}

void ws_session_free(struct ws_session *s)
{
    ws_deflate_free(s->z);
    s->z = NULL;
    if (s->msg) {
        ws_buf_free(s->msg);
        free(s->msg);
        s->msg = NULL;
    }
}

bool ws_session_finished(const struct ws_session *s)
{
    return s->state != WS_SESSION_OPEN && s->state != WS_SESSION_CLOSE_SENT;
}

/* Fail with the close code, and the reason, that err calls for. */
static void fail_err(struct ws_session *s, struct ws_buf *out, int err)
{
    if (err == BAD_DEFLATE)
        ws_session_fail_why(s, out, WS_CLOSE_INVALID_DATA,
                            "invalid compressed data");
    else
        ws_session_fail(s, out, close_code_for(err));
}

/* Call the message handler with data[len] temporarily set to NUL. */
static void deliver(struct ws_session *s, uint8_t opcode, uint8_t *data,
                    size_t len)
{
    uint8_t saved = data[len];

    data[len] = 0;
    /* RFC 6455 §7.1.2: once our close is out, data is not delivered. */
    if (s->state == WS_SESSION_OPEN && s->cfg->handler->message)
        s->cfg->handler->message(s->ctx, opcode, data, len);
    data[len] = saved;
}

/* The buffer a message is assembled in, made when one first needs it:
   most connections only ever get messages delivered in place. */
static struct ws_buf *msg_buf(struct ws_session *s)
{
    if (s->msg == NULL)
        s->msg = calloc(1, sizeof(*s->msg));
    return s->msg;
}

static size_t msg_size(const struct ws_session *s)
{
    return s->msg ? ws_buf_size(s->msg) : 0;
}

/*
 * Check a newly parsed frame header against the message state (RFC 6455
 * §5.4) and the limits. Returns 0 or the close code to fail with.
 */
static uint16_t check_frame_start(const struct ws_session *s,
                                  const struct ws_frame_header *h)
{
    bool compressed = (h->rsv & WS_FRAME_RSV1) != 0;

    /* RFC 7692 §6.1: RSV1 marks the first frame of a compressed data
       message (the parser lets it through only once it was negotiated);
       on a control frame or a continuation it is an error. */
    if (compressed &&
        (ws_frame_is_control(h->opcode) || h->opcode == WS_OP_CONT))
        return WS_CLOSE_PROTOCOL_ERROR;
    if (ws_frame_is_control(h->opcode))
        return 0; /* §5.4: control frames may come between fragments */
    if (h->opcode == WS_OP_CONT && !s->in_message)
        return WS_CLOSE_PROTOCOL_ERROR; /* nothing to continue */
    if (h->opcode != WS_OP_CONT && s->in_message)
        return WS_CLOSE_PROTOCOL_ERROR; /* new message inside another */
    if (s->streaming)
        return 0; /* nothing is buffered: the application keeps count */
    if (h->payload_len > s->cfg->lim->max_frame)
        return WS_CLOSE_TOO_BIG;
    /* Checked before any payload is buffered; msg size <= max_message. A
       compressed message is held to the limit as it inflates instead. */
    if (h->opcode == WS_OP_CONT && s->msg_deflate)
        compressed = true;
    if (!compressed && h->payload_len > s->cfg->lim->max_message - msg_size(s))
        return WS_CLOSE_TOO_BIG;
    /* Only continuations add fragments; a new message starts at one. The
       count saturates, so a limit above UINT32_MAX acts as UINT32_MAX. */
    if (h->opcode == WS_OP_CONT &&
        (s->fragments >= s->cfg->lim->max_fragments ||
         s->fragments == UINT32_MAX))
        return WS_CLOSE_TOO_BIG;
    return 0;
}

/* Start tracking a data frame: a new message, or the next fragment. */
static void begin_data_frame(struct ws_session *s)
{
    if (s->frame.opcode != WS_OP_CONT) {
        s->in_message = true;
        s->msg_opcode = s->frame.opcode;
        s->fragments = 0;
        s->stream_first = true;
        s->msg_deflate = (s->frame.rsv & WS_FRAME_RSV1) != 0;
        ws_utf8_reset(&s->utf8);
    }
    if (s->fragments < UINT32_MAX)
        s->fragments++;
}

/* Answer a ping with a pong carrying the same payload (§5.5.2, §5.5.3). */
static void on_ping(struct ws_session *s, struct ws_buf *out, const uint8_t *p,
                    size_t len)
{
    if (s->state != WS_SESSION_OPEN)
        return; /* after our close, §5.5.1 allows no more frames */
    ws_session_queue_frame(s, out, true, 0, WS_OP_PONG, p, len);
}

/* Handle the peer's close frame (§5.5.1, §7.1.2, §7.4). */
static void on_close(struct ws_session *s, struct ws_buf *out, const uint8_t *p,
                     size_t len)
{
    uint16_t code;
    const uint8_t *reason;
    size_t reason_len;
    int rc = ws_frame_close_parse(p, len, &code, &reason, &reason_len);

    if (rc < 0) {
        fail_err(s, out, rc);
        return;
    }
    s->close_received = true;
    s->close_code = code;
    if (s->cfg->handler->close)
        s->cfg->handler->close(s->ctx, code, reason, reason_len);
    /* Echo the status code (§5.5.1) unless our own close went out first. */
    if (!s->close_sent)
        ws_session_queue_close(s, out, code, NULL, 0);
    if (s->state != WS_SESSION_ABORTED)
        s->state = WS_SESSION_DONE;
}

/* A whole, unmasked control frame's payload is at p[0..len); p[len] is
   borrowed for a NUL byte. */
static void handle_control(struct ws_session *s, struct ws_buf *out, uint8_t *p,
                           size_t len)
{
    uint8_t saved = p[len];

    p[len] = 0;
    switch (s->frame.opcode) {
    case WS_OP_PING:
        on_ping(s, out, p, len);
        break;
    case WS_OP_PONG:
        if (s->state == WS_SESSION_OPEN && s->cfg->handler->pong)
            s->cfg->handler->pong(s->ctx, p, len);
        break;
    case WS_OP_CLOSE:
        on_close(s, out, p, len);
        break;
    }
    p[len] = saved;
}

/* Empty the message buffer, and free it when it grew past what an idle
   connection keeps. */
static void release_msg(struct ws_session *s)
{
    if (s->msg == NULL)
        return;
    ws_buf_clear(s->msg);
    if (s->msg->cap > WS_SESSION_MSG_KEEP) {
        ws_buf_free(s->msg);
        free(s->msg);
        s->msg = NULL;
    }
}

/* A whole message is in m: check that its text ends whole (§8.1), borrow
   one spare byte for the NUL that deliver() writes, and deliver it. */
static void deliver_buffered(struct ws_session *s, struct ws_buf *out,
                             struct ws_buf *m)
{
    if (s->msg_opcode == WS_OP_TEXT && !ws_utf8_complete(&s->utf8)) {
        ws_session_fail(s, out, WS_CLOSE_INVALID_DATA); /* §8.1: cut sequence */
        return;
    }
    if (m == NULL || ws_buf_reserve(m, 1, s->cfg->lim->max_message + 1) < 0) {
        ws_session_fail(s, out, WS_CLOSE_INTERNAL_ERROR);
        return;
    }
    s->in_message = false;
    deliver(s, s->msg_opcode, ws_buf_head(m), ws_buf_size(m));
}

/* The last fragment is in: deliver the message assembled. */
static void finish_message(struct ws_session *s, struct ws_buf *out)
{
    deliver_buffered(s, out, msg_buf(s));
    release_msg(s);
}

/* Streaming mode: hand n checked bytes at p (p[n] writable) to the
   application; last: the message's final piece. The message is over
   before its last piece is handed over, so that the handler may already
   switch streaming off. */
static void hand_piece(struct ws_session *s, uint8_t *p, size_t n, bool last)
{
    uint8_t saved;

    if (last)
        s->in_message = false;
    if (s->state != WS_SESSION_OPEN || s->cfg->handler->fragment == NULL)
        return;
    saved = p[n];
    p[n] = 0;
    s->cfg->handler->fragment(s->ctx, s->msg_opcode, p, n, s->stream_first,
                              last);
    p[n] = saved;
    s->stream_first = false;
}

/*
 * Streaming mode: hand n validated payload bytes at p to the application
 * at once. The last piece of a message is only handed over once its text
 * is known to end on a character boundary.
 */
static int stream_piece(struct ws_session *s, uint8_t *p, size_t n)
{
    bool frame_end = s->frame_pos + n == s->frame.payload_len;
    bool last = frame_end && s->frame.fin;

    if (n == 0 && !frame_end)
        return 0; /* a header without payload yet: nothing to say */
    if (last && s->msg_opcode == WS_OP_TEXT && !ws_utf8_complete(&s->utf8))
        return WS_EUTF8;
    hand_piece(s, p, n, last);
    return 0;
}

/*
 * Append n payload bytes at p to the message being assembled, unmasking
 * them on the way (one pass over bytes that are copied anyway), then check
 * the copy as UTF-8. The first piece of a frame reserves room for the
 * whole frame, up to WS_SESSION_RESERVE, so that a message does not
 * regrow (and recopy) its buffer as it arrives.
 */
static int append_payload(struct ws_session *s, const uint8_t *p, size_t n)
{
    uint64_t left = s->frame.payload_len - s->frame_pos;
    struct ws_buf *m = msg_buf(s);
    size_t want = n;
    uint8_t *dst;
    int rc;

    if (s->frame_pos == 0)
        want = left < WS_SESSION_RESERVE ? (size_t)left : WS_SESSION_RESERVE;
    if (want < n)
        want = n;
    if (m == NULL)
        return WS_ENOMEM;
    rc = ws_buf_reserve(m, want, s->cfg->lim->max_message);
    if (rc < 0)
        return rc;
    dst = ws_buf_tail(m);
    if (s->frame.masked)
        ws_mask_copy(dst, p, n, s->frame.mask, s->frame_pos);
    else if (n > 0)
        memcpy(dst, p, n);
    if (s->msg_opcode == WS_OP_TEXT) {
        /* Fail fast, at the first bad byte, even mid-fragment (§8.1). */
        rc = ws_utf8_feed(&s->utf8, dst, n, NULL);
        if (rc < 0)
            return rc;
    }
    ws_buf_commit(m, n);
    return 0;
}

/*
 * Unmask n payload bytes of the current frame in place, p[0] being payload
 * byte offset, and check them as UTF-8 if text, failing fast at the first
 * bad byte (§8.1). Text goes through the fused pass where the CPU has one
 * (each byte loaded once, its check overlapping the memory traffic); the
 * rest slice by slice, so that the check reads what the unmask has just
 * written from the L1 cache. Returns 0 or WS_EUTF8.
 */
static int unmask_and_check(struct ws_session *s, uint8_t *p, size_t n,
                            uint64_t offset, bool text)
{
    size_t i = 0;

    if (text && s->frame.masked && n >= WS_UTF8_UNMASK_MIN)
        i = ws_utf8_unmask_prefix(&s->utf8, p, n, s->frame.mask, offset);
    for (; i < n; i += WS_SESSION_SLICE) {
        size_t k = n - i < WS_SESSION_SLICE ? n - i : WS_SESSION_SLICE;

        if (s->frame.masked)
            ws_mask(p + i, k, s->frame.mask, offset + i);
        if (text && ws_utf8_feed(&s->utf8, p + i, k, NULL) < 0)
            return WS_EUTF8;
    }
    return 0;
}

/* rx_append's check for text: each inflated piece as it appears. */
static int check_text(void *ctx, const uint8_t *p, size_t n)
{
    struct ws_session *s = ctx;

    return ws_utf8_feed(&s->utf8, p, n, NULL);
}

/*
 * Inflate n (unmasked) bytes at p of a compressed message into m (RFC 7692
 * §7.2.2), held to max_message as the output appears, text checked piece
 * by piece as it is produced (§8.1 fail-fast: a bad byte stops the
 * inflating). At the message's end the 00 00 ff ff tail follows and the
 * inflater is let go.
 */
static int inflate_append(struct ws_session *s, struct ws_buf *m,
                          const uint8_t *p, size_t n, bool end)
{
    size_t max = s->cfg->lim->max_message;
    int (*check)(void *, const uint8_t *, size_t) =
        s->msg_opcode == WS_OP_TEXT ? check_text : NULL;
    int rc = m ? ws_deflate_rx_append(s->z, p, n, m, max, check, s) : WS_ENOMEM;

    if (rc == 0 && end)
        rc = ws_deflate_rx_append(s->z, ws_deflate_tail, 4, m, max, check, s);
    /* §7.2.2: after the tail the data must end between blocks; a block
       cut short would hand the tail itself to the application. */
    if (rc == 0 && end && !ws_deflate_rx_complete(s->z))
        rc = WS_EPROTO;
    if (end || rc < 0)
        ws_deflate_rx_end(s->z);
    return rc == WS_EPROTO ? BAD_DEFLATE : rc;
}

/* Streaming mode: check n inflated bytes at p as text, then hand them
   over (hand_piece). */
static int stream_out(struct ws_session *s, uint8_t *p, size_t n, bool last)
{
    if (s->msg_opcode == WS_OP_TEXT &&
        ((n > 0 && ws_utf8_feed(&s->utf8, p, n, NULL) < 0) ||
         (last && !ws_utf8_complete(&s->utf8))))
        return WS_EUTF8;
    hand_piece(s, p, n, last);
    return 0;
}

/*
 * Streaming mode, compressed: inflate n bytes at p in pieces of at most
 * WS_SESSION_SLICE bytes, each handed over as it is produced (so that no
 * size limit is needed and none is imposed); at the message's end the
 * tail follows, then an empty last piece.
 */
static int inflate_stream(struct ws_session *s, const uint8_t *p, size_t n,
                          bool end)
{
    struct ws_buf *m = msg_buf(s);
    const uint8_t *in = p;
    size_t left = n;
    bool tail = false;
    uint8_t *dst;
    int rc;

    if (m == NULL)
        return WS_ENOMEM;
    ws_buf_clear(m);
    if (ws_buf_reserve(m, WS_SESSION_SLICE + 1, WS_SESSION_SLICE + 1) < 0)
        return WS_ENOMEM;
    dst = ws_buf_tail(m);
    for (;;) {
        size_t before = left;
        ssize_t k = ws_deflate_rx_step(s->z, &in, &left, dst, WS_SESSION_SLICE);

        /* A step may take input and give nothing (a block header, the end
           of the stream); one that does neither is stuck: not DEFLATE. */
        if (k < 0 || (k == 0 && left > 0 && left == before)) {
            ws_deflate_rx_end(s->z);
            return k == WS_ENOMEM ? WS_ENOMEM : BAD_DEFLATE;
        }
        if (k == 0 && left > 0)
            continue;
        if (k == 0 && (!end || tail))
            break;
        if (k == 0) { /* all of it in: now the tail (§7.2.2) */
            in = ws_deflate_tail;
            left = sizeof(ws_deflate_tail);
            tail = true;
            continue;
        }
        rc = stream_out(s, dst, (size_t)k, false);
        if (rc < 0)
            return rc;
    }
    if (!end)
        return 0;
    if (!ws_deflate_rx_complete(s->z)) {
        ws_deflate_rx_end(s->z);
        return BAD_DEFLATE; /* §7.2.2: cut inside a block */
    }
    ws_deflate_rx_end(s->z);
    rc = stream_out(s, dst, 0, true);
    release_msg(s); /* the message is over: so is its slice buffer */
    return rc;
}

/*
 * Take n payload bytes of the current data frame at p: append them to the
 * message, or (streaming) unmask them in place and hand them to the
 * application. Control frames never come here: they are taken whole.
 */
static int take_payload(struct ws_session *s, uint8_t *p, size_t n)
{
    int rc;

    if (s->msg_deflate) {
        bool end = s->frame.fin && s->frame_pos + n == s->frame.payload_len;

        if (s->frame.masked)
            ws_mask(p, n, s->frame.mask, s->frame_pos);
        return s->streaming ? inflate_stream(s, p, n, end)
                            : inflate_append(s, msg_buf(s), p, n, end);
    }
    if (!s->streaming)
        return append_payload(s, p, n);
    rc = unmask_and_check(s, p, n, s->frame_pos, s->msg_opcode == WS_OP_TEXT);
    if (rc < 0)
        return rc;
    return stream_piece(s, p, n);
}

/* The current data frame's payload is complete. */
static void finish_frame(struct ws_session *s, struct ws_buf *out)
{
    s->in_frame = false;
    if (s->frame.fin && s->in_message)
        finish_message(s, out); /* a streamed one has ended already */
}

/* Whether a frame is taken only once it is whole in the input: control
   frames (at most 125 bytes, §5.5) and single-frame data messages small
   enough to wait for. */
static bool taken_whole(const struct ws_session *s,
                        const struct ws_frame_header *h)
{
    if (ws_frame_is_control(h->opcode))
        return true;
    return h->fin && h->opcode != WS_OP_CONT && !s->streaming &&
           h->payload_len <= WS_SESSION_IN_PLACE_MAX;
}

/* A compressed message that is whole at p[0..len) (unmasked): inflated in
   one go into the server's shared buffer and delivered from there. */
static void take_whole_inflated(struct ws_session *s, struct ws_buf *out,
                                uint8_t *p, size_t len)
{
    struct ws_buf *m = ws_deflate_whole_buf(s->z);
    int rc = inflate_append(s, m, p, len, true);

    if (rc < 0)
        fail_err(s, out, rc);
    else
        deliver_buffered(s, out, m);
    ws_deflate_whole_done(s->z);
}

/* The awaited frame is whole at p[0..len), unmasked and its text checked
   up to the end: act on it where it lies, with no copy. */
static void take_whole(struct ws_session *s, struct ws_buf *out, uint8_t *p,
                       size_t len)
{
    uint8_t opcode = s->frame.opcode;

    s->awaiting = false;
    if (ws_frame_is_control(opcode)) {
        handle_control(s, out, p, len);
        return;
    }
    if (s->msg_deflate) {
        take_whole_inflated(s, out, p, len);
        return;
    }
    /* §8.1: a text message must not end inside a character. */
    if (opcode == WS_OP_TEXT && !ws_utf8_complete(&s->utf8)) {
        ws_session_fail(s, out, WS_CLOSE_INVALID_DATA);
        return;
    }
    s->in_message = false;
    deliver(s, opcode, p, len);
}

/*
 * Work on a frame taken whole, whose header is at p: unmask (in place) and
 * check the payload bytes that arrived since the last call, so that bad
 * text fails fast (§8.1) and each byte is touched while it is still in
 * the cache, then take the frame once it is all there. Returns the frame's
 * length when it was taken, 0 while it is incomplete (still awaited) or
 * when the session failed.
 */
static size_t await_whole(struct ws_session *s, struct ws_buf *out, uint8_t *p,
                          size_t avail)
{
    const struct ws_frame_header *h = &s->frame;
    size_t len = (size_t)h->payload_len, hlen = h->header_len;
    size_t have = avail - hlen < len ? avail - hlen : len;
    size_t done = (size_t)s->frame_pos;
    uint8_t *pl = p + hlen;

    if (unmask_and_check(s, pl + done, have - done, done,
                         h->opcode == WS_OP_TEXT && !s->msg_deflate) < 0) {
        ws_session_fail(s, out, WS_CLOSE_INVALID_DATA);
        return 0;
    }
    s->frame_pos = have;
    if (have < len)
        return 0; /* see ws_session_need */
    take_whole(s, out, pl, len);
    return hlen + len;
}

/*
 * Start the next frame at p: parse and check its header, then take it
 * whole (see await_whole) or begin reading its payload piece by piece.
 * Returns the bytes taken: the whole frame, or the header of a frame read
 * in pieces (s->in_frame is then set); 0 when more input is needed or the
 * session failed.
 */
static size_t start_frame(struct ws_session *s, struct ws_buf *out, uint8_t *p,
                          size_t avail)
{
    int rc;
    uint16_t code;

    if (s->awaiting) /* the same frame, with more of it */
        return await_whole(s, out, p, avail);
    rc = ws_frame_header_parse_ext(p, avail, WS_FRAME_FROM_CLIENT,
                                   s->z ? WS_FRAME_RSV1 : 0, &s->frame);
    if (rc == WS_EAGAIN)
        return 0;
    if (rc < 0) {
        ws_session_fail(s, out, WS_CLOSE_PROTOCOL_ERROR);
        return 0;
    }
    code = check_frame_start(s, &s->frame);
    if (code != 0) {
        ws_session_fail(s, out, code);
        return 0;
    }
    if (!ws_frame_is_control(s->frame.opcode))
        begin_data_frame(s);
    s->frame_pos = 0;
    /* A compressed message's inflater: the server's shared one only when
       the message is taken whole (inflated in one go, in take_whole). */
    if (s->frame.opcode != WS_OP_CONT &&
        !ws_frame_is_control(s->frame.opcode) && s->msg_deflate &&
        ws_deflate_rx_begin(s->z, taken_whole(s, &s->frame)) < 0) {
        ws_session_fail(s, out, WS_CLOSE_INTERNAL_ERROR);
        return 0;
    }
    if (taken_whole(s, &s->frame)) {
        s->awaiting = true;
        return await_whole(s, out, p, avail);
    }
    s->in_frame = true;
    return (size_t)rc;
}

size_t ws_session_need(const struct ws_session *s)
{
    if (!s->awaiting || ws_session_finished(s))
        return 0;
    return s->frame.header_len + (size_t)s->frame.payload_len;
}

size_t ws_session_feed(struct ws_session *s, uint8_t *in, size_t len,
                       struct ws_buf *out)
{
    size_t pos = 0;

    while (!ws_session_finished(s)) {
        if (!s->in_frame) {
            size_t n = start_frame(s, out, in + pos, len - pos);

            if (n == 0)
                break;
            pos += n;
            continue; /* a whole frame taken, or a header: go on */
        }
        uint64_t left = s->frame.payload_len - s->frame_pos;
        size_t n = len - pos < left ? len - pos : (size_t)left;
        int rc = take_payload(s, in + pos, n);

        if (rc < 0) {
            fail_err(s, out, rc);
            break;
        }
        pos += n;
        s->frame_pos += n;
        if (s->frame_pos < s->frame.payload_len)
            break; /* the rest of the payload has not arrived */
        finish_frame(s, out);
    }
    return pos;
}

int ws_session_set_streaming(struct ws_session *s, bool on)
{
    if (s->in_message)
        return WS_ESTATE;
    s->streaming = on;
    return 0;
}
