/*
 * lg_rate.c - the load generator's --connect-rate mode: N slots, each a
 * connection that connects, does the TLS handshake (with --tls), upgrades
 * (RFC 6455 §4.1), echoes one message, closes (§7.1.2: our close frame,
 * the server's, then its FIN, §7.1.1) and is replaced at once. It counts
 * whole cycles; one slower than CYCLE_TIMEOUT_NS is lost and restarted.
 */
#include <stdio.h>

#include "lg.h"

#define CYCLE_TIMEOUT_NS 5000000000ull

/* Make c a fresh slot, keeping its buffers. */
static void reset_slot(struct conn *c)
{
    uint64_t *sent = c->sent_ns;

    *c = (struct conn){.fd = -1, .sent_ns = sent};
}

/* --connect-rate: c ended cleanly after its echo; count the cycle. */
void lg_rate_count(struct lg *g, const struct conn *c)
{
    g->cyc.total++;
    if (g->phase != PH_LOAD)
        return;
    g->cyc.window++;
    lg_stats_add(&g->lat, lg_now_ns() - c->t_start);
}

/* End the slots that are stuck and, while restart holds, start a new
   cycle on every free one. Called between polls, never from inside an
   event: a slot reused there would be taken for the old connection. */
static void tend(struct lg *g, bool restart)
{
    uint64_t now = lg_now_ns();

    for (long i = 0; i < g->o.conns; i++) {
        struct conn *c = &g->conns[i];

        if (lg_conn_live(c) && now - c->t_start > CYCLE_TIMEOUT_NS)
            lg_conn_end(g, c, &g->err.lost);
        if (restart && !lg_conn_live(c)) {
            reset_slot(c);
            lg_conn_start(g, c);
        }
    }
}

/* Milliseconds until deadline, at least 1 and at most 100. */
static int wait_ms(uint64_t deadline)
{
    uint64_t now = lg_now_ns();
    uint64_t ms = now >= deadline ? 0 : (deadline - now) / 1000000;

    return ms < 1 ? 1 : ms > 100 ? 100 : (int)ms;
}

/* The results line: cycles per second, their latency, and the errors. */
static void print_rate(struct lg *g)
{
    double secs = (double)(g->t_end - g->t_load) / 1e9;

    printf("{\"mode\":\"connect-rate\",\"raw\":%s,\"tls\":\"%s\","
           "\"conns\":%ld,\"size\":%zu,\"seconds\":%.3f,\"handshakes\":%llu,"
           "\"handshakes_total\":%llu,\"handshakes_per_s\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f,\"client_cpu_s\":%.3f,",
           g->o.raw ? "true" : "false", g->tls_desc, g->o.conns, g->o.size,
           secs, (unsigned long long)g->cyc.window,
           (unsigned long long)g->cyc.total,
           secs > 0 ? (double)g->cyc.window / secs : 0.0,
           lg_stats_quantile(&g->lat, 0.5), lg_stats_quantile(&g->lat, 0.99),
           lg_stats_quantile(&g->lat, 0.999), lg_stats_quantile(&g->lat, 1.0),
           lg_self_cpu());
    lg_print_errors(g);
    printf("}\n");
    fflush(stdout);
}

void lg_rate_run(struct lg *g)
{
    uint64_t deadline;

    g->sending = true;
    g->phase = PH_LOAD;
    g->t_load = lg_now_ns();
    deadline = g->t_load + (uint64_t)(g->o.seconds * 1e9);
    tend(g, true);
    while (!lg_stop_requested() && lg_now_ns() < deadline) {
        lg_poll(g, wait_ms(deadline));
        tend(g, true);
    }
    /* Cycles under way finish, so that the server's CPU is spent on
       whole ones; they count in the total, not in the rate. */
    g->t_end = lg_now_ns();
    g->phase = PH_DRAIN;
    deadline = g->t_end + (uint64_t)(g->o.grace * 1e9);
    while (!lg_stop_requested() && g->pending + g->open > 0 &&
           lg_now_ns() < deadline) {
        lg_poll(g, wait_ms(deadline));
        tend(g, false);
    }
    for (long i = 0; i < g->o.conns; i++)
        lg_conn_end(g, &g->conns[i], &g->err.lost);
    print_rate(g);
}
