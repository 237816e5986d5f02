/*
 * lg_deflate.h - the client side of permessage-deflate (RFC 7692) for the
 * load generator, on zlib directly (not the library's code, so that the
 * benchmark checks the server against an independent implementation):
 * the offer, compressed masked frames, and inflating the server's
 * compressed echoes as their bytes arrive.
 */
#ifndef WS_BENCH_LG_DEFLATE_H
#define WS_BENCH_LG_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* --deflate: none, or an offer that asks both sides to keep no context
   (each message compressed alone), or one that lets both keep it. */
enum lg_deflate { LG_DEFLATE_NONE, LG_DEFLATE_NOCONTEXT, LG_DEFLATE_CONTEXT };

/* The Sec-WebSocket-Extensions request line for mode ("" for none). */
const char *lg_deflate_offer(enum lg_deflate mode);

/* One connection's compression state. */
struct lg_z {
    z_stream rx;        /* inflates the server's messages */
    z_stream tx;        /* CONTEXT: compresses ours, in send order */
    bool rx_reset;      /* the server keeps no context: reset per message */
    bool tx_reset;      /* we may keep none either */
    bool rx_compressed; /* the echo being read has RSV1 */
    uint8_t **ring;     /* CONTEXT: frames of messages built, by seq % K */
    size_t *ring_len;
    uint64_t built; /* CONTEXT: messages built so far */
};

/* Set up z for mode with K messages in flight; 0 or -1. */
int lg_z_init(struct lg_z *z, enum lg_deflate mode, long k, size_t size);
void lg_z_free(struct lg_z *z, long k);

/* Read the server's answer (the response head): 0 when it accepted
   permessage-deflate, -1 when not; sets the resets it asked for. */
int lg_z_answer(struct lg_z *z, const char *head);

/*
 * Compress payload[0..len) with zs (sync flush, tail removed; reset after
 * when reset) into a masked client frame with RSV1 (RFC 7692 §6, §7.2.1)
 * at out, which holds len + 64 + len / 1000 bytes. Returns its length.
 */
size_t lg_z_frame(z_stream *zs, bool reset, uint8_t *out, uint8_t opcode,
                  const uint8_t *payload, size_t len);

/* The capacity lg_z_frame() needs for a payload of len. */
size_t lg_z_frame_cap(size_t len);

/*
 * Inflate n bytes at p of the compressed echo (then, at its end, the
 * tail 00 00 ff ff) into scratch[0..cap), handing each piece produced to
 * check(ctx, piece, k), which returns 0 or -1. Returns 0 or -1 (bad data,
 * or a check that failed).
 */
int lg_z_inflate(struct lg_z *z, const uint8_t *p, size_t n, bool end,
                 uint8_t *scratch, size_t cap,
                 int (*check)(void *ctx, const uint8_t *piece, size_t k),
                 void *ctx);

#endif
