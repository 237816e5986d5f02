/*
 * conn.h - the struct behind struct ws_conn and the calls between the
 * connection's files, each with one job:
 *   conn.c       lifecycle: create, the end-of-event queues (flush, kill,
 *                free), teardown, the close code, timers and keepalive;
 *   conn_io.c    the transport side: reading into buffers, writing the
 *                output queue (a large frame straight from its payload),
 *                the linger after our FIN; the only code that reads or
 *                writes a connection's bytes;
 *   conn_http.c  the HTTP phase: requests, responses, the upgrade;
 *   conn_api.c   what the application sees: session events turned into
 *                callbacks, and the public ws_conn_* calls.
 * The server (server.c, post.c, timer.c) calls in; nothing here calls
 * into server.c. Internal to the library.
 */
#ifndef WS_CONN_H
#define WS_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "net/buf.h"
#include "net/loop.h"
#include "net/outq.h"
#include "net/sock.h"
#include "net/transport.h"
#include "ws/server.h"
#include "ws/session.h"
#include "ws/topic.h"

/*
 * Bytes asked of one read into a connection's own buffer, and the size of
 * the server's shared read buffer: eight chunks, so that one read takes
 * whatever the socket holds when several large messages are in flight
 * (four messages of a chunk, with their headers, do not fit in four
 * chunks: the last would be cut, and its end cost a second read), a frame
 * header more (so a message of that size arrives whole) and a byte for
 * the NUL the session borrows after each payload it delivers (ws.h
 * promises it).
 */
#define WS_READ_CHUNK 65536u
#define WS_READ_SHARED_CHUNKS 8u
#define WS_READ_SHARED                                                         \
    (WS_READ_SHARED_CHUNKS * WS_READ_CHUNK + WS_FRAME_MAX_HEADER + 1)

/* A frame at least this large, sent while nothing is queued, is written
   from where its payload lies; smaller ones are queued, so that several
   leave in one write. */
#define WS_CONN_DIRECT_MIN 16384u

/* A reply at least this large to what a read just brought waits, from
   where its payload lies, for the read's other replies (conn_io.c,
   corkable()); a smaller one is copied into the output queue, which
   costs less than one more piece of a gather write, unless it follows
   one that waits so. */
#define WS_CORK_MIN 256u

/* Where a connection is in its life. */
enum ws_conn_phase {
    WS_CONN_HTTP,   /* reading a request; plain responses may be queued */
    WS_CONN_WS,     /* upgraded: the session owns the bytes */
    WS_CONN_LINGER, /* our FIN is out; reading until the peer's */
    WS_CONN_DEAD    /* torn down; freed after the current dispatch */
};

struct ws_conn {
    struct ws_server *srv;
    uint64_t id;                  /* ws_conn_id(): never reused; srv->ids */
    struct ws_buf in;             /* owned: bytes read, not yet consumed */
    struct ws_buf out;            /* owned: bytes queued, not yet written */
    struct ws_outq *shared;       /* owned: shared frames among them */
    struct ws_topic_set topics;   /* owned: what c is subscribed to */
    struct ws_http_request *http; /* owned; only in WS_CONN_HTTP */
    struct ws_session session;    /* valid in WS_CONN_WS and after */
    struct ws_timer timer;        /* handshake, idle or close timeout */
    void *user_data;              /* the application's */
    struct ws_conn_extra *extra;  /* owned: NULL until first needed */
    struct ws_conn *flush_next;   /* srv->flush_list */
    struct ws_conn *doomed_next;  /* srv->kill_list, then srv->dead_list */
    struct ws_conn *input_next;   /* srv->input_list */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } peer; /* the peer's address (28 bytes) */
    /* The low 32 bits of the loop time of the last bytes read: quiet
       times are taken mod 2^32 ms, and keepalive checks come sooner than
       that (their periods are ints). */
    uint32_t last_rx_ms;
    struct ws_transport tr; /* owned: the socket, through srv->transport */
    uint16_t kill_code;     /* close code to report when torn down */
    uint16_t protocol;      /* 1 + index into srv->protocols, or 0 */
    uint8_t phase;          /* enum ws_conn_phase */
    uint8_t path;           /* the upgrade path: enum ws_conn_path */
    /* Flags, as bit-fields: every connection holds them. */
    bool opened : 1;            /* on_open ran, so on_close is owed */
    bool accepted : 1;          /* on_upgrade said yes: on_close is owed */
    bool close_timer : 1;       /* the close timeout is armed (once) */
    bool drain_armed : 1;       /* out reached the drain threshold */
    bool stream_on_open : 1;    /* ws_conn_set_streaming in on_upgrade */
    bool close_after_write : 1; /* plain HTTP: close once out is empty */
    bool queued_kill : 1;       /* on srv->kill_list */
    bool queued_flush : 1;      /* on srv->flush_list */
    bool queued_input : 1;      /* on srv->input_list */
    bool more_input : 1;        /* the transport holds input, unread */
    /* What other threads may read, under srv->post_lock, while c is in
       srv->ids (post.c): the bytes c had waiting at its last write (at
       most WS_CONN_GONE - 1), or WS_CONN_GONE once it began closing; and
       the bytes posted to it and not yet handled by the loop. 32 bits:
       every connection holds them. */
    _Atomic uint32_t post_view;
    _Atomic uint32_t post_pending;
};

