/*
 * test_session.c - unit tests for ws/session.c, the I/O-free RFC 6455
 * state machine. Each row of the table is a client byte stream (built here,
 * masked with the RFC 6455 §5.7 key) with the events, output frames and
 * state it must produce, fed whole, one byte at a time and split at every
 * offset. The API calls (send, close, limits) have tests of their own.
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

#include "net/buf.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/session.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The masking key of the RFC 6455 §5.7 examples, as wire bytes. */
#define MASK "\x37\xFA\x21\x3D"
static const uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};

/* Written into the borrowed byte in[len]; feed must restore it. */
#define SENTINEL 0xA5u

/* Vectors up to this length are also cut into three pieces every way. */
#define SHORT_LEN 64u

/*
 * Under valgrind (tests/run_all.sh sets WS_TEST_VALGRIND=1) vectors longer
 * than LONG_LEN are cut in two at every offset of their first and last
 * LONG_EDGE bytes and at every LONG_STRIDE-th offset between (a prime, so
 * every mask phase is hit): every offset of the 64 KiB rows takes minutes
 * there. Natively and under ASan every offset is used.
 */
#define LONG_LEN 4096u
#define LONG_EDGE 64u
#define LONG_STRIDE 61u

/* Big payloads, filled by the group setup (the rows point at them). */
#define BIG_LEN 65536u
static uint8_t big[BIG_LEN];   /* binary pattern */
static uint8_t ascii[BIG_LEN]; /* printable ASCII, valid UTF-8 */

static const struct ws_session_limits lim_default = {
    .max_message = 1u << 20,
    .max_frame = 1u << 20,
    .max_fragments = 1000,
    .max_output = 8u << 20,
};

/* ---- Client byte streams ---------------------------------------------- */

struct bytes {
    uint8_t *p; /* owned */
    size_t len;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
    uint8_t *q = realloc(b->p, b->len + n + 1);

    assert_non_null(q);
    b->p = q;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Append one masked client frame (RFC 6455 §5.2, §5.3). */
static void add_frame(struct bytes *b, bool fin, uint8_t opcode,
                      const void *data, size_t len)
{
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    ssize_t h = ws_frame_header_write(hdr, sizeof hdr, fin, opcode, len, key);
    size_t start;

    assert_true(h > 0);
    bytes_add(b, hdr, (size_t)h);
    start = b->len;
    bytes_add(b, data, len);
    ws_mask(b->p + start, len, key, 0);
}

/* One piece of a row's input: a frame to build, or raw wire bytes. */
enum spec_kind { SP_END, SP_FRAME, SP_RAW };

struct fspec {
    enum spec_kind kind;
    bool fin;
    uint8_t opcode;
    const void *data;
    size_t len;
};

#define F(fin, op, s)                                                          \
    {                                                                          \
        SP_FRAME, fin, op, s, sizeof(s) - 1                                    \
    }
#define FB(fin, op, p, n)                                                      \
    {                                                                          \
        SP_FRAME, fin, op, p, n                                                \
    }
#define RAW(s)                                                                 \
    {                                                                          \
        SP_RAW, false, 0, s, sizeof(s) - 1                                     \
    }
#define SPEC_END                                                               \
    {                                                                          \
        SP_END, false, 0, NULL, 0                                              \
    }

static void build_input(const struct fspec *sp, struct bytes *b)
{
    for (; sp->kind != SP_END; sp++) {
        if (sp->kind == SP_RAW)
            bytes_add(b, sp->data, sp->len);
        else
            add_frame(b, sp->fin, sp->opcode, sp->data, sp->len);
    }
}

/* ---- Recording handler ------------------------------------------------ */

enum ev_kind { EV_END, EV_MSG, EV_PONG, EV_CLOSE, EV_PIECE };

struct rec_ev {
    enum ev_kind kind;
    uint8_t opcode;
    uint16_t code;
    uint8_t *data; /* owned copy */
    size_t len;
    bool nul; /* data[len] was 0 during the call */
};

struct rec {
    struct rec_ev *ev; /* owned */
    size_t n;
};

static void rec_push(struct rec *r, enum ev_kind kind, uint8_t opcode,
                     uint16_t code, const uint8_t *data, size_t len)
{
    struct rec_ev *ev = realloc(r->ev, (r->n + 1) * sizeof(*ev));
    struct rec_ev *e;

    assert_non_null(ev);
    r->ev = ev;
    e = &r->ev[r->n++];
    e->kind = kind;
    e->opcode = opcode;
    e->code = code;
    e->len = len;
    e->data = malloc(len + 1);
    assert_non_null(e->data);
    if (len > 0)
        memcpy(e->data, data, len);
    e->data[len] = 0;
    assert_non_null(data);
    e->nul = data[len] == 0;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ev[i].data);
    free(r->ev);
    r->ev = NULL;
    r->n = 0;
}

static void on_message(void *ctx, uint8_t opcode, const uint8_t *data,
                       size_t len)
{
    rec_push(ctx, EV_MSG, opcode, 0, data, len);
}

static void on_pong(void *ctx, const uint8_t *data, size_t len)
{
    rec_push(ctx, EV_PONG, 0, 0, data, len);
}

static void on_close(void *ctx, uint16_t code, const uint8_t *reason,
                     size_t len)
{
    rec_push(ctx, EV_CLOSE, 0, code, reason, len);
}

static const struct ws_session_handler handler = {on_message, on_pong, on_close,
                                                  NULL};

/* Streaming: a piece, with first in bit 0 and last in bit 1 of code. */
static void on_piece(void *ctx, uint8_t opcode, const uint8_t *data, size_t len,
                     bool first, bool last)
{
    rec_push(ctx, EV_PIECE, opcode, (uint16_t)(first | (last << 1)), data, len);
}

static const struct ws_session_handler stream_handler = {on_message, on_pong,
                                                         on_close, on_piece};

/* ---- Expectations ----------------------------------------------------- */

struct xev {
    enum ev_kind kind;
    uint8_t opcode;
    uint16_t code;
    const void *data;
    size_t len;
};

#define XMSG(op, s)                                                            \
    {                                                                          \
        EV_MSG, op, 0, s, sizeof(s) - 1                                        \
    }
#define XMSGB(op, p, n)                                                        \
    {                                                                          \
        EV_MSG, op, 0, p, n                                                    \
    }
#define XPONG(s)                                                               \
    {                                                                          \
        EV_PONG, 0, 0, s, sizeof(s) - 1                                        \
    }
#define XCLOSE(code, s)                                                        \
    {                                                                          \
        EV_CLOSE, 0, code, s, sizeof(s) - 1                                    \
    }
#define XEV_END                                                                \
    {                                                                          \
        EV_END, 0, 0, NULL, 0                                                  \
    }

/* An output frame: exact payload, or a close with a code and any reason. */
enum xout_kind { XO_END, XO_EXACT, XO_FAIL };

struct xout {
    enum xout_kind kind;
    uint8_t opcode;
    uint16_t code;
    const void *data;
    size_t len;
};

#define OUT(op, s)                                                             \
    {                                                                          \
        XO_EXACT, op, 0, s, sizeof(s) - 1                                      \
    }
#define OUTB(op, p, n)                                                         \
    {                                                                          \
        XO_EXACT, op, 0, p, n                                                  \
    }
#define OUTFAIL(code)                                                          \
    {                                                                          \
        XO_FAIL, WS_OP_CLOSE, code, NULL, 0                                    \
    }
#define XOUT_END                                                               \
    {                                                                          \
        XO_END, 0, 0, NULL, 0                                                  \
    }

static const struct xev no_events[] = {XEV_END};
static const struct xout no_output[] = {XOUT_END};

struct row {
    const char *label;
    const struct fspec *in;
    const struct ws_session_limits *lim; /* NULL: lim_default */
    bool pre_close; /* ws_session_close(1000, "bye") before feeding */
    const struct xev *ev;
    const struct xout *out;
    enum ws_session_state state;
};

/* What one feeding of a row produced. */
struct run {
    struct rec rec;
    uint8_t *out; /* owned copy of the output buffer */
    size_t out_len;
    enum ws_session_state state;
    size_t leftover; /* unconsumed bytes after the last piece */
};

struct ctx {
    const char *label;
    char mode[64];
};

/* Report a failed check with the row label and the feeding mode. */
#define CHECK(c, cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("%s [%s]: ", (c)->label, (c)->mode);                   \
            print_error(__VA_ARGS__);                                          \
            print_error("\n");                                                 \
            fail();                                                            \
        }                                                                      \
    } while (0)

