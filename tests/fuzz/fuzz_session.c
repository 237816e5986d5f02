/*
 * fuzz_session.c - libFuzzer target for ws/session.c (with frame, utf8 and
 * buf). Input: 5 configuration bytes, then the bytes a client sends after
 * the handshake. Byte 0 picks the limits and streaming receive, byte 1 the
 * echo and the driver, bytes 2-3 seed the split points, byte 4 switches
 * fragmented sending and mode changes.
 *
 * The stream is fed three times: whole, in data-derived pieces (messages,
 * events, output and final state must be identical), and in other pieces
 * with the output flushed, and the application closing, pinging, switching
 * streaming and sending a fragmented message between feeds. Every run
 * checks the handler's arguments against the limits and a reference UTF-8
 * decoder, the consumed counts, the output limit, and that the output is
 * whole, valid server frames in a valid order.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/buf.h"
#include "tests/fuzz/fuzz.h"
#include "ws/frame.h"
#include "ws/session.h"
#include "ws/ws.h"

#define CFG_BYTES 5

#define CFG0_STREAMING 0x80u   /* byte 0: start in streaming receive */
#define CFG1_ECHO 0x04u        /* byte 1: send every message back */
#define CFG1_CLOSE_IN_CB 0x08u /* ws_session_close() from the first one */
#define CFG1_FLUSH 0x10u       /* third run: empty the output each feed */
#define CFG4_ECHO_PARTS 0x01u  /* byte 4: echo with ws_session_send_part */
#define CFG4_TOGGLE_CB 0x02u   /* switch streaming after each message */
#define CFG4_TOGGLE 0x04u      /* third run: switch streaming each feed */
#define CFG4_APP_PARTS 0x08u   /* third run: a fragmented message too */

/* A growable byte string: traces, and messages being reassembled. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap * 2 + n + 64;
        uint8_t *q = realloc(b->p, cap);

        FUZZ_CHECK(q != NULL);
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* The server's output as a peer sees it. */
struct peer {
    bool closed; /* a close frame came: nothing may follow */
    bool in_msg; /* a fragmented data message is open */
    uint8_t opcode;
    struct bytes msg;
};

struct run {
    struct ws_session s;
    struct ws_buf out;
    struct ws_session_limits lim;
    struct ws_session_config scfg; /* lim and the handler */
    struct bytes tr;               /* what happened, compared between runs */
    unsigned cfg[CFG_BYTES];
    bool explore;    /* the third run: calls that depend on the split */
    size_t messages; /* delivered whole or as a last piece */
    size_t closes;
    bool st_open; /* a streamed message is being received */
    uint8_t st_opcode;
    struct bytes st;  /* its pieces so far */
    struct peer peer; /* for flushed output */
    bool echo_open;   /* a streamed echo is being sent in pieces */
    bool app_open;    /* app_parts() has a message open */
};

/* One event: a tag, a number and the bytes it carried. */
static void trace_event(struct run *r, char tag, uint64_t num,
                        const uint8_t *data, size_t len)
{
    uint64_t n = len;

    bytes_add(&r->tr, &tag, 1);
    bytes_add(&r->tr, &num, sizeof(num));
    bytes_add(&r->tr, &n, sizeof(n));
    bytes_add(&r->tr, data, len);
}

/* Send data back whole, or in two parts (the cut may split a UTF-8
   character: §5.6 lets a fragment end anywhere). */
static void echo(struct run *r, uint8_t opcode, const uint8_t *data, size_t len)
{
    int rc;

    if (!(r->cfg[4] & CFG4_ECHO_PARTS)) {
        rc = ws_session_send(&r->s, &r->out, opcode, data, len);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL || rc == WS_ESTATE);
    } else {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_BEGIN, opcode, data,
                                  len / 2);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL || rc == WS_ESTATE);
        trace_event(r, 'B', (uint64_t)-rc, NULL, 0);
        if (rc == 0) {
            rc = ws_session_send_part(&r->s, &r->out, WS_PART_FINISH, 0,
                                      data + len / 2, len - len / 2);
            FUZZ_CHECK(rc == 0 || rc == WS_EFULL);
        }
    }
    /* WS_EFULL: the peer is not reading; the session failed (1008), or
       could not even queue the close. */
    FUZZ_CHECK(rc != WS_EFULL || ws_session_finished(&r->s));
    trace_event(r, 'S', (uint64_t)-rc, NULL, 0);
}

