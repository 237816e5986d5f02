/*
 * utf8_bench.c - micro-benchmark of ws/utf8.c: validates 1 MiB of ASCII,
 * of text with 10 % non-ASCII characters (the mix of lg_proto.c's text
 * payloads) and of text with 90 % non-ASCII characters, and prints the
 * median time per MiB of each implementation this CPU can run. Links
 * ws/utf8.o, ws/error.o and the load generator's lg_proto.o (its text).
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

/* Fill out[0..len) with valid text of the given mix, from the load
   generator's own payload code, so the texts are the ones it sends. */
static void fill_text(uint8_t *out, size_t len, int non_ascii)
{
    uint64_t seed = UINT64_C(0x853C49E6748FEA9B);

    lg_payload_fill(out, len, true, non_ascii, &seed);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median time of REPS validations of p[0..len) through impl, in µs;
   exits if the text is not accepted whole. */
static double median_us(enum ws_utf8_impl impl, const uint8_t *p, size_t len)
{
    static double t[REPS];

    for (int r = 0; r < REPS; r++) {
        struct ws_utf8 v = {0};
        double t0 = now_us();
        int rc = ws_utf8_feed_impl(impl, &v, p, len, NULL);

        t[r] = now_us() - t0;
        if (rc != 0 || !ws_utf8_complete(&v)) {
            fprintf(stderr, "utf8_bench: valid text rejected\n");
            exit(1);
        }
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
    static const struct {
        const char *label;
        enum ws_utf8_impl impl;
    } impls[] = {
        {"dispatched", WS_UTF8_AUTO},
        {"scalar", WS_UTF8_SCALAR},
        {"ssse3", WS_UTF8_SSSE3},
        {"avx2", WS_UTF8_AVX2},
    };
    uint8_t *buf = malloc(MIB);

    if (buf == NULL)
        return 1;
    printf("%-16s %-12s %12s %10s\n", "text (1 MiB)", "impl", "us/MiB", "GB/s");
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        fill_text(buf, MIB, texts[t].non_ascii);
        for (size_t k = 0; k < sizeof impls / sizeof impls[0]; k++) {
            double us;

            if (!ws_utf8_impl_available(impls[k].impl))
                continue;
            us = median_us(impls[k].impl, buf, MIB);
            printf("%-16s %-12s %12.1f %10.2f\n", texts[t].label,
                   impls[k].label, us, (double)MIB / us / 1e3);
        }
    }
    free(buf);
    return 0;
}