/* What most connections never need, in one block made on first use
   (ws_conn_extra()), so that an idle connection pays one pointer for it
   all. */
struct ws_conn_extra {
    char *close_reason;       /* the peer's close reason */
    char *peer;               /* ws_conn_peer(), once asked */
    char *protocol;           /* a subprotocol picked outside srv->protocols */
    char *path;               /* an upgrade path that is no endpoint's */
    int32_t ping_ms, idle_ms; /* c's own keepalive, if own_keepalive */
    uint8_t close_reason_len; /* at most 123 (RFC 6455 §5.5) */
    bool own_keepalive;       /* ws_conn_set_keepalive() was called */
};

/* Where c's upgrade path is (ws_conn_path()): nowhere yet (the request
   holds it), "/", the server's copy of endpoint path - WS_CONN_PATH_ENDPOINT,
   or extra->path. */
enum ws_conn_path {
    WS_CONN_PATH_NONE = 0,
    WS_CONN_PATH_ROOT = 1,
    WS_CONN_PATH_ENDPOINT = 2,
    WS_CONN_PATH_COPY = 255
};

/* post_view of a connection that can take nothing more. */
#define WS_CONN_GONE UINT32_MAX

/* The connection that embeds a topic set (ws/topic.h). */
#define WS_CONN_OF_TOPICS(set)                                                 \
    ((struct ws_conn *)(void *)((char *)(set)-offsetof(struct ws_conn, topics)))

/* Walk every live connection, in no set order: for (size_t i = 0;
   (c = ws_conn_walk(s, &i)) != NULL;). Connections join srv->ids when
   accepted and leave it when torn down, so only calls that queue (kill,
   end, close, send) may be made inside a walk. */
static inline struct ws_conn *ws_conn_walk(const struct ws_server *s,
                                           size_t *pos)
{
    return (struct ws_conn *)ws_idmap_next(&s->ids, pos);
}

/* c's keepalive: its own (ws_conn_set_keepalive()) or the server's. */
static inline int ws_conn_ping_ms(const struct ws_conn *c)
{
    return c->extra && c->extra->own_keepalive ? c->extra->ping_ms
                                               : c->srv->cfg.ping_interval_ms;
}

static inline int ws_conn_idle_ms(const struct ws_conn *c)
{
    return c->extra && c->extra->own_keepalive ? c->extra->idle_ms
                                               : c->srv->cfg.idle_timeout_ms;
}

/* Bytes queued on c and not yet written: its own and shared ones. */
static inline size_t ws_conn_queued(const struct ws_conn *c)
{
    return ws_buf_size(&c->out) + ws_outq_bytes(c->shared);
}

/* The most a plain HTTP response (the 101 included) may hold: the larger
   of the output cap and the largest message, so that a file as large as
   a message may be served while the cap stays small. */
static inline size_t ws_conn_response_cap(const struct ws_server *s)
{
    return s->cfg.max_output_bytes > s->cfg.max_message_bytes
               ? s->cfg.max_output_bytes
               : s->cfg.max_message_bytes;
}

/* conn.c: c's extra block, made on first use; NULL when out of memory. */
struct ws_conn_extra *ws_conn_extra(struct ws_conn *c);

/* conn.c: take one accepted socket on as a connection. Returns 0 or a
   code; on failure fd is still the caller's. */
int ws_conn_create(struct ws_server *s, int fd, const struct ws_net_addr *a);

/* conn.c: queue c for teardown after the current event, reporting code. */
void ws_conn_kill(struct ws_conn *c, int code);

/* conn.c: end c after the current event with the code its state calls
   for (the peer's, ours, or 1006). */
void ws_conn_end(struct ws_conn *c);

/* conn.c: queue c for a write attempt after the current event. */
void ws_conn_want_flush(struct ws_conn *c);