/* A whole message arrived (or the last piece of a streamed one). */
static void message_done(struct run *r, uint8_t opcode, const uint8_t *data,
                         size_t len)
{
    int rc;

    trace_event(r, 'M', opcode, data, len);
    r->messages++;
    if ((r->cfg[1] & CFG1_CLOSE_IN_CB) && r->messages == 1) {
        bool open = r->s.state == WS_SESSION_OPEN;

        rc = ws_session_close(&r->s, &r->out, 1000, "bye", 3);
        FUZZ_CHECK(open ? rc == 0 || rc == WS_ENOMEM : rc == WS_ECLOSED);
        FUZZ_CHECK(rc != 0 || r->s.state == WS_SESSION_CLOSE_SENT);
        trace_event(r, 'C', (uint64_t)-rc, NULL, 0);
    }
}

static void on_message(void *ctx, uint8_t opcode, const uint8_t *data,
                       size_t len)
{
    struct run *r = ctx;

    /* RFC 6455 §7.1.2: no data is delivered once our close is out. */
    FUZZ_CHECK(r->s.state == WS_SESSION_OPEN && !r->s.streaming);
    FUZZ_CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    FUZZ_CHECK(len <= r->lim.max_message);
    FUZZ_CHECK(data != NULL && data[len] == 0);
    /* §8.1: text is valid UTF-8, by the reference decoder. */
    FUZZ_CHECK(opcode != WS_OP_TEXT || fuzz_ref_utf8_valid(data, len));
    if (r->cfg[1] & CFG1_ECHO)
        echo(r, opcode, data, len);
    message_done(r, opcode, data, len);
    if (r->cfg[4] & CFG4_TOGGLE_CB) {
        /* Between messages a switch is always allowed. */
        FUZZ_CHECK(ws_session_set_streaming(&r->s, true) == 0);
    }
}

/* Send one piece of a fragmented message (at most max_message bytes
   per call). Returns 0, WS_EFULL or WS_ESTATE. */
static int send_piece(struct run *r, enum ws_session_part part, uint8_t opcode,
                      const uint8_t *data, size_t len)
{
    int rc;

    do {
        size_t n = len < r->lim.max_message ? len : r->lim.max_message;
        bool fin = part == WS_PART_FINISH && n == len;

        rc = ws_session_send_part(&r->s, &r->out, fin ? WS_PART_FINISH : part,
                                  opcode, data, n);
        if (part == WS_PART_BEGIN)
            part = WS_PART_CONTINUE;
        data += n;
        len -= n;
    } while (rc == 0 && len > 0);
    return rc;
}

/* Streaming echo: each piece goes back as it comes. */
static void echo_piece(struct run *r, uint8_t opcode, const uint8_t *data,
                       size_t len, bool first, bool last)
{
    int rc = 0;

    if (first) {
        bool busy = r->s.out_open;

        rc = send_piece(r, WS_PART_BEGIN, opcode, data, len);
        FUZZ_CHECK(busy ? rc == WS_ESTATE : rc == 0 || rc == WS_EFULL);
        r->echo_open = rc == 0;
    } else if (r->echo_open) {
        rc = send_piece(r, WS_PART_CONTINUE, opcode, data, len);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL);
    }
    if (rc == 0 && last && r->echo_open) {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_FINISH, 0, NULL, 0);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL);
        r->echo_open = false;
    }
    FUZZ_CHECK(rc != WS_EFULL || ws_session_finished(&r->s));
}

/* Streaming receive: pieces in order, text a valid prefix so far. */
static void on_fragment(void *ctx, uint8_t opcode, const uint8_t *data,
                        size_t len, bool first, bool last)
{
    struct run *r = ctx;
    bool complete = false;

    FUZZ_CHECK(r->s.state == WS_SESSION_OPEN && r->s.streaming);
    FUZZ_CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    FUZZ_CHECK(data != NULL && data[len] == 0);
    FUZZ_CHECK(first == !r->st_open);
    if (first) {
        r->st_open = true;
        r->st_opcode = opcode;
        r->st.len = 0;
    }
    FUZZ_CHECK(opcode == r->st_opcode);
    bytes_add(&r->st, data, len);
    FUZZ_CHECK(opcode != WS_OP_TEXT ||
               fuzz_ref_utf8(r->st.p, r->st.len, &complete) == SIZE_MAX);
    /* Echo piece by piece: the pieces depend on the split, so only in
       the run that compares nothing. */
    if (r->explore && (r->cfg[1] & CFG1_ECHO))
        echo_piece(r, opcode, data, len, first, last);
    if (!last)
        return;
    FUZZ_CHECK(opcode != WS_OP_TEXT || complete);
    r->st_open = false;
    message_done(r, opcode, r->st.p, r->st.len);
    if ((r->cfg[4] & CFG4_TOGGLE_CB) && !ws_session_finished(&r->s)) {
        /* The message is over for the application, but the session may
           still be finishing it: switching is refused until it is. */
        int rc = ws_session_set_streaming(&r->s, false);

        FUZZ_CHECK(rc == 0 || rc == WS_ESTATE);
        trace_event(r, 'T', (uint64_t)-rc, NULL, 0);
    }
}

