/*
 * session.h - the per-connection RFC 6455 protocol state machine after the
 * opening handshake. I/O-free: it consumes input bytes, raises events
 * through a handler, and appends outgoing frames (pongs, closes,
 * application messages) to an output buffer that its owner flushes.
 */
#ifndef WS_SESSION_H
#define WS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/buf.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/utf8.h"

struct ws_session_limits {
    size_t max_message;   /* bytes of one assembled message */
    size_t max_frame;     /* payload bytes of one frame */
    size_t max_fragments; /* frames in one message */
    size_t max_output;    /* bytes queued in the output buffer */
};

/*
 * RFC 6455 §7 closing states, from the server's point of view.
 *   OPEN       messages flow both ways;
 *   CLOSE_SENT we sent a close (ws_session_close) and wait for the peer's;
 *   DONE       the closing handshake is complete: flush, then close TCP;
 *   FAILED     we failed the connection (§7.1.7): a close frame with the
 *              reason is queued, input is ignored: flush, then close TCP;
 *              also when the output limit was hit (close code 1008);
 *   ABORTED    not even a close frame could be queued (out of memory):
 *              drop TCP at once.
 */
enum ws_session_state {
    WS_SESSION_OPEN,
    WS_SESSION_CLOSE_SENT,
    WS_SESSION_DONE,
    WS_SESSION_FAILED,
    WS_SESSION_ABORTED
};

/* Events raised while ws_session_feed() runs; ctx is the owner's. Data is
   borrowed for the duration of the call; data[len] is a NUL byte. */
struct ws_session_handler {
    void (*message)(void *ctx, uint8_t opcode, const uint8_t *data, size_t len);
    void (*pong)(void *ctx, const uint8_t *data, size_t len);
    void (*close)(void *ctx, uint16_t code, const uint8_t *reason, size_t len);
    /* Streaming mode: one piece of a data message, as it arrives. */
    void (*fragment)(void *ctx, uint8_t opcode, const uint8_t *data, size_t len,
                     bool first, bool last);
};

/* What a session is given to work with, borrowed (it must outlive the
   session): its limits and its event handler. One pointer per session
   for both, so that all the sessions of a server share one. */
struct ws_session_config {
    const struct ws_session_limits *lim;
    const struct ws_session_handler *handler;
};

/* The parts of a message sent in pieces (RFC 6455 §5.4). */
enum ws_session_part { WS_PART_BEGIN, WS_PART_CONTINUE, WS_PART_FINISH };

struct ws_session {
    const struct ws_session_config *cfg; /* not owned */
    void *ctx;                           /* not owned */

    /* The frame whose payload is being read. */
    struct ws_frame_header frame;
    uint64_t frame_pos; /* payload bytes of it consumed so far */

    struct ws_buf *msg; /* owned; made when a message is assembled */
    /* Bytes of the connection's output queue held outside the buffer the
       calls below append to (frames shared with other connections, see
       net/outq.h): they count against max_output. The owner keeps it. */
    size_t out_shared;
    struct ws_deflate *z; /* owned: permessage-deflate, or NULL */

    /* Fragments of the data message being assembled (§5.4); the limit is
       clamped to what this counts. */
    uint32_t fragments;
    uint16_t close_code; /* the peer's, or the one we failed with */
    uint8_t state;       /* enum ws_session_state */
    uint8_t msg_opcode;
    uint8_t out_opcode; /* of the message being sent in pieces */
    struct ws_utf8 utf8;
    struct ws_utf8 out_utf8;

    /* Flags, as bit-fields: every connection holds them. */
    bool close_sent : 1;
    bool close_received : 1;
    bool closed_first : 1; /* our close went out before the peer's came */
    bool in_frame : 1;
    /* A frame taken whole (ws_session_need) waits at the head of the
       input; frame_pos of its payload bytes are unmasked and checked. */
    bool awaiting : 1;
    bool in_message : 1;
    /* Streaming mode: pieces go to handler->fragment, nothing is
       assembled, and the size limits do not apply. */
    bool streaming : 1;
    bool stream_first : 1; /* the next piece starts a message */
    bool out_open : 1;     /* a message is being sent in pieces */
    bool msg_deflate : 1;  /* the message being received is compressed */
    bool out_deflate : 1;  /* the one being sent in pieces is compressed */
};

/* Start a session in OPEN with the given limits and event handler
   (borrowed: cfg must outlive the session). */
void ws_session_init(struct ws_session *s, const struct ws_session_config *cfg,
                     void *ctx);

/* Release the message buffer and the compression state. */
void ws_session_free(struct ws_session *s);

/*
 * Use permessage-deflate (RFC 7692) as negotiated in z, which the session
 * owns from now on (NULL: none): RSV1 is accepted on the first frame of a
 * data message and such messages are inflated (max_message applies to the
 * inflated size, checked as it is produced); text and binary messages are
 * compressed as ws_deflate_compresses() decides. Call before any input.
 */
void ws_session_set_deflate(struct ws_session *s, struct ws_deflate *z);

/* Whether a message with opcode and len would be sent compressed (such a
   message never goes through ws_session_frame_begin()). */
bool ws_session_compresses(const struct ws_session *s, uint8_t opcode,
                           size_t len);

/*
 * Consume input. in[0..len) is modified (unmasked in place) and in[len]
 * must be writable (it is borrowed for a NUL byte and restored). Returns
 * the bytes consumed; unconsumed bytes (a partial frame) must be passed
 * again, as the call left them (they may be unmasked already), at the
 * head of the next call's input, followed by what arrived since.
 * Consumes nothing unless the state is OPEN or CLOSE_SENT; check the
 * state after every call.
 */
