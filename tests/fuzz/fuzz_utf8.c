/*
 * fuzz_utf8.c - libFuzzer target for ws/utf8.c. The input is the byte
 * stream to validate. ws_utf8_valid() and ws_utf8_feed(), and each of the
 * implementations behind it (scalar, SSSE3, AVX2, AVX-512, where the CPU
 * has them), must agree with the slow reference decoder in fuzz.h
 * (verdict, index of the first bad byte, "ends on a boundary"), whole and
 * split at data-derived offsets, and again behind a data-derived run of
 * ASCII that moves every byte to another offset of the 64-byte vector
 * blocks and of the AVX-512 pass's masked tail. The fused unmask-and-check
 * path, ws_utf8_unmask_prefix(), gets the input masked with a
 * data-derived key and phase, after a data-derived first part fed plainly
 * (so v may enter mid-character): its prefix, followed by the caller's two
 * passes over the rest, must unmask every byte once and agree with the
 * reference, and the bytes after its prefix must be untouched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#define MAX_CUTS 4

/* The longest ASCII run put before the input: more than one block. */
#define MAX_SHIFT 96

/* Every implementation; ws_utf8_feed_impl() runs one this CPU lacks as
   the scalar one, which is then merely checked twice. */
static const enum ws_utf8_impl impls[] = {
    WS_UTF8_AUTO, WS_UTF8_SCALAR, WS_UTF8_SSSE3, WS_UTF8_AVX2, WS_UTF8_AVX512};

#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

/* What the reference decoder says about the whole input. */
struct verdict {
    size_t bad; /* SIZE_MAX when no byte is bad */
    bool complete;
};

/*
 * Feed p[0..len) through impl in the pieces that cuts[0..ncuts)
 * (ascending) delimit, each piece a separate allocation placed at an
 * offset of align bytes that ends where the piece ends, and compare with
 * the reference.
 */
static void check_impl(enum ws_utf8_impl impl, const uint8_t *p, size_t len,
                       const size_t *cuts, size_t ncuts, size_t align,
                       const struct verdict *ref)
{
    struct ws_utf8 v;
    size_t start = 0;

    /* A dirty state must be fully reset. */
    memset(&v, 0xFF, sizeof(v));
    ws_utf8_reset(&v);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t n = end - start, bad = SIZE_MAX;
        uint8_t *buf = malloc(align + n + 1);
        uint8_t *piece = buf + 1 + align; /* the last byte ends buf */
        int rc;

        FUZZ_CHECK(buf != NULL);
        if (n > 0)
            memcpy(piece, p + start, n);
        rc = impl == WS_UTF8_AUTO ? ws_utf8_feed(&v, piece, n, &bad)
                                  : ws_utf8_feed_impl(impl, &v, piece, n, &bad);
        free(buf);
        if (rc != 0) {
            FUZZ_CHECK(rc == WS_EUTF8);
            FUZZ_CHECK(bad < n);
            FUZZ_CHECK(start + bad == ref->bad);
            return;
        }
        /* No byte of this piece may be the reference's first bad one. */
        FUZZ_CHECK(ref->bad == SIZE_MAX || ref->bad >= end);
        start = end;
    }
    FUZZ_CHECK(ref->bad == SIZE_MAX);
    FUZZ_CHECK(ws_utf8_complete(&v) == ref->complete);
}

/* check_impl() for every implementation. */
static void check_pieces(const uint8_t *p, size_t len, const size_t *cuts,
                         size_t ncuts, size_t align, const struct verdict *ref)
{
    for (size_t i = 0; i < NIMPLS; i++)
        check_impl(impls[i], p, len, cuts, ncuts, align, ref);
}

/* The reference unmask (RFC 6455 §5.3): p[i] ^= key[(offset + i) % 4]. */
static void ref_mask(uint8_t *p, size_t n, const uint8_t key[4],
                     uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(p[i] ^ key[(offset + i) % 4]);
}

/*
 * The fused path through impl on p[0..len): the first pre bytes (before
 * the reference's bad byte) fed plainly, the rest masked with key at
 * phase offset, in an allocation that ends where it ends, at align. Then
 * the caller's second step, and the whole compared with the reference.
 */
static void check_fused_impl(enum ws_utf8_impl impl, const uint8_t *p,
                             size_t len, size_t pre, const uint8_t key[4],
                             uint64_t offset, size_t align,
                             const struct verdict *ref)
{
    size_t n = len - pre, r, bad = SIZE_MAX;
    uint8_t *buf = malloc(align + n + 1), *m = buf + 1 + align;
    uint8_t *masked = fuzz_dup(p + pre, n, 0);
    struct ws_utf8 v = {0}, w;
    int rc;

    FUZZ_CHECK(buf != NULL);
    ref_mask(masked, n, key, offset);
    if (n > 0)
        memcpy(m, masked, n);
    FUZZ_CHECK(ws_utf8_feed(&v, p, pre, NULL) == 0);
    w = v;
    r = impl == WS_UTF8_AUTO
            ? ws_utf8_unmask_prefix(&v, m, n, key, offset)
            : ws_utf8_unmask_prefix_impl(impl, &v, m, n, key, offset);
    /* The prefix: unmasked, no bad byte in it, v where feeding it leaves
       it; everything after it as it came. */
    FUZZ_CHECK(r <= n);
    FUZZ_CHECK(r == 0 || memcmp(m, p + pre, r) == 0);
    FUZZ_CHECK(r == n || memcmp(m + r, masked + r, n - r) == 0);
    FUZZ_CHECK(ref->bad == SIZE_MAX || pre + r <= ref->bad);
    FUZZ_CHECK(ws_utf8_feed(&w, p + pre, r, NULL) == 0);
    FUZZ_CHECK(memcmp(&v, &w, sizeof(v)) == 0);
    if (impl != WS_UTF8_AVX512 && impl != WS_UTF8_AUTO)
        FUZZ_CHECK(r == 0);
    /* The caller's second step. */
    ref_mask(m + r, n - r, key, offset + r);
    rc = ws_utf8_feed(&v, m + r, n - r, &bad);
    if (ref->bad != SIZE_MAX) {
        FUZZ_CHECK(rc == WS_EUTF8);
        FUZZ_CHECK(bad < n - r && pre + r + bad == ref->bad);
    } else {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(ws_utf8_complete(&v) == ref->complete);
    }
    /* Every byte unmasked exactly once, the bad one and after included. */
    FUZZ_CHECK(n == 0 || memcmp(m, p + pre, n) == 0);
    free(masked);
    free(buf);
}