static void on_pong(void *ctx, const uint8_t *data, size_t len)
{
    struct run *r = ctx;

    FUZZ_CHECK(r->s.state == WS_SESSION_OPEN);
    FUZZ_CHECK(len <= WS_FRAME_MAX_CONTROL);
    FUZZ_CHECK(data != NULL && data[len] == 0);
    trace_event(r, 'P', 0, data, len);
}

static void on_close(void *ctx, uint16_t code, const uint8_t *reason,
                     size_t len)
{
    struct run *r = ctx;

    FUZZ_CHECK(r->s.state == WS_SESSION_OPEN ||
               r->s.state == WS_SESSION_CLOSE_SENT);
    FUZZ_CHECK(r->closes++ == 0);
    /* §5.5.1, §7.4: a code that may be sent, or 1005 for no code. */
    FUZZ_CHECK(fuzz_ref_close_code(code) || (code == 1005 && len == 0));
    FUZZ_CHECK(len <= WS_FRAME_MAX_CONTROL - 2);
    FUZZ_CHECK(reason != NULL && reason[len] == 0);
    FUZZ_CHECK(fuzz_ref_utf8_valid(reason, len));
    trace_event(r, 'X', code, reason, len);
}

static const struct ws_session_handler handler = {on_message, on_pong, on_close,
                                                  on_fragment};

/* One data frame as the peer sees it: §5.4 order, §8.1 UTF-8. */
static void peer_data(struct peer *pe, const struct ws_frame_header *h,
                      const uint8_t *payload, size_t len)
{
    if (h->opcode == WS_OP_CONT) {
        FUZZ_CHECK(pe->in_msg);
    } else {
        FUZZ_CHECK(!pe->in_msg);
        pe->in_msg = true;
        pe->opcode = h->opcode;
        pe->msg.len = 0;
    }
    bytes_add(&pe->msg, payload, len);
    if (h->fin) {
        FUZZ_CHECK(pe->opcode != WS_OP_TEXT ||
                   fuzz_ref_utf8_valid(pe->msg.p, pe->msg.len));
        pe->in_msg = false;
    }
}

/*
 * The output must be whole server frames (RFC 6455 §5.1: unmasked; §5.5:
 * control frames of at most 125 bytes, never fragmented), messages in
 * order, close payloads valid, and nothing after a close frame (§5.5.1).
 */
static void check_output(struct peer *pe, const uint8_t *p, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        struct ws_frame_header h;
        int rc =
            ws_frame_header_parse(p + pos, n - pos, WS_FRAME_FROM_SERVER, &h);
        const uint8_t *payload;
        size_t len;

        FUZZ_CHECK(!pe->closed);
        FUZZ_CHECK(rc > 0); /* never a partial or invalid header */
        FUZZ_CHECK(h.payload_len <= n - pos - (size_t)rc);
        payload = p + pos + rc;
        len = (size_t)h.payload_len;
        switch (h.opcode) {
        case WS_OP_CONT:
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            peer_data(pe, &h, payload, len);
            break;
        case WS_OP_PING:
        case WS_OP_PONG:
            break;
        case WS_OP_CLOSE:
            FUZZ_CHECK(
                len == 0 ||
                (len >= 2 &&
                 fuzz_ref_close_code((unsigned)payload[0] << 8 | payload[1]) &&
                 fuzz_ref_utf8_valid(payload + 2, len - 2)));
            pe->closed = true;
            break;
        default:
            FUZZ_CHECK(!"unexpected opcode in output");
        }
        pos += (size_t)rc + len;
    }
}

