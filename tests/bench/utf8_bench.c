/*
 * utf8_bench.c - micro-benchmark of ws/utf8.c: validates ASCII, text with
 * 10 % non-ASCII characters (the mix of lg_proto.c's text payloads) and
 * text with 90 % non-ASCII characters, as 1 MiB messages and as runs of
 * short messages (16 and 512 bytes, each validated from a fresh state as
 * the session does per text frame), and prints the median time per
 * message of each implementation this CPU can run. Then the masked
 * text path (RFC 6455 §5.3): 1 MiB of masked text freshly copied in (as
 * a read leaves it) is unmasked and checked by the two passes the session
 * makes (an unmask pass, then ws_utf8_feed()), whole and per 16 KiB
 * slice, and by the fused ws_utf8_unmask_prefix() that replaces them.
 * Links ws/utf8.o, ws/frame.o (the unmask pass), ws/error.o and the load
 * generator's lg_proto.o (its text).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/bench/lg_proto.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#define MIB ((size_t)1 << 20)
#define REPS 200

/* Short messages are timed in runs of this many distinct messages, so the
   clock's own cost and resolution vanish and the branch predictor cannot
   learn one message by heart. */
#define RUN_BYTES ((size_t)64 << 10)

/* The session's slice (WS_SESSION_SLICE in ws/session.h). */
#define SLICE ((size_t)16 << 10)

/* The RFC 6455 §5.7 sample key. */
static const uint8_t mask_key[4] = {0x37, 0xFA, 0x21, 0x3D};

/* Fill out[0..len) with valid text of the given mix, from the load
   generator's own payload code, so the texts are the ones it sends. */
static void fill_text(uint8_t *out, size_t len, int non_ascii, uint64_t *seed)
{
    lg_payload_fill(out, len, true, non_ascii, seed);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Validate the count messages of size bytes at p through impl, each from a
   fresh state; exits if one is not accepted whole. */
static void validate_run(enum ws_utf8_impl impl, const uint8_t *p, size_t size,
                         size_t count)
{
    bool ok = true;

    for (size_t m = 0; m < count; m++) {
        struct ws_utf8 v = {0};

        ok &= ws_utf8_feed_impl(impl, &v, p + m * size, size, NULL) == 0 &&
              ws_utf8_complete(&v);
    }
    if (!ok) {
        fprintf(stderr, "utf8_bench: valid text rejected\n");
        exit(1);
    }
}

/* The median over REPS runs of the time per message, in ns. */
static double median_ns(enum ws_utf8_impl impl, const uint8_t *p, size_t size,
                        size_t count)
{
    static double t[REPS];

    for (int r = 0; r < REPS; r++) {
        double t0 = now_ns();

        validate_run(impl, p, size, count);
        t[r] = (now_ns() - t0) / (double)count;
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    return t[REPS / 2];
}

/* The unmask pass of the two-pass path: ws_mask() itself. */
static void mask_pass(uint8_t *p, size_t len, uint64_t offset)
{
    ws_mask(p, len, mask_key, offset);
}

/* The ways of unmasking and checking a masked text. */
enum masked_way {
    MASK_ONLY,   /* the unmask pass alone, for reference */
    CHECK_HOT,   /* ws_utf8_feed() alone on text already unmasked, hot */
    TWO_SLICED,  /* unmask pass + ws_utf8_feed() per slice (the session) */
    TWO_WHOLE,   /* unmask pass over all, then ws_utf8_feed() over all */
    FUSED_WHOLE, /* ws_utf8_unmask_prefix(), then the two passes on the rest */
    FUSED_SLICED /* the same per slice */
};

/* Unmask and check p[0..len) (key phase offset) the fused way: the fused
   prefix, then the caller's two passes on what it leaves. */
static int fused(struct ws_utf8 *v, uint8_t *p, size_t len, uint64_t offset)
{
    size_t r = ws_utf8_unmask_prefix(v, p, len, mask_key, offset);

    mask_pass(p + r, len - r, offset + r);
    return ws_utf8_feed(v, p + r, len - r, NULL);
}

/* Unmask and check p[0..len) one way; returns what the feed says. */
static int run_masked(enum masked_way way, struct ws_utf8 *v, uint8_t *p,
                      size_t len)
{
    int rc = 0;

    switch (way) {
    case MASK_ONLY:
        mask_pass(p, len, 0);
        break;
    case CHECK_HOT:
        rc = ws_utf8_feed(v, p, len, NULL);
        break;
    case TWO_SLICED:
        for (size_t i = 0; i < len && rc == 0; i += SLICE) {
            size_t k = len - i < SLICE ? len - i : SLICE;

            mask_pass(p + i, k, i);
            rc = ws_utf8_feed(v, p + i, k, NULL);
        }
        break;
    case TWO_WHOLE:
        mask_pass(p, len, 0);
        rc = ws_utf8_feed(v, p, len, NULL);
        break;
    case FUSED_WHOLE:
        rc = fused(v, p, len, 0);
        break;
    case FUSED_SLICED:
        for (size_t i = 0; i < len && rc == 0; i += SLICE) {
            size_t k = len - i < SLICE ? len - i : SLICE;

            rc = fused(v, p + i, k, i);
        }
        break;
    }
    return rc;
}

/*
 * The median over REPS runs of one way over the masked text src[0..len),
 * in us per MiB. Before each run buf is rewritten from src (or, for
 * CHECK_HOT, from text, and read once), as a read would leave it; after
 * it, buf must hold text and the feed must have accepted it whole.
 */
static double median_masked(enum masked_way way, uint8_t *buf,
                            const uint8_t *src, const uint8_t *text, size_t len)
{
    static double t[REPS];

    for (int r = 0; r < REPS; r++) {
        struct ws_utf8 v = {0};
        double t0;
        int rc;

        if (way == CHECK_HOT) {
            memcpy(buf, text, len);
            (void)ws_utf8_valid(buf, len);
        } else {
            memcpy(buf, src, len);
        }
        t0 = now_ns();
        rc = run_masked(way, &v, buf, len);
        t[r] = (now_ns() - t0) / 1e3 * (double)MIB / (double)len;
        if (way != MASK_ONLY &&
            (rc != 0 || !ws_utf8_complete(&v) || memcmp(buf, text, len))) {
            fprintf(stderr, "utf8_bench: masked text mishandled (way %d)\n",
                    (int)way);
            exit(1);
        }
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    return t[REPS / 2];
}

/* The masked text table: every way, per text mix, 1 MiB. */
static void bench_masked(uint8_t *buf, uint8_t *src, uint8_t *text)
{
    static const struct {
        const char *label;
        int non_ascii;
    } texts[] = {{"ascii", 0}, {"10% non-ascii", 10}, {"90% non-ascii", 90}};
    static const char *const ways[] = {"mask",     "check-hot", "2pass/16K",
                                       "2pass/1M", "fused/1M",  "fused/16K"};

    printf("\nmasked text, 1 MiB copied in before each run "
           "(median us/MiB; fused path %s)\n",
           ws_utf8_impl_available(WS_UTF8_AVX512) ? "AVX-512" : "absent");
    printf("%-14s", "text");
    for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++)
        printf(" %10s", ways[w]);
    printf("\n");
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        uint64_t seed = UINT64_C(0x853C49E6748FEA9B);

        fill_text(text, MIB, texts[t].non_ascii, &seed);
        memcpy(src, text, MIB);
        mask_pass(src, MIB, 0);
        printf("%-14s", texts[t].label);
        for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++)
            printf(" %10.1f",
                   median_masked((enum masked_way)w, buf, src, text, MIB));
        printf("\n");
    }
}

