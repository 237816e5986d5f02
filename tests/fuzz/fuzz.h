/*
 * fuzz.h - helpers shared by the libFuzzer targets in tests/fuzz/: an
 * invariant check that aborts with its location, a small deterministic
 * generator for split points derived from the input, and exact-size copies
 * so that ASan reports any read past the end of the bytes handed over.
 */
#ifndef WS_TESTS_FUZZ_H
#define WS_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the module under test; a failure is a finding. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Split points come from a splitmix64 stream seeded by input bytes, so a
   crash input reproduces its own splits. */
struct fuzz_rng {
    uint64_t s;
};

static inline uint64_t fuzz_next(struct fuzz_rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Seed from every byte of p[0..n) (FNV-1a), mixed with salt. */
static inline void fuzz_seed(struct fuzz_rng *r, const uint8_t *p, size_t n,
                             uint64_t salt)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325) ^ salt;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001B3);
    r->s = h;
}

/* The next chunk length, 1..left: mostly short pieces (one byte, a header
   cut in two) and sometimes long ones. left must be > 0. */
static inline size_t fuzz_chunk(struct fuzz_rng *r, size_t left)
{
    uint64_t x = fuzz_next(r);
    size_t n;

    switch (x & 3u) {
    case 0:
        n = 1;
        break;
    case 1:
        n = 1 + (size_t)((x >> 8) % 16u);
        break;
    case 2:
        n = 1 + (size_t)((x >> 8) % 256u);
        break;
    default:
        n = left;
        break;
    }
    return n < left ? n : left;
}

/* A heap copy of exactly n bytes (plus extra writable bytes): the byte
   after them is a redzone. Never NULL, even for n == 0. */
static inline uint8_t *fuzz_dup(const void *p, size_t n, size_t extra)
{
    uint8_t *c = malloc(n + extra > 0 ? n + extra : 1);

    FUZZ_CHECK(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    if (extra > 0)
        memset(c + n, 0xA5, extra);
    return c;
}

/*
 * A slow reference UTF-8 decoder written from RFC 3629 §3 (bit patterns and
 * code point ranges), independent of the table in ws/utf8.c. It reports the
 * first byte after which no continuation can give valid UTF-8: a sequence
 * is dropped as soon as the code points it can still reach are all
 * overlong, surrogates (U+D800-DFFF) or past U+10FFFF. Returns that index,
 * or SIZE_MAX (then *complete tells whether p ends on a boundary).
 */
static inline bool fuzz_ref_feasible(uint32_t acc, unsigned unknown, int n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    uint64_t lo = (uint64_t)acc << unknown;
    uint64_t hi = lo | ((UINT64_C(1) << unknown) - 1);

    if (lo < min_cp[n])
        lo = min_cp[n];
    if (hi > max_cp[n])
        hi = max_cp[n];
    if (lo > hi)
        return false;
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static inline size_t fuzz_ref_utf8(const uint8_t *p, size_t len, bool *complete)
{
    int n = 0, got = 0;
    uint32_t acc = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];

        if (got == n) {
            got = 1;
            if (b < 0x80) {
                n = 1;
                acc = b;
            } else if ((b & 0xE0) == 0xC0) {
                n = 2;
                acc = b & 0x1Fu;
            } else if ((b & 0xF0) == 0xE0) {
                n = 3;
                acc = b & 0x0Fu;
            } else if ((b & 0xF8) == 0xF0) {
                n = 4;
                acc = b & 0x07u;
            } else {
                return i;
            }
        } else {
            if ((b & 0xC0) != 0x80)
                return i;
            acc = acc << 6 | (b & 0x3Fu);
            got++;
        }
        if (!fuzz_ref_feasible(acc, 6u * (unsigned)(n - got), n))
            return i;
    }
    *complete = got == n;
    return SIZE_MAX;
}

/* True when p[0..len) is valid UTF-8, by the reference decoder. */
static inline bool fuzz_ref_utf8_valid(const uint8_t *p, size_t len)
{
    bool complete = false;

    return fuzz_ref_utf8(p, len, &complete) == SIZE_MAX && complete;
}

/* RFC 6455 §7.4.1-§7.4.2 and the IANA registry: close codes that may be
   sent (1000-1003, 1007-1014, 3000-4999). */
static inline bool fuzz_ref_close_code(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    switch (code) {
    case 1000: /* normal */
    case 1001: /* going away */
    case 1002: /* protocol error */
    case 1003: /* unsupported data */
    case 1007: /* invalid payload data */
    case 1008: /* policy violation */
    case 1009: /* message too big */
    case 1010: /* mandatory extension */
    case 1011: /* internal error */
    case 1012: /* service restart (IANA) */
    case 1013: /* try again later (IANA) */
    case 1014: /* bad gateway (IANA) */
        return true;
    default:
        return false;
    }
}

#endif
