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
#define STEP (64u * 1024u)    /* the most a buffer grows by at a time */
#define FIRST_STEP 1024u      /* the least room the first step asks for */
#define WHOLE_KEEP (1u << 20) /* the whole-message buffer kept after use */
#define KEEP (64u * 1024u)    /* a compressed-output buffer kept after use */
#define SMALL 4096u           /* a message this short uses tx_small */
#define SMALL_MEM_LEVEL 3     /* tx_small's memLevel: a 2 KiB hash table */

/* One window size's shared compressor. */
struct shared_tx {
    z_stream *zs;
};

struct ws_deflate_shared {
    struct ws_deflate_config cfg;
    struct shared_tx tx[MAX_BITS + 1]; /* by window bits, MIN_BITS.. */
    /* The same for messages of at most SMALL bytes, with a smaller hash:
       a reset clears the whole hash table, 2^(memLevel + 8) bytes, which
       for short messages costs more than compressing them. */
    struct shared_tx tx_small[MAX_BITS + 1];
    z_stream *rx;          /* 15 bits: inflates any window */
    struct ws_buf scratch; /* compressed output */
    struct ws_buf whole;   /* a message inflated in one go */
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
        stream_free_tx(sh->tx_small[b].zs);
    }
    stream_free_rx(sh->rx);
    ws_buf_free(&sh->scratch);
    ws_buf_free(&sh->whole);
    free(sh);
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

bool ws_deflate_enabled(const struct ws_deflate *z)
{
    return z != NULL && z->params.server_bits >= MIN_BITS;
}

bool ws_deflate_compresses(const struct ws_deflate *z, size_t len)
{
    return z != NULL && z->params.server_bits >= MIN_BITS &&
           len >= z->sh->cfg.min_bytes && len <= UINT32_MAX;
}

/* A new compressor with bits of window and mem_level. */
static z_stream *new_tx(const struct ws_deflate_shared *sh, int bits,
                        int mem_level)
{
    z_stream *zs = calloc(1, sizeof(*zs));

    if (zs && deflateInit2(zs, sh->cfg.level, Z_DEFLATED, -bits, mem_level,
                           Z_DEFAULT_STRATEGY) != Z_OK) {
        free(zs);
        zs = NULL;
    }
    return zs;
}

/* The shared compressor a whole message of len bytes uses. */
static struct shared_tx *shared_for(struct ws_deflate *z, size_t len)
{
    int bits = z->params.server_bits;

    return len <= SMALL && z->sh->cfg.mem_level > SMALL_MEM_LEVEL
               ? &z->sh->tx_small[bits]
               : &z->sh->tx[bits];
}

const void *ws_deflate_share_key(struct ws_deflate *z, size_t len)
{
    return z->params.server_no_takeover ? shared_for(z, len) : NULL;
}

/* The compressor for part, made if needed; shared: reset after use. */
static z_stream *tx_stream(struct ws_deflate *z, enum ws_deflate_part part,
                           size_t len, bool *shared)
{
    int bits = z->params.server_bits;

    *shared = z->params.server_no_takeover && part == WS_DEFLATE_WHOLE;
    if (*shared) {
        struct shared_tx *t = shared_for(z, len);

        if (t->zs == NULL)
            t->zs = new_tx(z->sh, bits,
                           t == &z->sh->tx[bits] ? z->sh->cfg.mem_level
                                                 : SMALL_MEM_LEVEL);
        return t->zs;
    }
    if (z->tx == NULL)
        z->tx = new_tx(z->sh, bits, z->sh->cfg.mem_level);
    return z->tx;
}

/* What b may grow to for a result of at most max bytes: a flush's few
   bytes more (SIZE_MAX: no limit). */
static size_t scratch_cap(size_t max)
{
    return max > SIZE_MAX - 16 ? SIZE_MAX : max + 16;
}

/* Deflate data into b (cleared first) with a sync flush. */
static int run_deflate(z_stream *zs, const void *data, size_t len,
                       struct ws_buf *b, size_t max)
{
    size_t cap = scratch_cap(max);
    int rc;

