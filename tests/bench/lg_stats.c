/*
 * lg_stats.c - latency samples and exact percentiles for the load
 * generator. Memory only; the caller owns the struct.
 */
#include "lg_stats.h"

#include <stdlib.h>

#define MAX_SAMPLES (64u << 20) /* 256 MiB of samples at most */

void lg_stats_add(struct lg_stats *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        uint32_t *p;

        if (cap > MAX_SAMPLES)
            return;
        p = realloc(s->ns, cap * sizeof(*p));
        if (p == NULL)
            return;
        s->ns = p;
        s->cap = cap;
    }
    s->ns[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    s->sorted = false;
}

/* qsort order for uint32_t. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

double lg_stats_quantile(struct lg_stats *s, double q)
{
    size_t rank;

    if (s->n == 0)
        return 0;
    if (!s->sorted) {
        qsort(s->ns, s->n, sizeof(*s->ns), cmp_u32);
        s->sorted = true;
    }
    rank = (size_t)(q * (double)s->n);
    if (rank >= s->n)
        rank = s->n - 1;
    return s->ns[rank] / 1000.0;
}

void lg_stats_free(struct lg_stats *s)
{
    free(s->ns);
    s->ns = NULL;
    s->n = s->cap = 0;
}
