/*
 * session_send.c - the sending side of the session (session.c): whole
 * frames, a message in pieces, compressed ones (RFC 7692 §7.2.1), the
 * close frame, and the queueing both sides use (session_out.h) with the
 * output limit: a peer that stopped reading is closed with 1008. It never
 * writes a socket: frames go into the caller's buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/session.h"
#include "ws/session_out.h"
#include "ws/ws.h"

/* Short reasons sent with the close codes the session chooses itself. */
const char *ws_session_close_text(uint16_t code)
{
    switch (code) {
    case WS_CLOSE_PROTOCOL_ERROR:
        return "protocol error";
    case WS_CLOSE_INVALID_DATA:
        return "invalid UTF-8";
    case WS_CLOSE_TOO_BIG:
        return "message too big";
    case WS_CLOSE_POLICY:
        return "peer is not reading";
    default:
        return "";
    }
}

/* Write one unmasked server frame into out, header and payload together,
   if out may grow to cap. */
static int write_frame(struct ws_buf *out, size_t cap, bool fin, uint8_t rsv,
                       uint8_t opcode, const void *data, size_t len)
{
    size_t hlen = ws_frame_header_size(len, false);
    int rc;

    if (len > SIZE_MAX - hlen)
        return WS_ETOOBIG;
    rc = ws_buf_reserve(out, hlen + len, cap);
    if (rc < 0)
        return rc;
    ws_frame_header_write_ext(ws_buf_tail(out), ws_buf_space(out), fin, rsv,
                              opcode, len, NULL);
    if (len > 0)
        memcpy(ws_buf_tail(out) + hlen, data, len);
    ws_buf_commit(out, hlen + len);
    return 0;
}

/*
 * Whether more than max_output bytes wait already: then the peer is not
 * reading, and the next data, ping or pong frame is refused. A frame of
 * any allowed size is taken while the queue is at or below the cap, so
 * that one large message never needs a cap as large as itself.
 */
static bool backed_up(const struct ws_session *s, const struct ws_buf *out)
{
    return ws_buf_size(out) > s->cfg->lim->max_output ||
           s->out_shared > s->cfg->lim->max_output - ws_buf_size(out);
}

/*
 * Queue a data, ping or pong frame unless the queue is backed up; then
 * the frame is refused and the connection is closed with 1008 (RFC 6455
 * §7.4.1, policy violation).
 */
int ws_session_queue_frame(struct ws_session *s, struct ws_buf *out, bool fin,
                           uint8_t rsv, uint8_t opcode, const void *data,
                           size_t len)
{
    if (backed_up(s, out)) {
        ws_session_fail(s, out, WS_CLOSE_POLICY);
        return WS_EFULL;
    }
    return write_frame(out, SIZE_MAX, fin, rsv, opcode, data, len);
}

/*
 * Queue a close frame with code and reason; the caller sets the state. It
 * is the one frame allowed past max_output (by at most 127 bytes, once),
 * so that even a peer that stopped reading is told why it is closed.
 */
int ws_session_queue_close(struct ws_session *s, struct ws_buf *out,
                           uint16_t code, const char *reason, size_t reason_len)
{
    uint8_t payload[WS_FRAME_MAX_CONTROL];
    ssize_t n = 0;
    int rc;

    /* RFC 6455 §5.5.1: a close frame may have no body at all; that is how
       a close without a code (1005) is echoed. */
    if (code != WS_CLOSE_NO_STATUS) {
        n = ws_frame_close_payload(payload, sizeof(payload), code,
                                   (const uint8_t *)reason, reason_len);
        if (n < 0)
            return (int)n;
    }
    rc = write_frame(out, SIZE_MAX, true, 0, WS_OP_CLOSE, payload, (size_t)n);
    if (rc < 0) {
        s->state = WS_SESSION_ABORTED; /* out of memory: nothing to say */
        return rc;
    }
    s->close_sent = true;
    s->closed_first = !s->close_received;
    return 0;
}

/*
 * Fail the WebSocket connection (RFC 6455 §7.1.7): send a close frame with
 * code and why, unless one was sent already, and consume nothing more.
 */
void ws_session_fail_why(struct ws_session *s, struct ws_buf *out,
                         uint16_t code, const char *why)
{
    s->close_code = code;
    if (!s->close_sent)
        ws_session_queue_close(s, out, code, why, strlen(why));
    if (s->state != WS_SESSION_ABORTED)
        s->state = WS_SESSION_FAILED;
}

/* ws_session_fail_why() with the reason the code has. */
void ws_session_fail(struct ws_session *s, struct ws_buf *out, uint16_t code)
{
    ws_session_fail_why(s, out, code, ws_session_close_text(code));
}

/* Check that one whole frame may be sent; text_ok: the text is known to
   be valid. Returns 0 or the error ws_session_send() reports. */
