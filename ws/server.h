/*
 * server.h - the structs behind struct ws_server and struct ws_conn, shared
 * by the files of the server glue (server.c: lifecycle, listeners, public
 * API; conn.c: one connection's bytes through HTTP and the session).
 * Internal to the library.
 */
#ifndef WS_SERVER_H
#define WS_SERVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"
#include "net/buf.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/sock.h"
#include "ws/idmap.h"
#include "ws/session.h"
#include "ws/ws.h"

/*
 * Bytes asked of one read() into a connection's own buffer, and the size
 * of the server's shared read buffer: a chunk, a frame header more (so a
 * message of a chunk's size arrives whole) and a byte for the NUL the
 * session borrows.
 */
#define WS_READ_CHUNK 65536u
#define WS_READ_SHARED (WS_READ_CHUNK + WS_FRAME_MAX_HEADER + 1)

/* Where a connection is in its life. */
enum ws_conn_phase {
    WS_CONN_HTTP,   /* reading a request; plain responses may be queued */
    WS_CONN_WS,     /* upgraded: the session owns the bytes */
    WS_CONN_LINGER, /* our FIN is out; reading until the peer's */
    WS_CONN_DEAD    /* torn down; freed after the current dispatch */
};

struct ws_conn {
    struct ws_server *srv;
    uint64_t id;                  /* ws_conn_id(): never reused */
    struct ws_buf in;             /* owned: bytes read, not yet consumed */
    struct ws_buf out;            /* owned: bytes queued, not yet written */
    struct ws_http_request *http; /* owned; only in WS_CONN_HTTP */
    struct ws_session session;    /* valid in WS_CONN_WS and after */
    struct ws_timer timer;        /* handshake, idle or close timeout */
    void *user_data;              /* the application's */
    char *path;                   /* the upgrade path (see keep_path) */
    char *close_reason;           /* owned: the peer's close reason */
    char *peer_text;              /* owned: ws_conn_peer(), once asked */
    uint64_t last_rx_ms;          /* loop time of the last bytes read */
    struct ws_conn *prev, *next;  /* srv->conns, all live connections */
    struct ws_conn *flush_next;   /* srv->flush_list */
    struct ws_conn *doomed_next;  /* srv->kill_list, then srv->dead_list */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } peer; /* the peer's address (28 bytes: fd fills the word) */
    int fd;
    uint16_t kill_code;       /* close code to report when torn down */
    uint16_t protocol;        /* 1 + index into srv->protocols, or 0 */
    uint8_t phase;            /* enum ws_conn_phase */
    uint8_t close_reason_len; /* at most 123 (RFC 6455 §5.5) */
    /* Flags, as bit-fields: every connection holds them. */
    bool path_owned : 1;        /* path is a copy to free */
    bool opened : 1;            /* on_open ran, so on_close is owed */
    bool close_timer : 1;       /* the close timeout is armed (once) */
    bool drain_armed : 1;       /* out reached the drain threshold */
    bool stream_on_open : 1;    /* ws_conn_set_streaming in on_upgrade */
    bool close_after_write : 1; /* plain HTTP: close once out is empty */
    bool queued_kill : 1;       /* on srv->kill_list */
    bool queued_flush : 1;      /* on srv->flush_list */
};

struct ws_server {
    struct ws_config cfg;            /* copy; strings below are owned */
    struct ws_session_limits limits; /* from cfg, shared by every session */
    char *host, *port;
    char **paths;     /* owned NULL-terminated copy, or NULL */
    char **protocols; /* owned NULL-terminated copy, or NULL */
    struct ws_callbacks cb;
    void *user_data;
    struct ws_loop *loop;            /* owned */
    struct ws_net_listener listener; /* owned sockets, accept back-off */
    struct ws_conn *conns;           /* every live connection */
    size_t nconns;
    size_t nopen;               /* connections in WS_CONN_WS, opened */
    struct ws_conn *kill_list;  /* to tear down after this event */
    struct ws_conn *flush_list; /* to write out after this event */
    struct ws_conn *dead_list;  /* torn down, to free */
    uint8_t *read_buf;          /* owned, WS_READ_SHARED bytes: see conn.c */
    struct ws_buf spare_out;    /* owned: an emptied output buffer (conn.c) */
    int depth;                  /* > 0 while a user callback runs */
    uint64_t next_id;           /* the id of the next connection */
    struct ws_server_timer *timers; /* the application's, to free */

    /* Cross-thread hand-off (post.c). post_lock guards what other threads
       touch: the queue, its byte count, wake_pending and ids (which only
       the loop thread changes). */
    pthread_mutex_t post_lock;
    bool post_ready; /* post_lock and wake_fd exist */
    struct ws_post_item *post_head, *post_tail;
    size_t posted_bytes;
    bool wake_pending;
    int wake_fd[2];
    struct ws_idmap ids; /* open connections by id */
    char error[256];
};

/* conn.c: accept one new socket as a connection. Returns 0 or WS_E*. */
int ws_conn_create(struct ws_server *s, int fd, const struct ws_net_addr *a);

/* conn.c: free a torn-down connection. */
void ws_conn_free(struct ws_conn *c);

/* conn.c: ws_conn_send() of a message whose text the caller has checked
   (a broadcast checks once for all). */
int ws_conn_send_checked(struct ws_conn *c, enum ws_msg_type type,
                         const void *data, size_t len);

/* conn.c: write c's queued output now (after an event). */
void ws_conn_flush(struct ws_conn *c);

/* conn.c: tear c down now (on_close, unwatch, close the socket). */
void ws_conn_teardown(struct ws_conn *c);

/* post.c: the cross-thread queue and its wake-up pipe. */
int ws_post_init(struct ws_server *s);
void ws_post_free(struct ws_server *s);

/* post.c: add c to / remove c from the open connections by id. */
int ws_post_register(struct ws_conn *c);
void ws_post_unregister(struct ws_conn *c);

/* timer.c: free every application timer still there. */
void ws_server_timers_free(struct ws_server *s);

/* server.c: queue c for teardown after the current event, reporting code. */
void ws_server_kill(struct ws_conn *c, int code);

/* server.c: queue c for a write attempt after the current event. */
void ws_server_want_flush(struct ws_conn *c);

/* server.c: the end of every event: flush, tear down. */
void ws_server_settle(struct ws_server *s);

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