/* conn.c: the end of every loop iteration (after all the connections'
   events) and of every other callback: write what was queued, tear down
   what was killed (whose on_close may queue more), until both lists are
   empty. */
void ws_conn_settle(struct ws_server *s);

/* conn.c: free the connections torn down by earlier events; only where
   no event handler is on the stack. */
void ws_conn_free_dead(struct ws_server *s);

/* conn.c: tear every connection down at once (server destroy), after a
   1001 close frame where one can still be written. */
void ws_conn_close_all(struct ws_server *s);

/* conn.c: the server is shutting down: start ending c as its phase
   allows (1001 on an open connection, 503 or a plain close before the
   upgrade); nothing is torn down before the next settle. */
void ws_conn_going_away(struct ws_conn *c);

/* conn.c: tell other threads what c has waiting, or that it is closing
   (post_view). */
void ws_conn_show_threads(struct ws_conn *c);

/* conn.c: act on the session's state after input or a send: arm the
   close timeout, queue a flush, or end an aborted connection. */
void ws_conn_after_session(struct ws_conn *c);

/* conn.c: c's keepalive values changed: measure the quiet time against
   them from now on (an open connection's next check is re-armed). */
void ws_conn_keepalive_changed(struct ws_conn *c);

/* conn.c: arm c's one timer for ms milliseconds. */
void ws_conn_timer(struct ws_conn *c, int ms);

/* conn.c: upgrade c: queue reply (the 101), open it to posts, start the
   session (with z, the negotiated compression, which it then owns; NULL:
   none) and the keepalive, run on_open. Returns 0 or WS_ENOMEM (nothing
   changed then, and z is still the caller's). */
int ws_conn_open(struct ws_conn *c, const void *reply, size_t len,
                 struct ws_deflate *z);

/* conn_io.c: readiness on c's socket (the loop's callback). */
void ws_conn_on_io(struct ws_loop *loop, int fd, int events, void *arg);

/* conn_io.c: read on for the connections whose transport holds input
   that readiness will not report (srv->input_list), then settle. */
void ws_conn_read_queued(struct ws_server *s);

/* conn_io.c: take c off srv->input_list (at teardown). */
void ws_conn_unqueue_input(struct ws_conn *c);

/* conn_io.c: write c's queued output now, as far as the socket takes it,
   and watch what c needs next. */
void ws_conn_flush(struct ws_conn *c);

/* conn_io.c: write the frames c's input produced and the server holds
   (srv->corked) before anything queued after them; nothing when none. */
void ws_conn_uncork(struct ws_conn *c);

/* conn_io.c: the bytes of c's frames held that way. */
size_t ws_conn_corked_bytes(const struct ws_conn *c);

/* conn_io.c: lend c the server's spare output buffer before a send, and
   take an emptied one back (or shrink it) after. */
void ws_conn_out_borrow(struct ws_conn *c);
void ws_conn_out_release(struct ws_conn *c);

/* conn_io.c: send one whole frame through the session, a large one
   written straight from data when nothing is queued before it;
   text_valid: the text is known to be valid UTF-8. Returns what
   ws_session_send() returns. */
int ws_conn_send_frame(struct ws_conn *c, uint8_t opcode, const void *data,
                       size_t len, bool text_valid);

/* conn_io.c: queue frame, built once for many connections, on c by
   reference (a reference taken). Returns what ws_session_share_check()
   returns, or WS_ENOMEM. */
int ws_conn_queue_shared(struct ws_conn *c, uint8_t opcode,
                         struct ws_shared *frame);

/* conn_http.c: feed input to the HTTP request; act on a complete one.
   Returns whether it made progress; *used gets the bytes consumed. */
bool ws_conn_input_http(struct ws_conn *c, const uint8_t *p, size_t len,
                        size_t *used);

/* conn_http.c: queue a complete error response and close once it is
   written. */
void ws_conn_respond_error(struct ws_conn *c, int status);

/* conn_api.c: the session's events, turned into the application's
   callbacks. */
extern const struct ws_session_handler ws_conn_session_events;

/* conn_api.c: ws_conn_send() of a frame built once for many (publish.c):
   ws_conn_queue_shared() with the checks and the end of a send. */
int ws_conn_send_shared(struct ws_conn *c, uint8_t opcode,
                        struct ws_shared *frame);

/* publish.c: c leaves every topic (at teardown). */
void ws_conn_leave_topics(struct ws_conn *c);

/* conn_api.c: ws_conn_send() of text the caller has checked (a broadcast
   checks once for all). */
int ws_conn_send_checked(struct ws_conn *c, enum ws_msg_type type,
                         const void *data, size_t len);

#endif
