/*
 * fuzz_frame.c - libFuzzer target for ws/frame.c. The same input bytes are
 * used as: a frame header to parse (both roles, every prefix), parameters
 * for ws_frame_header_write(), a payload to mask in data-derived chunks,
 * and a close payload. Every result is checked against a slow reference
 * written from RFC 6455 §5.2, §5.3, §5.5.1 and §7.4, and parsed headers
 * must re-encode to the same bytes (the shortest length form is the only
 * valid one, so the encoding is canonical).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/ws.h"

#define HDR_MAX 14 /* RFC 6455 §5.2: 2 + 8 length bytes + 4 mask bytes */

/* True for the opcodes RFC 6455 §5.2 defines: 0x0-0x2 and 0x8-0xA. */
static bool ref_opcode_defined(unsigned op)
{
    return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

/* The header length that p[0..2) announces (p holds at least 2 bytes). */
static size_t ref_header_len(const uint8_t *p)
{
    unsigned len7 = p[1] & 0x7Fu;
    size_t n = 2;

    if (len7 == 126)
        n += 2;
    else if (len7 == 127)
        n += 8;
    return n + ((p[1] & 0x80u) ? 4u : 0u);
}

/* Decode a complete header from the §5.2 figure; false when it is
   invalid. p holds at least ref_header_len(p) bytes. */
static bool ref_decode(const uint8_t *p, enum ws_frame_role role,
                       struct ws_frame_header *h)
{
    unsigned len7 = p[1] & 0x7Fu, op = p[0] & 0x0Fu;
    size_t at = 2;
    uint64_t len = len7;

    memset(h, 0, sizeof(*h));
    if (len7 == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        at = 4;
        if (len < 126)
            return false; /* §5.2: minimal encoding */
    } else if (len7 == 127) {
        len = 0;
        for (size_t i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        at = 10;
        if (len >> 63)
            return false; /* §5.2: most significant bit MUST be 0 */
        if (len <= 0xFFFF)
            return false; /* §5.2: minimal encoding */
    }
    if (p[0] & 0x70u)
        return false; /* §5.2: no extension negotiated */
    if (!ref_opcode_defined(op))
        return false;
    if (op >= 0x8 && (!(p[0] & 0x80u) || len > 125))
        return false; /* §5.5 */
    if (((p[1] & 0x80u) != 0) != (role == WS_FRAME_FROM_CLIENT))
        return false; /* §5.1 */
    h->fin = (p[0] & 0x80u) != 0;
    h->opcode = (uint8_t)op;
    h->masked = (p[1] & 0x80u) != 0;
    if (h->masked)
        memcpy(h->mask, p + at, 4);
    h->payload_len = len;
    h->header_len = at + (h->masked ? 4u : 0u);
    return true;
}

/*
 * Can p[0..n) (n < the announced header length) still become a valid
 * header? The missing bytes are filled with the choice that satisfies the
 * most constraints: a second byte with the right mask bit and a zero
 * length, the largest extended length whose top bit is clear.
 */
static bool ref_completable(const uint8_t *p, size_t n, enum ws_frame_role role)
{
    uint8_t full[HDR_MAX];
    struct ws_frame_header h;
    size_t need;

    memset(full, 0xFF, sizeof(full));
    if (n > 0)
        memcpy(full, p, n);
    if (n < 1)
        full[0] = 0x81;
    if (n < 2)
        full[1] = role == WS_FRAME_FROM_CLIENT ? 0x80 : 0x00;
    if (n < 3 && (full[1] & 0x7Fu) == 127)
        full[2] = 0x7F;
    need = ref_header_len(full);
    return n < need && ref_decode(full, role, &h);
}

/* Field by field: the struct has padding. */
static bool same_header(const struct ws_frame_header *a,
                        const struct ws_frame_header *b)
{
    return a->fin == b->fin && a->rsv == b->rsv && a->opcode == b->opcode &&
           a->masked == b->masked &&
           (!a->masked || memcmp(a->mask, b->mask, 4) == 0) &&
           a->payload_len == b->payload_len && a->header_len == b->header_len;
}

/* Parse p[0..n) from an allocation of exactly n bytes. */
static int parse_exact(const uint8_t *p, size_t n, enum ws_frame_role role,
                       struct ws_frame_header *h)
{
    uint8_t *c = fuzz_dup(p, n, 0);
    int rc;

    memset(h, 0xEE, sizeof(*h));
    rc = ws_frame_header_parse(c, n, role, h);
    free(c);
    return rc;
}

/* A valid parsed header re-encodes to its own bytes and parses again. */
static void check_round_trip(const uint8_t *p, int rc,
                             const struct ws_frame_header *h)
{
    uint8_t out[HDR_MAX];
    struct ws_frame_header again;
    ssize_t n;

    FUZZ_CHECK(ws_frame_header_size(h->payload_len, h->masked) == (size_t)rc);
    n = ws_frame_header_write(out, sizeof(out), h->fin, h->opcode,
                              h->payload_len, h->masked ? h->mask : NULL);
    FUZZ_CHECK(n == rc);
    FUZZ_CHECK(memcmp(out, p, (size_t)rc) == 0);
    FUZZ_CHECK(
        parse_exact(out, (size_t)n,
                    h->masked ? WS_FRAME_FROM_CLIENT : WS_FRAME_FROM_SERVER,
                    &again) == rc);
    FUZZ_CHECK(same_header(h, &again));
}

/*
 * Parse every prefix of the input up to HDR_MAX bytes, and the whole
 * input. The outcome is EAGAIN while the header is short, then one fixed
 * answer; it matches the reference once the header is complete, and a
 * prefix of a valid header is never rejected.
 */
static void check_parse(const uint8_t *data, size_t size,
                        enum ws_frame_role role)
{
    struct ws_frame_header h, first, ref;
    int settled = WS_EAGAIN;
    size_t top = size < HDR_MAX ? size : HDR_MAX;

    for (size_t k = 0; k <= top + 1; k++) {
        size_t n = k <= top ? k : size;
        int rc = parse_exact(data, n, role, &h);

        FUZZ_CHECK(rc == WS_EAGAIN || rc == WS_EPROTO ||
                   (rc >= 2 && rc <= HDR_MAX));
        FUZZ_CHECK(rc < 0 || (size_t)rc <= n);
        if (settled != WS_EAGAIN) {
            FUZZ_CHECK(rc == settled);
            FUZZ_CHECK(rc < 0 || same_header(&h, &first));
            continue;
        }
        if (n >= 2 && n >= ref_header_len(data)) {
            if (ref_decode(data, role, &ref)) {
                FUZZ_CHECK(rc == (int)ref.header_len);
                FUZZ_CHECK(same_header(&h, &ref));
                FUZZ_CHECK(h.rsv == 0);
                check_round_trip(data, rc, &h);
            } else {
                FUZZ_CHECK(rc == WS_EPROTO);
            }
        } else if (ref_completable(data, n, role)) {
            FUZZ_CHECK(rc == WS_EAGAIN);
        } else {
            FUZZ_CHECK(rc == WS_EAGAIN || rc == WS_EPROTO);
        }
        settled = rc;
        first = h;
    }
    /* HDR_MAX bytes always decide. */
    FUZZ_CHECK(size < HDR_MAX || settled != WS_EAGAIN);
}

/* Read up to 8 bytes big-endian from p[*at..size), advancing *at. */
static uint64_t take(const uint8_t *p, size_t size, size_t *at, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++, (*at)++)
        v = v << 8 | (*at < size ? p[*at] : 0u);
    return v;
}

/* A payload length near the boundaries of the three length forms. */
static uint64_t pick_length(uint64_t sel, uint64_t raw)
{
    /* The ends of the 7-bit, 16-bit and 63-bit length forms. */
    static const uint64_t edges[] = {0,          1,         125,       126,
                                     127,        0xFFFF,    0x10000,   0x10001,
                                     UINT32_MAX, INT64_MAX, UINT64_MAX};

    switch (sel % 4) {
    case 0:
        return raw % 300;
    case 1:
        return edges[raw % (sizeof(edges) / sizeof(edges[0]))];
    case 2:
        return raw % 0x20000;
    default:
        return raw;
    }
}

/*
 * ws_frame_header_write with parameters from the input: byte 0 holds fin,
 * the mask flag, the length form and whether the opcode may exceed 0xF,
 * byte 1 the opcode, byte 2 the capacity, bytes 3-10 the raw length.
 */
static void check_write(const uint8_t *data, size_t size)
{
    size_t at = 0;
    unsigned b0 = (unsigned)take(data, size, &at, 1);
    unsigned b1 = (unsigned)take(data, size, &at, 1);
    size_t cap = (size_t)(take(data, size, &at, 1) % (HDR_MAX + 3));
    uint64_t len = pick_length(b0 >> 2, take(data, size, &at, 8));
    bool fin = b0 & 1u, masked = (b0 >> 1) & 1u;
    uint8_t opcode = (uint8_t)((b0 & 0x10u) ? b1 : (b1 & 0x0Fu));
    uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 */
    bool invalid = opcode > 0xF || (len >> 63) != 0 ||
                   (opcode >= 0x8 && (!fin || len > 125));
    size_t need = 2 +
                  (len > 0xFFFF ? 8u
                   : len >= 126 ? 2u
                                : 0u) +
                  (masked ? 4u : 0u);
    uint8_t *out = fuzz_dup(NULL, 0, cap);
    uint8_t *canary = fuzz_dup(NULL, 0, cap);
    struct ws_frame_header h;
    ssize_t n;

    n = ws_frame_header_write(out, cap, fin, opcode, len, masked ? key : NULL);
    /* The contract gives no order between the two errors. */
    if (invalid && cap < need)
        FUZZ_CHECK(n == WS_EINVAL || n == WS_ENOSPC);
    else if (invalid)
        FUZZ_CHECK(n == WS_EINVAL);
    else if (cap < need)
        FUZZ_CHECK(n == WS_ENOSPC);
    else
        FUZZ_CHECK(n == (ssize_t)need);
    if (n < 0) {
        /* §2: never a partial frame. */
        FUZZ_CHECK(cap == 0 || memcmp(out, canary, cap) == 0);
    } else {
        int rc = parse_exact(
            out, (size_t)n,
            masked ? WS_FRAME_FROM_CLIENT : WS_FRAME_FROM_SERVER, &h);

        if (!ref_opcode_defined(opcode)) {
            FUZZ_CHECK(rc == WS_EPROTO);
        } else {
            FUZZ_CHECK(rc == n);
            FUZZ_CHECK(h.fin == fin && h.opcode == opcode && h.rsv == 0);
            FUZZ_CHECK(h.masked == masked && h.payload_len == len);
            FUZZ_CHECK(!masked || memcmp(h.mask, key, 4) == 0);
        }
    }
    free(out);
    free(canary);
}

/*
 * RFC 6455 §5.3 masking: the first 4 bytes are the key, the next 8 the
 * payload offset of the first byte, the rest the payload. One call, the
 * byte-wise reference, and data-derived chunks at odd alignments must give
 * the same bytes; masking twice restores the input.
 */
static void check_mask(const uint8_t *data, size_t size)
{
    uint8_t key[4];
    size_t at = 0, n;
    uint64_t offset;
    uint8_t *one, *ref, *chunked;
    struct fuzz_rng rng;

    for (size_t i = 0; i < 4; i++, at++)
        key[i] = at < size ? data[at] : 0;
    offset = take(data, size, &at, 8);
    if ((offset >> 60) != 0xF)
        offset %= 64; /* mostly small offsets, sometimes near 2^64 */
    n = size > at ? size - at : 0;
    one = fuzz_dup(data + (size > at ? at : size), n, 0);
    ref = fuzz_dup(one, n, 0);
    chunked = fuzz_dup(one, n, 0);

    for (size_t i = 0; i < n; i++)
        ref[i] ^= key[(offset + i) & 3u];
    ws_mask(one, n, key, offset);
    FUZZ_CHECK(n == 0 || memcmp(one, ref, n) == 0);

    fuzz_seed(&rng, data, size < 12 ? size : 12, 0x6d61736b);
    for (size_t pos = 0; pos < n;) {
        size_t len = fuzz_chunk(&rng, n - pos);
        size_t align = (size_t)(fuzz_next(&rng) % 8u);
        uint8_t *piece = malloc(align + len);

        FUZZ_CHECK(piece != NULL);
        memcpy(piece + align, chunked + pos, len);
        ws_mask(piece + align, len, key, offset + pos);
        memcpy(chunked + pos, piece + align, len);
        free(piece);
        pos += len;
    }
    FUZZ_CHECK(n == 0 || memcmp(chunked, ref, n) == 0);

    ws_mask(one, n, key, offset);
    FUZZ_CHECK(n == 0 || memcmp(one, data + at, n) == 0);
    free(one);
    free(ref);
    free(chunked);
}

/* RFC 6455 §5.5.1: the whole input as a close payload, then a close
   payload written from input bytes and parsed back. */
static void check_close(const uint8_t *data, size_t size)
{
    uint8_t *p = fuzz_dup(data, size, 0);
    uint16_t code = 0;
    const uint8_t *reason = NULL;
    size_t reason_len = SIZE_MAX;
    int rc = ws_frame_close_parse(p, size, &code, &reason, &reason_len);
    unsigned c = size >= 2 ? (unsigned)data[0] << 8 | data[1] : 0;
    uint8_t out[WS_FRAME_MAX_CONTROL + 2];
    ssize_t n;

    if (size == 0) {
        FUZZ_CHECK(rc == 0 && code == 1005 && reason_len == 0);
    } else if (size == 1 || size > 125 || !fuzz_ref_close_code(c)) {
        FUZZ_CHECK(rc == WS_EPROTO);
    } else if (!fuzz_ref_utf8_valid(data + 2, size - 2)) {
        FUZZ_CHECK(rc == WS_EUTF8);
    } else {
        FUZZ_CHECK(rc == 0 && code == c);
        FUZZ_CHECK(reason == p + 2 && reason_len == size - 2);
    }
    free(p);

    /* Writing: code from the first two bytes, reason the rest. */
    if (size < 2)
        return;
    reason_len = size - 2;
    p = fuzz_dup(data + 2, reason_len, 0);
    n = ws_frame_close_payload(out, sizeof(out), (uint16_t)c, p, reason_len);
    if (!fuzz_ref_close_code(c) || reason_len > 123 ||
        !fuzz_ref_utf8_valid(p, reason_len)) {
        FUZZ_CHECK(n == WS_EINVAL);
    } else {
        FUZZ_CHECK(n == (ssize_t)size);
        FUZZ_CHECK(memcmp(out, data, size) == 0);
        FUZZ_CHECK(ws_frame_close_parse(out, (size_t)n, &code, &reason,
                                        &reason_len) == 0);
        FUZZ_CHECK(code == c && reason_len == size - 2);
        /* One byte short: nothing is written. */
        memset(out, 0x5A, sizeof(out));
        FUZZ_CHECK(ws_frame_close_payload(out, size - 1, (uint16_t)c, p,
                                          size - 2) == WS_ENOSPC);
        FUZZ_CHECK(out[0] == 0x5A && out[size - 2] == 0x5A);
    }
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size, WS_FRAME_FROM_CLIENT);
    check_parse(data, size, WS_FRAME_FROM_SERVER);
    check_write(data, size);
    check_mask(data, size);
    check_close(data, size);
    return 0;
}
