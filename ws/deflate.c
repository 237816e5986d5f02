/*
 * deflate.c - permessage-deflate's zlib streams (RFC 7692 §7.2): raw
 * DEFLATE with a sync flush per message or piece, the trailing
 * 00 00 ff ff removed on the way out and put back on the way in, context
 * kept or reset per side as negotiated. Streams are made on first use;
 * connections that keep no context share the server's. No I/O; memory
 * only through zlib's allocator and the output buffers it is given.
 */
#include "ws/deflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "net/error.h"

#define MIN_BITS 9  /* zlib cannot make raw deflate with an 8-bit window */
#define MAX_BITS 15 /* RFC 7692 §7.1.2 */
#define STEP (64u * 1024u) /* inflated bytes a buffer grows by at a time */

/* One window size's shared compressor and, during a broadcast, the last
   message it compressed. */
struct shared_tx {
    z_stream *zs;
    unsigned gen; /* broadcast generation of cached; 0: none */
    struct ws_buf cached;
};

struct ws_deflate_shared {
    struct ws_deflate_config cfg;
    struct shared_tx tx[MAX_BITS + 1]; /* by window bits, MIN_BITS.. */
    z_stream *rx;                      /* 15 bits: inflates any window */
    struct ws_buf scratch;             /* compressed output */
    unsigned gen;                      /* broadcast generation, 0 outside */
    unsigned next_gen;
};

const uint8_t ws_deflate_tail[4] = {0x00, 0x00, 0xff, 0xff};

int ws_deflate_shared_create(struct ws_deflate_shared **out,
                             const struct ws_deflate_config *cfg)
{
    struct ws_deflate_shared *sh = calloc(1, sizeof(*sh));

    *out = sh;
    if (sh == NULL)
        return WS_ENOMEM;
    sh->cfg = *cfg;
    return 0;
}

static void stream_free_tx(z_stream *zs)
{
    if (zs) {
        deflateEnd(zs);
        free(zs);
    }
}

static void stream_free_rx(z_stream *zs)
{
    if (zs) {
        inflateEnd(zs);
        free(zs);
    }
}

void ws_deflate_shared_free(struct ws_deflate_shared *sh)
{
    if (sh == NULL)
        return;
    for (int b = 0; b <= MAX_BITS; b++) {
        stream_free_tx(sh->tx[b].zs);
        ws_buf_free(&sh->tx[b].cached);
    }
    stream_free_rx(sh->rx);
    ws_buf_free(&sh->scratch);
    free(sh);
}

void ws_deflate_broadcast_begin(struct ws_deflate_shared *sh)
{
    if (++sh->next_gen == 0)
        sh->next_gen = 1;
    sh->gen = sh->next_gen;
}

void ws_deflate_broadcast_end(struct ws_deflate_shared *sh)
{
    sh->gen = 0;
}

struct ws_deflate *ws_deflate_create(struct ws_deflate_shared *sh,
                                     const struct ws_deflate_params *params)
{
    struct ws_deflate *z = calloc(1, sizeof(*z));

    if (z) {
        z->sh = sh;
        z->params = *params;
    }
    return z;
}

void ws_deflate_free(struct ws_deflate *z)
{
    if (z == NULL)
        return;
    stream_free_tx(z->tx);
    stream_free_rx(z->rx);
    free(z->text);
    free(z);
}

const char *ws_deflate_text(struct ws_deflate *z)
{
    char text[160];

    if (z->text == NULL &&
        ws_deflate_response(&z->params, text, sizeof(text)) > 0)
        z->text = strdup(text);
    return z->text;
}

bool ws_deflate_compresses(const struct ws_deflate *z, size_t len)
{
    return z != NULL && z->params.server_bits >= MIN_BITS &&
           len >= z->sh->cfg.min_bytes;
}

