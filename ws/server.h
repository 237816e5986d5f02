/*
 * server.h - the struct behind struct ws_server, shared by the files of
 * the server glue: server.c (configuration, listeners, running the loop),
 * shutdown.c (the graceful shutdown), post.c (other threads), timer.c
 * (the application's timers) and the connection's files (ws/conn.h),
 * which the server calls into and which never call back into server.c.
 * Internal to the library.
 */
#ifndef WS_SERVER_H
#define WS_SERVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"
#include "net/buf.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/sock.h"
#include "ws/frame.h"

/* Frames a connection's input may produce before they are written, each
   from where its payload lies in that input (conn_io.c, corkable()): a
   shared read's worth of the smallest written at once (conn.h,
   WS_CONN_DIRECT_MIN); past it, replies are queued the usual way. */
#define WS_CORK_MAX 32
#include "net/transport.h"
#include "ws/idmap.h"
#include "ws/session.h"
#include "ws/topic.h"
#include "ws/ws.h"

struct ws_conn;
struct ws_tls;

struct ws_server {
    struct ws_config cfg;            /* copy; strings below are owned */
    struct ws_session_limits limits; /* from cfg, shared by every session */
    struct ws_session_config session_cfg; /* limits and the conn's handler */
    char *host, *port;
    char **paths;     /* owned NULL-terminated copy, or NULL */
    char **protocols; /* owned NULL-terminated copy, or NULL */
    struct ws_callbacks cb;
    void *user_data;
    struct ws_loop *loop;              /* owned */
    struct ws_net_listener listener;   /* owned sockets, accept back-off */
    struct ws_deflate_shared *deflate; /* owned; NULL: no compression */
    struct ws_tls *tls;                /* owned; NULL: plain TCP */
    const struct ws_transport_ops *transport; /* every connection's */
    void *transport_ctx;                      /* its shared state */
    struct ws_topics topics;                  /* subscriptions (publish.c) */
    size_t nconns;                            /* live connections, all in ids */
    size_t nopen;               /* connections in WS_CONN_WS, opened */
    struct ws_conn *kill_list;  /* to tear down after this event */
    struct ws_conn *flush_list; /* to write out after this event */
    struct ws_conn *dead_list;  /* torn down, to free */
    struct ws_conn *input_list; /* transport holds input to read (conn_io) */
    uint8_t *read_buf;          /* owned, WS_READ_SHARED bytes: conn_io.c */
    /* While one connection's input is processed where it lies, its large
       sends whose payload lies in that input (echoes, relays) wait here
       and leave together in one gather write (conn_io.c, uncork). */
    struct ws_conn *cork; /* whose input; NULL: none */
    struct ws_cork_span {
        const uint8_t *lo, *hi;
    } cork_in[2]; /* that input: a frame's end and what followed, or one */
    size_t ncorked;
    struct ws_corked {
        uint8_t hdr[WS_FRAME_MAX_HEADER];
        size_t hlen;
        const uint8_t *data;
        size_t len;
    } corked[WS_CORK_MAX];
    struct ws_buf spare_out; /* owned: an emptied output buffer (conn_io.c) */
    /* The text on_message has now: valid UTF-8, so a send of exactly it
       (an echo, or a relay to other connections) is not checked again. */
    const void *delivered;
    size_t delivered_len;
    int depth;                       /* > 0 while a user callback runs */
    uint64_t busy_refused;           /* 503s since the last report (server.c) */
    uint64_t busy_report_ms;         /* loop time of that report */
    uint64_t next_id;                /* the id of the next connection */
    struct ws_server_timer *timers;  /* the application's, to free */
    struct ws_server_watch *watches; /* the application's descriptors */
    /* Told of topics gaining their first and losing their last local
       subscriber, and of every publish (publish.c); NULL: nobody. */
    const struct ws_topic_observer *observer;
    void *observer_arg;

