/*
 * deflate.h - the zlib streams of permessage-deflate (RFC 7692 §7.2):
 * compressing a message (or the pieces of one) and inflating one as its
 * bytes arrive, with the state each side keeps or resets. zlib state is
 * made on first use in each direction; where a side does not keep its
 * context, one compressor per window size and one inflater per server
 * serve every such connection (the loop is single-threaded), so that an
 * idle connection holds no zlib memory. No I/O. Internal.
 */
#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/buf.h"
#include "ws/deflate_offer.h"

/* What every compressed connection of a server shares. */
struct ws_deflate_config {
    int level;        /* zlib compression level, 1..9 */
    int mem_level;    /* zlib memLevel, 1..9 */
    size_t min_bytes; /* smaller messages are sent uncompressed */
};

struct ws_deflate_shared; /* per server; opaque */

/* One connection's compression state, made at the upgrade. */
struct ws_deflate {
    struct ws_deflate_shared *sh; /* not owned */
    struct ws_deflate_params params;
    bool rx_shared;        /* the message being inflated uses the shared one */
    bool rx_ended;         /* its deflate data ended (BFINAL) */
    struct z_stream_s *tx; /* owned: a kept context, or a fragmented send */
    struct z_stream_s *rx; /* owned: a kept context, or a long message */
    char *text;            /* owned: ws_deflate_text(), once asked */
};

/* Make / free the shared state. Create returns 0 or WS_ENOMEM. */
int ws_deflate_shared_create(struct ws_deflate_shared **out,
                             const struct ws_deflate_config *cfg);
void ws_deflate_shared_free(struct ws_deflate_shared *sh);

/* Which shared compressor a whole message of len bytes goes through on
   z: connections with the same key send the same compressed bytes for the
   same message (a publish builds its frame once per key). NULL when z
   keeps its own context: its bytes are its own. */
const void *ws_deflate_share_key(struct ws_deflate *z, size_t len);

/* Make a connection's state for params (nothing of zlib yet); NULL when
   out of memory. Free releases its streams. */
struct ws_deflate *ws_deflate_create(struct ws_deflate_shared *sh,
                                     const struct ws_deflate_params *params);
void ws_deflate_free(struct ws_deflate *z);

/* The Sec-WebSocket-Extensions value negotiated for z, made when first
   asked and kept; NULL when out of memory. */
const char *ws_deflate_text(struct ws_deflate *z);

/*
 * Whether a message of len bytes is sent compressed: decided before any
 * of it enters a compressor, so that what entered a compressor's window
 * is always sent compressed (the two sides' windows never drift). Not
 * below min_bytes, and never with an 8-bit server window, which zlib
 * cannot make (RFC 7692 lets any message go uncompressed).
 */
bool ws_deflate_compresses(const struct ws_deflate *z, size_t len);

/* Whether z compresses at all (messages sent in pieces always are, so
   that their pieces need not be held back to learn the total). */
bool ws_deflate_enabled(const struct ws_deflate *z);

/* The pieces of a message handed to ws_deflate_tx(). */
enum ws_deflate_part {
    WS_DEFLATE_WHOLE,
    WS_DEFLATE_FIRST,
    WS_DEFLATE_MORE,
    WS_DEFLATE_LAST
};

/*
 * Compress data[0..len), a whole message or one piece of one (RFC 7692
 * §7.2.1: a sync flush; the final 00 00 ff ff removed from the whole or
 * the last piece; an empty whole message is the single byte 00). *res
 * points at the compressed bytes (*res_len of them), valid until the
 * next call on any connection of the server. Returns 0, WS_ENOMEM, or
 * WS_ETOOBIG (the compressed form would exceed max bytes; SIZE_MAX: no
 * limit).
 */
int ws_deflate_tx(struct ws_deflate *z, const void *data, size_t len,
                  enum ws_deflate_part part, size_t max, const uint8_t **res,
                  size_t *res_len);

/* The caller has copied what ws_deflate_tx() gave: a large output buffer
   is released. */
void ws_deflate_tx_done(struct ws_deflate *z);

/*
 * Receiving a compressed message (RFC 7692 §7.2.2). rx_begin picks the
 * inflater: the shared one when the whole message is at hand (whole) and
 * the client does not keep its context, else the connection's own (made
 * on first use). rx_step inflates from *in (advancing *in and *in_len)
 * into dst[0..cap); it returns the bytes produced (0 once it needs more
 * input), or WS_EPROTO for data that is not valid DEFLATE (RFC 7692
 * gives no code; the session closes with 1007). At the message's end the
 * caller feeds the 4 bytes ws_deflate_tail, then calls rx_end, which
 * resets or releases the inflater as the client's context takeover asks.
 */
int ws_deflate_rx_begin(struct ws_deflate *z, bool whole);
ssize_t ws_deflate_rx_step(struct ws_deflate *z, const uint8_t **in,
                           size_t *in_len, uint8_t *dst, size_t cap);
void ws_deflate_rx_end(struct ws_deflate *z);

/* After the tail: whether the data ended on a block boundary (or with a
   BFINAL block). Not, and the message was truncated DEFLATE: 1007. */
bool ws_deflate_rx_complete(const struct ws_deflate *z);

extern const uint8_t ws_deflate_tail[4];

/*
 * The server's buffer for a message inflated in one go and delivered at
 * once (emptied first): one buffer serves every connection, since nothing
 * inflates while a delivery runs, so that such messages cost no
 * allocation. whole_done empties it again (and frees more than 1 MiB).
 */
struct ws_buf *ws_deflate_whole_buf(struct ws_deflate *z);
void ws_deflate_whole_done(struct ws_deflate *z);

/*
 * rx_step over all of in[0..len) appending to out, whose readable size
 * may not pass max: output is checked as it is produced, so a small
 * message that would inflate past max fails with WS_ETOOBIG having
 * allocated no more than max (plus a step). check (may be NULL) sees each
 * piece as it is produced, before it counts, and stops the inflating with
 * its negative result (a fail-fast UTF-8 check). Returns 0, WS_ETOOBIG,
 * WS_EPROTO, WS_ENOMEM or check's code.
 */
int ws_deflate_rx_append(struct ws_deflate *z, const uint8_t *in, size_t len,
                         struct ws_buf *out, size_t max,
                         int (*check)(void *ctx, const uint8_t *p, size_t n),
                         void *ctx);

#endif
