/*
 * test_frame.c - unit tests for ws/frame.c: the RFC 6455 §5.7 examples,
 * every length boundary through writer and parser, every WS_EPROTO cause
 * at the byte where it becomes visible, the mask against a bytewise
 * reference, and close payloads for every code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/ws.h"

#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

/* Copy in[0..len) into an allocation of exactly len bytes. */
static uint8_t *exact_copy(const uint8_t *in, size_t len)
{
    uint8_t *p = malloc(len);

    if (len > 0) {
        assert_non_null(p);
        memcpy(p, in, len);
    }
    return p;
}

/* Parse in[0..n) from an exact-size copy, so ASan sees any over-read. */
static int parse_copy(const uint8_t *in, size_t n, enum ws_frame_role role,
                      struct ws_frame_header *h)
{
    uint8_t *p = exact_copy(in, n);
    int rc = ws_frame_header_parse(p, n, role, h);

    free(p);
    return rc;
}

/* A frame that must parse: its bytes and the fields it must give. */
struct frame_row {
    const char *label;
    const uint8_t *in;
    size_t len; /* header plus whatever payload follows */
    enum ws_frame_role role;
    size_t header_len;
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    const char *payload; /* the unmasked payload when it follows, or NULL */
};

static const struct frame_row examples[] = {
    {"RFC 6455 §5.7 unmasked text Hello",
     BYTES("\x81\x05Hello"),
     WS_FRAME_FROM_SERVER,
     2,
     true,
     WS_OP_TEXT,
     false,
     {0},
     5,
     "Hello"},
    {"RFC 6455 §5.7 masked text Hello",
     BYTES("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
     WS_FRAME_FROM_CLIENT,
     6,
     true,
     WS_OP_TEXT,
     true,
     {0x37, 0xfa, 0x21, 0x3d},
     5,
     "Hello"},
    {"RFC 6455 §5.7 fragmented Hel",
     BYTES("\x01\x03Hel"),
     WS_FRAME_FROM_SERVER,
     2,
     false,
     WS_OP_TEXT,
     false,
     {0},
     3,
     "Hel"},
    {"RFC 6455 §5.7 fragmented lo",
     BYTES("\x80\x02lo"),
     WS_FRAME_FROM_SERVER,
     2,
     true,
     WS_OP_CONT,
     false,
     {0},
     2,
     "lo"},
    {"RFC 6455 §5.7 unmasked ping",
     BYTES("\x89\x05Hello"),
     WS_FRAME_FROM_SERVER,
     2,
     true,
     WS_OP_PING,
     false,
     {0},
     5,
     "Hello"},
    {"RFC 6455 §5.7 masked pong",
     BYTES("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
     WS_FRAME_FROM_CLIENT,
     6,
     true,
     WS_OP_PONG,
     true,
     {0x37, 0xfa, 0x21, 0x3d},
     5,
     "Hello"},
    {"RFC 6455 §5.7 256 bytes binary",
     BYTES("\x82\x7E\x01\x00"),
     WS_FRAME_FROM_SERVER,
     4,
     true,
     WS_OP_BINARY,
     false,
     {0},
     256,
     NULL},
    {"RFC 6455 §5.7 64KiB binary",
     BYTES("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00"),
     WS_FRAME_FROM_SERVER,
     10,
     true,
     WS_OP_BINARY,
     false,
     {0},
     65536,
     NULL},
    {"masked close, empty",
     BYTES("\x88\x80\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT,
     6,
     true,
     WS_OP_CLOSE,
     true,
     {0x01, 0x02, 0x03, 0x04},
     0,
     ""},
    {"masked 16-bit 126",
     BYTES("\x02\xFE\x00\x7E\xAA\xBB\xCC\xDD"),
     WS_FRAME_FROM_CLIENT,
     8,
     false,
     WS_OP_BINARY,
     true,
     {0xAA, 0xBB, 0xCC, 0xDD},
     126,
     NULL},
    {"masked 64-bit 2^63-1",
     BYTES("\x82\xFF\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT,
     14,
     true,
     WS_OP_BINARY,
     true,
     {0x01, 0x02, 0x03, 0x04},
     INT64_MAX,
     NULL},
};

/* A header that must fail: WS_EAGAIN before byte at, WS_EPROTO from it. */
struct eproto_row {
    const char *label;
    const uint8_t *in;
    size_t len;
    enum ws_frame_role role;
    size_t at;
};

static const struct eproto_row eproto_rows[] = {
    {"§5.2 RSV1", BYTES("\xC1\x05Hello"), WS_FRAME_FROM_SERVER, 1},
    {"§5.2 RSV2", BYTES("\xA1\x05Hello"), WS_FRAME_FROM_SERVER, 1},
    {"§5.2 RSV3", BYTES("\x91\x05Hello"), WS_FRAME_FROM_SERVER, 1},
    {"§5.2 RSV1 on a masked continuation", BYTES("\x40\x80\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT, 1},
    {"§5.2 RSV on a control frame", BYTES("\xF9\x00"), WS_FRAME_FROM_SERVER, 1},
    {"§5.5 close not FIN", BYTES("\x08\x00"), WS_FRAME_FROM_SERVER, 1},
    {"§5.5 ping not FIN", BYTES("\x09\x80\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT, 1},
    {"§5.5 pong not FIN", BYTES("\x0A\x00"), WS_FRAME_FROM_SERVER, 1},
    {"§5.5 close length 126", BYTES("\x88\x7E\x00\x7E"), WS_FRAME_FROM_SERVER,
     2},
    {"§5.5 ping length 127", BYTES("\x89\x7F\x00\x00\x00\x00\x00\x01\x00\x00"),
     WS_FRAME_FROM_SERVER, 2},
    {"§5.5 masked pong length 126", BYTES("\x8A\xFE\x00\x7E\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT, 2},
    {"§5.2 16-bit length 0", BYTES("\x82\x7E\x00\x00"), WS_FRAME_FROM_SERVER,
     4},
    {"§5.2 16-bit length 125", BYTES("\x82\x7E\x00\x7D"), WS_FRAME_FROM_SERVER,
     4},
    {"§5.2 masked 16-bit length 125", BYTES("\x82\xFE\x00\x7D\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT, 4},
    {"§5.2 64-bit length 0", BYTES("\x82\x7F\x00\x00\x00\x00\x00\x00\x00\x00"),
     WS_FRAME_FROM_SERVER, 10},
    {"§5.2 64-bit length 125",
     BYTES("\x82\x7F\x00\x00\x00\x00\x00\x00\x00\x7D"), WS_FRAME_FROM_SERVER,
     10},
    {"§5.2 64-bit length 65535",
     BYTES("\x82\x7F\x00\x00\x00\x00\x00\x00\xFF\xFF"), WS_FRAME_FROM_SERVER,
     10},
    {"§5.2 masked 64-bit length 65535",
     BYTES("\x82\xFF\x00\x00\x00\x00\x00\x00\xFF\xFF\x01\x02\x03\x04"),
     WS_FRAME_FROM_CLIENT, 10},
    {"§5.2 64-bit top bit", BYTES("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00"),
     WS_FRAME_FROM_SERVER, 3},
    {"§5.2 64-bit all ones", BYTES("\x82\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"),
     WS_FRAME_FROM_SERVER, 3},
    {"§5.1 unmasked client frame", BYTES("\x81\x05Hello"), WS_FRAME_FROM_CLIENT,
     2},
    {"§5.1 masked server frame",
     BYTES("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
     WS_FRAME_FROM_SERVER, 2},
};

/* Fail with the row's label unless h holds the row's fields. */
static void expect_fields(const struct frame_row *w,
                          const struct ws_frame_header *h)
{
    if (h->fin != w->fin || h->rsv != 0 || h->opcode != w->opcode ||
        h->masked != w->masked || h->payload_len != w->payload_len ||
        h->header_len != w->header_len ||
        (w->masked && memcmp(h->mask, w->mask, 4) != 0))
        fail_msg("%s: wrong fields", w->label);
}

/* Parse w whole, with every shorter prefix, and unmask its payload. */
static void check_parse(const struct frame_row *w)
{
    struct ws_frame_header h;

    for (size_t n = 0; n < w->header_len; n++) {
        int rc = parse_copy(w->in, n, w->role, &h);
        if (rc != WS_EAGAIN)
            fail_msg("%s: %zu bytes gave %d", w->label, n, rc);
    }
    for (size_t n = w->header_len; n <= w->len; n++) {
        int rc = parse_copy(w->in, n, w->role, &h);
        if (rc != (int)w->header_len)
            fail_msg("%s: %zu bytes gave %d", w->label, n, rc);
        expect_fields(w, &h);
    }
}

/* Unmask the payload of w in two chunks, cut at every offset. */
static void check_payload(const struct frame_row *w)
{
    size_t plen = w->len - w->header_len;

    if (w->payload == NULL)
        return;
    assert_int_equal(plen, strlen(w->payload));
    for (size_t cut = 0; cut <= plen; cut++) {
        uint8_t *p = exact_copy(w->in + w->header_len, plen);

        if (w->masked) {
            ws_mask(p, cut, w->mask, 0);
            ws_mask(p + cut, plen - cut, w->mask, cut);
        }
        if (plen > 0 && memcmp(p, w->payload, plen) != 0)
            fail_msg("%s: payload cut at %zu differs", w->label, cut);
        free(p);
    }
}

/* Write the header of w and compare it with the example's bytes. */
static void check_write(const struct frame_row *w)
{
    uint8_t out[WS_FRAME_MAX_HEADER];
    ssize_t n =
        ws_frame_header_write(out, sizeof out, w->fin, w->opcode,
                              w->payload_len, w->masked ? w->mask : NULL);

    if (n != (ssize_t)w->header_len || memcmp(out, w->in, w->header_len))
        fail_msg("%s: writer gave %zd bytes, not the example", w->label, n);
    assert_int_equal(ws_frame_header_size(w->payload_len, w->masked),
                     w->header_len);
}

/* The bytewise definition of RFC 6455 §5.3. */
static void ref_mask(uint8_t *data, size_t len, const uint8_t key[4],
                     uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= key[(offset + i) % 4];
}

/* Mask len bytes at the given pointer alignment and key phase, and
   compare with the bytewise definition. */
static void check_mask(const uint8_t key[4], uint64_t off, size_t align,
                       size_t len)
{
    /* The buffer ends where the data ends, so ASan guards the byte after
       it. */
    uint8_t want[67], *buf = malloc(align + len);

    assert_true(len <= sizeof want);
    if (align + len > 0)
        assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        want[i] = buf[align + i] = (uint8_t)(i * 7 + 1);
    ref_mask(want, len, key, off);
    ws_mask(buf == NULL ? NULL : buf + align, len, key, off);
    if (len > 0 && memcmp(buf + align, want, len) != 0)
        fail_msg("offset %llu align %zu len %zu", (unsigned long long)off,
                 align, len);
    free(buf);
}

/* The length byte and extension size RFC 6455 §5.2 calls for. */
static size_t expected_ext(uint64_t len, uint8_t *len7)
{
    if (len < 126) {
        *len7 = (uint8_t)len;
        return 0;
    }
    *len7 = len <= 0xFFFF ? 126 : 127;
    return len <= 0xFFFF ? 2 : 8;
}

/* Write one header, check its bytes, then parse it back whole and in
   every prefix. */
static void check_round_trip(bool fin, uint8_t opcode, uint64_t len,
                             bool masked)
{
    static const uint8_t key[4] = {0xDE, 0xAD, 0xBE, 0xEF};
    size_t size = ws_frame_header_size(len, masked);
    uint8_t *out = malloc(size), len7;
    size_t ext = expected_ext(len, &len7);
    struct ws_frame_header h;
    enum ws_frame_role role =
        masked ? WS_FRAME_FROM_CLIENT : WS_FRAME_FROM_SERVER;

    assert_non_null(out);
    assert_int_equal(size, 2 + ext + (masked ? 4 : 0));
    assert_int_equal(
        ws_frame_header_write(out, size, fin, opcode, len, masked ? key : NULL),
        (ssize_t)size);
    assert_int_equal(out[0], (fin ? 0x80 : 0) | opcode);
    assert_int_equal(out[1], (masked ? 0x80 : 0) | len7);
    for (size_t n = 0; n < size; n++)
        assert_int_equal(parse_copy(out, n, role, &h), WS_EAGAIN);
    assert_int_equal(parse_copy(out, size, role, &h), (int)size);
    assert_int_equal(h.fin, fin);
    assert_int_equal(h.rsv, 0);
    assert_int_equal(h.opcode, opcode);
    assert_int_equal(h.masked, masked);
    assert_true(h.payload_len == len);
    assert_int_equal(h.header_len, size);
    if (masked)
        assert_memory_equal(h.mask, key, 4);
    free(out);
}

/* The close-code table, written as the exclusions of RFC 6455 §7.4. */
static bool expected_code_valid(unsigned code)
{
    if (code < 1000 || code >= 5000) /* §7.4.2: unused, or undefined */
        return false;
    if (code == 1004 || code == 1005 || code == 1006 || code == 1015)
        return false; /* §7.4.1: reserved, or never sent on the wire */
    if (code >= 1016 && code <= 2999) /* §7.4.2: unassigned protocol codes */
        return false;
    return true;
}

static void test_examples_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
        check_parse(&examples[i]);
}

static void test_examples_payload(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
        check_payload(&examples[i]);
}

static void test_examples_write(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
        check_write(&examples[i]);
}

/* RFC 6455 §5.2: each length boundary, through the writer and back. No
   payload is ever allocated. */
static void test_length_boundaries(void **state)
{
    static const uint64_t lens[] = {0,
                                    1,
                                    125,
                                    126,
                                    127,
                                    65535,
                                    65536,
                                    UINT64_C(0xFFFFFFFF),
                                    UINT64_C(0x100000001),
                                    (uint64_t)INT64_MAX};
    static const uint8_t ops[] = {WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY};

    (void)state;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t o = 0; o < sizeof ops; o++)
            for (int bits = 0; bits < 4; bits++)
                check_round_trip(bits & 1, ops[o], lens[i], bits & 2);
    for (uint8_t op = WS_OP_CLOSE; op <= WS_OP_PONG; op++) {
        check_round_trip(true, op, 0, false);
        check_round_trip(true, op, 125, true);
    }
}

/* Every reserved opcode, RFC 6455 §5.2, fails on the first byte. */
static void test_reserved_opcodes(void **state)
{
    struct ws_frame_header h;

    (void)state;
    for (uint8_t op = 0; op <= 0xF; op++) {
        bool reserved = (op >= 0x3 && op <= 0x7) || op >= 0xB;
        uint8_t in[6] = {(uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4};
        int rc1 = parse_copy(in, 1, WS_FRAME_FROM_CLIENT, &h);
        int rc6 = parse_copy(in, 6, WS_FRAME_FROM_CLIENT, &h);

        if (reserved && (rc1 != WS_EPROTO || rc6 != WS_EPROTO))
            fail_msg("opcode 0x%X accepted", op);
        if (!reserved && (rc1 != WS_EAGAIN || rc6 != 6))
            fail_msg("opcode 0x%X rejected", op);
    }
}

/* Every WS_EPROTO cause in frame.h, reported at the first byte that
   shows it and for every longer prefix. */
static void test_eproto(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof eproto_rows / sizeof eproto_rows[0]; i++) {
        const struct eproto_row *w = &eproto_rows[i];
        struct ws_frame_header h;

        for (size_t n = 0; n <= w->len; n++) {
            int want = n < w->at ? WS_EAGAIN : WS_EPROTO;
            int rc = parse_copy(w->in, n, w->role, &h);
            if (rc != want)
                fail_msg("%s: %zu bytes gave %d, want %d", w->label, n, rc,
                         want);
        }
    }
}

/* ws_mask() equals the bytewise definition for every key phase,
   pointer alignment and length, and chunks compose. */
static void test_mask(void **state)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    static const uint64_t bases[] = {0, UINT64_C(0x100000000),
                                     UINT64_C(0xFFFFFFFFFFFFFFF8)};

    (void)state;
    for (size_t b = 0; b < 3; b++)
        for (uint64_t k = 0; k < 8; k++)
            for (size_t align = 0; align < 8; align++)
                for (size_t len = 0; len <= 67; len++)
                    check_mask(key, bases[b] + k, align, len);
}

/* The two ways to unmask: what ws_mask_copy() picks on this CPU, and
   the portable fallback it picks elsewhere. */
typedef void mask_copy_fn(uint8_t *dst, const uint8_t *src, size_t len,
                          const uint8_t key[4], uint64_t offset);
static mask_copy_fn *const mask_impls[] = {ws_mask_copy, ws_mask_copy_portable};

/* Lengths that reach every loop of every implementation: all up to 300
   (the 256-byte rounds, the 64-byte steps, each tail length), then
   around the larger multiples. */
static bool mask_len_wanted(size_t len)
{
    return len <= 300 || (len % 64) < 2 || (len % 64) > 61;
}

/* ws_mask_copy() into another buffer equals the bytewise definition
   for every key phase, source alignment and length, writes nothing past
   len, and leaves the source as it was; for both implementations. */
static void test_mask_copy(void **state)
{
    enum { CAP = 1100 };
    static const uint8_t key[4] = {0x9a, 0x01, 0xee, 0x55};
    uint8_t *src = malloc(CAP), *dst = malloc(CAP), *orig = malloc(CAP);

    (void)state;
    assert_true(src && dst && orig);
    for (size_t i = 0; i < CAP; i++)
        orig[i] = (uint8_t)(i * 37 + 11);
    for (size_t f = 0; f < sizeof mask_impls / sizeof *mask_impls; f++)
        for (uint64_t off = 0; off < 4; off++)
            for (size_t align = 0; align < 4; align++)
                for (size_t len = 0; len + align + 64 <= CAP; len++) {
                    if (!mask_len_wanted(len))
                        continue;
                    memcpy(src, orig, CAP);
                    memset(dst, 0xAA, CAP);
                    mask_impls[f](dst + align, src + align, len, key, off);
                    for (size_t i = 0; i < len; i++)
                        if (dst[align + i] !=
                            (orig[align + i] ^ key[(off + i) & 3u]))
                            fail_msg("impl %zu off %llu align %zu len %zu "
                                     "byte %zu",
                                     f, (unsigned long long)off, align, len, i);
                    for (size_t i = 0; i < CAP; i++)
                        if (i < align || i >= align + len)
                            assert_int_equal(dst[i], 0xAA); /* untouched */
                    assert_memory_equal(src, orig, CAP);
                }
    free(src);
    free(dst);
    free(orig);
}

/* Payloads that end right at a page followed by an inaccessible one, in
   place and copied into another such page: the tails that would reach
   into the next page take their own path, and nothing is read or written
   past the end (it would fault). */
static void test_mask_page_end(void **state)
{
    static const uint8_t key[4] = {0x55, 0xc3, 0x0f, 0xa8};
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 4, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t want[300];

    (void)state;
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    assert_int_equal(mprotect(map + 3 * page, (size_t)page, PROT_NONE), 0);
    for (size_t f = 0; f < sizeof mask_impls / sizeof *mask_impls; f++)
        for (size_t len = 0; len <= sizeof want; len++)
            for (uint64_t off = 0; off < 4; off++) {
                uint8_t *src = map + page - len, *dst = map + 3 * page - len;

                for (size_t i = 0; i < len; i++)
                    want[i] = src[i] = (uint8_t)(i * 13 + len);
                ref_mask(want, len, key, off);
                mask_impls[f](dst, src, len, key, off);
                assert_memory_equal(dst, want, len);
                mask_impls[f](src, src, len, key, off);
                assert_memory_equal(src, want, len);
            }
    munmap(map, (size_t)page * 4);
}

/* In place (dst == src) over long payloads, for both implementations:
   each block is read before it is written. */
static void test_mask_in_place_long(void **state)
{
    enum { CAP = 4096 + 67 };
    static const uint8_t key[4] = {0x01, 0x80, 0xfe, 0x7f};
    uint8_t *buf = malloc(CAP), *want = malloc(CAP);

    (void)state;
    assert_true(buf && want);
    for (size_t f = 0; f < sizeof mask_impls / sizeof *mask_impls; f++)
        for (size_t len = CAP - 67; len <= CAP; len++) {
            for (size_t i = 0; i < len; i++)
                want[i] = buf[i] = (uint8_t)(i * 11 + 5);
            ref_mask(want, len, key, 3);
            mask_impls[f](buf, buf, len, key, 3);
            assert_memory_equal(buf, want, len);
        }
    free(buf);
    free(want);
}

/* Masking a payload in two chunks with the running offset equals masking
   it at once. */
static void test_mask_chunks(void **state)
{
    static const uint8_t key[4] = {1, 2, 4, 8};
    uint8_t whole[67], split[67];

    (void)state;
    for (size_t cut = 0; cut <= sizeof whole; cut++) {
        for (size_t i = 0; i < sizeof whole; i++)
            whole[i] = split[i] = (uint8_t)(255 - i);
        ws_mask(whole, sizeof whole, key, 5);
        ws_mask(split, cut, key, 5);
        ws_mask(split + cut, sizeof split - cut, key, 5 + cut);
        assert_memory_equal(whole, split, sizeof whole);
        ws_mask(whole, sizeof whole, key, 5);
        for (size_t i = 0; i < sizeof whole; i++)
            assert_int_equal(whole[i], (uint8_t)(255 - i));
    }
}

/* ws_frame_is_control() and ws_frame_header_size() on their own. */
static void test_control_and_size(void **state)
{
    (void)state;
    for (unsigned op = 0; op <= 0x1F; op++)
        assert_int_equal(ws_frame_is_control((uint8_t)op),
                         op >= 0x8 && op <= 0xF);
    assert_int_equal(ws_frame_header_size(0, false), 2);
    assert_int_equal(ws_frame_header_size(125, false), 2);
    assert_int_equal(ws_frame_header_size(126, false), 4);
    assert_int_equal(ws_frame_header_size(65535, false), 4);
    assert_int_equal(ws_frame_header_size(65536, false), 10);
    assert_int_equal(ws_frame_header_size(UINT64_MAX, false), 10);
    assert_int_equal(ws_frame_header_size(0, true), 6);
    assert_int_equal(ws_frame_header_size(65536, true), 14);
}

/* WS_ENOSPC for every capacity short of the header, with nothing
   written. */
static void test_header_write_enospc(void **state)
{
    static const uint64_t lens[] = {0,     125,   126,
                                    65535, 65536, UINT64_C(0x100000001)};
    static const uint8_t key[4] = {9, 8, 7, 6};

    (void)state;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int m = 0; m < 2; m++) {
            size_t size = ws_frame_header_size(lens[i], m);
            for (size_t cap = 0; cap < size; cap++) {
                uint8_t out[WS_FRAME_MAX_HEADER], sentinel[sizeof out];

                memset(out, 0xA5, sizeof out);
                memset(sentinel, 0xA5, sizeof sentinel);
                assert_int_equal(ws_frame_header_write(out, cap, true,
                                                       WS_OP_BINARY, lens[i],
                                                       m ? key : NULL),
                                 WS_ENOSPC);
                assert_memory_equal(out, sentinel, sizeof out);
            }
        }
    }
    assert_int_equal(ws_frame_header_write(NULL, 0, true, WS_OP_TEXT, 0, NULL),
                     WS_ENOSPC);
}

/* WS_EINVAL: opcode above 0xF, control frames that break §5.5, and a
   length §5.2 cannot carry; checked before the capacity. */
static void test_header_write_einval(void **state)
{
    uint8_t out[WS_FRAME_MAX_HEADER];

    (void)state;
    assert_int_equal(
        ws_frame_header_write(out, sizeof out, true, 0x10, 0, NULL), WS_EINVAL);
    assert_int_equal(
        ws_frame_header_write(out, sizeof out, true, 0xFF, 0, NULL), WS_EINVAL);
    assert_int_equal(ws_frame_header_write(NULL, 0, true, 0x10, 0, NULL),
                     WS_EINVAL);
    for (uint8_t op = WS_OP_CLOSE; op <= 0xF; op++) {
        assert_int_equal(
            ws_frame_header_write(out, sizeof out, true, op, 126, NULL),
            WS_EINVAL);
        assert_int_equal(
            ws_frame_header_write(out, sizeof out, true, op, 65536, NULL),
            WS_EINVAL);
        assert_int_equal(
            ws_frame_header_write(out, sizeof out, false, op, 0, NULL),
            WS_EINVAL);
    }
    assert_int_equal(ws_frame_header_write(out, sizeof out, true, WS_OP_BINARY,
                                           (uint64_t)INT64_MAX + 1, NULL),
                     WS_EINVAL);
    assert_int_equal(ws_frame_header_write(out, sizeof out, true, WS_OP_BINARY,
                                           UINT64_MAX, NULL),
                     WS_EINVAL);
}

/* RFC 6455 §7.4: spot checks, with Autobahn's case 7.7 (valid) and 7.9
   (invalid) codes. */
static void test_close_code_rows(void **state)
{
    static const struct {
        uint16_t code;
        bool valid;
    } rows[] = {
        {1000, true},  {1001, true},  {1002, true},  {1003, true},
        {1007, true},  {1008, true},  {1009, true},  {1010, true},
        {1011, true},  {1012, true},  {1013, true},  {1014, true},
        {3000, true},  {3999, true},  {4000, true},  {4999, true},
        {0, false},    {999, false},  {1004, false}, {1005, false},
        {1006, false}, {1015, false}, {1016, false}, {1100, false},
        {2000, false}, {2999, false}, {5000, false}, {65535, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (ws_close_code_valid(rows[i].code) != rows[i].valid)
            fail_msg("close code %u", (unsigned)rows[i].code);
}

/* Every 16-bit code through ws_close_code_valid(), the writer and the
   parser. */
static void test_close_every_code(void **state)
{
    (void)state;
    for (unsigned c = 0; c <= 0xFFFF; c++) {
        bool valid = expected_code_valid(c);
        uint8_t *out = malloc(2), in[2] = {(uint8_t)(c >> 8), (uint8_t)c};
        uint8_t *p = exact_copy(in, 2);
        const uint8_t *reason = NULL;
        size_t reason_len = 99;
        uint16_t code = 0;

        assert_non_null(out);
        out[0] = out[1] = 0xA5;
        if (ws_close_code_valid((uint16_t)c) != valid)
            fail_msg("ws_close_code_valid(%u)", c);
        assert_int_equal(ws_frame_close_payload(out, 2, (uint16_t)c, NULL, 0),
                         valid ? 2 : WS_EINVAL);
        if (valid)
            assert_memory_equal(out, in, 2);
        else
            assert_true(out[0] == 0xA5 && out[1] == 0xA5);
        assert_int_equal(
            ws_frame_close_parse(p, 2, &code, &reason, &reason_len),
            valid ? 0 : WS_EPROTO);
        if (valid)
            assert_true(code == c && reason == p + 2 && reason_len == 0);
        free(out);
        free(p);
    }
}

/* A close payload to parse and what must come of it. */
struct close_row {
    const char *label;
    const uint8_t *in;
    size_t len;
    int rc;
    uint16_t code;
};

static const struct close_row close_rows[] = {
    {"§7.1.5 empty body gives 1005", BYTES(""), 0, 1005},
    {"§5.5.1 one byte", BYTES("\x03"), WS_EPROTO, 0},
    {"1000 without reason", BYTES("\x03\xE8"), 0, 1000},
    {"1000 ok", BYTES("\x03\xE8ok"), 0, 1000},
    {"4999 UTF-8 reason", BYTES("\x13\x87\xCE\xBA\xE1\xBD\xB9\xCF\x83"), 0,
     4999},
    {"Autobahn 7.5.1 invalid UTF-8 reason",
     BYTES("\x03\xE8\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
           "\x65\x64\x69\x74\x65\x64"),
     WS_EUTF8, 0},
    {"reason cut inside a character", BYTES("\x03\xE8\xCE"), WS_EUTF8, 0},
    {"reason 0xFF", BYTES("\x03\xE9\xFF"), WS_EUTF8, 0},
    {"§7.4.1 1005 on the wire", BYTES("\x03\xED"), WS_EPROTO, 0},
    {"§7.4.1 1004 beats a bad reason", BYTES("\x03\xEC\xFF"), WS_EPROTO, 0},
    {"§7.4.2 code 0",
     BYTES("\x00\x00"
           "x"),
     WS_EPROTO, 0},
};

/* The close payload rows, each from an exact-size copy. */
static void test_close_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof close_rows / sizeof close_rows[0]; i++) {
        const struct close_row *w = &close_rows[i];
        uint8_t *p = exact_copy(w->in, w->len);
        const uint8_t *reason = NULL;
        size_t reason_len = 99;
        uint16_t code = 0;
        int rc = ws_frame_close_parse(p, w->len, &code, &reason, &reason_len);

        if (rc != w->rc)
            fail_msg("%s: got %d", w->label, rc);
        if (rc == 0 &&
            (code != w->code || reason_len != (w->len > 2 ? w->len - 2 : 0) ||
             (w->len >= 2 && reason != p + 2)))
            fail_msg("%s: wrong code or reason", w->label);
        free(p);
    }
}

/* RFC 6455 §5.5: a close body is at most 125 bytes. */
static void test_close_parse_lengths(void **state)
{
    uint8_t body[126];
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;

    (void)state;
    memset(body, 'r', sizeof body);
    body[0] = 0x03;
    body[1] = 0xE8;
    assert_int_equal(
        ws_frame_close_parse(body, 125, &code, &reason, &reason_len), 0);
    assert_int_equal(reason_len, 123);
    assert_int_equal(
        ws_frame_close_parse(body, 126, &code, &reason, &reason_len),
        WS_EPROTO);
    assert_int_equal(ws_frame_close_parse(NULL, 0, &code, &reason, &reason_len),
                     0);
    assert_int_equal(code, 1005);
    assert_int_equal(reason_len, 0);
}

/* ws_frame_close_payload(): round trip, WS_ENOSPC with nothing written,
   and each WS_EINVAL cause. */
static void test_close_payload_write(void **state)
{
    uint8_t out[126], sentinel[126], reason[124];
    const uint8_t *got;
    size_t got_len;
    uint16_t code;

    (void)state;
    memset(reason, 'r', sizeof reason);
    assert_int_equal(ws_frame_close_payload(out, 5, 1000, BYTES("bye")), 5);
    assert_memory_equal(out, "\x03\xE8\x62\x79\x65", 5);
    assert_int_equal(ws_frame_close_parse(out, 5, &code, &got, &got_len), 0);
    assert_true(code == 1000 && got == out + 2 && got_len == 3);
    for (size_t cap = 0; cap < 5; cap++) {
        memset(out, 0xA5, sizeof out);
        memset(sentinel, 0xA5, sizeof sentinel);
        assert_int_equal(ws_frame_close_payload(out, cap, 1000, BYTES("bye")),
                         WS_ENOSPC);
        assert_memory_equal(out, sentinel, sizeof out);
    }
    assert_int_equal(ws_frame_close_payload(out, sizeof out, 3000, reason, 123),
                     125);
    assert_int_equal(ws_frame_close_payload(out, sizeof out, 3000, reason, 124),
                     WS_EINVAL);
    assert_int_equal(ws_frame_close_payload(out, sizeof out, 1005, NULL, 0),
                     WS_EINVAL);
    assert_int_equal(ws_frame_close_payload(out, sizeof out, 1000, NULL, 3),
                     WS_EINVAL);
    assert_int_equal(
        ws_frame_close_payload(out, sizeof out, 1000, BYTES("\xED\xA0\x80")),
        WS_EINVAL);
    assert_int_equal(
        ws_frame_close_payload(out, sizeof out, 1000, BYTES("ok\xCE")),
        WS_EINVAL);
    assert_int_equal(ws_frame_close_payload(NULL, 0, 1004, NULL, 0), WS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_parse),
        cmocka_unit_test(test_examples_payload),
        cmocka_unit_test(test_examples_write),
        cmocka_unit_test(test_length_boundaries),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_eproto),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_chunks),
        cmocka_unit_test(test_mask_copy),
        cmocka_unit_test(test_mask_in_place_long),
        cmocka_unit_test(test_mask_page_end),
        cmocka_unit_test(test_control_and_size),
        cmocka_unit_test(test_header_write_enospc),
        cmocka_unit_test(test_header_write_einval),
        cmocka_unit_test(test_close_code_rows),
        cmocka_unit_test(test_close_every_code),
        cmocka_unit_test(test_close_parse),
        cmocka_unit_test(test_close_parse_lengths),
        cmocka_unit_test(test_close_payload_write),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
