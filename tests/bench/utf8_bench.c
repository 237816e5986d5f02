/*
 * utf8_bench.c - micro-benchmark of ws/utf8.c: validates ASCII, text with
 * 10 % non-ASCII characters (the mix of lg_proto.c's text payloads) and
 * text with 90 % non-ASCII characters, as 1 MiB messages and as runs of
 * short messages (16 and 512 bytes, each validated from a fresh state as
 * the session does per text frame), and prints the median time per
 * message of each implementation this CPU can run. Links ws/utf8.o,
 * ws/error.o and the load generator's lg_proto.o (its text).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/bench/lg_proto.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#define MIB ((size_t)1 << 20)
#define REPS 200

/* Short messages are timed in runs of this many distinct messages, so the
   clock's own cost and resolution vanish and the branch predictor cannot
   learn one message by heart. */
#define RUN_BYTES ((size_t)64 << 10)

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

int main(void)
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
    uint8_t *buf = malloc(MIB);

    if (buf == NULL)
        return 1;
    printf("%-8s %-14s %-11s %12s %10s %8s\n", "size", "text", "impl",
           "ns/message", "us/MiB", "GB/s");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
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
    free(buf);
    return 0;
}