/* With the argument "masked", only the masked text table. */
int main(int argc, char **argv)
{
    static const struct {
        const char *label;
        int non_ascii;
    } texts[] = {
        {"ascii", 0},
        {"10% non-ascii", 10},
        {"90% non-ascii", 90},
    };
    static const size_t sizes[] = {16, 512, MIB};
    static const struct {
        const char *label;
        enum ws_utf8_impl impl;
    } impls[] = {
        {"dispatched", WS_UTF8_AUTO}, {"scalar", WS_UTF8_SCALAR},
        {"ssse3", WS_UTF8_SSSE3},     {"avx2", WS_UTF8_AVX2},
        {"avx512", WS_UTF8_AVX512},
    };
    uint8_t *buf = malloc(MIB), *src = malloc(MIB), *text = malloc(MIB);
    bool all = argc < 2 || strcmp(argv[1], "masked") != 0;

    if (buf == NULL || src == NULL || text == NULL)
        return 1;
    if (all)
        printf("%-8s %-14s %-11s %12s %10s %8s\n", "size", "text", "impl",
               "ns/message", "us/MiB", "GB/s");
    for (size_t s = 0; all && s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        size_t count = size < RUN_BYTES ? RUN_BYTES / size : 1;

        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            uint64_t seed = UINT64_C(0x853C49E6748FEA9B);

            for (size_t m = 0; m < count; m++)
                fill_text(buf + m * size, size, texts[t].non_ascii, &seed);
            for (size_t k = 0; k < sizeof impls / sizeof impls[0]; k++) {
                double ns;

                if (!ws_utf8_impl_available(impls[k].impl))
                    continue;
                ns = median_ns(impls[k].impl, buf, size, count);
                printf("%-8zu %-14s %-11s %12.1f %10.1f %8.2f\n", size,
                       texts[t].label, impls[k].label, ns,
                       ns * (double)MIB / (double)size / 1e3,
                       (double)size / ns);
            }
        }
    }
    bench_masked(buf, src, text);
    free(text);
    free(src);
    free(buf);
    return 0;
}