static void run_free(struct run *r)
{
    rec_free(&r->rec);
    free(r->out);
    memset(r, 0, sizeof(*r));
}

/*
 * Everything one row test allocates, owned here so that a failed check
 * (which longjmps out of the test) leaks nothing: the teardown frees it.
 */
struct row_fx {
    const struct row *row;
    struct ctx c;
    struct bytes in; /* the built client stream */
    size_t *cuts;    /* owned */
    struct run whole, cur;
    /* The feeding in progress. */
    struct ws_session s;
    struct ws_session_config cfg;
    bool live; /* s needs ws_session_free */
    struct ws_buf out;
    uint8_t *pending, *buf, *orig; /* owned */
};

static void feeding_free(struct row_fx *fx)
{
    if (fx->live)
        ws_session_free(&fx->s);
    fx->live = false;
    ws_buf_free(&fx->out);
    free(fx->pending);
    free(fx->buf);
    free(fx->orig);
    fx->pending = fx->buf = fx->orig = NULL;
}

static int row_setup(void **state)
{
    struct row_fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    fx->row = *state;
    fx->c.label = fx->row->label;
    *state = fx;
    return 0;
}

static int row_teardown(void **state)
{
    struct row_fx *fx = *state;

    feeding_free(fx);
    run_free(&fx->whole);
    run_free(&fx->cur);
    free(fx->cuts);
    free(fx->in.p);
    free(fx);
    return 0;
}

/* Feed the next n bytes (pending + piece) in an exact-size allocation. */
static void feed_piece(struct row_fx *fx, const uint8_t *piece, size_t len,
                       size_t *plen)
{
    const struct ctx *c = &fx->c;
    size_t n = *plen + len;
    bool was_finished = ws_session_finished(&fx->s);
    size_t used;

    fx->buf = malloc(n + 1);
    fx->orig = malloc(n + 1);
    assert_non_null(fx->buf);
    assert_non_null(fx->orig);
    if (*plen > 0)
        memcpy(fx->buf, fx->pending, *plen);
    if (len > 0)
        memcpy(fx->buf + *plen, piece, len);
    fx->buf[n] = SENTINEL;
    memcpy(fx->orig, fx->buf, n + 1);
    used = ws_session_feed(&fx->s, fx->buf, n, &fx->out);
    CHECK(c, used <= n, "consumed %zu of %zu", used, n);
    CHECK(c, fx->buf[n] == SENTINEL, "in[len] not restored");
    CHECK(c, !was_finished || used == 0, "consumed %zu bytes after finishing",
          used);
    /* Unconsumed bytes are passed again as left: only a frame the
       session awaits whole may have been unmasked in place, and it is
       never more than the input holds. */
    size_t awaited = ws_session_need(&fx->s);
    CHECK(c, awaited == 0 || awaited > n - used,
          "awaits %zu bytes, %zu are there", awaited, n - used);
    CHECK(c,
          ws_session_finished(&fx->s) || awaited > 0 ||
              memcmp(fx->buf + used, fx->orig + used, n - used) == 0,
          "unconsumed bytes modified");
    free(fx->pending);
    fx->pending = malloc(n - used + 1);
    assert_non_null(fx->pending);
    if (n > used)
        memcpy(fx->pending, fx->buf + used, n - used);
    *plen = n - used;
    free(fx->buf);
    free(fx->orig);
    fx->buf = fx->orig = NULL;
}

/*
 * Feed the row's input cut at cuts[0..ncuts) (ascending) the way a server
 * does: each piece is appended to the bytes the previous call left
 * unconsumed. The result goes to *r.
 */
static void run_pieces(struct row_fx *fx, const size_t *cuts, size_t ncuts,
                       struct run *r)
{
    const struct row *row = fx->row;
    size_t plen = 0, start = 0;

    run_free(r);
    fx->cfg = (struct ws_session_config){row->lim ? row->lim : &lim_default,
                                         &handler};
    ws_session_init(&fx->s, &fx->cfg, &r->rec);
    fx->live = true;
    if (row->pre_close)
        assert_int_equal(ws_session_close(&fx->s, &fx->out, 1000, "bye", 3), 0);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : fx->in.len;

        feed_piece(fx, fx->in.p + start, end - start, &plen);
        start = end;
    }
    r->state = fx->s.state;
    r->leftover = plen;
    r->out_len = ws_buf_size(&fx->out);
    r->out = malloc(r->out_len + 1);
    assert_non_null(r->out);
    if (r->out_len > 0)
        memcpy(r->out, ws_buf_head(&fx->out), r->out_len);
    feeding_free(fx);
}

static void check_events(const struct ctx *c, const struct rec *rec,
                         const struct xev *x)
{
    size_t i;

    for (i = 0; i < rec->n; i++) {
        const struct rec_ev *e = &rec->ev[i];

        CHECK(c, x[i].kind != EV_END, "unexpected event %zu (kind %d)", i,
              (int)e->kind);
        CHECK(c, e->kind == x[i].kind, "event %zu: kind %d, want %d", i,
              (int)e->kind, (int)x[i].kind);
        CHECK(c, e->opcode == x[i].opcode, "event %zu: opcode %u, want %u", i,
              e->opcode, x[i].opcode);
        CHECK(c, e->code == x[i].code, "event %zu: code %u, want %u", i,
              e->code, x[i].code);
        CHECK(c, e->len == x[i].len, "event %zu: len %zu, want %zu", i, e->len,
              x[i].len);
        CHECK(c, e->len == 0 || memcmp(e->data, x[i].data, e->len) == 0,
              "event %zu: data differs", i);
        CHECK(c, e->nul, "event %zu: data[len] is not NUL", i);
    }
    CHECK(c, x[i].kind == EV_END, "missing event %zu (kind %d)", i,
          (int)x[i].kind);
}

/* Decode the server frames in p[0..n) and compare them with x. */
static void check_output(const struct ctx *c, const uint8_t *p, size_t n,
                         const struct xout *x)
{
    size_t pos = 0, i = 0;

    while (pos < n) {
        struct ws_frame_header h;
        int rc =
            ws_frame_header_parse(p + pos, n - pos, WS_FRAME_FROM_SERVER, &h);
        const uint8_t *pl;
        size_t plen;

        CHECK(c, rc > 0, "out frame %zu: header parse %d", i, rc);
        CHECK(c, h.fin && h.rsv == 0 && !h.masked,
              "out frame %zu: not FIN/unmasked", i);
        CHECK(c, h.header_len == ws_frame_header_size(h.payload_len, false),
              "out frame %zu: length not in shortest form", i);
        CHECK(c, h.payload_len <= n - pos - (size_t)rc,
              "out frame %zu: partial frame", i);
        CHECK(c, x[i].kind != XO_END, "unexpected out frame %zu (opcode %u)", i,
              h.opcode);
        CHECK(c, h.opcode == x[i].opcode, "out frame %zu: opcode %u, want %u",
              i, h.opcode, x[i].opcode);
        pl = p + pos + rc;
        plen = (size_t)h.payload_len;
        if (x[i].kind == XO_EXACT) {
            CHECK(c, plen == x[i].len, "out frame %zu: len %zu, want %zu", i,
                  plen, x[i].len);
            CHECK(c, plen == 0 || memcmp(pl, x[i].data, plen) == 0,
                  "out frame %zu: payload differs", i);
        } else {
            CHECK(c, plen >= 2, "out frame %zu: close without code", i);
            CHECK(c, (uint16_t)(pl[0] << 8 | pl[1]) == x[i].code,
                  "out frame %zu: close code %u, want %u", i,
                  (unsigned)(pl[0] << 8 | pl[1]), x[i].code);
            CHECK(c, ws_utf8_valid(pl + 2, plen - 2),
                  "out frame %zu: close reason not UTF-8", i);
        }
        pos += (size_t)rc + plen;
        i++;
    }
    CHECK(c, x[i].kind == XO_END, "missing out frame %zu (opcode %u)", i,
          x[i].opcode);
}

/* Check one run against the row and against the run of the whole input. */
static void check_run(const struct ctx *c, const struct row *row,
                      const struct run *r, const struct run *whole)
{
    check_events(c, &r->rec, row->ev);
    check_output(c, r->out, r->out_len, row->out);
    CHECK(c, r->state == row->state, "state %d, want %d", (int)r->state,
          (int)row->state);
    CHECK(c,
          r->leftover == 0 || (r->state != WS_SESSION_OPEN &&
                               r->state != WS_SESSION_CLOSE_SENT),
          "%zu bytes left unconsumed", r->leftover);
    if (whole != NULL) {
        CHECK(c,
              r->out_len == whole->out_len &&
                  (r->out_len == 0 ||
                   memcmp(r->out, whole->out, r->out_len) == 0),
              "output bytes differ from the whole feed");
    }
}