static int check_message(const struct ws_session *s, uint8_t opcode,
                         const void *data, size_t len, bool text_ok)
{
    if (s->state != WS_SESSION_OPEN)
        return WS_ECLOSED;
    if (len > 0 && data == NULL)
        return WS_EINVAL;
    /* RFC 6455 §5.4: a message's fragments may not be interleaved with
       another message's; only control frames may come between them. */
    if (s->out_open && (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY))
        return WS_ESTATE;
    switch (opcode) {
    case WS_OP_TEXT:
        if (!text_ok && !ws_utf8_valid(data, len))
            return WS_EINVAL;
        /* fall through */
    case WS_OP_BINARY:
        if (len > s->cfg->lim->max_message)
            return WS_ETOOBIG;
        break;
    case WS_OP_PING:
    case WS_OP_PONG:
        if (len > WS_FRAME_MAX_CONTROL)
            return WS_ETOOBIG;
        break;
    default:
        return WS_EINVAL;
    }
    return 0;
}

/*
 * The compressor's output has been taken (rc 0) or not (rc < 0). A
 * failure after the data entered a compressor that keeps its state (a
 * kept context, or a message sent in pieces) would leave the peer's
 * window behind ours: the connection is failed with 1011 then.
 */
static int deflated_done(struct ws_session *s, struct ws_buf *out,
                         enum ws_deflate_part part, int rc)
{
    ws_deflate_tx_done(s->z);
    if (rc < 0 && s->state == WS_SESSION_OPEN &&
        (part != WS_DEFLATE_WHOLE || !s->z->params.server_no_takeover))
        ws_session_fail(s, out, WS_CLOSE_INTERNAL_ERROR);
    return rc;
}

/* Compress data (a whole message or one piece: RFC 7692 §7.2.1) and queue
   it as one frame, RSV1 set on the first frame of the message (§6). */
static int send_compressed(struct ws_session *s, struct ws_buf *out,
                           enum ws_deflate_part part, uint8_t opcode,
                           const void *data, size_t len)
{
    bool first = part == WS_DEFLATE_WHOLE || part == WS_DEFLATE_FIRST;
    bool fin = part == WS_DEFLATE_WHOLE || part == WS_DEFLATE_LAST;
    const uint8_t *c;
    size_t clen;
    int rc = ws_deflate_tx(s->z, data, len, part, SIZE_MAX, &c, &clen);

    if (rc == 0)
        rc = ws_session_queue_frame(s, out, fin, first ? WS_FRAME_RSV1 : 0,
                                    opcode, c, clen);
    return deflated_done(s, out, part, rc);
}

bool ws_session_compresses(const struct ws_session *s, uint8_t opcode,
                           size_t len)
{
    return (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY) &&
           ws_deflate_compresses(s->z, len);
}

/* Queue one whole frame; text_ok: the text is known to be valid. */
static int send_message(struct ws_session *s, struct ws_buf *out,
                        uint8_t opcode, const void *data, size_t len,
                        bool text_ok)
{
    int rc = check_message(s, opcode, data, len, text_ok);

    if (rc < 0)
        return rc;
    if (ws_session_compresses(s, opcode, len))
        return send_compressed(s, out, WS_DEFLATE_WHOLE, opcode, data, len);
    return ws_session_queue_frame(s, out, true, 0, opcode, data, len);
}

int ws_session_close(struct ws_session *s, struct ws_buf *out, uint16_t code,
                     const char *reason, size_t reason_len)
{
    int rc;

    if (s->close_sent || s->state != WS_SESSION_OPEN)
        return WS_ECLOSED;
    if (!ws_close_code_valid(code) || reason_len > WS_FRAME_MAX_CONTROL - 2)
        return WS_EINVAL;
    if (reason_len > 0 && !ws_utf8_valid((const uint8_t *)reason, reason_len))
        return WS_EINVAL;
    rc = ws_session_queue_close(s, out, code, reason, reason_len);
    if (rc < 0)
        return rc;
    s->state = WS_SESSION_CLOSE_SENT;
    s->close_code = code;
    return 0;
}

int ws_session_send(struct ws_session *s, struct ws_buf *out, uint8_t opcode,
                    const void *data, size_t len)
{
    return send_message(s, out, opcode, data, len, false);
}

int ws_session_send_valid(struct ws_session *s, struct ws_buf *out,
                          uint8_t opcode, const void *data, size_t len)
{
    return send_message(s, out, opcode, data, len, true);
}

ssize_t ws_session_frame_begin(struct ws_session *s, uint8_t opcode,
                               const void *data, size_t len, bool text_valid,
                               uint8_t hdr[WS_FRAME_MAX_HEADER])
{
    int rc = check_message(s, opcode, data, len, text_valid);

    if (rc < 0)
        return rc;
    return ws_frame_header_write(hdr, WS_FRAME_MAX_HEADER, true, opcode, len,
                                 NULL);
}