    /* Cross-thread hand-off (post.c). post_lock guards what other threads
       touch: the queue, its byte count, wake_pending and ids (which only
       the loop thread changes). */
    pthread_mutex_t post_lock;
    bool post_ready; /* post_lock and wake_fd exist */
    struct ws_post_item *post_head, *post_tail;
    size_t posted_bytes;
    bool wake_pending;
    int wake_fd[2];
    /* Every live connection by id, from accept to teardown (posts find
       only the open ones: ws_server_find(), post_view). */
    struct ws_idmap ids;

    /* Graceful shutdown (shutdown.c). shutdown_asks counts the
       ws_server_shutdown() calls, made from any thread or a signal
       handler (lock-free, as the loop's stop flag); the rest belongs to
       the loop thread. */
    atomic_int shutdown_asks;
    bool shutting_down;             /* begun: listeners closed, 1001s queued */
    bool shut_down;                 /* finished: no connection was left */
    struct ws_timer shutdown_timer; /* close_timeout_ms after it began */

    /* The per-descriptor embedding (embed.c). socket_cb NULL: the loop
       polls with its backend. told_* is the deadline the application was
       last told to hold (its timer). */
    ws_socket_cb socket_cb;
    void *socket_arg;
    ws_deadline_cb deadline_cb; /* NULL: the application asks instead */
    void *deadline_arg;
    enum ws_told { WS_TOLD_NONE, WS_TOLD_NOW, WS_TOLD_AT } told;
    uint64_t told_due;      /* WS_TOLD_AT: that timer's due time */
    bool in_action;         /* inside ws_server_socket_action() */
    bool in_embed_cb;       /* the application's socket or deadline cb runs */
    bool max_conns_default; /* cfg.max_connections was 0 (server.c) */
    char error[256];
};

/* post.c: whether a message may be sent: a data type, data for its
   length, valid UTF-8 if text. 0 or WS_EINVAL. (Posts and fan-out check
   once for all their receivers.) */
int ws_message_check(enum ws_msg_type type, const void *data, size_t len);

/* post.c: the cross-thread queue and its wake-up pipe. */
int ws_post_init(struct ws_server *s);
void ws_post_free(struct ws_server *s);

/* shutdown.c: act on a ws_server_shutdown() request at the end of a loop
   iteration: begin the shutdown, or see that it has finished. */
void ws_server_shutdown_step(struct ws_server *s);

/* shutdown.c: true when a shutdown was asked for and has not begun, so
   the loop must not sleep before ws_server_shutdown_step(). */
bool ws_server_shutdown_pending(const struct ws_server *s);

/* shutdown.c: after a finished shutdown, forget it (a new listen starts
   the server afresh). */
void ws_server_shutdown_reset(struct ws_server *s);

/* post.c: run everything other threads have posted so far, in order (the
   wake pipe's handler; also before a shutdown closes the connections). */
void ws_post_run(struct ws_server *s);

/* timer.c: free every application timer still there. */
void ws_server_timers_free(struct ws_server *s);

/* embed.c: the edges of a ws_server_socket_action() (fd -1: the
   application's timer fired, so it holds none now); end tells the
   deadline callback of a new deadline. */
void ws_server_embed_begin(struct ws_server *s, int fd);
void ws_server_embed_end(struct ws_server *s);

/* embed.c: the connections queued work (a write, a teardown) for the
   next iteration; outside one, the deadline callback hears "now". */
void ws_server_embed_poke(struct ws_server *s);

/* embed.c: ws_server_destroy() begins: a deadline told is cancelled (-1)
   and no other is told. */
void ws_server_embed_free(struct ws_server *s);

/* watch.c: stop watching the application's descriptors (not closed). */
void ws_server_watches_free(struct ws_server *s);

/* server.c: report err to on_error with a formatted detail. */
void ws_server_error(struct ws_server *s, struct ws_conn *c, int err,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Run a user callback with the re-entrancy guard held. */
#define WS_CALLBACK(srv, call)                                                 \
    do {                                                                       \
        (srv)->depth++;                                                        \
        call;                                                                  \
        (srv)->depth--;                                                        \
    } while (0)

#endif
