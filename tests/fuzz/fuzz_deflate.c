/*
 * fuzz_deflate.c - libFuzzer target for permessage-deflate (RFC 7692).
 * Byte 0 picks the mode:
 *   even: the input after it is Sec-WebSocket-Extensions values (split at
 *         '\n') for ws_deflate_negotiate() under a policy from byte 1: an
 *         accepted offer's response must parse back as a valid offer, and
 *         its windows must be in range;
 *   odd:  the input is a client byte stream fed (in pieces from the input)
 *         to a session that negotiated compression (parameters and
 *         streaming from byte 1): consumed bytes never exceed what was
 *         given, a delivered message never exceeds max_message, text is
 *         valid UTF-8, and what the session sends back (every message
 *         echoed, compressed) inflates to exactly what was delivered.
 */
#include <zlib.h>

#include "tests/fuzz/fuzz.h"
#include "ws/deflate.h"
#include "ws/deflate_offer.h"
#include "ws/frame.h"
#include "ws/session.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#define MAX_MESSAGE 65536u

static const struct ws_session_limits lim = {
    .max_message = MAX_MESSAGE,
    .max_frame = MAX_MESSAGE,
    .max_fragments = 64,
    .max_output = 1u << 20,
};

static void fuzz_negotiate(uint8_t cfg, const uint8_t *p, size_t n)
{
    const char *vals[8];
    size_t lens[8], nv = 0, start = 0;
    struct ws_deflate_policy pol = {
        .server_takeover = cfg & 1,
        .client_takeover = (cfg >> 1) & 1,
        .server_max_bits = (uint8_t)(9 + (cfg >> 2) % 7),
        .client_max_bits = (uint8_t)(8 + (cfg >> 5) % 8),
    };
    struct ws_deflate_params out;
    struct ws_deflate_offer back;
    char resp[256];
    int rc;

    for (size_t i = 0; i <= n && nv < 8; i++) {
        if (i == n || p[i] == '\n') {
            vals[nv] = (const char *)p + start;
            lens[nv++] = i - start;
            start = i + 1;
        }
    }
    rc = ws_deflate_negotiate(vals, lens, nv, &pol, &out, resp, sizeof(resp));
    FUZZ_CHECK(rc == 0 || rc == 1);
    if (rc == 0)
        return;
    FUZZ_CHECK(strncmp(resp, "permessage-deflate", 18) == 0);
    FUZZ_CHECK(ws_deflate_offer_parse(resp + 18, strlen(resp) - 18, &back) ==
               0);
    FUZZ_CHECK(out.server_bits >= 8 && out.server_bits <= pol.server_max_bits);
    FUZZ_CHECK(out.client_bits >= 8 && out.client_bits <= 15);
    FUZZ_CHECK(back.server_no_takeover == out.server_no_takeover);
    FUZZ_CHECK(back.client_no_takeover == out.client_no_takeover);
    FUZZ_CHECK(out.server_no_takeover || pol.server_takeover == true);
}

/* What the session delivered, and the inflater of its echoes. */
struct run {
    struct ws_session s;
    struct ws_buf out;
    uint8_t *got; /* the last message delivered */
    size_t got_len;
    size_t messages;
};

static void on_message(void *ctx, uint8_t opcode, const uint8_t *data,
                       size_t len)
{
    struct run *r = ctx;

    FUZZ_CHECK(len <= MAX_MESSAGE);
    FUZZ_CHECK(data[len] == 0);
    if (opcode == WS_OP_TEXT)
        FUZZ_CHECK(ws_utf8_valid(data, len));
    r->messages++;
    /* Echo it: compressed (it is at least min_bytes), so its inflated
       form is checked against data below. */
    if (ws_session_send(&r->s, &r->out, opcode, data, len) == 0) {
        free(r->got);
        r->got = malloc(len + 1);
        FUZZ_CHECK(r->got != NULL);
        memcpy(r->got, data, len);
        r->got_len = len;
    }
}

static void on_fragment(void *ctx, uint8_t opcode, const uint8_t *data,
                        size_t len, bool first, bool last)
{
    (void)ctx;
    (void)first;
    (void)last;
    FUZZ_CHECK(data[len] == 0);
    if (opcode == WS_OP_TEXT)
        (void)data; /* pieces may split a character; checked as a stream */
}

