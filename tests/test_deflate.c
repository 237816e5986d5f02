/*
 * test_deflate.c - unit tests for permessage-deflate (RFC 7692): the
 * negotiation over the Sec-WebSocket-Extensions grammar (ws/deflate_offer.c)
 * as a table of offers and answers, the §7.2.3 examples byte for byte, and
 * compressed messages through the session both ways (ws/deflate.c,
 * ws/session.c): RSV1 rules, context takeover, fragments, streaming,
 * bombs, corrupt data, invalid text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "net/buf.h"
#include "ws/deflate.h"
#include "ws/deflate_offer.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/session.h"
#include "ws/ws.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};

/* ---- Negotiation ------------------------------------------------------ */

static const struct ws_deflate_policy no_context = {
    .server_takeover = false,
    .client_takeover = false,
    .server_max_bits = 15,
    .client_max_bits = 15,
};
static const struct ws_deflate_policy keep_context = {
    .server_takeover = true,
    .client_takeover = true,
    .server_max_bits = 15,
    .client_max_bits = 15,
};
static const struct ws_deflate_policy small_windows = {
    .server_takeover = true,
    .client_takeover = true,
    .server_max_bits = 10,
    .client_max_bits = 9,
};

struct offer_row {
    const char *label;
    const char *headers[3]; /* values of Sec-WebSocket-Extensions */
    const struct ws_deflate_policy *policy;
    const char *want; /* the response value, NULL: declined */
    uint8_t server_bits, client_bits;
};