/* A new compressor with bits of window. */
static z_stream *new_tx(const struct ws_deflate_shared *sh, int bits)
{
    z_stream *zs = calloc(1, sizeof(*zs));

    if (zs && deflateInit2(zs, sh->cfg.level, Z_DEFLATED, -bits,
                           sh->cfg.mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(zs);
        zs = NULL;
    }
    return zs;
}

/* The compressor for part, made if needed; shared: reset after use. */
static z_stream *tx_stream(struct ws_deflate *z, enum ws_deflate_part part,
                           bool *shared)
{
    int bits = z->params.server_bits;

    *shared = z->params.server_no_takeover && part == WS_DEFLATE_WHOLE;
    if (*shared) {
        struct shared_tx *t = &z->sh->tx[bits];

        if (t->zs == NULL)
            t->zs = new_tx(z->sh, bits);
        return t->zs;
    }
    if (z->tx == NULL)
        z->tx = new_tx(z->sh, bits);
    return z->tx;
}

/* Deflate data into b (cleared first) with a sync flush. */
static int run_deflate(z_stream *zs, const void *data, size_t len,
                       struct ws_buf *b, size_t max)
{
    int rc;

    ws_buf_clear(b);
    zs->next_in = (Bytef *)(uintptr_t)data;
    zs->avail_in = (uInt)len;
    do {
        /* deflateBound is for a whole stream; a flush adds a few bytes. */
        size_t want = deflateBound(zs, zs->avail_in) + 16;

        if (ws_buf_reserve(b, want, max + 16) < 0)
            return ws_buf_size(b) + want > max + 16 ? WS_ETOOBIG : WS_ENOMEM;
        zs->next_out = ws_buf_tail(b);
        zs->avail_out = (uInt)ws_buf_space(b);
        rc = deflate(zs, Z_SYNC_FLUSH);
        ws_buf_commit(b, ws_buf_space(b) - zs->avail_out);
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return WS_ENOMEM;
    } while (zs->avail_in > 0 || zs->avail_out == 0);
    return 0;
}

int ws_deflate_tx(struct ws_deflate *z, const void *data, size_t len,
                  enum ws_deflate_part part, size_t max, const uint8_t **res,
                  size_t *res_len)
{
    struct ws_deflate_shared *sh = z->sh;
    bool shared, last = part == WS_DEFLATE_WHOLE || part == WS_DEFLATE_LAST;
    struct shared_tx *t = &sh->tx[z->params.server_bits];
    struct ws_buf *b = &sh->scratch;
    z_stream *zs;
    int rc;

    if (len > UINT32_MAX)
        return WS_ETOOBIG; /* zlib counts in uInt */
    zs = tx_stream(z, part, &shared);
    if (zs == NULL)
        return WS_ENOMEM;
    if (shared && sh->gen != 0) {
        b = &t->cached;
        if (t->gen == sh->gen)
            goto done; /* this broadcast compressed it already */
    }
    rc = run_deflate(zs, data, len, b, max);
    if (shared)
        deflateReset(zs); /* §7.1.1.1: no context for the next message */
    if (rc < 0)
        return rc;
    /* §7.2.1: a sync flush ends in 00 00 ff ff; the last piece drops it. */
    if (last && ws_buf_size(b) >= 4)
        b->len -= 4;
    /* §7.2.3.6: an empty message is one empty block, the byte 00. */
    if (part == WS_DEFLATE_WHOLE && ws_buf_size(b) == 0)
        ws_buf_append(b, "", 1, max + 16);
    if (shared && sh->gen != 0)
        t->gen = sh->gen;
done:
    if (last && !shared && z->params.server_no_takeover) {
        stream_free_tx(z->tx); /* the fragmented message is done */
        z->tx = NULL;
    }
    *res = ws_buf_head(b);
    *res_len = ws_buf_size(b);
    return *res_len > max ? WS_ETOOBIG : 0;
}

/* A new inflater with bits of window. */
static z_stream *new_rx(int bits)
{
    z_stream *zs = calloc(1, sizeof(*zs));

    if (zs && inflateInit2(zs, -bits) != Z_OK) {
        free(zs);
        zs = NULL;
    }
    return zs;
}

/* The stream the current message inflates with. */
static z_stream *rx_stream(const struct ws_deflate *z)
{
    return z->rx_shared ? z->sh->rx : z->rx;
}

int ws_deflate_rx_begin(struct ws_deflate *z, bool whole)
{
    z->rx_ended = false;
    z->rx_shared = whole && z->params.client_no_takeover;
    if (z->rx_shared) {
        if (z->sh->rx == NULL)
            z->sh->rx = new_rx(MAX_BITS);
        return z->sh->rx ? 0 : WS_ENOMEM;
    }
    if (z->rx == NULL)
        z->rx = new_rx(z->params.client_bits);
    return z->rx ? 0 : WS_ENOMEM;
}

ssize_t ws_deflate_rx_step(struct ws_deflate *z, const uint8_t **in,
                           size_t *in_len, uint8_t *dst, size_t cap)
{
    z_stream *zs = rx_stream(z);
    size_t take = *in_len < UINT32_MAX ? *in_len : UINT32_MAX;
    size_t room = cap < UINT32_MAX ? cap : UINT32_MAX;
    int rc;

    if (z->rx_ended) {
        /* RFC 7692 §7.2.2: after a block with BFINAL set only the tail
           this side appends may follow; anything else is not DEFLATE. */
        if (*in_len > 0 &&
            !(*in_len <= 4 && memcmp(*in, ws_deflate_tail, *in_len) == 0))
            return WS_EPROTO;
        *in += *in_len;
        *in_len = 0;
        return 0;
    }
    zs->next_in = (Bytef *)(uintptr_t)*in;
    zs->avail_in = (uInt)take;
    zs->next_out = dst;
    zs->avail_out = (uInt)room;
    rc = inflate(zs, Z_SYNC_FLUSH);
    *in += take - zs->avail_in;
    *in_len -= take - zs->avail_in;
    if (rc == Z_STREAM_END)
        z->rx_ended = true;
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
        return rc == Z_MEM_ERROR ? WS_ENOMEM : WS_EPROTO;
    return (ssize_t)(room - zs->avail_out);
}

void ws_deflate_rx_end(struct ws_deflate *z)
{
    if (z->rx_shared) {
        inflateReset(z->sh->rx);
    } else if (z->params.client_no_takeover || z->rx_ended) {
        /* No context to keep (or the client ended its stream): an idle
           connection holds no inflater. */
        stream_free_rx(z->rx);
        z->rx = NULL;
    }
    z->rx_shared = false;
}

int ws_deflate_rx_append(struct ws_deflate *z, const uint8_t *in, size_t len,
                         struct ws_buf *out, size_t max)
{
    for (;;) {
        size_t have = ws_buf_size(out), before = len, cap = 1;
        size_t room = have < max ? max - have : 0;
        uint8_t probe, *dst = &probe;
        ssize_t n;

        /* Grow a step at a time, never past max; at max, one byte of room
           shows whether anything more would come (one too many). */
        if (room > 0) {
            int rc;

            cap = room < STEP ? room : STEP;
            rc = ws_buf_reserve(out, cap, max);
            if (rc < 0)
                return rc;
            dst = ws_buf_tail(out);
        }
        n = ws_deflate_rx_step(z, &in, &len, dst, cap);
        if (n < 0)
            return (int)n;
        if (room == 0 && n > 0)
            return WS_ETOOBIG;
        if (room > 0)
            ws_buf_commit(out, (size_t)n);
        if ((size_t)n < cap && len == 0)
            return 0; /* all input taken, nothing more to come out */
        if ((size_t)n < cap && len == before)
            return WS_EPROTO; /* no progress: not DEFLATE */
    }
}