/* Feed with the given cuts and check against the row and the whole run. */
static void run_and_check(struct row_fx *fx, const size_t *cuts, size_t ncuts)
{
    run_pieces(fx, cuts, ncuts, &fx->cur);
    check_run(&fx->c, fx->row, &fx->cur, &fx->whole);
    run_free(&fx->cur);
}

/* Should the 2-way split at offset k of a len-byte vector be run? */
static bool split_wanted(size_t k, size_t len)
{
    const char *vg = getenv("WS_TEST_VALGRIND");

    if (vg == NULL || strcmp(vg, "1") != 0 || len <= LONG_LEN)
        return true;
    return k < LONG_EDGE || len - k < LONG_EDGE || k % LONG_STRIDE == 0;
}

/* One row: whole, byte by byte, every 2-way and (short) 3-way split. */
static void test_row(void **state)
{
    struct row_fx *fx = *state;
    size_t len;

    build_input(fx->row->in, &fx->in);
    len = fx->in.len;
    snprintf(fx->c.mode, sizeof fx->c.mode, "whole");
    run_pieces(fx, NULL, 0, &fx->whole);
    check_run(&fx->c, fx->row, &fx->whole, NULL);

    fx->cuts = malloc((len + 1) * sizeof(*fx->cuts));
    assert_non_null(fx->cuts);
    for (size_t i = 0; i + 1 < len; i++)
        fx->cuts[i] = i + 1;
    snprintf(fx->c.mode, sizeof fx->c.mode, "byte by byte");
    run_and_check(fx, fx->cuts, len > 0 ? len - 1 : 0);

    for (size_t k = 0; k <= len; k++) {
        if (!split_wanted(k, len))
            continue;
        snprintf(fx->c.mode, sizeof fx->c.mode, "split at %zu", k);
        run_and_check(fx, &k, 1);
    }
    for (size_t i = 1; len <= SHORT_LEN && i < len; i++) {
        for (size_t j = i + 1; j < len; j++) {
            size_t two[2] = {i, j};

            snprintf(fx->c.mode, sizeof fx->c.mode, "split at %zu,%zu", i, j);
            run_and_check(fx, two, 2);
        }
    }
}

/* ---- Fixture for the API tests ---------------------------------------- */

struct fx {
    struct ws_session s;
    struct ws_session_config cfg;
    struct rec rec;
    struct ws_buf out;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->cfg = (struct ws_session_config){&lim_default, &handler};
    ws_session_init(&f->s, &f->cfg, &f->rec);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    ws_session_free(&f->s);
    ws_buf_free(&f->out);
    rec_free(&f->rec);
    free(f);
    return 0;
}

/* Restart the fixture's session with other limits. */
static void fx_limits(struct fx *f, const struct ws_session_limits *l)
{
    ws_session_free(&f->s);
    ws_buf_free(&f->out);
    rec_free(&f->rec);
    f->cfg = (struct ws_session_config){l, &handler};
    ws_session_init(&f->s, &f->cfg, &f->rec);
}

/* Feed a copy of p[0..len) in an exact-size allocation; return consumed. */
static size_t fx_feed(struct fx *f, const uint8_t *p, size_t len)
{
    uint8_t *buf = malloc(len + 1);
    size_t used;

    assert_non_null(buf);
    if (len > 0)
        memcpy(buf, p, len);
    buf[len] = SENTINEL;
    used = ws_session_feed(&f->s, buf, len, &f->out);
    assert_int_equal(buf[len], SENTINEL);
    free(buf);
    return used;
}

/* Feed one built frame whole; return consumed (after a failure, the bad
   frame may count as consumed or not). */
static size_t fx_feed_frame(struct fx *f, bool fin, uint8_t opcode,
                            const void *data, size_t len)
{
    struct bytes b = {0};
    size_t used;

    add_frame(&b, fin, opcode, data, len);
    used = fx_feed(f, b.p, b.len);
    free(b.p);
    return used;
}

/* Assert the output holds exactly the bytes p[0..len). */
static void assert_out(const struct fx *f, const void *p, size_t len)
{
    assert_int_equal(ws_buf_size(&f->out), len);
    if (len > 0)
        assert_memory_equal(ws_buf_head(&f->out), p, len);
}

/* Assert the output is one close frame with code (any UTF-8 reason). */
static void assert_out_close(const struct fx *f, uint16_t code)
{
    struct ctx c = {"output", "whole"};
    const struct xout x[] = {OUTFAIL(code), XOUT_END};

    check_output(&c, ws_buf_head(&f->out), ws_buf_size(&f->out), x);
}

/* ---- API tests -------------------------------------------------------- */

/* A frame taken whole: nothing is consumed until all of it is there, the
   session says how much it waits for, and the message is the payload. */
static void test_need_whole_frame(void **state)
{
    struct fx *f = *state;
    struct bytes b = {0};
    uint8_t payload[1000];
    uint8_t *buf;

    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    add_frame(&b, true, WS_OP_BINARY, payload, sizeof payload);
    buf = malloc(b.len + 1);
    assert_non_null(buf);
    memcpy(buf, b.p, b.len);
    /* Each call gets the bytes the last one left, plus 100 more. */
    for (size_t have = 1; have < b.len; have += 100) {
        assert_int_equal(ws_session_feed(&f->s, buf, have, &f->out), 0);
        assert_int_equal(f->rec.n, 0);
        if (have >= 4) /* 2 + 2 length bytes: the length is known */
            assert_int_equal(ws_session_need(&f->s), b.len);
    }
    assert_int_equal(ws_session_feed(&f->s, buf, b.len, &f->out), b.len);
    assert_int_equal(ws_session_need(&f->s), 0);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.ev[0].len, sizeof payload);
    assert_memory_equal(f->rec.ev[0].data, payload, sizeof payload);
    assert_out(f, "", 0);
    free(buf);
    free(b.p);
}

/* A frame past WS_SESSION_IN_PLACE_MAX is read in pieces: its header is
   consumed at once and nothing is awaited. */
static void test_need_large_frame_in_pieces(void **state)
{
    struct fx *f = *state;
    struct ws_session_limits lim = lim_default;
    size_t len = WS_SESSION_IN_PLACE_MAX + 1;
    uint8_t *payload = calloc(1, len);
    struct bytes b = {0};
    size_t used;

    assert_non_null(payload);
    lim.max_message = lim.max_frame = 2 * len;
    fx_limits(f, &lim);
    add_frame(&b, true, WS_OP_BINARY, payload, len);
    used = fx_feed(f, b.p, 14 + 10);
    assert_int_equal(used, 14 + 10);
    assert_int_equal(ws_session_need(&f->s), 0);
    assert_int_equal(fx_feed(f, b.p + used, b.len - used), b.len - used);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.ev[0].len, len);
    free(payload);
    free(b.p);
}

/* What a socket that takes at most budget bytes of header and payload
   took, as the owner of ws_session_frame_begin() would write them. */
static size_t take_some(struct bytes *got, size_t budget, const uint8_t *hdr,
                        size_t hlen, const void *data, size_t len)
{
    size_t k = hlen < budget ? hlen : budget;

    bytes_add(got, hdr, k);
    budget -= k;
    bytes_add(got, data, len < budget ? len : budget);
    return k + (len < budget ? len : budget);
}

/* ws_session_frame_begin/rest: whatever the socket takes, what it took
   and what is queued make exactly the frame ws_session_send would queue. */
static void test_frame_begin_rest(void **state)
{
    struct fx *f = *state;
    size_t len = 16384 + 5;
    char *text = malloc(len);
    struct ws_buf want = {0};
    const size_t budgets[] = {0,   1,   3,       4,       5,
                              100, len, len + 3, len + 4, len + 100};

    assert_non_null(text);
    memset(text, 'x', len);
    memcpy(text, "\xC3\xA9", 2); /* é: text, and valid */
    assert_int_equal(ws_session_send(&f->s, &want, WS_OP_TEXT, text, len), 0);
    assert_int_equal(ws_buf_size(&want), len + 4); /* 16-bit length */
    for (size_t i = 0; i < ARRAY_LEN(budgets); i++) {
        uint8_t hdr[WS_FRAME_MAX_HEADER];
        struct bytes all = {0}, got = {0};
        ssize_t hlen;
        size_t took;

        print_message("budget %zu\n", budgets[i]);
        ws_buf_clear(&f->out);
        hlen = ws_session_frame_begin(&f->s, WS_OP_TEXT, text, len, false, hdr);
        assert_int_equal(hlen, 4);
        took = take_some(&got, budgets[i], hdr, (size_t)hlen, text, len);
        assert_int_equal(ws_session_frame_rest(&f->s, &f->out, hdr,
                                               (size_t)hlen, text, len, took),
                         0);
        bytes_add(&all, got.p, got.len);
        bytes_add(&all, ws_buf_head(&f->out), ws_buf_size(&f->out));
        assert_int_equal(all.len, ws_buf_size(&want));
        assert_memory_equal(all.p, ws_buf_head(&want), all.len);
        free(all.p);
        free(got.p);
    }
    ws_buf_free(&want);
    free(text);
}