int ws_session_frame_rest(struct ws_session *s, struct ws_buf *out,
                          const uint8_t *hdr, size_t hlen, const void *data,
                          size_t len, size_t written)
{
    size_t sent = written;
    int rc = 0;

    /* Out held nothing before the frame: it may wait whole. */
    if (sent < hlen) {
        rc = ws_buf_append(out, hdr + sent, hlen - sent, SIZE_MAX);
        sent = 0;
    } else {
        sent -= hlen;
    }
    if (rc == 0 && sent < len)
        rc = ws_buf_append(out, (const uint8_t *)data + sent, len - sent,
                           SIZE_MAX);
    if (rc < 0 && written > 0)
        s->state = WS_SESSION_ABORTED; /* half a frame is out: no way on */
    return rc;
}

ssize_t ws_session_deflated_begin(struct ws_session *s, struct ws_buf *out,
                                  uint8_t opcode, const void *data, size_t len,
                                  bool text_valid,
                                  uint8_t hdr[WS_FRAME_MAX_HEADER],
                                  const uint8_t **payload, size_t *plen)
{
    int rc = check_message(s, opcode, data, len, text_valid);
    ssize_t hlen;

    if (rc < 0)
        return rc;
    rc = ws_deflate_tx(s->z, data, len, WS_DEFLATE_WHOLE, SIZE_MAX, payload,
                       plen);
    if (rc < 0)
        return deflated_done(s, out, WS_DEFLATE_WHOLE, rc);
    hlen = ws_frame_header_write_ext(hdr, WS_FRAME_MAX_HEADER, true,
                                     WS_FRAME_RSV1, opcode, *plen, NULL);
    if (hlen < 0)
        deflated_done(s, out, WS_DEFLATE_WHOLE, (int)hlen);
    return hlen;
}

int ws_session_deflated_rest(struct ws_session *s, struct ws_buf *out,
                             const uint8_t *hdr, size_t hlen,
                             const uint8_t *payload, size_t plen,
                             size_t written)
{
    int rc = ws_session_frame_rest(s, out, hdr, hlen, payload, plen, written);

    return deflated_done(s, out, WS_DEFLATE_WHOLE, rc);
}

/* Check a text piece as part of the outgoing UTF-8 stream, leaving the
   stream's state untouched when the piece is refused. */
static int check_text_part(struct ws_session *s, const void *data, size_t len,
                           bool finish)
{
    struct ws_utf8 next = s->out_utf8;

    if (ws_utf8_feed(&next, data, len, NULL) < 0)
        return WS_EINVAL;
    if (finish && !ws_utf8_complete(&next))
        return WS_EINVAL;
    s->out_utf8 = next;
    return 0;
}

int ws_session_send_part(struct ws_session *s, struct ws_buf *out,
                         enum ws_session_part part, uint8_t opcode,
                         const void *data, size_t len)
{
    bool begin = part == WS_PART_BEGIN, finish = part == WS_PART_FINISH;
    int rc;

    if (s->state != WS_SESSION_OPEN)
        return WS_ECLOSED;
    if ((len > 0 && data == NULL) ||
        (begin && opcode != WS_OP_TEXT && opcode != WS_OP_BINARY))
        return WS_EINVAL;
    if (begin == s->out_open)
        return WS_ESTATE;
    if (len > s->cfg->lim->max_message)
        return WS_ETOOBIG;
    if (begin) {
        s->out_opcode = opcode;
        ws_utf8_reset(&s->out_utf8);
        /* Decided before any piece enters the compressor (RFC 7692
           §7.2.1 compresses the message as a whole). */
        s->out_deflate = ws_deflate_enabled(s->z);
    }
    if (s->out_opcode == WS_OP_TEXT) {
        rc = check_text_part(s, data, len, finish);
        if (rc < 0)
            return rc;
    }
    /* RFC 6455 §5.4: the first frame carries the opcode, the rest are
       continuations, and only the last has FIN set. */
    if (s->out_deflate)
        rc = send_compressed(s, out,
                             begin    ? WS_DEFLATE_FIRST
                             : finish ? WS_DEFLATE_LAST
                                      : WS_DEFLATE_MORE,
                             begin ? opcode : WS_OP_CONT, data, len);
    else
        rc = ws_session_queue_frame(s, out, finish, 0,
                                    begin ? opcode : WS_OP_CONT, data, len);
    if (rc == 0)
        s->out_open = !finish;
    return rc;
}

int ws_session_share_check(struct ws_session *s, struct ws_buf *out,
                           uint8_t opcode)
{
    if (s->state != WS_SESSION_OPEN)
        return WS_ECLOSED;
    if (s->out_open && (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY))
        return WS_ESTATE; /* §5.4: not inside a fragmented message */
    if (backed_up(s, out)) {
        ws_session_fail(s, out, WS_CLOSE_POLICY);
        return WS_EFULL;
    }
    return 0;
}