static const struct ws_session_handler handler = {
    .message = on_message,
    .fragment = on_fragment,
};

/* The last echo in r->out, inflated, must be r->got. */
static void check_echo(struct run *r, bool keep)
{
    const uint8_t *o = ws_buf_head(&r->out);
    size_t n = ws_buf_size(&r->out), at = 0, last = SIZE_MAX;
    struct ws_frame_header h;

    while (at < n) {
        int rc = ws_frame_header_parse_ext(o + at, n - at, WS_FRAME_FROM_SERVER,
                                           WS_FRAME_RSV1, &h);

        FUZZ_CHECK(rc > 0);
        FUZZ_CHECK(at + (size_t)rc + h.payload_len <= n);
        if (h.opcode == WS_OP_TEXT || h.opcode == WS_OP_BINARY)
            last = at;
        at += (size_t)rc + (size_t)h.payload_len;
    }
    if (last == SIZE_MAX || keep)
        return; /* nothing echoed, or context kept across messages */
    {
        int rc = ws_frame_header_parse_ext(
            o + last, n - last, WS_FRAME_FROM_SERVER, WS_FRAME_RSV1, &h);
        uint8_t *back = malloc(MAX_MESSAGE + 16);
        z_stream zs = {0};
        size_t got;

        FUZZ_CHECK(back != NULL && inflateInit2(&zs, -15) == Z_OK);
        if (h.rsv & WS_FRAME_RSV1) {
            zs.next_in = (Bytef *)(uintptr_t)(o + last + rc);
            zs.avail_in = (uInt)h.payload_len;
            zs.next_out = back;
            zs.avail_out = MAX_MESSAGE + 16;
            FUZZ_CHECK(inflate(&zs, Z_SYNC_FLUSH) != Z_DATA_ERROR);
            zs.next_in = (Bytef *)(uintptr_t)ws_deflate_tail;
            zs.avail_in = 4;
            inflate(&zs, Z_SYNC_FLUSH);
            got = MAX_MESSAGE + 16 - zs.avail_out;
        } else {
            got = (size_t)h.payload_len;
            memcpy(back, o + last + rc, got);
        }
        FUZZ_CHECK(got == r->got_len);
        FUZZ_CHECK(got == 0 || memcmp(back, r->got, got) == 0);
        inflateEnd(&zs);
        free(back);
    }
}

static void fuzz_session(uint8_t cfg, const uint8_t *p, size_t n)
{
    struct ws_deflate_config dc = {
        .level = 1 + cfg % 9, .mem_level = 8, .min_bytes = 0};
    struct ws_deflate_params params = {
        .server_bits = (uint8_t)(8 + (cfg >> 1) % 8),
        .client_bits = 15,
        .server_no_takeover = (cfg >> 4) & 1,
        .client_no_takeover = (cfg >> 5) & 1,
    };
    const struct ws_session_config scfg = {&lim, &handler};
    struct ws_deflate_shared *sh;
    struct run r = {0};
    struct fuzz_rng rng;
    uint8_t *buf = malloc(n + 1);
    size_t have = 0, pos = 0;

    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(ws_deflate_shared_create(&sh, &dc) == 0);
    ws_session_init(&r.s, &scfg, &r);
    ws_session_set_deflate(&r.s, ws_deflate_create(sh, &params));
    FUZZ_CHECK(r.s.z != NULL);
    if (cfg & 0x40)
        ws_session_set_streaming(&r.s, true);
    fuzz_seed(&rng, p, n, cfg);
    /* Feed in pieces, keeping what was not consumed at the head. */
    while (pos < n && !ws_session_finished(&r.s)) {
        size_t k = fuzz_chunk(&rng, n - pos), used;

        memcpy(buf + have, p + pos, k);
        have += k;
        pos += k;
        used = ws_session_feed(&r.s, buf, have, &r.out);
        FUZZ_CHECK(used <= have);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    check_echo(&r, !params.server_no_takeover);
    ws_session_free(&r.s);
    ws_deflate_shared_free(sh);
    ws_buf_free(&r.out);
    free(r.got);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_negotiate(data[1], data + 2, size - 2);
    else
        fuzz_session(data[1], data + 2, size - 2);
    return 0;
}