/* ws_session_frame_begin checks as ws_session_send does, before any
   write: bad text is refused, checked text is not checked again, a frame
   that could not wait in the output queue is too big, and nothing is
   ever queued. */
static void test_frame_begin_checks(void **state)
{
    struct fx *f = *state;
    size_t len = 16384;
    char *large = malloc(len);
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    struct ws_session_limits lim = lim_default;

    assert_non_null(large);
    memset(large, 'y', len);
    large[7] = (char)0xFF;
    assert_int_equal(
        ws_session_frame_begin(&f->s, WS_OP_TEXT, large, len, false, hdr),
        WS_EINVAL);
    assert_out(f, "", 0);
    /* Checked text is not checked again. */
    assert_int_equal(
        ws_session_frame_begin(&f->s, WS_OP_TEXT, large, len, true, hdr), 4);
    assert_int_equal(
        ws_session_frame_begin(&f->s, WS_OP_BINARY, large, len, false, hdr), 4);
    assert_memory_equal(hdr, "\x82\x7e\x40\x00", 4);
    assert_out(f, "", 0);
    /* The output cap counts what waits before a frame, not the frame:
       nothing waits before one written this way. */
    lim.max_output = 16;
    fx_limits(f, &lim);
    assert_int_equal(
        ws_session_frame_begin(&f->s, WS_OP_BINARY, large, len, false, hdr), 4);
    lim.max_message = len - 1;
    fx_limits(f, &lim);
    assert_int_equal(
        ws_session_frame_begin(&f->s, WS_OP_BINARY, large, len, false, hdr),
        WS_ETOOBIG);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);
    free(large);
}

/* The frame builder reproduces RFC 6455 §5.7 "a single-frame masked text
   message" byte for byte. */
static void test_builder_rfc_hello(void **state)
{
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct bytes b = {0};

    (void)state;
    add_frame(&b, true, WS_OP_TEXT, "Hello", 5);
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    free(b.p);
}

/* RFC 6455 §8.1: fail fast. The fragment holding the bad byte is not final
   and nothing follows it, yet 1007 is already out. */
static void test_utf8_fail_fast_fragment(void **state)
{
    struct fx *f = *state;

    assert_int_equal(fx_feed_frame(f, false, WS_OP_TEXT, "ab\xF0\x9F", 4),
                     2 + 4 + 4);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);
    assert_out(f, "", 0);
    fx_feed(f, NULL, 0);
    assert_out(f, "", 0);

    fx_feed_frame(f, false, WS_OP_CONT, "\x28zz", 3);
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    assert_out_close(f, WS_CLOSE_INVALID_DATA);
    assert_int_equal(f->rec.n, 0);
}

/* Fail fast inside one frame: the header and the first payload bytes,
   which hold the bad byte, are enough. */
static void test_utf8_fail_fast_mid_frame(void **state)
{
    struct fx *f = *state;
    struct bytes b = {0};

    add_frame(&b, true, WS_OP_TEXT,
              "a\xC0"
              "bcdefghijklmnop",
              17);
    /* 2 + 4 header bytes, then "a\xC0" only. */
    fx_feed(f, b.p, 8);
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    assert_out_close(f, WS_CLOSE_INVALID_DATA);
    assert_int_equal(f->rec.n, 0);
    free(b.p);
}

/* ws_session_close: one close frame, CLOSE_SENT, a second call refused. */
static void test_close_twice(void **state)
{
    struct fx *f = *state;
    static const uint8_t want[] = {0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'};

    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, "bye", 3), 0);
    assert_int_equal(f->s.state, WS_SESSION_CLOSE_SENT);
    assert_out(f, want, sizeof want);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, "bye", 3),
                     WS_ECLOSED);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1001, NULL, 0),
                     WS_ECLOSED);
    assert_int_equal(f->s.state, WS_SESSION_CLOSE_SENT);
    assert_out(f, want, sizeof want);
    assert_false(ws_session_finished(&f->s));
}

/* RFC 6455 §7.4: codes that may not be sent, and §5.5: reason length. */
static void test_close_invalid(void **state)
{
    static const uint16_t bad[] = {0,    999,  1004, 1005, 1006,
                                   1015, 2999, 5000, 65535};
    struct fx *f = *state;
    char reason[WS_FRAME_MAX_CONTROL];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        print_message("code %u\n", bad[i]);
        assert_int_equal(ws_session_close(&f->s, &f->out, bad[i], NULL, 0),
                         WS_EINVAL);
    }
    memset(reason, 'r', sizeof reason);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, reason, 124),
                     WS_EINVAL);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, "\xC0\x80", 2),
                     WS_EINVAL);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);
    assert_out(f, "", 0);

    /* 123 bytes of reason fill a 125-byte close payload exactly. */
    assert_int_equal(ws_session_close(&f->s, &f->out, 4999, reason, 123), 0);
    assert_int_equal(ws_buf_size(&f->out), 2 + 125);
    assert_memory_equal(ws_buf_head(&f->out), "\x88\x7D\x13\x87", 4);
    assert_int_equal(f->s.state, WS_SESSION_CLOSE_SENT);
}

/* After the peer's close (DONE) nothing can be sent or closed. */
static void test_close_after_done(void **state)
{
    struct fx *f = *state;
    size_t n;

    fx_feed_frame(f, true, WS_OP_CLOSE, "\x03\xE8", 2);
    assert_int_equal(f->s.state, WS_SESSION_DONE);
    assert_true(ws_session_finished(&f->s));
    n = ws_buf_size(&f->out);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, NULL, 0),
                     WS_ECLOSED);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_buf_size(&f->out), n);
}

/* Server frames: unmasked, FIN, shortest length (RFC 6455 §5.2, §5.7). */
static void test_send_frames(void **state)
{
    struct fx *f = *state;
    struct bytes want = {0};

    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "Hello", 5),
                     0);
    bytes_add(&want, "\x81\x05Hello", 7);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "", 0), 0);
    bytes_add(&want, "\x81\x00", 2);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, NULL, 0), 0);
    bytes_add(&want, "\x82\x00", 2);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PING, "Hello", 5),
                     0);
    bytes_add(&want, "\x89\x05Hello", 7);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PONG, "Hello", 5),
                     0);
    bytes_add(&want, "\x8A\x05Hello", 7);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, ascii, 125),
                     0);
    bytes_add(&want, "\x81\x7D", 2);
    bytes_add(&want, ascii, 125);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, ascii, 126),
                     0);
    bytes_add(&want, "\x81\x7E\x00\x7E", 4);
    bytes_add(&want, ascii, 126);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 256),
                     0);
    bytes_add(&want, "\x82\x7E\x01\x00", 4);
    bytes_add(&want, big, 256);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 65535),
                     0);
    bytes_add(&want, "\x82\x7E\xFF\xFF", 4);
    bytes_add(&want, big, 65535);
    assert_int_equal(
        ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, BIG_LEN), 0);
    bytes_add(&want, "\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    bytes_add(&want, big, BIG_LEN);
    assert_out(f, want.p, want.len);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);
    free(want.p);
}

/* Every refusal of ws_session_send leaves the output untouched. */
static void test_send_errors(void **state)
{
    static const struct ws_session_limits lim = {
        .max_message = 300,
        .max_frame = 300,
        .max_fragments = 10,
        .max_output = 1u << 20,
    };
    struct fx *f = *state;

    fx_limits(f, &lim);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "\xC0\x80", 2),
                     WS_EINVAL);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "ab\xCE", 3),
                     WS_EINVAL);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 301),
                     WS_ETOOBIG);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, ascii, 301),
                     WS_ETOOBIG);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PING, big, 126),
                     WS_ETOOBIG);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PONG, big, 126),
                     WS_ETOOBIG);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_CONT, "x", 1),
                     WS_EINVAL);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_CLOSE, "x", 1),
                     WS_EINVAL);
    assert_int_equal(ws_session_send(&f->s, &f->out, 0x3, "x", 1), WS_EINVAL);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, NULL, 1),
                     WS_EINVAL);
    assert_out(f, "", 0);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);

    /* The limits are inclusive. */
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 300),
                     0);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PING, big, 125), 0);
    assert_int_equal(ws_buf_size(&f->out), 4 + 300 + 2 + 125);

    /* After ws_session_close nothing more may be sent. */
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, NULL, 0), 0);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PING, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_buf_size(&f->out), 4 + 300 + 2 + 125 + 4);
}

