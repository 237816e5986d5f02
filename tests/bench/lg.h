/*
 * lg.h - the load generator's shared state: options, pre-built messages,
 * per-connection protocol state, and the calls between loadgen.c (phases,
 * output) and lg_conn.c (one connection's I/O and verification).
 */
#ifndef WS_BENCH_LG_H
#define WS_BENCH_LG_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_deflate.h"
#include "lg_proto.h"
#include "lg_stats.h"
#include "lg_tls.h"

#define RBUF_SIZE (256u << 10) /* one read buffer shared by every conn */
#define ZBUF_SIZE (256u << 10) /* one inflate buffer shared by every conn */
#define LG_MAX_PORTS 8         /* --port given more than once */

struct lg_fanout; /* lg_fanout.c */

enum phase { PH_CONNECT, PH_LOAD, PH_DRAIN, PH_HOLD, PH_CLOSE };
enum cstate {
    C_NEW,
    C_CONNECTING,
    C_TLS, /* the TLS handshake, with --tls */
    C_HS_SEND,
    C_HS_RECV,
    C_OPEN,
    C_CLOSING,
    C_DONE
};

/* The command line. */
struct opts {
    const char *host, *path;
    const char *ports[LG_MAX_PORTS]; /* --port, repeatable: connection i
                                        goes to ports[i % nports] */
    int nports;
    long conns, inflight, batch, non_ascii;
    size_t size;
    bool binary, raw, idle, json;
    bool tls;          /* --tls: every connection over TLS */
    bool rate;         /* --connect-rate: connect, echo once, close, again */
    bool fanout;       /* --fanout: publishers and subscribers (lg_fanout.c) */
    bool sync;         /* --sync: wait for a line on stdin at each phase */
    long publishers;   /* --publishers: the first P connections publish */
    double rate_per_s; /* --rate: messages a second per publisher */
    const char *ca;    /* --tls-ca: verify the server with it; NULL: don't */
    enum lg_deflate deflate;
    double seconds, grace, connect_timeout;
};

/* One pre-built message: the bytes to send and the payload to expect. */
struct msg {
    uint8_t *frame; /* owned; equals payload in raw mode */
    size_t frame_len;
    uint8_t *payload; /* owned */
};

/* One client connection; the zero-filled form (fd set to -1) is C_NEW. */
struct conn {
    int fd;
    uint8_t state;    /* enum cstate */
    uint32_t want;    /* the epoll interest the protocol needs */
    uint32_t events;  /* current epoll interest: want and TLS's own */
    bool got_close;   /* --connect-rate: the server's close frame came */
    uint64_t t_start; /* when the socket was opened */
    char *hs;         /* owned; handshake request, then response head */
    size_t hs_len, hs_off;
    char accept[LG_ACCEPT_LEN + 1];
    uint64_t tx_seq; /* messages written completely */
    size_t tx_off;   /* bytes of message tx_seq written */
    uint64_t rx_seq; /* echoes verified completely */
    size_t rx_off;   /* payload bytes of echo rx_seq verified */
    uint64_t frame_left;
    bool in_frame, in_msg, data_fin, ctl;
    uint8_t hdr[LG_MAX_HEADER], hdr_len;
    uint8_t ctl_in[125], ctl_in_len, ctl_op;
    uint8_t ctl_out[LG_MAX_HEADER + 125], ctl_out_len, ctl_out_off;
    uint64_t *sent_ns;  /* owned; ring of K send times */
    struct lg_z *z;     /* owned; with --deflate */
    struct lg_tls *tls; /* owned; with --tls, once connected */
};

/* Error counters: each failed connection counts once, in one of them. */
struct errs {
    uint64_t connect, handshake, verify, closed, lost;
};

/* --connect-rate's counts: whole cycles, in the window and in all. */
struct cycles {
    uint64_t window, total;
};

/* The whole generator: one per process, owned by main(). */
struct lg {
    struct opts o;
    int ep;
    struct addrinfo *ai[LG_MAX_PORTS]; /* owned; one per --port */
    SSL_CTX *tls;                      /* owned; with --tls */
    char tls_desc[64];  /* the first session's protocol and cipher */
    struct conn *conns; /* owned; o.conns of them */
    struct msg *msgs;   /* owned; nmsgs variants */
    size_t nmsgs;
    uint8_t *rbuf;
    uint8_t *zbuf;         /* owned: inflated echoes, ZBUF_SIZE bytes */
    struct lg_fanout *fan; /* owned; with --fanout */
    uint64_t wire_rx;      /* bytes of the server's data frames */
    enum phase phase;
    bool sending;
    long started, pending, established, closing, open;
    int reported; /* handshake failures described on stderr so far */
    uint64_t now, t_load, t_end, outstanding, window_msgs, total_msgs;
    struct lg_stats lat;
    struct errs err;
    struct cycles cyc;
};

/* CLOCK_MONOTONIC in ns. */
uint64_t lg_now_ns(void);

/* Wait up to ms for events and handle them (loadgen.c). */
void lg_poll(struct lg *g, int ms);

/* The error counters as JSON members, on stdout (loadgen.c). */
void lg_print_errors(const struct lg *g);

/* The CPU seconds this process has used (loadgen.c). */
double lg_self_cpu(void);

/* Whether SIGTERM or SIGINT asked the current phase to end (loadgen.c). */
bool lg_stop_requested(void);

/* Which --port connection c goes to (an index into o.ports). */
int lg_conn_port(const struct lg *g, const struct conn *c);

/* Whether c still owns a socket. */
bool lg_conn_live(const struct conn *c);

/* Open one socket and start its non-blocking connect. */
void lg_conn_start(struct lg *g, struct conn *c);

/* Close c for good; counter (may be NULL) is the error to count. */
void lg_conn_end(struct lg *g, struct conn *c, uint64_t *counter);

/* Write what c may write until the socket is full or nothing is left. */
void lg_conn_flush(struct lg *g, struct conn *c);

/* Handle one epoll readiness event ev on c. */
void lg_conn_event(struct lg *g, struct conn *c, uint32_t ev);

/* Queue a masked control frame; 0, or -1 while one is still unsent. */
int lg_conn_queue_ctl(struct conn *c, uint8_t op, const uint8_t *p, size_t n);

/* Start the closing handshake of open connection c: a close frame (RFC
   6455 §7.1.2), close_notify in raw TLS, or a TCP FIN in raw TCP. */
void lg_conn_close(struct lg *g, struct conn *c);

/* --connect-rate (lg_rate.c): run the cycles for D seconds, let those
   under way finish, and print the results line. */
void lg_rate_run(struct lg *g);

/* --connect-rate: c ended cleanly after its echo; count the cycle. */
void lg_rate_count(struct lg *g, const struct conn *c);

/* --fanout (lg_fanout.c): its state, made and freed with the rest. */
int lg_fanout_new(struct lg *g);
void lg_fanout_free(struct lg *g);

/* --fanout: hold the connections (subscribed), publish for D seconds,
   wait for every delivery, print the results line. */
void lg_fanout_run(struct lg *g);

/* --fanout: write c's queued frames; -1 (error), 0 (all written) or 1
   (the socket is full). */
int lg_fanout_flush(struct lg *g, struct conn *c);

/* --fanout: check n payload bytes of the message c is receiving, and the
   whole message at its end; 0, or -1 when it is not one we sent. */
int lg_fanout_piece(struct lg *g, struct conn *c, const uint8_t *p, size_t n);
int lg_fanout_end(struct lg *g, struct conn *c);

#endif