/* The invariants between feeds. */
static void check_state(const struct run *r)
{
    const struct ws_session *s = &r->s;
    size_t queued = ws_buf_size(&r->out);

    /* A frame is queued only while at most max_output bytes wait, so the
       queue passes it by at most one frame: a message (or piece) of up to
       max_message bytes, deflated perhaps (zlib's deflateBound() grows a
       stored block by less than an eighth and a bit), or a control
       frame; and then by the close frame, the one frame queued past the
       cap (session_send.c). */
    size_t largest = r->lim.max_message > WS_FRAME_MAX_CONTROL
                         ? r->lim.max_message
                         : WS_FRAME_MAX_CONTROL;
    size_t frame =
        largest + (largest >> 3) + (largest >> 6) + 64 + WS_FRAME_MAX_HEADER;

    FUZZ_CHECK(queued <= r->lim.max_output + frame +
                             (s->close_sent ? 2 + WS_FRAME_MAX_CONTROL : 0));
    size_t assembled = s->msg ? ws_buf_size(s->msg) : 0;

    FUZZ_CHECK(assembled <= r->lim.max_message);
    FUZZ_CHECK(!s->streaming || assembled == 0);
    switch (s->state) {
    case WS_SESSION_OPEN:
        FUZZ_CHECK(!s->close_sent && !s->close_received);
        break;
    case WS_SESSION_CLOSE_SENT:
        FUZZ_CHECK(s->close_sent && !s->close_received);
        break;
    case WS_SESSION_DONE:
        FUZZ_CHECK(s->close_sent && s->close_received);
        break;
    case WS_SESSION_FAILED:
        /* §7.1.7: the close frame with the reason is queued. */
        FUZZ_CHECK(s->close_sent);
        FUZZ_CHECK(s->close_code == WS_CLOSE_PROTOCOL_ERROR ||
                   s->close_code == WS_CLOSE_INVALID_DATA ||
                   s->close_code == WS_CLOSE_TOO_BIG ||
                   s->close_code == WS_CLOSE_POLICY ||
                   s->close_code == WS_CLOSE_INTERNAL_ERROR);
        break;
    case WS_SESSION_ABORTED:
        break;
    default:
        FUZZ_CHECK(!"unknown state");
    }
}

/*
 * Feed *pend (the unconsumed tail of the last call) + p[0..n) as one
 * exact allocation with one spare byte (the session borrows in[len]).
 * Keeps the new unconsumed tail in *pend.
 */
static void feed(struct run *r, struct bytes *pend, const uint8_t *p, size_t n)
{
    size_t len = pend->len + n, used, trace_len = r->tr.len;
    size_t out_len = ws_buf_size(&r->out);
    bool finished = ws_session_finished(&r->s);
    enum ws_session_state state = r->s.state;
    uint8_t *in = malloc(len + 1), *orig;

    FUZZ_CHECK(in != NULL);
    if (pend->len > 0)
        memcpy(in, pend->p, pend->len);
    if (n > 0)
        memcpy(in + pend->len, p, n);
    in[len] = 0x5A;
    orig = fuzz_dup(in, len, 0);
    used = ws_session_feed(&r->s, in, len, &r->out);
    FUZZ_CHECK(used <= len);
    FUZZ_CHECK(in[len] == 0x5A); /* the borrowed byte is restored */
    if (finished) {
        /* A finished session consumes and says nothing more. */
        FUZZ_CHECK(used == 0 && r->s.state == state);
        FUZZ_CHECK(r->tr.len == trace_len);
        FUZZ_CHECK(ws_buf_size(&r->out) == out_len);
    }
    if (!ws_session_finished(&r->s) && used < len) {
        struct ws_frame_header h;

        size_t need = ws_session_need(&r->s);

        FUZZ_CHECK(!r->s.in_frame);
        if (need > 0) {
            /* A frame awaited whole: its header is left as it was, its
               payload may be unmasked already, and it is not all here. */
            FUZZ_CHECK(need > len - used);
            FUZZ_CHECK(ws_frame_header_parse(in + used, len - used,
                                             WS_FRAME_FROM_CLIENT, &h) > 0);
            FUZZ_CHECK(h.header_len + h.payload_len == need);
            FUZZ_CHECK(memcmp(in + used, orig + used, h.header_len) == 0);
        } else {
            /* Only a partial frame header is left for the next call, and
               it is untouched (it will be passed again). */
            FUZZ_CHECK(len - used < WS_FRAME_MAX_HEADER);
            FUZZ_CHECK(memcmp(in + used, orig + used, len - used) == 0);
            FUZZ_CHECK(ws_frame_header_parse(in + used, len - used,
                                             WS_FRAME_FROM_CLIENT,
                                             &h) == WS_EAGAIN);
        }
    }
    check_state(r);
    pend->len = 0;
    bytes_add(pend, in + used, len - used);
    free(orig);
    free(in);
}