/* A send after the session failed is refused. */
static void test_send_after_fail(void **state)
{
    struct fx *f = *state;
    size_t n;

    fx_feed(f, (const uint8_t *)"\x81\x05Hello", 7); /* unmasked: 1002 */
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    n = ws_buf_size(&f->out);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_TEXT, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, NULL, 0),
                     WS_ECLOSED);
    assert_int_equal(ws_buf_size(&f->out), n);
}

/* Assert that out, from byte skip on, is exactly one close frame with
   code. */
static void assert_tail_close(const struct fx *f, size_t skip, uint16_t code)
{
    const uint8_t *p = ws_buf_head(&f->out) + skip;
    size_t n = ws_buf_size(&f->out) - skip;
    struct ws_frame_header h;
    int hl = ws_frame_header_parse(p, n, WS_FRAME_FROM_SERVER, &h);

    assert_true(hl > 0);
    assert_int_equal(h.opcode, WS_OP_CLOSE);
    assert_int_equal((size_t)hl + h.payload_len, n);
    assert_true(h.payload_len >= 2);
    assert_int_equal((p[hl] << 8) | p[hl + 1], code);
}

/* Output limit: a frame is refused once more than max_output bytes
   wait, and the session fails with 1008; the close frame still goes. A
   frame of any allowed size is taken while at most max_output wait. */
static void test_send_output_limit(void **state)
{
    static const struct ws_session_limits lim = {
        .max_message = 1u << 20,
        .max_frame = 1u << 20,
        .max_fragments = 10,
        .max_output = 100,
    };
    struct fx *f = *state;

    fx_limits(f, &lim);
    /* 2 + 98 bytes: exactly the limit, which still takes one more. */
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 98), 0);
    assert_int_equal(ws_buf_size(&f->out), 100);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, "x", 1), 0);
    assert_int_equal(ws_buf_size(&f->out), 103);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, "y", 1),
                     WS_EFULL);
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    assert_int_equal(f->s.close_code, WS_CLOSE_POLICY);
    assert_true(ws_session_finished(&f->s));
    assert_tail_close(f, 103, WS_CLOSE_POLICY);
    assert_true(ws_buf_size(&f->out) <= 103 + 2 + WS_FRAME_MAX_CONTROL);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, NULL, 0),
                     WS_ECLOSED);

    /* A message larger than max_output on an empty queue is taken whole;
       the next send finds more than the cap waiting. */
    fx_limits(f, &lim);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 200),
                     0);
    assert_int_equal(ws_buf_size(&f->out), 204);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, "x", 1),
                     WS_EFULL);
    assert_tail_close(f, 204, WS_CLOSE_POLICY);

    /* ws_session_close on a full queue still says goodbye. */
    fx_limits(f, &lim);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, big, 98), 0);
    assert_int_equal(ws_session_close(&f->s, &f->out, 1000, NULL, 0), 0);
    assert_int_equal(f->s.state, WS_SESSION_CLOSE_SENT);
    assert_tail_close(f, 100, 1000);
}

/* A peer that pings and never reads: pongs stop at max_output and the
   session fails with 1008 instead of growing the queue. */
static void test_ping_flood(void **state)
{
    static const struct ws_session_limits lim = {
        .max_message = 1u << 20,
        .max_frame = 1u << 20,
        .max_fragments = 10,
        .max_output = 64,
    };
    struct fx *f = *state;
    struct bytes b = {0};
    size_t used, again, size;

    fx_limits(f, &lim);
    for (int i = 0; i < 1000; i++)
        add_frame(&b, true, WS_OP_PING, "0123456789", 10);
    used = fx_feed(f, b.p, b.len);
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    /* Pongs of 12 bytes are queued while at most 64 bytes wait: the 6th
       makes 72, and the 7th ping fails the session. */
    assert_tail_close(f, 72, WS_CLOSE_POLICY);
    assert_true(used < b.len);
    size = ws_buf_size(&f->out);
    again = fx_feed(f, b.p + used, b.len - used);
    assert_int_equal(again, 0);
    assert_int_equal(ws_buf_size(&f->out), size);
    free(b.p);
}

/* Failing on a full queue still queues the close frame past the limit. */
static void test_fail_output_full(void **state)
{
    static const struct ws_session_limits lim = {
        .max_message = 1u << 20,
        .max_frame = 1u << 20,
        .max_fragments = 10,
        .max_output = 3,
    };
    struct fx *f = *state;

    fx_limits(f, &lim);
    fx_feed(f, (const uint8_t *)"\x81\x05Hello", 7); /* unmasked: 1002 */
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    assert_tail_close(f, 0, WS_CLOSE_PROTOCOL_ERROR);
}

/* Streaming receive: pieces arrive as the bytes do, first and last flags
   bracket the message, and the size limits do not apply. */
static void test_stream_pieces(void **state)
{
    static const struct ws_session_limits tiny = {.max_message = 4,
                                                  .max_frame = 4,
                                                  .max_fragments = 1,
                                                  .max_output = 1 << 20};
    struct fx *f = *state;
    struct bytes b = {0};
    size_t used, cut;
    char all[64] = "";

    fx_limits(f, &tiny);
    f->cfg.handler = &stream_handler;
    assert_int_equal(ws_session_set_streaming(&f->s, true), 0);
    add_frame(&b, false, WS_OP_TEXT, "h\xc3\xa9llo wo", 9);
    add_frame(&b, true, WS_OP_CONT, "rld", 3);
    cut = 2 + 4 + 3; /* mid-payload of the first frame */
    used = fx_feed(f, b.p, cut);
    assert_int_equal(used, cut);
    used = fx_feed(f, b.p + cut, b.len - cut);
    assert_int_equal(used, b.len - cut);
    assert_int_equal(f->s.state, WS_SESSION_OPEN);
    assert_true(f->rec.n >= 3);
    for (size_t i = 0; i < f->rec.n; i++) {
        const struct rec_ev *e = &f->rec.ev[i];

        assert_int_equal(e->kind, EV_PIECE);
        assert_int_equal(e->opcode, WS_OP_TEXT);
        assert_int_equal(e->code & 1, i == 0);
        assert_int_equal((e->code >> 1) & 1, i == f->rec.n - 1);
        assert_true(e->nul);
        strncat(all, (const char *)e->data, e->len);
    }
    assert_string_equal(all, "h\xc3\xa9llo world");
    assert_int_equal(ws_buf_size(&f->out), 0);
    free(b.p);
}

/* Streaming: text cut inside a character at FIN is 1007, and the last
   piece is not handed over before that check. */
static void test_stream_utf8_cut(void **state)
{
    struct fx *f = *state;
    struct bytes b = {0};

    f->cfg.handler = &stream_handler;
    assert_int_equal(ws_session_set_streaming(&f->s, true), 0);
    add_frame(&b, true, WS_OP_TEXT, "ab\xc3", 3);
    fx_feed(f, b.p, b.len);
    assert_int_equal(f->s.state, WS_SESSION_FAILED);
    assert_int_equal(f->rec.n, 0);
    assert_out_close(f, WS_CLOSE_INVALID_DATA);
    free(b.p);
}

/* Sending in parts: opcode then continuations, FIN on the last, a ping
   between them, UTF-8 checked across pieces, order enforced. */
static void test_send_parts(void **state)
{
    struct fx *f = *state;
    static const uint8_t want[] = {0x01, 0x02, 'h',  0xc3, 0x89, 0x01, 'p',
                                   0x00, 0x01, 0xa9, 0x80, 0x01, '!'};

    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_CONTINUE, 0, "x", 1),
        WS_ESTATE);
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_BEGIN, WS_OP_PING, "x", 1),
        WS_EINVAL);
    assert_int_equal(ws_session_send_part(&f->s, &f->out, WS_PART_BEGIN,
                                          WS_OP_TEXT, "h\xc3", 2),
                     0);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_BINARY, "x", 1),
                     WS_ESTATE);
    assert_int_equal(ws_session_send(&f->s, &f->out, WS_OP_PING, "p", 1), 0);
    /* 0xC3 0x41 is not UTF-8: refused, and the stream state is kept. */
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_CONTINUE, 0, "A", 1),
        WS_EINVAL);
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_CONTINUE, 0, "\xa9", 1),
        0);
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_FINISH, 0, "!", 1), 0);
    assert_out(f, want, sizeof(want));
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_FINISH, 0, "!", 1),
        WS_ESTATE);
    /* A text message may not end inside a character. */
    assert_int_equal(ws_session_send_part(&f->s, &f->out, WS_PART_BEGIN,
                                          WS_OP_TEXT, "\xe2\x82", 2),
                     0);
    assert_int_equal(
        ws_session_send_part(&f->s, &f->out, WS_PART_FINISH, 0, "", 0),
        WS_EINVAL);
}

