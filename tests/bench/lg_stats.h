/*
 * lg_stats.h - latency samples of the load generator and their
 * percentiles. Exact: every sample is kept and sorted once at the end.
 */
#ifndef WS_BENCH_LG_STATS_H
#define WS_BENCH_LG_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_stats {
    uint32_t *ns; /* owned; samples in ns, capped at UINT32_MAX */
    size_t n, cap;
    bool sorted;
};

/* Record one latency in ns; a sample that cannot be stored is dropped. */
void lg_stats_add(struct lg_stats *s, uint64_t ns);

/* The q-quantile (0..1) in µs, nearest rank; 0 when there is no sample. */
double lg_stats_quantile(struct lg_stats *s, double q);

/* Free the samples; s is empty again. */
void lg_stats_free(struct lg_stats *s);

#endif