/* check_fused_impl() for every implementation, with a key, phase, first
   part and alignment drawn from rng. */
static void check_fused(const uint8_t *p, size_t len, struct fuzz_rng *rng,
                        const struct verdict *ref)
{
    uint64_t x = fuzz_next(rng);
    uint8_t key[4];
    uint64_t offset = fuzz_next(rng) >> (x & 63u);
    size_t limit = ref->bad == SIZE_MAX ? len : ref->bad;
    size_t pre = (size_t)(fuzz_next(rng) % (limit + 1));
    size_t align = (size_t)(fuzz_next(rng) % 64u);

    memcpy(key, &x, sizeof(key));
    if (x % 7 == 0)
        pre = 0; /* from the start, as a new message begins */
    for (size_t i = 0; i < NIMPLS; i++)
        check_fused_impl(impls[i], p, len, pre, key, offset, align, ref);
}

/* Sort the few cut offsets (insertion sort). */
static void sort_cuts(size_t *cuts, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
            size_t t = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = t;
        }
}

/*
 * p[0..size) behind a data-derived run of ASCII, which changes no verdict
 * and moves the bad index by its length: short inputs then reach the
 * vector blocks, and every byte lands at another offset of a block. Fed
 * whole and in two pieces.
 */
static void check_shifted(const uint8_t *p, size_t size, struct fuzz_rng *rng,
                          const struct verdict *ref)
{
    size_t shift = (size_t)(fuzz_next(rng) % (MAX_SHIFT + 1));
    size_t len = shift + size,
           cut = shift + (size_t)(fuzz_next(rng) % (size + 1));
    struct verdict moved = *ref;
    uint8_t *q = malloc(len > 0 ? len : 1); /* exact, for ASan */
    bool complete = false;

    FUZZ_CHECK(q != NULL);
    memset(q, 'a', shift);
    if (size > 0)
        memcpy(q + shift, p, size);
    if (moved.bad != SIZE_MAX)
        moved.bad += shift;
    FUZZ_CHECK(fuzz_ref_utf8(q, len, &complete) == moved.bad);
    FUZZ_CHECK(moved.bad != SIZE_MAX || complete == moved.complete);
    check_pieces(q, len, NULL, 0, (size_t)(fuzz_next(rng) % 64u), &moved);
    check_pieces(q, len, &cut, 1, 0, &moved);
    check_fused(q, len, rng, &moved);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct verdict ref = {SIZE_MAX, false};
    uint8_t *p = fuzz_dup(data, size, 0);
    struct fuzz_rng rng;
    size_t cuts[MAX_CUTS];
    struct ws_utf8 v = {0};
    bool ok;

    ref.bad = fuzz_ref_utf8(p, size, &ref.complete);
    ok = ref.bad == SIZE_MAX && ref.complete;

    /* The whole-buffer call, and a zero-filled state fed once with no
       index wanted. */
    FUZZ_CHECK(ws_utf8_valid(p, size) == ok);
    FUZZ_CHECK((ws_utf8_feed(&v, p, size, NULL) == 0) == (ref.bad == SIZE_MAX));
    check_pieces(p, size, NULL, 0, 0, &ref);

    /* Two and several pieces at offsets derived from the data. */
    fuzz_seed(&rng, p, size, 0x757466);
    for (int round = 0; round < 4; round++) {
        size_t ncuts = round == 0 ? 1 : (size_t)(fuzz_next(&rng) % MAX_CUTS);
        size_t align = (size_t)(fuzz_next(&rng) % 64u);

        for (size_t k = 0; k < ncuts; k++)
            cuts[k] = (size_t)(fuzz_next(&rng) % (size + 1));
        sort_cuts(cuts, ncuts);
        check_pieces(p, size, cuts, ncuts, align, &ref);
    }

    /* Short inputs: every single split point (§9: "split at every
       offset"). */
    if (size <= 64)
        for (size_t k = 0; k <= size; k++)
            check_pieces(p, size, &k, 1, k % 64u, &ref);

    check_shifted(p, size, &rng, &ref);
    check_fused(p, size, &rng, &ref);

    /* One byte at a time, for inputs short enough to keep this fast. */
    if (size <= 256) {
        size_t *all = malloc((size + 1) * sizeof(*all));

        FUZZ_CHECK(all != NULL);
        for (size_t k = 0; k < size; k++)
            all[k] = k + 1;
        check_impl(WS_UTF8_AUTO, p, size, all, size, 0, &ref);
        free(all);
    }
    free(p);
    return 0;
}