/* Limits and modes from the configuration bytes. */
static void run_init(struct run *r, const uint8_t *cfg, bool explore)
{
    static const size_t message[] = {4096, 1024, 125, 16};
    static const size_t frame[] = {0, 64, 1, SIZE_MAX};
    static const size_t fragments[] = {1, 2, 3, 4, 8, 16, 100, SIZE_MAX};
    static const size_t output[] = {65536, 4096, 256, 24};

    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < CFG_BYTES; i++)
        r->cfg[i] = cfg[i];
    r->explore = explore;
    r->lim.max_message = message[cfg[0] & 3u];
    r->lim.max_frame = frame[(cfg[0] >> 2) & 3u];
    if (r->lim.max_frame == 0)
        r->lim.max_frame = r->lim.max_message;
    r->lim.max_fragments = fragments[(cfg[0] >> 4) & 7u];
    r->lim.max_output = output[cfg[1] & 3u];
    r->scfg = (struct ws_session_config){&r->lim, &handler};
    ws_session_init(&r->s, &r->scfg, r);
    FUZZ_CHECK(r->s.state == WS_SESSION_OPEN && !ws_session_finished(&r->s));
    if (cfg[0] & CFG0_STREAMING)
        FUZZ_CHECK(ws_session_set_streaming(&r->s, true) == 0);
}

/* Final checks, then a feed after the end that must take nothing. */
static void run_finish(struct run *r, struct bytes *pend)
{
    static const uint8_t ping[] = {0x89, 0x80, 1, 2, 3, 4};
    size_t before = pend->len;

    if (ws_session_finished(&r->s)) {
        feed(r, pend, ping, sizeof(ping));
        FUZZ_CHECK(pend->len == before + sizeof(ping));
    }
    FUZZ_CHECK(r->s.state != WS_SESSION_DONE || r->closes == 1);
    trace_event(r, 'E', r->s.state, NULL, 0);
    trace_event(r, 'c', r->s.close_code, NULL, 0);
    check_output(&r->peer, ws_buf_head(&r->out), ws_buf_size(&r->out));
}

static void run_free(struct run *r, struct bytes *pend)
{
    ws_session_free(&r->s);
    ws_buf_free(&r->out);
    free(r->tr.p);
    free(r->st.p);
    free(r->peer.msg.p);
    free(pend->p);
}

/* Run 1 (rng NULL: one feed) or run 2 (data-derived pieces). */
static void run_plain(struct run *r, const uint8_t *cfg, const uint8_t *p,
                      size_t n, struct fuzz_rng *rng, struct bytes *pend)
{
    run_init(r, cfg, false);
    for (size_t pos = 0; pos < n;) {
        size_t len = rng != NULL ? fuzz_chunk(rng, n - pos) : n - pos;

        feed(r, pend, p + pos, len);
        pos += len;
    }
    run_finish(r, pend);
}

/* The application sends "xé" + "y!" in pieces, with a bad piece between
   that must be refused without any output. */
static void app_parts(struct run *r, size_t piece)
{
    static const uint8_t text[] = "x\xc3\xa9y!";
    size_t before = ws_buf_size(&r->out);
    bool busy = r->s.out_open;
    int rc;

    if (r->s.state != WS_SESSION_OPEN) {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_BEGIN, WS_OP_TEXT,
                                  text, 2);
        FUZZ_CHECK(rc == WS_ECLOSED);
        return;
    }
    if (piece % 4 == 0) {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_BEGIN, WS_OP_TEXT,
                                  text, 2);
        FUZZ_CHECK(busy ? rc == WS_ESTATE : rc == 0 || rc == WS_EFULL);
        r->app_open = !busy && rc == 0;
    } else if (!r->app_open) {
        /* Someone else's message, or none (then continue is refused). */
        if (!busy)
            FUZZ_CHECK(ws_session_send_part(&r->s, &r->out, WS_PART_CONTINUE, 0,
                                            text, 1) == WS_ESTATE);
        return;
    } else if (piece % 4 == 1) {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_CONTINUE, 0, "\xff",
                                  1);
        FUZZ_CHECK(rc == WS_EINVAL && ws_buf_size(&r->out) == before);
    } else if (piece % 4 == 2) {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_CONTINUE, 0, text + 2,
                                  2);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL);
    } else {
        rc = ws_session_send_part(&r->s, &r->out, WS_PART_FINISH, 0, text + 4,
                                  1);
        FUZZ_CHECK(rc == 0 || rc == WS_EFULL);
        r->app_open = false;
    }
    FUZZ_CHECK(rc != WS_EFULL || ws_session_finished(&r->s));
}