    ws_buf_clear(b);
    zs->next_in = (Bytef *)(uintptr_t)data;
    zs->avail_in = (uInt)len;
    do {
        /* deflateBound is for a whole stream; a flush adds a few bytes. */
        size_t want = deflateBound(zs, zs->avail_in) + 16;

        if (ws_buf_reserve(b, want, cap) < 0)
            return want > cap - ws_buf_size(b) ? WS_ETOOBIG : WS_ENOMEM;
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
    struct ws_buf *b = &sh->scratch;
    z_stream *zs;
    int rc;

    if (len > UINT32_MAX)
        return WS_ETOOBIG; /* zlib counts in uInt */
    zs = tx_stream(z, part, len, &shared);
    if (zs == NULL)
        return WS_ENOMEM;
    rc = run_deflate(zs, data, len, b, max);
    if (shared)
        deflateReset(zs); /* §7.1.1.1: no context for the next message */
    if (rc < 0)
        return rc;
    /* §7.2.1: a sync flush ends in 00 00 ff ff; the last piece drops it. */
    if (last && ws_buf_size(b) >= 4)
        b->len -= 4;
    /* §7.2.3.6: an empty message, or a last piece that made no output
       (zlib writes nothing after a flush with no new input), is the byte
       00: the header of the empty stored block the receiver's 00 00 ff ff
       completes. Without it the tail would start a block of its own. */
    if (last && ws_buf_size(b) == 0 &&
        (rc = ws_buf_append(b, "", 1, scratch_cap(max))) < 0)
        return rc;
    if (last && !shared && z->params.server_no_takeover) {
        stream_free_tx(z->tx); /* the fragmented message is done */
        z->tx = NULL;
    }
    *res = ws_buf_head(b);
    *res_len = ws_buf_size(b);
    return *res_len > max ? WS_ETOOBIG : 0;
}

void ws_deflate_tx_done(struct ws_deflate *z)
{
    ws_buf_shrink(&z->sh->scratch, KEEP);
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

/*
 * The client ended its stream with a BFINAL block but keeps its context:
 * the next message may still refer back into the window (RFC 7692
 * §7.2.2), so the stream starts again with the window as its dictionary.
 */
static void restart_with_window(z_stream *zs)
{
    uint8_t *dict = malloc(1u << MAX_BITS);
    uInt n = 0;

    if (dict && inflateGetDictionary(zs, dict, &n) == Z_OK) {
        inflateReset(zs);
        if (n > 0)
            inflateSetDictionary(zs, dict, n);
    } else {
        inflateReset(zs); /* out of memory: the next message may fail */
    }
    free(dict);
}

bool ws_deflate_rx_complete(const struct ws_deflate *z)
{
    const z_stream *zs = rx_stream(z);

    /* zlib: data_type has 128 when the inflater stopped between blocks. */
    return z->rx_ended || (zs != NULL && (zs->data_type & 128) != 0);
}

void ws_deflate_rx_end(struct ws_deflate *z)
{
    if (z->rx_shared) {
        inflateReset(z->sh->rx);
    } else if (z->params.client_no_takeover) {
        /* No context to keep: an idle connection holds no inflater. */
        stream_free_rx(z->rx);
        z->rx = NULL;
    } else if (z->rx_ended && z->rx) {
        restart_with_window(z->rx);
    }
    z->rx_shared = false;
    z->rx_ended = false;
}

int ws_deflate_rx_append(struct ws_deflate *z, const uint8_t *in, size_t len,
                         struct ws_buf *out, size_t max,
                         int (*check)(void *ctx, const uint8_t *p, size_t n),
                         void *ctx)
{
    /* The first step expects a few times the input (a small message keeps
       a small buffer), later ones double, up to STEP. */
    size_t step = len < STEP / 4 ? 4 * len : STEP;

    if (step < FIRST_STEP)
        step = FIRST_STEP;
    for (;; step = step < STEP / 2 ? 2 * step : STEP) {
        size_t have = ws_buf_size(out), before = len;
        size_t room = have < max ? max - have : 0;
        size_t cap = room < step ? room : step;
        uint8_t probe;
        ssize_t n;
        int rc;

        if (cap > 0) {
            rc = ws_buf_reserve(out, cap, max);
            if (rc < 0)
                return rc;
            n = ws_deflate_rx_step(z, &in, &len, ws_buf_tail(out), cap);
            if (n < 0)
                return (int)n;
            if (check && n > 0 &&
                (rc = check(ctx, ws_buf_tail(out), (size_t)n)) < 0)
                return rc;
            ws_buf_commit(out, (size_t)n);
            if ((size_t)n < cap) {
                if (len == 0)
                    return 0; /* all input taken, nothing more to come */
                if (len == before)
                    return WS_EPROTO; /* no progress: not DEFLATE */
                continue;
            }
        }
        /* The room is full: one more byte shows whether more comes, so an
           output that fits exactly never grows the buffer, and one past
           max is one too many. */
        n = ws_deflate_rx_step(z, &in, &len, &probe, 1);
        if (n < 0)
            return (int)n;
        if (n == 0 && len == 0)
            return 0;
        if (n == 1 && ws_buf_size(out) >= max)
            return WS_ETOOBIG;
        if (n == 1 && check && (rc = check(ctx, &probe, 1)) < 0)
            return rc;
        if (n == 1 && (rc = ws_buf_append(out, &probe, 1, max)) < 0)
            return rc;
        if (n == 0 && len == before)
            return WS_EPROTO;
    }
}

struct ws_buf *ws_deflate_whole_buf(struct ws_deflate *z)
{
    ws_buf_clear(&z->sh->whole);
    return &z->sh->whole;
}

void ws_deflate_whole_done(struct ws_deflate *z)
{
    ws_buf_clear(&z->sh->whole);
    ws_buf_shrink(&z->sh->whole, WHOLE_KEEP);
}