/* Drive the fixture's session into a finished state. */
static void finish_session(struct fx *f, enum ws_session_state want)
{
    struct bytes b = {0};

    if (want == WS_SESSION_ABORTED) {
        /* Only an allocation failure aborts; set the state it leaves. */
        f->s.state = WS_SESSION_ABORTED;
        return;
    }
    if (want == WS_SESSION_DONE)
        add_frame(&b, true, WS_OP_CLOSE, "\x03\xE8", 2);
    else
        add_frame(&b, true, WS_OP_CONT, "x", 1);
    fx_feed(f, b.p, b.len);
    assert_int_equal(f->s.state, want);
    free(b.p);
}

/* Nothing is consumed, raised or written after DONE, FAILED or ABORTED. */
static void test_finished_consumes_nothing(void **state)
{
    static const enum ws_session_state states[] = {
        WS_SESSION_DONE, WS_SESSION_FAILED, WS_SESSION_ABORTED};
    struct fx *f = *state;

    for (size_t i = 0; i < ARRAY_LEN(states); i++) {
        struct bytes b = {0};
        uint8_t *copy;
        size_t n, events;

        fx_limits(f, &lim_default);
        finish_session(f, states[i]);
        print_message("state %d\n", (int)states[i]);
        n = ws_buf_size(&f->out);
        events = f->rec.n;
        add_frame(&b, true, WS_OP_TEXT, "Hello", 5);
        add_frame(&b, true, WS_OP_PING, "p", 1);
        add_frame(&b, true, WS_OP_CLOSE, "\x03\xE8", 2);
        copy = malloc(b.len);
        assert_non_null(copy);
        memcpy(copy, b.p, b.len);
        assert_int_equal(ws_session_feed(&f->s, b.p, b.len, &f->out), 0);
        /* Not even unmasked. */
        assert_memory_equal(b.p, copy, b.len);
        assert_int_equal(ws_buf_size(&f->out), n);
        assert_int_equal(f->rec.n, events);
        assert_int_equal(f->s.state, states[i]);
        free(copy);
        free(b.p);
    }
}

/* ---- The row table ---------------------------------------------------- */

static const struct ws_session_limits lim_frame1000 = {
    .max_message = 1u << 20,
    .max_frame = 1000,
    .max_fragments = 1000,
    .max_output = 8u << 20,
};

static const struct ws_session_limits lim_msg1000 = {
    .max_message = 1000,
    .max_frame = 1000,
    .max_fragments = 1000,
    .max_output = 8u << 20,
};

static const struct ws_session_limits lim_msg600_frame_big = {
    .max_message = 600,
    .max_frame = 1u << 20,
    .max_fragments = 1000,
    .max_output = 8u << 20,
};

static const struct ws_session_limits lim_frag3 = {
    .max_message = 1u << 20,
    .max_frame = 1u << 20,
    .max_fragments = 3,
    .max_output = 8u << 20,
};

static const struct ws_session_limits lim_frag1 = {
    .max_message = 1u << 20,
    .max_frame = 1u << 20,
    .max_fragments = 1,
    .max_output = 8u << 20,
};

/* "κόσμε" (Kuhn's sample word, Autobahn case 6.2). */
#define KOSME "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"

#define IN(...) ((const struct fspec[]){__VA_ARGS__, SPEC_END})
#define EVS(...) ((const struct xev[]){__VA_ARGS__, XEV_END})
#define OUTS(...) ((const struct xout[]){__VA_ARGS__, XOUT_END})

/* A row whose only effect is failing with code. */
#define FAIL_ROW(lbl, input, code)                                             \
    {                                                                          \
        .label = lbl, .in = input, .ev = no_events,                            \
        .out = OUTS(OUTFAIL(code)), .state = WS_SESSION_FAILED                 \
    }

#define P WS_CLOSE_PROTOCOL_ERROR
#define U WS_CLOSE_INVALID_DATA
#define T WS_CLOSE_TOO_BIG