/* Between feeds of run 3: what an application may do at any time. */
static void app_calls(struct run *r, size_t piece)
{
    unsigned close_at = r->cfg[1] >> 5;
    int rc;

    if (piece + 1 == close_at) {
        rc = ws_session_close(&r->s, &r->out, 1001, "going", 5);
        FUZZ_CHECK(rc == 0 || rc == WS_ECLOSED || rc == WS_ENOMEM);
        FUZZ_CHECK(rc != WS_ECLOSED || r->s.state != WS_SESSION_OPEN ||
                   r->s.close_sent);
    } else if (piece == close_at) {
        rc = ws_session_send(&r->s, &r->out, WS_OP_PING, "hi", 2);
        FUZZ_CHECK(rc == 0 || rc == WS_ECLOSED || rc == WS_EFULL);
    }
    if (r->cfg[4] & CFG4_TOGGLE) {
        bool busy = r->s.in_message;

        rc = ws_session_set_streaming(&r->s, !r->s.streaming);
        FUZZ_CHECK(rc == (busy ? WS_ESTATE : 0));
        if (rc == 0)
            r->st_open = false;
    }
    if (r->cfg[4] & CFG4_APP_PARTS)
        app_parts(r, piece);
}

/* Run 3: pieces, flushes, and the application's calls between feeds. */
static void run_explore(const uint8_t *cfg, const uint8_t *p, size_t n,
                        struct fuzz_rng *rng)
{
    struct run r;
    struct bytes pend = {NULL, 0, 0};
    size_t piece = 0;

    run_init(&r, cfg, true);
    for (size_t pos = 0; pos < n; piece++) {
        size_t len = fuzz_chunk(rng, n - pos);

        feed(&r, &pend, p + pos, len);
        pos += len;
        app_calls(&r, piece);
        check_state(&r);
        if (r.cfg[1] & CFG1_FLUSH) {
            check_output(&r.peer, ws_buf_head(&r.out), ws_buf_size(&r.out));
            ws_buf_consume(&r.out, ws_buf_size(&r.out));
        }
    }
    run_finish(&r, &pend);
    run_free(&r, &pend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t cfg[CFG_BYTES];
    struct run whole, split;
    struct bytes pend_w = {NULL, 0, 0}, pend_s = {NULL, 0, 0};
    struct fuzz_rng rng;

    if (size < CFG_BYTES)
        return 0;
    memcpy(cfg, data, CFG_BYTES);
    data += CFG_BYTES;
    size -= CFG_BYTES;

    run_plain(&whole, cfg, data, size, NULL, &pend_w);
    fuzz_seed(&rng, cfg, CFG_BYTES, 1);
    run_plain(&split, cfg, data, size, &rng, &pend_s);

    /* §9: the same results whatever the split. */
    FUZZ_CHECK(whole.tr.len == split.tr.len);
    FUZZ_CHECK(whole.tr.len == 0 ||
               memcmp(whole.tr.p, split.tr.p, whole.tr.len) == 0);
    FUZZ_CHECK(ws_buf_size(&whole.out) == ws_buf_size(&split.out));
    FUZZ_CHECK(ws_buf_size(&whole.out) == 0 ||
               memcmp(ws_buf_head(&whole.out), ws_buf_head(&split.out),
                      ws_buf_size(&whole.out)) == 0);
    /* A finished session ignores its input, so how much of it was taken
       may differ (a bad frame is dropped whole or in part). */
    FUZZ_CHECK(whole.s.state == split.s.state);
    FUZZ_CHECK(ws_session_finished(&whole.s) || pend_w.len == pend_s.len);
    run_free(&whole, &pend_w);
    run_free(&split, &pend_s);

    fuzz_seed(&rng, cfg, CFG_BYTES, 2);
    run_explore(cfg, data, size, &rng);
    return 0;
}