static const struct offer_row offer_rows[] = {
    {"plain offer, no context",
     {"permessage-deflate"},
     &no_context,
     "permessage-deflate; server_no_context_takeover; "
     "client_no_context_takeover",
     15,
     15},
    {"plain offer, context kept",
     {"permessage-deflate"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"Chromium's offer",
     {"permessage-deflate; client_max_window_bits"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"client window limited by us",
     {"permessage-deflate; client_max_window_bits"},
     &small_windows,
     "permessage-deflate; client_max_window_bits=9",
     10,
     9},
    {"no client window offered: never answered",
     {"permessage-deflate"},
     &small_windows,
     "permessage-deflate",
     10,
     15},
    {"server window asked",
     {"permessage-deflate; server_max_window_bits=12"},
     &keep_context,
     "permessage-deflate; server_max_window_bits=12",
     12,
     15},
    {"server window lowered by us",
     {"permessage-deflate; server_max_window_bits=14"},
     &small_windows,
     "permessage-deflate; server_max_window_bits=10",
     10,
     15},
    {"8-bit server window granted",
     {"permessage-deflate; server_max_window_bits=8"},
     &keep_context,
     "permessage-deflate; server_max_window_bits=8",
     8,
     15},
    {"one-sided: server_no_context_takeover",
     {"permessage-deflate; server_no_context_takeover"},
     &keep_context,
     "permessage-deflate; server_no_context_takeover",
     15,
     15},
    {"one-sided: client_no_context_takeover",
     {"permessage-deflate; client_no_context_takeover"},
     &keep_context,
     "permessage-deflate; client_no_context_takeover",
     15,
     15},
    {"quoted value",
     {"permessage-deflate; server_max_window_bits=\"10\""},
     &keep_context,
     "permessage-deflate; server_max_window_bits=10",
     10,
     15},
    {"spaces and case",
     {"  Permessage-Deflate ;Client_Max_Window_Bits = 11 "},
     &keep_context,
     "permessage-deflate; client_max_window_bits=11",
     15,
     11},
    {"first acceptable of several",
     {"permessage-deflate; foo, permessage-deflate; server_max_window_bits=9"},
     &keep_context,
     "permessage-deflate; server_max_window_bits=9",
     9,
     15},
    {"other extension first",
     {"x-webkit-deflate-frame, permessage-deflate"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"offer in a second header",
     {"foo; bar=1", "permessage-deflate"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"empty elements",
     {", ,permessage-deflate,"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"unknown parameter",
     {"permessage-deflate; foo"},
     &keep_context,
     NULL,
     0,
     0},
    {"duplicate parameter",
     {"permessage-deflate; server_no_context_takeover; "
      "server_no_context_takeover"},
     &keep_context,
     NULL,
     0,
     0},
    {"value on no_context_takeover",
     {"permessage-deflate; client_no_context_takeover=1"},
     &keep_context,
     NULL,
     0,
     0},
    {"server window without value",
     {"permessage-deflate; server_max_window_bits"},
     &keep_context,
     NULL,
     0,
     0},
    {"window 7",
     {"permessage-deflate; server_max_window_bits=7"},
     &keep_context,
     NULL,
     0,
     0},
    {"window 16",
     {"permessage-deflate; client_max_window_bits=16"},
     &keep_context,
     NULL,
     0,
     0},
    {"leading zero",
     {"permessage-deflate; server_max_window_bits=010"},
     &keep_context,
     NULL,
     0,
     0},
    {"duplicate window",
     {"permessage-deflate; client_max_window_bits=9; "
      "client_max_window_bits=10"},
     &keep_context,
     NULL,
     0,
     0},
    {"broken quote",
     {"permessage-deflate; server_max_window_bits=\"10"},
     &keep_context,
     NULL,
     0,
     0},
    {"grammar broken before a good offer",
     {"permessage-deflate; =1, permessage-deflate"},
     &keep_context,
     NULL,
     0,
     0},
    {"a later header still counts",
     {"permessage-deflate; =1, permessage-deflate", "permessage-deflate"},
     &keep_context,
     "permessage-deflate",
     15,
     15},
    {"no offer at all", {"x-foo"}, &keep_context, NULL, 0, 0},
};

static void test_offers(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(offer_rows); i++) {
        const struct offer_row *row = &offer_rows[i];
        const char *vals[3];
        size_t lens[3], n = 0;
        struct ws_deflate_params p;
        char resp[200];
        int rc;

        for (; n < 3 && row->headers[n]; n++) {
            vals[n] = row->headers[n];
            lens[n] = strlen(row->headers[n]);
        }
        rc = ws_deflate_negotiate(vals, lens, n, row->policy, &p, resp,
                                  sizeof(resp));
        if (rc != (row->want != NULL))
            fail_msg("%s: negotiate returned %d", row->label, rc);
        if (row->want == NULL)
            continue;
        if (strcmp(resp, row->want) != 0)
            fail_msg("%s: answered \"%s\", want \"%s\"", row->label, resp,
                     row->want);
        if (p.server_bits != row->server_bits ||
            p.client_bits != row->client_bits)
            fail_msg("%s: windows %u/%u, want %u/%u", row->label, p.server_bits,
                     p.client_bits, row->server_bits, row->client_bits);
    }
}

/* The response that does not fit is WS_ENOSPC, and the parser alone
   accepts exactly the valid parameter lists. */
static void test_offer_edges(void **state)
{
    const char *v = "permessage-deflate";
    size_t len = strlen(v);
    struct ws_deflate_params p;
    struct ws_deflate_offer o;
    char small[10];

    (void)state;
    assert_int_equal(ws_deflate_negotiate(&v, &len, 1, &no_context, &p, small,
                                          sizeof(small)),
                     WS_ENOSPC);
    assert_int_equal(ws_deflate_offer_parse("", 0, &o), 0);
    assert_int_equal(ws_deflate_offer_parse("; client_max_window_bits", 24, &o),
                     0);
    assert_int_equal(o.client_bits, 16); /* offered without a value */
    assert_int_equal(
        ws_deflate_offer_parse("; server_max_window_bits=9", 26, &o), 0);
    assert_int_equal(o.server_bits, 9);
    assert_int_equal(ws_deflate_offer_parse("; x", 3, &o), WS_EINVAL);
    assert_int_equal(ws_deflate_offer_parse(";", 1, &o), WS_EINVAL);
}

/* ---- Sessions with compression ---------------------------------------- */

static const struct ws_session_limits lim = {
    .max_message = 1u << 20,
    .max_frame = 1u << 20,
    .max_fragments = 1000,
    .max_output = 8u << 20,
};

struct rec {
    int messages, pieces, lasts;
    uint8_t opcode;
    uint8_t *data; /* owned: the last message, or the pieces joined */
    size_t len;
};

static void grow(struct rec *r, const uint8_t *p, size_t n)
{
    uint8_t *q = realloc(r->data, r->len + n + 1);

    assert_non_null(q);
    r->data = q;
    if (n > 0)
        memcpy(r->data + r->len, p, n);
    r->len += n;
}

static void on_message(void *ctx, uint8_t opcode, const uint8_t *data,
                       size_t len)
{
    struct rec *r = ctx;

    assert_int_equal(data[len], 0); /* NUL-terminated, as ws.h promises */
    r->messages++;
    r->opcode = opcode;
    r->len = 0;
    grow(r, data, len);
}

static void on_fragment(void *ctx, uint8_t opcode, const uint8_t *data,
                        size_t len, bool first, bool last)
{
    struct rec *r = ctx;

    assert_int_equal(data[len], 0);
    if (first)
        r->len = 0;
    r->pieces++;
    r->lasts += last;
    r->opcode = opcode;
    grow(r, data, len);
}

static const struct ws_session_handler handler = {
    .message = on_message,
    .fragment = on_fragment,
};

struct fx {
    struct ws_deflate_shared *sh;
    struct ws_session s;
    struct rec rec;
    struct ws_buf out;
    struct ws_session_limits lim;
    struct ws_session_config cfg;
};

/* A session that negotiated params, sharing sh with others. */
static void fx_open(struct fx *f, const struct ws_deflate_params *params,
                    size_t min_bytes)
{
    struct ws_deflate_config cfg = {
        .level = 1, .mem_level = 8, .min_bytes = min_bytes};

    if (f->sh == NULL)
        assert_int_equal(ws_deflate_shared_create(&f->sh, &cfg), 0);
    if (f->lim.max_message == 0)
        f->lim = lim;
    f->cfg = (struct ws_session_config){&f->lim, &handler};
    ws_session_init(&f->s, &f->cfg, &f->rec);
    ws_session_set_deflate(&f->s, ws_deflate_create(f->sh, params));
    assert_non_null(f->s.z);
}

static void fx_close(struct fx *f)
{
    ws_session_free(&f->s);
    ws_deflate_shared_free(f->sh);
    ws_buf_free(&f->out);
    free(f->rec.data);
    memset(f, 0, sizeof(*f));
}

static const struct ws_deflate_params p_none = {15, 15, true, true, 0, 0};
static const struct ws_deflate_params p_keep = {15, 15, false, false, 0, 0};

/* Raw DEFLATE of data with a sync flush, the tail removed: what a client
   sends (RFC 7692 §7.2.1). zs keeps its context when the caller keeps
   it. */
static size_t client_deflate(z_stream *zs, const void *data, size_t len,
                             uint8_t *out, size_t cap)
{
    zs->next_in = (Bytef *)(uintptr_t)data;
    zs->avail_in = (uInt)len;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    assert_int_equal(deflate(zs, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(zs->avail_in, 0);
    assert_true(cap - zs->avail_out >= 4);
    return cap - zs->avail_out - 4;
}

/* One masked client frame with the RSV bits rsv into b[0..): length. */
static size_t client_frame(uint8_t *b, bool fin, uint8_t rsv, uint8_t opcode,
                           const uint8_t *data, size_t len)
{
    ssize_t h = ws_frame_header_write_ext(b, WS_FRAME_MAX_HEADER, fin, rsv,
                                          opcode, len, key);

    assert_true(h > 0);
    memcpy(b + h, data, len);
    ws_mask(b + h, len, key, 0);
    return (size_t)h + len;
}

/* Feed a copy of p[0..len) with one spare byte; return consumed. */
static size_t feed(struct fx *f, const uint8_t *p, size_t len)
{
    uint8_t *buf = malloc(len + 1);
    size_t used;

    assert_non_null(buf);
    memcpy(buf, p, len);
    used = ws_session_feed(&f->s, buf, len, &f->out);
    free(buf);
    return used;
}

/* The close code of the close frame at the start of f->out. */
static int out_close_code(const struct fx *f)
{
    const uint8_t *o = ws_buf_head(&f->out);

    if (ws_buf_size(&f->out) < 4 || o[0] != 0x88)
        return -1;
    return o[2] << 8 | o[3];
}

/* RFC 7692 §7.2.3.1-5: the example payloads inflate to "Hello", fed as a
   compressed client message. */
static void test_rfc_receive(void **state)
{
    static const struct {
        const char *label;
        const uint8_t *p;
        size_t n;
    } rows[] = {
        {"7.2.3.1 one block", (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00",
         7},
        {"7.2.3.3 no compression",
         (const uint8_t *)"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11},
        {"7.2.3.4 BFINAL set",
         (const uint8_t *)"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8},
        {"7.2.3.5 two blocks",
         (const uint8_t *)"\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07"
                          "\x00",
         13},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct fx f = {0};
        uint8_t b[64];
        size_t n;

        fx_open(&f, &p_keep, 1);
        n = client_frame(b, true, WS_FRAME_RSV1, WS_OP_TEXT, rows[i].p,
                         rows[i].n);
        if (feed(&f, b, n) != n || f.rec.messages != 1 || f.rec.len != 5 ||
            memcmp(f.rec.data, "Hello", 5) != 0)
            fail_msg("%s: not delivered as Hello", rows[i].label);
        /* A second message on the same inflater (7.2.3.2, after BFINAL a
           fresh one). */
        n = client_frame(b, true, WS_FRAME_RSV1, WS_OP_TEXT,
                         (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
        assert_int_equal(feed(&f, b, n), n);
        assert_int_equal(f.rec.messages, 2);
        fx_close(&f);
    }
}

/* The first frame of the sent message at f->out, its payload at *pl. */
static size_t out_frame(const struct fx *f, size_t at, uint8_t *b0,
                        const uint8_t **pl)
{
    struct ws_frame_header h;
    int rc = ws_frame_header_parse_ext(ws_buf_head(&f->out) + at,
                                       ws_buf_size(&f->out) - at,
                                       WS_FRAME_FROM_SERVER, WS_FRAME_RSV1, &h);

    assert_true(rc > 0);
    *b0 = ws_buf_head(&f->out)[at];
    *pl = ws_buf_head(&f->out) + at + rc;
    return (size_t)h.payload_len;
}

/* RFC 7692 §7.2.3.1/2/6: "Hello" compressed, again with the window shared
   (context kept) or not, and the empty message as the byte 00. */
static void test_rfc_send(void **state)
{
    struct fx f = {0};
    const uint8_t *pl;
    uint8_t b0;

    (void)state;
    fx_open(&f, &p_keep, 1);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_TEXT, "Hello", 5), 0);
    assert_int_equal(out_frame(&f, 0, &b0, &pl), 7);
    assert_int_equal(b0, 0xc1); /* FIN, RSV1, text */
    assert_memory_equal(pl, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    ws_buf_clear(&f.out);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_TEXT, "Hello", 5), 0);
    assert_int_equal(out_frame(&f, 0, &b0, &pl), 5);
    assert_memory_equal(pl, "\xf2\x00\x11\x00\x00", 5);
    fx_close(&f);

    fx_open(&f, &p_none, 0); /* every size compressed, the empty one too */
    for (int i = 0; i < 2; i++) {
        ws_buf_clear(&f.out);
        assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_TEXT, "Hello", 5),
                         0);
        assert_int_equal(out_frame(&f, 0, &b0, &pl), 7);
        assert_memory_equal(pl, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    }
    ws_buf_clear(&f.out);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_BINARY, "", 0), 0);
    assert_int_equal(out_frame(&f, 0, &b0, &pl), 1);
    assert_int_equal(b0, 0xc2);
    assert_int_equal(pl[0], 0x00);
    fx_close(&f);
}

/* Inflate a sent payload (with the tail put back) with a fresh inflater. */
static size_t client_inflate(z_stream *zs, const uint8_t *p, size_t n,
                             uint8_t *out, size_t cap, bool tail)
{
    size_t got;

    zs->next_in = (Bytef *)(uintptr_t)p;
    zs->avail_in = (uInt)n;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    assert_true(inflate(zs, Z_SYNC_FLUSH) != Z_DATA_ERROR);
    if (tail) {
        zs->next_in = (Bytef *)(uintptr_t)ws_deflate_tail;
        zs->avail_in = 4;
        inflate(zs, Z_SYNC_FLUSH);
    }
    got = cap - zs->avail_out;
    return got;
}

/* Below min_bytes, with an 8-bit server window, and control frames: sent
   uncompressed; fragmented sends compress across their pieces with RSV1
   on the first frame only. */
static void test_send_choices(void **state)
{
    struct ws_deflate_params p8 = p_none;
    struct fx f = {0};
    const uint8_t *pl;
    uint8_t b0, text[3000], back[4000];
    size_t at = 0, got = 0;
    z_stream zs = {0};

    (void)state;
    fx_open(&f, &p_none, 64);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_TEXT, "short", 5), 0);
    assert_int_equal(out_frame(&f, 0, &b0, &pl), 5);
    assert_int_equal(b0, 0x81);
    ws_buf_clear(&f.out);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_PING, "p", 1), 0);
    assert_int_equal(ws_buf_head(&f.out)[0], 0x89);
    fx_close(&f);

    p8.server_bits = 8;
    fx_open(&f, &p8, 1);
    memset(text, 'a', sizeof(text));
    assert_int_equal(
        ws_session_send(&f.s, &f.out, WS_OP_TEXT, text, sizeof(text)), 0);
    assert_int_equal(out_frame(&f, 0, &b0, &pl), sizeof(text));
    assert_int_equal(b0, 0x81);
    fx_close(&f);

    fx_open(&f, &p_none, 1);
    assert_int_equal(ws_session_send_part(&f.s, &f.out, WS_PART_BEGIN,
                                          WS_OP_TEXT, text, 1000),
                     0);
    assert_int_equal(ws_session_send_part(&f.s, &f.out, WS_PART_CONTINUE, 0,
                                          text + 1000, 1000),
                     0);
    assert_int_equal(ws_session_send_part(&f.s, &f.out, WS_PART_FINISH, 0,
                                          text + 2000, 1000),
                     0);
    assert_int_equal(inflateInit2(&zs, -15), Z_OK);
    for (int i = 0; i < 3; i++) {
        size_t n = out_frame(&f, at, &b0, &pl);

        assert_int_equal(b0, i == 0 ? 0x41 : i == 1 ? 0x00 : 0x80);
        got +=
            client_inflate(&zs, pl, n, back + got, sizeof(back) - got, i == 2);
        at = (size_t)(pl - ws_buf_head(&f.out)) + n;
    }
    assert_int_equal(at, ws_buf_size(&f.out));
    assert_int_equal(got, sizeof(text));
    assert_memory_equal(back, text, sizeof(text));
    assert_null(f.s.z->tx); /* no context kept: the stream went with it */
    inflateEnd(&zs);
    fx_close(&f);
}

/* What a socket that takes at most budget bytes took of header and
   payload, appended to got, as the connection would write them. */
static size_t take_some(struct ws_buf *got, size_t budget, const uint8_t *hdr,
                        size_t hlen, const uint8_t *payload, size_t plen)
{
    size_t k = hlen < budget ? hlen : budget;
    size_t m = plen < budget - k ? plen : budget - k;

    assert_int_equal(ws_buf_append(got, hdr, k, SIZE_MAX), 0);
    assert_int_equal(ws_buf_append(got, payload, m, SIZE_MAX), 0);
    return k + m;
}

/* ws_session_deflated_begin/rest (a large compressed message written from
   the compressor's output): whatever the socket takes, what it took and
   what is queued make one compressed frame that inflates to the message;
   without context, exactly the frame ws_session_send() queues; with it,
   the window carries from one message to the next as for any send. */
static void test_deflated_begin_rest(void **state)
{
    static const struct ws_deflate_params *modes[] = {&p_none, &p_keep};
    const size_t budgets[] = {0, 1, 3, 4, 100, 5000, SIZE_MAX};
    size_t len = 20000;
    uint8_t *text = malloc(len), *back = malloc(len + 1);

    (void)state;
    assert_non_null(text);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        text[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
    for (size_t m = 0; m < ARRAY_LEN(modes); m++) {
        struct fx f = {0};
        struct ws_buf want = {0};
        z_stream zs = {0};

        fx_open(&f, modes[m], 64);
        assert_int_equal(inflateInit2(&zs, -15), Z_OK);
        if (modes[m] == &p_none)
            assert_int_equal(
                ws_session_send(&f.s, &want, WS_OP_TEXT, text, len), 0);
        for (size_t b = 0; b < ARRAY_LEN(budgets); b++) {
            uint8_t hdr[WS_FRAME_MAX_HEADER], b0;
            struct ws_buf all = {0};
            const uint8_t *payload, *pl;
            size_t plen, took, n;
            ssize_t hlen =
                ws_session_deflated_begin(&f.s, &f.out, WS_OP_TEXT, text, len,
                                          false, hdr, &payload, &plen);

            print_message("mode %zu budget %zu\n", m, budgets[b]);
            assert_true(hlen == 4);
            assert_int_equal(ws_buf_size(&f.out), 0); /* nothing queued */
            took =
                take_some(&all, budgets[b], hdr, (size_t)hlen, payload, plen);
            assert_int_equal(ws_session_deflated_rest(&f.s, &f.out, hdr,
                                                      (size_t)hlen, payload,
                                                      plen, took),
                             0);
            assert_int_equal(ws_buf_append(&all, ws_buf_head(&f.out),
                                           ws_buf_size(&f.out), SIZE_MAX),
                             0);
            assert_int_equal(ws_buf_size(&all), (size_t)hlen + plen);
            if (modes[m] == &p_none) {
                assert_int_equal(ws_buf_size(&all), ws_buf_size(&want));
                assert_memory_equal(ws_buf_head(&all), ws_buf_head(&want),
                                    ws_buf_size(&want));
            }
            ws_buf_clear(&f.out);
            assert_int_equal(ws_buf_append(&f.out, ws_buf_head(&all),
                                           ws_buf_size(&all), SIZE_MAX),
                             0);
            n = out_frame(&f, 0, &b0, &pl);
            assert_int_equal(b0, 0xC1); /* FIN, RSV1, text */
            assert_int_equal(client_inflate(&zs, pl, n, back, len + 1, true),
                             len);
            assert_memory_equal(back, text, len);
            if (modes[m] == &p_none)
                inflateReset(&zs);
            ws_buf_clear(&f.out);
            ws_buf_free(&all);
        }
        /* Refused before compressing: invalid text, nothing queued, the
           session still open. */
        text[10] = 0xFF;
        {
            uint8_t hdr[WS_FRAME_MAX_HEADER];
            const uint8_t *payload;
            size_t plen;

            assert_int_equal(ws_session_deflated_begin(&f.s, &f.out, WS_OP_TEXT,
                                                       text, len, false, hdr,
                                                       &payload, &plen),
                             WS_EINVAL);
        }
        text[10] = 'a';
        assert_int_equal(ws_buf_size(&f.out), 0);
        assert_int_equal(f.s.state, WS_SESSION_OPEN);
        inflateEnd(&zs);
        ws_buf_free(&want);
        fx_close(&f);
    }
    free(back);
    free(text);
}

/* Messages compressed by a client that keeps its context, fed in pieces
   of every size from one connection, while another connection of the
   same server uses the shared inflater between them. */
static void test_receive_context(void **state)
{
    struct fx f = {0}, g = {0};
    z_stream zs = {0};
    uint8_t comp[2048], wire[2100];
    char msg[600];

    (void)state;
    fx_open(&f, &p_keep, 1);
    g.sh = f.sh;
    fx_open(&g, &p_none, 1);
    assert_int_equal(
        deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    for (int i = 0; i < 20; i++) {
        size_t m = (size_t)snprintf(msg, sizeof(msg),
                                    "{\"type\":\"say\",\"text\":\"message %d "
                                    "of twenty, mostly the same\"}",
                                    i);
        size_t c = client_deflate(&zs, msg, m, comp, sizeof(comp));
        size_t n = client_frame(wire, true, WS_FRAME_RSV1, WS_OP_TEXT, comp, c);
        size_t cut = (size_t)i % n, used;
        uint8_t *buf = malloc(n + 1);

        /* Context kept: later messages compress to a few bytes. */
        if (i > 0)
            assert_true(c < m / 3);
        memcpy(buf, wire, n);
        used = ws_session_feed(&f.s, buf, cut, &f.out);
        memmove(buf, buf + used, n - used);
        /* The other connection's message goes through the shared one. */
        {
            uint8_t w2[64];
            size_t n2 = client_frame(w2, true, WS_FRAME_RSV1, WS_OP_TEXT,
                                     (const uint8_t *)"\xf2\x48\xcd\xc9\xc9"
                                                      "\x07\x00",
                                     7);

            assert_int_equal(feed(&g, w2, n2), n2);
        }
        assert_int_equal(ws_session_feed(&f.s, buf, n - used, &f.out),
                         n - used);
        free(buf);
        assert_int_equal(f.rec.messages, i + 1);
        assert_int_equal(f.rec.len, m);
        assert_memory_equal(f.rec.data, msg, m);
    }
    assert_int_equal(g.rec.messages, 20);
    assert_non_null(f.s.z->rx); /* context kept between messages */
    assert_null(g.s.z->rx);     /* none kept: the shared one served */
    deflateEnd(&zs);
    g.sh = NULL;
    fx_close(&g);
    fx_close(&f);
}

/* A compressed message in three frames (RSV1 on the first only), with a
   ping between them; in streaming mode the same arrives in pieces. */
static void test_receive_fragments(void **state)
{
    for (int streaming = 0; streaming < 2; streaming++) {
        struct fx f = {0};
        z_stream zs = {0};
        static uint8_t text[100000], comp[120000], wire[130000];
        size_t c, n = 0, k;

        (void)state;
        for (size_t i = 0; i < sizeof(text); i++)
            text[i] = (uint8_t)('a' + (i * 7 + i / 100) % 26);
        fx_open(&f, &p_none, 1);
        ws_session_set_streaming(&f.s, streaming);
        assert_int_equal(
            deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        c = client_deflate(&zs, text, sizeof(text), comp, sizeof(comp));
        k = c / 3;
        n += client_frame(wire + n, false, WS_FRAME_RSV1, WS_OP_TEXT, comp, k);
        n +=
            client_frame(wire + n, true, 0, WS_OP_PING, (const uint8_t *)"", 0);
        n += client_frame(wire + n, false, 0, WS_OP_CONT, comp + k, k);
        n += client_frame(wire + n, true, 0, WS_OP_CONT, comp + 2 * k,
                          c - 2 * k);
        assert_int_equal(feed(&f, wire, n), n);
        assert_int_equal(f.rec.len, sizeof(text));
        assert_memory_equal(f.rec.data, text, sizeof(text));
        if (streaming) {
            assert_true(f.rec.pieces > 1);
            assert_int_equal(f.rec.lasts, 1);
        } else {
            assert_int_equal(f.rec.messages, 1);
        }
        assert_int_equal(ws_buf_head(&f.out)[0], 0x8a); /* the pong */
        assert_null(f.s.z->rx); /* no context: released at the end */
        deflateEnd(&zs);
        fx_close(&f);
    }
}

/* RSV1 where RFC 7692 §6.1 forbids it, RSV2 always, and RSV1 without the
   extension: 1002. */
static void test_rsv_rules(void **state)
{
    static const struct {
        const char *label;
        bool deflate, fin;
        uint8_t rsv, opcode;
    } rows[] = {
        {"RSV1 on a ping", true, true, WS_FRAME_RSV1, WS_OP_PING},
        {"RSV1 on a continuation", true, true, WS_FRAME_RSV1, WS_OP_CONT},
        {"RSV2", true, true, 2, WS_OP_TEXT},
        {"RSV1 not negotiated", false, true, WS_FRAME_RSV1, WS_OP_TEXT},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        struct fx f = {0};
        uint8_t b[64];
        size_t n = 0;

        fx_open(&f, &p_none, 1);
        if (!rows[i].deflate)
            ws_session_set_deflate(&f.s, NULL);
        if (rows[i].opcode == WS_OP_CONT)
            n = client_frame(b, false, WS_FRAME_RSV1, WS_OP_TEXT,
                             (const uint8_t *)"\xf2\x48", 2);
        n += client_frame(b + n, rows[i].fin, rows[i].rsv, rows[i].opcode,
                          (const uint8_t *)"\xcd\xc9", 2);
        feed(&f, b, n);
        if (f.s.state != WS_SESSION_FAILED || out_close_code(&f) != 1002)
            fail_msg("%s: not failed with 1002", rows[i].label);
        fx_close(&f);
    }
}

/* Bombs: a message that inflates past max_message closes with 1009 having
   allocated no more than the limit, whole or spread over fragments;
   corrupt data and invalid inflated text close with 1007. */
static void test_bombs_and_corruption(void **state)
{
    static uint8_t zeros[4u << 20], comp[64 * 1024], wire[70000];
    z_stream zs = {0};
    size_t c, n;

    (void)state;
    assert_int_equal(
        deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    c = client_deflate(&zs, zeros, sizeof(zeros), comp, sizeof(comp));
    assert_true(c < 8192); /* 4 MiB of zeros in a few KiB */
    deflateEnd(&zs);
    for (int frags = 1; frags <= 3; frags += 2) {
        struct fx f = {0};
        size_t k = c / (size_t)frags;

        n = 0;
        f.lim = lim; /* 1 MiB */
        fx_open(&f, &p_none, 1);
        for (int i = 0; i < frags; i++)
            n += client_frame(
                wire + n, i == frags - 1, i == 0 ? WS_FRAME_RSV1 : 0,
                i == 0 ? WS_OP_BINARY : WS_OP_CONT, comp + (size_t)i * k,
                i == frags - 1 ? c - (size_t)i * k : k);
        feed(&f, wire, n);
        assert_int_equal(out_close_code(&f), 1009);
        assert_int_equal(f.rec.messages, 0);
        assert_true(f.s.msg == NULL || f.s.msg->cap <= f.lim.max_message + 1);
        fx_close(&f);
    }
    {
        struct fx f = {0};
        uint8_t b[64];

        fx_open(&f, &p_none, 1);
        n = client_frame(b, true, WS_FRAME_RSV1, WS_OP_BINARY,
                         (const uint8_t *)"\xff\xff\xff\xff\xff", 5);
        feed(&f, b, n);
        assert_int_equal(out_close_code(&f), 1007);
        fx_close(&f);
    }
    {
        struct fx f = {0};
        uint8_t b[64], bad[32];

        fx_open(&f, &p_none, 1);
        assert_int_equal(
            deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        c = client_deflate(&zs, "ab\xc0\xafyz", 6, bad, sizeof(bad));
        deflateEnd(&zs);
        n = client_frame(b, true, WS_FRAME_RSV1, WS_OP_TEXT, bad, c);
        feed(&f, b, n);
        assert_int_equal(out_close_code(&f), 1007);
        assert_int_equal(f.rec.messages, 0);
        fx_close(&f);
    }
}

/* Connections that keep no context and share a compressor get the same
   key and the same bytes for the same message (a publish builds its
   frame once per key); one that keeps its context has no key. */
static void test_share_key(void **state)
{
    struct fx f = {0}, g = {0}, h = {0};
    const uint8_t *a;
    size_t alen;
    uint8_t first[600];
    char text[500];

    (void)state;
    memset(text, 'q', sizeof(text));
    fx_open(&f, &p_none, 1);
    g.sh = f.sh;
    fx_open(&g, &p_none, 1);
    h.sh = f.sh;
    fx_open(&h, &p_keep, 1);
    assert_non_null(ws_deflate_share_key(f.s.z, sizeof(text)));
    assert_ptr_equal(ws_deflate_share_key(f.s.z, sizeof(text)),
                     ws_deflate_share_key(g.s.z, sizeof(text)));
    assert_null(ws_deflate_share_key(h.s.z, sizeof(text)));
    assert_int_equal(ws_deflate_tx(f.s.z, text, sizeof(text), WS_DEFLATE_WHOLE,
                                   1u << 20, &a, &alen),
                     0);
    assert_true(alen <= sizeof(first));
    memcpy(first, a, alen);
    assert_int_equal(ws_deflate_tx(g.s.z, text, sizeof(text), WS_DEFLATE_WHOLE,
                                   1u << 20, &a, &alen),
                     0);
    assert_memory_equal(first, a, alen);
    g.sh = h.sh = NULL;
    fx_close(&h);
    fx_close(&g);
    fx_close(&f);
}

/* Findings of an audit, each a regression test. */

/* RFC 7692 §7.2.1: a fragmented send whose last piece is empty (zlib makes
   no output after a flush) ends with the byte 00, so that the receiver's
   tail completes a block; with the context kept, the next message still
   inflates. */
static void test_empty_last_piece(void **state)
{
    struct fx f = {0};
    z_stream zs = {0};
    uint8_t back[256];
    size_t at = 0, got = 0, n;
    const uint8_t *pl;
    uint8_t b0;

    (void)state;
    fx_open(&f, &p_keep, 1);
    assert_int_equal(ws_session_send_part(&f.s, &f.out, WS_PART_BEGIN,
                                          WS_OP_TEXT, "hello", 5),
                     0);
    assert_int_equal(
        ws_session_send_part(&f.s, &f.out, WS_PART_FINISH, 0, NULL, 0), 0);
    assert_int_equal(ws_session_send(&f.s, &f.out, WS_OP_TEXT, "again", 5), 0);
    assert_int_equal(inflateInit2(&zs, -15), Z_OK);
    n = out_frame(&f, at, &b0, &pl);
    got += client_inflate(&zs, pl, n, back, sizeof(back), false);
    at = (size_t)(pl - ws_buf_head(&f.out)) + n;
    n = out_frame(&f, at, &b0, &pl);
    assert_int_equal(b0, 0x80);
    assert_int_equal(n, 1); /* the byte 00 */
    got += client_inflate(&zs, pl, n, back + got, sizeof(back) - got, true);
    at = (size_t)(pl - ws_buf_head(&f.out)) + n;
    assert_int_equal(got, 5);
    assert_memory_equal(back, "hello", 5);
    n = out_frame(&f, at, &b0, &pl);
    got = client_inflate(&zs, pl, n, back, sizeof(back), true);
    assert_int_equal(got, 5);
    assert_memory_equal(back, "again", 5);
    inflateEnd(&zs);
    fx_close(&f);
}

/* §7.2.2: DEFLATE cut inside a block (a stored block that claims 100
   bytes and brings 10) is invalid data, 1007, not a message that ends in
   the tail the server appended itself. */
static void test_truncated_block(void **state)
{
    static const uint8_t cut[] = {0x00, 0x64, 0x00, 0x9b, 0xff, '0', '1', '2',
                                  '3',  '4',  '5',  '6',  '7',  '8', '9'};

    (void)state;
    for (int keep = 0; keep < 2; keep++) {
        struct fx f = {0};
        uint8_t b[64];
        size_t n;

        fx_open(&f, keep ? &p_keep : &p_none, 1);
        n = client_frame(b, true, WS_FRAME_RSV1, WS_OP_BINARY, cut,
                         sizeof(cut));
        feed(&f, b, n);
        assert_int_equal(f.rec.messages, 0);
        assert_int_equal(out_close_code(&f), 1007);
        fx_close(&f);
    }
}

/* §7.2.2 with §7.2.3.4: a client that keeps its context may end a message
   with a BFINAL block; the next message may still refer into the window. */
static void test_bfinal_keeps_window(void **state)
{
    struct fx f = {0};
    z_stream zs = {0};
    uint8_t comp[256], wire[300];
    const char *m1 = "the window must survive a final block";
    size_t c, n;

    (void)state;
    fx_open(&f, &p_keep, 1);
    assert_int_equal(
        deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)m1;
    zs.avail_in = (uInt)strlen(m1);
    zs.next_out = comp;
    zs.avail_out = sizeof(comp);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    c = sizeof(comp) - zs.avail_out;
    n = client_frame(wire, true, WS_FRAME_RSV1, WS_OP_TEXT, comp, c);
    assert_int_equal(feed(&f, wire, n), n);
    assert_int_equal(f.rec.messages, 1);
    /* A fresh stream primed with message 1: back-references into it. */
    deflateReset(&zs);
    assert_int_equal(
        deflateSetDictionary(&zs, (const Bytef *)m1, (uInt)strlen(m1)), Z_OK);
    c = client_deflate(&zs, m1, strlen(m1), comp, sizeof(comp));
    n = client_frame(wire, true, WS_FRAME_RSV1, WS_OP_TEXT, comp, c);
    assert_int_equal(feed(&f, wire, n), n);
    assert_int_equal(f.rec.messages, 2);
    assert_int_equal(f.rec.len, strlen(m1));
    assert_memory_equal(f.rec.data, m1, strlen(m1));
    deflateEnd(&zs);
    fx_close(&f);
}

/* The output cap counts what waits, not the message: a message larger
   than the cap, on an empty queue, is compressed all the same (noise
   grows a little in DEFLATE, RSV1 still set); the next send finds more
   than the cap waiting and fails with 1008. */
static void test_compresses_past_small_cap(void **state)
{
    struct fx f = {0};
    static uint8_t noise[4096];
    const uint8_t *pl;
    uint8_t b0;

    (void)state;
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)(i * 2654435761u >> 13);
    f.lim = lim;
    f.lim.max_message = sizeof(noise);
    f.lim.max_output = 64;
    fx_open(&f, &p_keep, 1);
    assert_true(ws_session_compresses(&f.s, WS_OP_BINARY, sizeof(noise)));
    assert_int_equal(
        ws_session_send(&f.s, &f.out, WS_OP_BINARY, noise, sizeof(noise)), 0);
    assert_true(out_frame(&f, 0, &b0, &pl) > 64);
    assert_int_equal(b0, 0xc2);
    assert_int_equal(f.s.state, WS_SESSION_OPEN);
    assert_int_equal(
        ws_session_send(&f.s, &f.out, WS_OP_BINARY, noise, sizeof(noise)),
        WS_EFULL);
    assert_int_equal(f.s.state, WS_SESSION_FAILED);
    fx_close(&f);
}

/* Streaming: a step that takes input and gives nothing (an empty stored
   BFINAL block, with the byte 00 after it) is progress, not corruption. */
static void test_stream_empty_final_block(void **state)
{
    static const uint8_t f1[] = {0x00, 0x05, 0x00, 0xfa, 0xff,
                                 'H',  'e',  'l',  'l',  'o'};
    static const uint8_t f2[] = {0x01, 0x00, 0x00, 0xff, 0xff, 0x00};
    struct fx f = {0};
    uint8_t b[64];
    size_t n;

    (void)state;
    fx_open(&f, &p_none, 1);
    ws_session_set_streaming(&f.s, true);
    n = client_frame(b, false, WS_FRAME_RSV1, WS_OP_TEXT, f1, sizeof(f1));
    n += client_frame(b + n, true, 0, WS_OP_CONT, f2, sizeof(f2));
    assert_int_equal(feed(&f, b, n), n);
    assert_int_equal(f.rec.lasts, 1);
    assert_int_equal(f.rec.len, 5);
    assert_memory_equal(f.rec.data, "Hello", 5);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offers),
        cmocka_unit_test(test_offer_edges),
        cmocka_unit_test(test_rfc_receive),
        cmocka_unit_test(test_rfc_send),
        cmocka_unit_test(test_send_choices),
        cmocka_unit_test(test_receive_context),
        cmocka_unit_test(test_receive_fragments),
        cmocka_unit_test(test_rsv_rules),
        cmocka_unit_test(test_bombs_and_corruption),
        cmocka_unit_test(test_share_key),
        cmocka_unit_test(test_empty_last_piece),
        cmocka_unit_test(test_truncated_block),
        cmocka_unit_test(test_bfinal_keeps_window),
        cmocka_unit_test(test_compresses_past_small_cap),
        cmocka_unit_test(test_stream_empty_final_block),
        cmocka_unit_test(test_deflated_begin_rest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
