/*
 * lg_deflate.c - permessage-deflate for the load generator (RFC 7692):
 * the offer and the answer, compressed masked frames, and inflating the
 * echoes piece by piece as they arrive. zlib only; no library code.
 */
#include "lg_deflate.h"

#include <stdlib.h>
#include <string.h>

#include "lg_proto.h"

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

const char *lg_deflate_offer(enum lg_deflate mode)
{
    switch (mode) {
    case LG_DEFLATE_NOCONTEXT:
        return "Sec-WebSocket-Extensions: permessage-deflate; "
               "server_no_context_takeover; client_no_context_takeover\r\n";
    case LG_DEFLATE_CONTEXT:
        return "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    default:
        return "";
    }
}

int lg_z_init(struct lg_z *z, enum lg_deflate mode, long k, size_t size)
{
    memset(z, 0, sizeof(*z));
    if (inflateInit2(&z->rx, -15) != Z_OK)
        return -1;
    if (mode != LG_DEFLATE_CONTEXT)
        return 0;
    if (deflateInit2(&z->tx, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z->ring = calloc((size_t)k, sizeof(*z->ring));
    z->ring_len = calloc((size_t)k, sizeof(*z->ring_len));
    if (z->ring == NULL || z->ring_len == NULL)
        return -1;
    for (long i = 0; i < k; i++)
        if ((z->ring[i] = malloc(lg_z_frame_cap(size))) == NULL)
            return -1;
    return 0;
}

void lg_z_free(struct lg_z *z, long k)
{
    inflateEnd(&z->rx);
    if (z->ring) {
        deflateEnd(&z->tx);
        for (long i = 0; i < k; i++)
            free(z->ring[i]);
    }
    free(z->ring);
    free(z->ring_len);
}

/* Case-insensitive search for needle in the response head. */
static bool head_has(const char *head, const char *needle)
{
    size_t n = strlen(needle);

    for (const char *p = head; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

int lg_z_answer(struct lg_z *z, const char *head)
{
    if (!head_has(head, "permessage-deflate"))
        return -1;
    /* RFC 7692 §7.1.1: the answer says who may not keep a context. */
    z->rx_reset = head_has(head, "server_no_context_takeover");
    z->tx_reset = head_has(head, "client_no_context_takeover");
    return 0;
}

size_t lg_z_frame_cap(size_t len)
{
    return len + len / 1000 + 64 + LG_MAX_HEADER;
}

size_t lg_z_frame(z_stream *zs, bool reset, uint8_t *out, uint8_t opcode,
                  const uint8_t *payload, size_t len)
{
    size_t cap = lg_z_frame_cap(len) - LG_MAX_HEADER, n;
    uint8_t *body = out + LG_MAX_HEADER, mask[4];
    size_t h;

    zs->next_in = (Bytef *)(uintptr_t)payload;
    zs->avail_in = (uInt)len;
    zs->next_out = body;
    zs->avail_out = (uInt)cap;
    deflate(zs, Z_SYNC_FLUSH);
    n = cap - zs->avail_out - 4; /* §7.2.1: without 00 00 ff ff */
    if (reset)
        deflateReset(zs);
    lg_random(mask, sizeof(mask));
    /* Write the header in front of the body, then mask in place. */
    h = lg_frame_header(out, opcode, n, mask);
    memmove(out + h, body, n);
    out[0] |= 0x40; /* RSV1: compressed (§6) */
    for (size_t i = 0; i < n; i++)
        out[h + i] ^= mask[i & 3];
    return h + n;
}

/* Run inflate over in[0..n), handing out every piece produced. */
static int run(struct lg_z *z, const uint8_t *in, size_t n, uint8_t *scratch,
               size_t cap, int (*check)(void *, const uint8_t *, size_t),
               void *ctx)
{
    z->rx.next_in = (Bytef *)(uintptr_t)in;
    z->rx.avail_in = (uInt)n;
    do {
        int rc;

        z->rx.next_out = scratch;
        z->rx.avail_out = (uInt)cap;
        rc = inflate(&z->rx, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
            return -1;
        if (cap - z->rx.avail_out > 0 &&
            check(ctx, scratch, cap - z->rx.avail_out) < 0)
            return -1;
        if (rc == Z_STREAM_END)
            break;
    } while (z->rx.avail_in > 0 || z->rx.avail_out == 0);
    return 0;
}

int lg_z_inflate(struct lg_z *z, const uint8_t *p, size_t n, bool end,
                 uint8_t *scratch, size_t cap,
                 int (*check)(void *ctx, const uint8_t *piece, size_t k),
                 void *ctx)
{
    if (run(z, p, n, scratch, cap, check, ctx) < 0)
        return -1;
    if (!end)
        return 0;
    if (run(z, tail, sizeof(tail), scratch, cap, check, ctx) < 0)
        return -1;
    if (z->rx_reset)
        inflateReset(&z->rx);
    return 0;
}