size_t ws_session_feed(struct ws_session *s, uint8_t *in, size_t len,
                       struct ws_buf *out);

/*
 * The input the session waits for: a control frame, or a single-frame data
 * message of at most WS_SESSION_IN_PLACE_MAX bytes, is only taken once it
 * is whole in the input, so that it is unmasked, checked and delivered
 * where it lies, with no copy. After a feed that stopped at such a frame,
 * this is the byte count (header + payload) the input must hold at its
 * head; the owner grows its buffer to that (plus the NUL byte). 0 when
 * any further input makes progress.
 */
#define WS_SESSION_IN_PLACE_MAX (1u << 20)
size_t ws_session_need(const struct ws_session *s);

/* Payload the fused pass leaves is unmasked and checked in slices of this
   many bytes, each still in the L1 data cache when the check reads it. */
#define WS_SESSION_SLICE 16384u

/*
 * Queue a frame with opcode (text, binary, ping or pong) in out. Text must
 * be valid UTF-8 (checked). Returns 0, WS_ECLOSED (not OPEN), WS_ESTATE (a
 * text or binary message while a fragmented one is open), WS_EINVAL,
 * WS_ETOOBIG (above max_message, or a control frame above 125 bytes), or
 * WS_EFULL (more than max_output bytes wait already: nothing is queued,
 * the session fails with 1008 and the state becomes FAILED).
 */
int ws_session_send(struct ws_session *s, struct ws_buf *out, uint8_t opcode,
                    const void *data, size_t len);

/* ws_session_send() of text the caller knows is valid UTF-8 (it was
   checked once for many connections, or on its way in). */
int ws_session_send_valid(struct ws_session *s, struct ws_buf *out,
                          uint8_t opcode, const void *data, size_t len);

/*
 * A frame that its owner writes itself, header and payload from where they
 * lie (a large message, sent without a copy while nothing is queued):
 * ws_session_frame_begin() checks it as ws_session_send() would (text
 * unless text_valid) and writes its header into hdr. Returns the header's
 * length, or the error ws_session_send() would return; nothing is
 * queued. The owner then writes header and payload and passes
 * the count taken to ws_session_frame_rest(), which queues the rest in
 * out (empty before the write) and returns 0 or WS_ENOMEM; a failure after
 * part of the frame went out leaves the state ABORTED.
 */
ssize_t ws_session_frame_begin(struct ws_session *s, uint8_t opcode,
                               const void *data, size_t len, bool text_valid,
                               uint8_t hdr[WS_FRAME_MAX_HEADER]);
int ws_session_frame_rest(struct ws_session *s, struct ws_buf *out,
                          const uint8_t *hdr, size_t hlen, const void *data,
                          size_t len, size_t written);

/*
 * The same for a message ws_session_compresses(): ws_session_deflated_begin()
 * checks and compresses it and writes the header; *payload (*plen bytes)
 * is the compressed payload, valid until ws_session_deflated_rest(), which
 * queues what the write did not take and releases the compressor's
 * output. Either may fail the session with 1011 as ws_session_send()
 * would (a compressor that keeps its context could not be undone).
 */
ssize_t ws_session_deflated_begin(struct ws_session *s, struct ws_buf *out,
                                  uint8_t opcode, const void *data, size_t len,
                                  bool text_valid,
                                  uint8_t hdr[WS_FRAME_MAX_HEADER],
                                  const uint8_t **payload, size_t *plen);
int ws_session_deflated_rest(struct ws_session *s, struct ws_buf *out,
                             const uint8_t *hdr, size_t hlen,
                             const uint8_t *payload, size_t plen,
                             size_t written);

/*
 * A data frame built once for many connections (a publish) and queued
 * by reference beside out: whether it may go now, as ws_session_send()
 * would decide. Returns 0 (the caller queues it and counts it in
 * out_shared), WS_ECLOSED, WS_ESTATE, or WS_EFULL (more than max_output
 * bytes wait already: the session fails with 1008, nothing is queued).
 */
int ws_session_share_check(struct ws_session *s, struct ws_buf *out,
                           uint8_t opcode);

/*
 * Send one piece of a fragmented message: BEGIN with opcode (text or
 * binary), then CONTINUE, then FINISH (opcode ignored). Text pieces are
 * checked as one UTF-8 stream; a bad piece is not sent. Returns 0,
 * WS_ESTATE (BEGIN while a message is open, or CONTINUE/FINISH with
 * none), WS_ECLOSED, WS_EINVAL, WS_ETOOBIG, WS_EFULL, WS_ENOMEM.
 */
int ws_session_send_part(struct ws_session *s, struct ws_buf *out,
                         enum ws_session_part part, uint8_t opcode,
                         const void *data, size_t len);

/* Switch streaming mode; WS_ESTATE while a message is half received. */
int ws_session_set_streaming(struct ws_session *s, bool on);

/*
 * Start the closing handshake with code and reason (§7.1.2): queue the
 * close frame and enter CLOSE_SENT. Returns 0, WS_ECLOSED (a close was
 * already sent), WS_EINVAL (code or reason not allowed), WS_ENOMEM (the
 * state becomes ABORTED).
 */
int ws_session_close(struct ws_session *s, struct ws_buf *out, uint16_t code,
                     const char *reason, size_t reason_len);

/* True when the session will consume no more input (DONE, FAILED,
   ABORTED). */
bool ws_session_finished(const struct ws_session *s);

/* The reason a close we fail the connection with carries ("protocol
   error" for 1002), "" for codes that have none. */
const char *ws_session_close_text(uint16_t code);

#endif