static const struct row rows[] = {
    /* RFC 6455 §5.7 examples, masked as a client must. */
    {.label = "§5.7 single-frame masked text Hello (RFC bytes)",
     .in = IN(RAW("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")),
     .ev = EVS(XMSG(WS_OP_TEXT, "Hello")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "§5.7 fragmented text Hel + lo",
     .in = IN(F(false, WS_OP_TEXT, "Hel"), F(true, WS_OP_CONT, "lo")),
     .ev = EVS(XMSG(WS_OP_TEXT, "Hello")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "§5.7 ping Hello answered by pong Hello",
     .in = IN(F(true, WS_OP_PING, "Hello")),
     .ev = no_events,
     .out = OUTS(OUT(WS_OP_PONG, "Hello")),
     .state = WS_SESSION_OPEN},
    {.label = "§5.7 pong Hello raises a pong event",
     .in = IN(F(true, WS_OP_PONG, "Hello")),
     .ev = EVS(XPONG("Hello")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "§5.7 256-byte binary (16-bit length)",
     .in = IN(FB(true, WS_OP_BINARY, big, 256)),
     .ev = EVS(XMSGB(WS_OP_BINARY, big, 256)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "§5.7 64 KiB binary (64-bit length)",
     .in = IN(FB(true, WS_OP_BINARY, big, BIG_LEN)),
     .ev = EVS(XMSGB(WS_OP_BINARY, big, BIG_LEN)),
     .out = no_output,
     .state = WS_SESSION_OPEN},

    /* §5.6 data frames. */
    {.label = "zero-length text",
     .in = IN(F(true, WS_OP_TEXT, "")),
     .ev = EVS(XMSG(WS_OP_TEXT, "")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "zero-length binary",
     .in = IN(F(true, WS_OP_BINARY, "")),
     .ev = EVS(XMSG(WS_OP_BINARY, "")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "zero-length fragments make a zero-length text",
     .in = IN(F(false, WS_OP_TEXT, ""), F(false, WS_OP_CONT, ""),
              F(true, WS_OP_CONT, "")),
     .ev = EVS(XMSG(WS_OP_TEXT, "")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "binary with NUL bytes",
     .in = IN(F(true, WS_OP_BINARY, "\x00\x01\x00\xFF")),
     .ev = EVS(XMSG(WS_OP_BINARY, "\x00\x01\x00\xFF")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "many messages in one buffer",
     .in = IN(F(true, WS_OP_TEXT, "a"), F(true, WS_OP_BINARY, "\x00\x01\x02"),
              F(true, WS_OP_TEXT, KOSME), F(true, WS_OP_PING, "p"),
              F(true, WS_OP_TEXT, ""), F(true, WS_OP_PONG, "q"),
              F(true, WS_OP_BINARY, "z")),
     .ev = EVS(XMSG(WS_OP_TEXT, "a"), XMSG(WS_OP_BINARY, "\x00\x01\x02"),
               XMSG(WS_OP_TEXT, KOSME), XMSG(WS_OP_TEXT, ""), XPONG("q"),
               XMSG(WS_OP_BINARY, "z")),
     .out = OUTS(OUT(WS_OP_PONG, "p")),
     .state = WS_SESSION_OPEN},
    {.label = "125-byte text (7-bit length) then 126-byte (16-bit)",
     .in =
         IN(FB(true, WS_OP_TEXT, ascii, 125), FB(true, WS_OP_TEXT, ascii, 126)),
     .ev = EVS(XMSGB(WS_OP_TEXT, ascii, 125), XMSGB(WS_OP_TEXT, ascii, 126)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "4 KiB text",
     .in = IN(FB(true, WS_OP_TEXT, ascii, 4096)),
     .ev = EVS(XMSGB(WS_OP_TEXT, ascii, 4096)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "empty ping and 125-byte ping answered",
     .in = IN(F(true, WS_OP_PING, ""), FB(true, WS_OP_PING, big, 125)),
     .ev = no_events,
     .out = OUTS(OUT(WS_OP_PONG, ""), OUTB(WS_OP_PONG, big, 125)),
     .state = WS_SESSION_OPEN},

    /* §5.4 fragmentation. */
    {.label = "five binary fragments assemble in order",
     .in = IN(F(false, WS_OP_BINARY, "a"), F(false, WS_OP_CONT, "bc"),
              F(false, WS_OP_CONT, ""), F(false, WS_OP_CONT, "def"),
              F(true, WS_OP_CONT, "g")),
     .ev = EVS(XMSG(WS_OP_BINARY, "abcdefg")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "§5.4 ping between fragments",
     .in = IN(F(false, WS_OP_TEXT, "Hel"), F(true, WS_OP_PING, "x"),
              F(true, WS_OP_CONT, "lo")),
     .ev = EVS(XMSG(WS_OP_TEXT, "Hello")),
     .out = OUTS(OUT(WS_OP_PONG, "x")),
     .state = WS_SESSION_OPEN},
    {.label = "§5.4 pong between fragments",
     .in = IN(F(false, WS_OP_BINARY, "ab"), F(true, WS_OP_PONG, "p"),
              F(false, WS_OP_CONT, "cd"), F(true, WS_OP_PING, "q"),
              F(true, WS_OP_CONT, "ef")),
     .ev = EVS(XPONG("p"), XMSG(WS_OP_BINARY, "abcdef")),
     .out = OUTS(OUT(WS_OP_PONG, "q")),
     .state = WS_SESSION_OPEN},
    {.label = "UTF-8 characters cut across fragments",
     .in = IN(F(false, WS_OP_TEXT, "\xCE"), F(false, WS_OP_CONT, "\xBA\xE1"),
              F(false, WS_OP_CONT, "\xBD"),
              F(true, WS_OP_CONT, "\xB9\xCF\x83\xCE\xBC\xCE\xB5")),
     .ev = EVS(XMSG(WS_OP_TEXT, KOSME)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "fragmented 64 KiB + 256 binary",
     .in = IN(FB(false, WS_OP_BINARY, big, 256),
              FB(true, WS_OP_CONT, big + 256, BIG_LEN - 256)),
     .ev = EVS(XMSGB(WS_OP_BINARY, big, BIG_LEN)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "exactly max_fragments fragments",
     .in = IN(F(false, WS_OP_BINARY, "a"), F(false, WS_OP_CONT, "b"),
              F(true, WS_OP_CONT, "c")),
     .lim = &lim_frag3,
     .ev = EVS(XMSG(WS_OP_BINARY, "abc")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "max_fragments counts per message (3 + 1 + 3)",
     .in = IN(F(false, WS_OP_BINARY, "a"), F(false, WS_OP_CONT, "b"),
              F(true, WS_OP_CONT, "c"), F(true, WS_OP_TEXT, "d"),
              F(false, WS_OP_TEXT, "e"), F(false, WS_OP_CONT, "f"),
              F(true, WS_OP_CONT, "g")),
     .lim = &lim_frag3,
     .ev = EVS(XMSG(WS_OP_BINARY, "abc"), XMSG(WS_OP_TEXT, "d"),
               XMSG(WS_OP_TEXT, "efg")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "max_fragments 1 allows many unfragmented messages",
     .in = IN(F(true, WS_OP_TEXT, "a"), F(true, WS_OP_BINARY, "b"),
              F(true, WS_OP_TEXT, "c")),
     .lim = &lim_frag1,
     .ev = EVS(XMSG(WS_OP_TEXT, "a"), XMSG(WS_OP_BINARY, "b"),
               XMSG(WS_OP_TEXT, "c")),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "message of exactly max_message bytes",
     .in = IN(FB(true, WS_OP_BINARY, big, 600)),
     .lim = &lim_msg600_frame_big,
     .ev = EVS(XMSGB(WS_OP_BINARY, big, 600)),
     .out = no_output,
     .state = WS_SESSION_OPEN},
    {.label = "fragments adding up to exactly max_message",
     .in = IN(FB(false, WS_OP_BINARY, big, 300),
              FB(true, WS_OP_CONT, big + 300, 300)),
     .lim = &lim_msg600_frame_big,
     .ev = EVS(XMSGB(WS_OP_BINARY, big, 600)),
     .out = no_output,
     .state = WS_SESSION_OPEN},

    /* §5.1, §5.2, §5.5 header violations: 1002. */
    FAIL_ROW("§5.1 unmasked client frame (RFC unmasked Hello)",
             IN(RAW("\x81\x05Hello")), P),
    FAIL_ROW("§5.2 RSV1 set", IN(RAW("\xC1\x80" MASK)), P),
    FAIL_ROW("§5.2 RSV2 set", IN(RAW("\xA2\x80" MASK)), P),
    FAIL_ROW("§5.2 RSV3 set on ping", IN(RAW("\x99\x80" MASK)), P),
    FAIL_ROW("§5.2 reserved opcode 0x3", IN(RAW("\x83\x80" MASK)), P),
    FAIL_ROW("§5.2 reserved opcode 0x7", IN(RAW("\x87\x80" MASK)), P),
    FAIL_ROW("§5.2 reserved opcode 0xB", IN(RAW("\x8B\x80" MASK)), P),
    FAIL_ROW("§5.2 reserved opcode 0xF", IN(RAW("\x8F\x80" MASK)), P),
    FAIL_ROW("§5.5 ping of 126 bytes (header only)",
             IN(RAW("\x89\xFE\x00\x7E" MASK)), P),
    FAIL_ROW("§5.5 close of 126 bytes (header only)",
             IN(RAW("\x88\xFE\x00\x7E" MASK)), P),
    FAIL_ROW("§5.5 fragmented ping", IN(RAW("\x09\x81" MASK "x")), P),
    FAIL_ROW("§5.5 fragmented close", IN(RAW("\x08\x82" MASK "\x03\xE8")), P),
    FAIL_ROW("§5.2 16-bit length for 5 bytes (not shortest)",
             IN(RAW("\x82\xFE\x00\x05" MASK "abcde")), P),
    FAIL_ROW("§5.2 64-bit length for 200 bytes (not shortest)",
             IN(RAW("\x82\xFF\x00\x00\x00\x00\x00\x00\x00\xC8" MASK)), P),
    FAIL_ROW("§5.2 64-bit length with the top bit set (header only)",
             IN(RAW("\x82\xFF\x80\x00\x00\x00\x00\x00\x00\x01" MASK)), P),

    /* §5.4 fragment order: 1002. */
    FAIL_ROW("§5.4 continuation without a start", IN(F(true, WS_OP_CONT, "x")),
             P),
    {.label = "§5.4 continuation after a finished message",
     .in = IN(F(true, WS_OP_TEXT, "a"), F(true, WS_OP_CONT, "b")),
     .ev = EVS(XMSG(WS_OP_TEXT, "a")),
     .out = OUTS(OUTFAIL(WS_CLOSE_PROTOCOL_ERROR)),
     .state = WS_SESSION_FAILED},
    FAIL_ROW("§5.4 text inside a fragmented text",
             IN(F(false, WS_OP_TEXT, "a"), F(true, WS_OP_TEXT, "b")), P),
    FAIL_ROW("§5.4 binary inside a fragmented text",
             IN(F(false, WS_OP_TEXT, "a"), F(false, WS_OP_BINARY, "b")), P),

    /* §8.1 invalid UTF-8: 1007. */
    FAIL_ROW("§8.1 overlong C0 80 in one frame",
             IN(F(true, WS_OP_TEXT, "ab\xC0\x80")), U),
    FAIL_ROW("§8.1 surrogate ED A0 80 in one frame",
             IN(F(true, WS_OP_TEXT, "\xED\xA0\x80")), U),
    FAIL_ROW("§8.1 0xFF in one frame", IN(F(true, WS_OP_TEXT, "\xFF")), U),
    FAIL_ROW("§8.1 past U+10FFFF (F4 90 80 80)",
             IN(F(true, WS_OP_TEXT, "\xF4\x90\x80\x80")), U),
    FAIL_ROW("§8.1 bad byte in a later fragment",
             IN(F(false, WS_OP_TEXT, KOSME), F(false, WS_OP_CONT, "\xCE"),
                F(true, WS_OP_CONT, "A")),
             U),
    FAIL_ROW("§8.1 bad byte in a non-final fragment, nothing after",
             IN(F(false, WS_OP_TEXT, "ab\xF0\x9F"), F(false, WS_OP_CONT, "(")),
             U),
    FAIL_ROW("§8.1 single-frame text ends mid-sequence",
             IN(F(true, WS_OP_TEXT, "ab\xCE")), U),
    FAIL_ROW("§8.1 fragmented text ends mid-sequence at FIN",
             IN(F(false, WS_OP_TEXT, "a"), F(true, WS_OP_CONT, "\xE1\xBD")), U),

    /* §5.5.1 and §7.4 close payloads. */
    FAIL_ROW("§5.5.1 close with a 1-byte payload",
             IN(F(true, WS_OP_CLOSE, "\x03")), P),
    FAIL_ROW("§7.4 close code 0", IN(F(true, WS_OP_CLOSE, "\x00\x00")), P),
    FAIL_ROW("§7.4 close code 999", IN(F(true, WS_OP_CLOSE, "\x03\xE7")), P),
    FAIL_ROW("§7.4 close code 1004", IN(F(true, WS_OP_CLOSE, "\x03\xEC")), P),
    FAIL_ROW("§7.4 close code 1005", IN(F(true, WS_OP_CLOSE, "\x03\xED")), P),
    FAIL_ROW("§7.4 close code 1006", IN(F(true, WS_OP_CLOSE, "\x03\xEE")), P),
    FAIL_ROW("§7.4 close code 1015", IN(F(true, WS_OP_CLOSE, "\x03\xF7")), P),
    FAIL_ROW("§7.4 close code 2999", IN(F(true, WS_OP_CLOSE, "\x0B\xB7")), P),
    FAIL_ROW("§7.4 close code 5000", IN(F(true, WS_OP_CLOSE, "\x13\x88")), P),
    FAIL_ROW("§7.4 close code 65535", IN(F(true, WS_OP_CLOSE, "\xFF\xFF")), P),
    FAIL_ROW("§5.5.1 close reason not UTF-8",
             IN(F(true, WS_OP_CLOSE, "\x03\xE8ok\xC0\x80")), U),

    /* Limits: 1009, decided from the header before any payload. */
    FAIL_ROW("64-bit length of 4 GiB over max_frame (header only)",
             IN(RAW("\x82\xFF\x00\x00\x00\x01\x00\x00\x00\x00" MASK)), T),
    {.label = "continuation over max_frame (header only)",
     .in = IN(F(false, WS_OP_BINARY, "a"), RAW("\x80\xFE\x03\xE9" MASK)),
     .lim = &lim_frame1000,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},
    {.label = "frame over max_frame (header only)",
     .in = IN(RAW("\x82\xFE\x03\xE9" MASK)),
     .lim = &lim_frame1000,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},
    {.label = "message over max_message in the second fragment header",
     .in = IN(FB(false, WS_OP_BINARY, big, 600), RAW("\x80\xFE\x01\x91" MASK)),
     .lim = &lim_msg1000,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},
    {.label = "single frame over max_message (header only)",
     .in = IN(RAW("\x82\xFE\x02\x59" MASK)),
     .lim = &lim_msg600_frame_big,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},
    {.label = "fragments over max_message by one byte",
     .in =
         IN(FB(false, WS_OP_BINARY, big, 300), FB(true, WS_OP_CONT, big, 301)),
     .lim = &lim_msg600_frame_big,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},
    {.label = "too many fragments",
     .in = IN(F(false, WS_OP_BINARY, "a"), F(false, WS_OP_CONT, "b"),
              F(false, WS_OP_CONT, "c"), F(true, WS_OP_CONT, "d")),
     .lim = &lim_frag3,
     .ev = no_events,
     .out = OUTS(OUTFAIL(T)),
     .state = WS_SESSION_FAILED},

    /* What came before a failure was delivered; what follows is not. */
    {.label = "message, then a failure, then more frames",
     .in = IN(F(true, WS_OP_TEXT, "Hello"), F(true, WS_OP_CONT, "x"),
              F(true, WS_OP_TEXT, "after"), F(true, WS_OP_PING, "p")),
     .ev = EVS(XMSG(WS_OP_TEXT, "Hello")),
     .out = OUTS(OUTFAIL(P)),
     .state = WS_SESSION_FAILED},

    /* §7 closing handshake. */
    {.label = "§7.1.2 peer close 1000 + reason: event, echo, DONE",
     .in = IN(F(true, WS_OP_CLOSE,
                "\x03\xE8"
                "bye")),
     .ev = EVS(XCLOSE(1000, "bye")),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE8")),
     .state = WS_SESSION_DONE},
    {.label = "§7.1.5 empty close: event 1005, empty close echoed",
     .in = IN(F(true, WS_OP_CLOSE, "")),
     .ev = EVS(XCLOSE(1005, "")),
     .out = OUTS(OUT(WS_OP_CLOSE, "")),
     .state = WS_SESSION_DONE},
    {.label = "§7.4.2 close code 4000 with a UTF-8 reason",
     .in = IN(F(true, WS_OP_CLOSE, "\x0F\xA0" KOSME)),
     .ev = EVS(XCLOSE(4000, KOSME)),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x0F\xA0")),
     .state = WS_SESSION_DONE},
    {.label = "§7.4.2 close code 4999 echoed",
     .in = IN(F(true, WS_OP_CLOSE, "\x13\x87")),
     .ev = EVS(XCLOSE(4999, "")),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x13\x87")),
     .state = WS_SESSION_DONE},
    {.label = "peer close inside a fragmented message",
     .in = IN(F(false, WS_OP_TEXT, "Hel"), F(true, WS_OP_CLOSE, "\x03\xE9")),
     .ev = EVS(XCLOSE(1001, "")),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE9")),
     .state = WS_SESSION_DONE},
    {.label = "frames after the peer's close are not consumed",
     .in = IN(F(true, WS_OP_TEXT, "a"), F(true, WS_OP_CLOSE, "\x03\xE8"),
              F(true, WS_OP_TEXT, "b"), F(true, WS_OP_PING, "p"),
              F(true, WS_OP_CLOSE, "\x03\xE8")),
     .ev = EVS(XMSG(WS_OP_TEXT, "a"), XCLOSE(1000, "")),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE8")),
     .state = WS_SESSION_DONE},
    {.label = "§7.1.2 after our close: data dropped, peer close ends it",
     .in = IN(F(true, WS_OP_TEXT, "dropped"), F(false, WS_OP_BINARY, "x"),
              F(true, WS_OP_CONT, "y"),
              F(true, WS_OP_CLOSE,
                "\x03\xE8"
                "ok")),
     .pre_close = true,
     .ev = EVS(XCLOSE(1000, "ok")),
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE8"
                                  "bye")),
     .state = WS_SESSION_DONE},
    {.label = "after our close: protocol error sends no second close",
     .in = IN(F(true, WS_OP_CONT, "x")),
     .pre_close = true,
     .ev = no_events,
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE8"
                                  "bye")),
     .state = WS_SESSION_FAILED},
    {.label = "after our close: text dropped, still CLOSE_SENT",
     .in = IN(F(true, WS_OP_TEXT, "x")),
     .pre_close = true,
     .ev = no_events,
     .out = OUTS(OUT(WS_OP_CLOSE, "\x03\xE8"
                                  "bye")),
     .state = WS_SESSION_CLOSE_SENT},
};

#undef P
#undef U
#undef T

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < BIG_LEN; i++) {
        big[i] = (uint8_t)(i * 7u + (i >> 8) * 13u + 1u);
        ascii[i] = (uint8_t)(' ' + i % 95u);
    }
    return 0;
}

int main(void)
{
    static struct CMUnitTest row_tests[ARRAY_LEN(rows)];
    const struct CMUnitTest api_tests[] = {
        cmocka_unit_test(test_builder_rfc_hello),
        cmocka_unit_test_setup_teardown(test_need_whole_frame, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_need_large_frame_in_pieces,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_frame_begin_rest, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_frame_begin_checks, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_utf8_fail_fast_fragment, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_utf8_fail_fast_mid_frame, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_twice, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_invalid, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_after_done, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_frames, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_errors, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_after_fail, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_pieces, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_utf8_cut, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_parts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_output_limit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_ping_flood, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fail_output_full, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_finished_consumes_nothing,
                                        fx_setup, fx_teardown),
    };
    int failed = 0;

    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        row_tests[i] = (struct CMUnitTest){
            .name = rows[i].label,
            .test_func = test_row,
            .setup_func = row_setup,
            .teardown_func = row_teardown,
            .initial_state = (void *)(uintptr_t)&rows[i],
        };
    }
    failed += _cmocka_run_group_tests("session rows", row_tests,
                                      ARRAY_LEN(row_tests), group_setup, NULL);
    failed += cmocka_run_group_tests_name("session api", api_tests, group_setup,
                                          NULL);
    return failed != 0;
}
