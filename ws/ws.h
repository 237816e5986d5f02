/*
 * ws.h - the one public header of the ws library: a small, strict
 * WebSocket (RFC 6455) server for C programs, driven by a select() loop
 * that it runs itself or that the application already has.
 *
 * Calling rules, unless a function's comment says otherwise:
 *  - Thread: the library starts no threads. Call everything on the thread
 *    that runs the server (the loop thread). Exceptions: the
 *    ws_server_post*() calls (any thread), ws_server_stop() and
 *    ws_server_shutdown() (any thread, and signal handlers).
 *  - Callbacks: every function may be called from inside a callback,
 *    except ws_server_destroy(), ws_server_run(), ws_server_run_once(),
 *    ws_server_process() and ws_server_socket_action(), which return
 *    WS_EBUSY there.
 *  - Blocking: nothing waits for a peer. Sends queue and return at once.
 *  - Memory: the library copies what it is given (configuration, callback
 *    structs, messages to send). Pointers it gives out are borrowed: data
 *    passed to a callback until the callback returns, strings about a
 *    connection until its on_close returns, request strings until
 *    on_upgrade or on_http returns.
 *
 * Errors: functions return int; zero or a non-negative count is success, a
 * negative WS_E* code is failure (net/error.h, included below).
 * ws_strerror() and ws_errname() describe a code.
 */
#ifndef WS_WS_H
#define WS_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The error codes (WS_E*), ws_strerror() and ws_errname(): the base header
   that every layer of the library shares, installed beside this one. */
#include "net/error.h"
/* The TLS settings (struct ws_tls_config), installed beside it too. */
#include "net/tls_config.h"

/* RFC 6455 §7.4.1 close status codes the library itself sends. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* reported only, never sent */
    WS_CLOSE_ABNORMAL = 1006,  /* reported only, never sent */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011
};

/* The type of a whole message. */
enum ws_msg_type { WS_TEXT = 1, WS_BINARY = 2 };

struct ws_server;   /* opaque; ws_server_create() .. ws_server_destroy() */
struct ws_conn;     /* opaque; valid from on_open until on_close returns */
struct ws_request;  /* opaque; valid only during on_upgrade / on_http */
struct ws_response; /* opaque; valid only during on_upgrade / on_http */

/*
 * Server configuration. Zero-fill it, set what you need, pass it to
 * ws_server_create(), which copies it (strings and lists included). Zero
 * means "default" for every field.
 */
struct ws_config {
    const char *host; /* address or name to bind; default "127.0.0.1";
                         "*" binds every IPv4 and IPv6 address */
    const char *port; /* service or number; default "0" (the OS picks one,
                         read it back with ws_server_port()) */
    /* NULL-terminated list of WebSocket endpoint paths ("/chat"); an
       upgrade to any other path gets 404. Default: every path. */
    const char *const *paths;
    /* NULL-terminated list of subprotocols the server speaks, in order of
       preference (RFC 6455 §4.2.2 /subprotocol/), at most 65535 names of
       at most 128 bytes. Default: none. */
    const char *const *protocols;
    size_t max_message_bytes; /* 1009 above it; default 16 MiB */
    size_t max_frame_bytes;   /* 1009 above it; default max_message_bytes */
    size_t max_fragments;     /* 1009 above it; default 1048576 */
    size_t max_header_bytes;  /* request line + headers; 431 above it;
                                 default 16384 */
    size_t max_headers;       /* 431 above it; default 100 */
    size_t max_body_bytes;    /* a plain request's body, for on_http
                                 (ws_request_body()); 413 above it, at
                                 once when Content-Length says so; held
                                 only while the request is read and
                                 on_http runs; default 1 MiB */
    size_t max_connections;   /* refused (503) beyond; default what the
                                 backend can watch less 24: FD_SETSIZE - 24
                                 (1000) with select, where more is
                                 WS_EINVAL at create, the descriptor limit
                                 with epoll (ws_server_backend() says
                                 which the library was built with) */
    /* Unsent bytes a connection may have waiting before a send: a send
       (or publish) that finds more is refused with WS_EFULL and the
       connection closed with 1008, a peer that does not read. One
       message of any allowed size is taken while the queue is at or
       below it, so a connection holds at most this plus one message.
       Default 1 MiB (the README weighs it); plain HTTP responses may be
       as large as the larger of this and max_message_bytes. */
    size_t max_output_bytes;
    int handshake_timeout_ms; /* request must be complete; default 10000 */
    int close_timeout_ms;     /* wait for the peer's close; default 5000;
                                 also the longest ws_server_shutdown()
                                 waits for every peer */
    int backlog;              /* listen() backlog; default 511 */
    /* 1: listen with SO_REUSEPORT, so that several processes, or several
       threads each with a server of its own, listen on one port and the
       kernel spreads new connections among them (each keeps its own). */
    int reuse_port;
    /* A connection that has sent nothing (no frame, not even a pong) for
       idle_timeout_ms is closed with 1001. Default: no idle timeout. */
    int idle_timeout_ms;
    /* A connection that has sent nothing for ping_interval_ms gets a ping,
       so that a live peer answers and a dead one hits idle_timeout_ms.
       Default: no pings. */
    int ping_interval_ms;
    /* on_drain fires when an output queue that held at least this many
       bytes has been written out completely. Default half of
       max_output_bytes. */
    size_t drain_threshold_bytes;
    /* Bytes that other threads may have posted and the loop not yet
       handled; ws_server_post_send() beyond it fails. Default 64 MiB. */
    size_t max_posted_bytes;

    /*
     * permessage-deflate (RFC 7692). Off by default: with 1 the server
     * accepts the first offer of it that it supports (every browser makes
     * one) and declines the rest; the connection opens uncompressed
     * otherwise. max_message_bytes then limits the inflated size. zlib
     * state is made on first use; see the README for its memory.
     */
    int permessage_deflate;
    /* 1: the server keeps its compression context between messages (a
       better ratio, and a compressor per connection: about 256 KiB at
       window 15 and memory level 8). Default 0: it does not
       (server_no_context_takeover), and one compressor per window size
       serves every connection. */
    int deflate_server_context;
    /* 1: clients may keep their context (an inflater of about 40 KiB at
       window 15 then stays with each connection). Default 0: the server
       asks them not to (client_no_context_takeover), and connections
       keep no inflater between messages. */
    int deflate_client_context;
    int deflate_server_window_bits; /* 9..15; default 15 */
    /* 9..15; default 15. A limit only for clients that offer
       client_max_window_bits (RFC 7692 §7.1.2.2); not 8, which clients
       built on zlib cannot make. */
    int deflate_client_window_bits;
    int deflate_mem_level; /* zlib memLevel of the compressors, 1..9;
                              default 8 */
    int deflate_level;     /* zlib level, 1 (fastest) .. 9; default 1 */
    /* Text and binary messages shorter than this go uncompressed (always
       legal); default 64. Fragmented sends are always compressed. */
    size_t deflate_min_bytes;

    /*
     * TLS (wss:// and https://, OpenSSL): non-NULL, every connection of
     * this server speaks TLS; NULL, none does. The struct and its strings
     * are copied; the files are read by ws_server_listen(). One server is
     * one kind of listener: to serve ws:// and wss:// from one process,
     * create two servers (one loop can drive both, with ws_server_fdset()
     * and ws_server_process() on each). The TLS handshake counts against
     * handshake_timeout_ms; a connection whose handshake fails is reported
     * to on_error and never reaches on_upgrade, on_open or on_close.
     */
    const struct ws_tls_config *tls;

    /* Topics (ws_conn_subscribe()): the longest name in bytes, default
       256; the most topics one connection holds, default 1024. */
    size_t max_topic_bytes;
    size_t max_topics_per_conn;
};

/*
 * Callbacks. The library copies the struct at create time; a NULL member
 * means "not interested". Every callback receives the server's user_data as
 * its last argument. Data pointers passed in are borrowed: valid until the
 * callback returns. Inside a callback you may send on or close any
 * connection; you may not destroy the server (WS_EBUSY).
 */
struct ws_callbacks {
    /*
     * An upgrade request passed the RFC 6455 §4.2.1 checks (a GET without
     * a body) and names an endpoint. The return value is the answer:
     *  - 0 accepts: the 101 follows, with the headers added to res with
     *    ws_response_header() (Set-Cookie...; the handshake's own,
     *    Upgrade, Connection, Content-Length, Transfer-Encoding and every
     *    Sec-WebSocket-*, are WS_EINVAL), and the subprotocol picked with
     *    ws_response_protocol(), else the first of cfg.protocols the
     *    client offers. A body set in res is not sent (a 101 has none).
     *  - 400 to 599 refuses with that status (403 for a failed Origin
     *    check, 401 with a WWW-Authenticate header), the headers added
     *    and the body set in res, or a short text body when none is set;
     *    the connection then closes.
     *  - 301, 302, 303, 307 or 308 with a Location header added redirects
     *    the same way. RFC 6455 §4.1 lets a client follow it; browsers'
     *    WebSocket does not (the page sees a failed connection), other
     *    clients may.
     *  - Anything else, or a res call that failed with WS_ENOMEM, refuses
     *    with 500.
     * ws_response_status() and ws_response_file() return WS_ESTATE here.
     * c is not open yet: ws_conn_set_user_data() and _get, ws_conn_id(),
     * ws_conn_path(), ws_conn_peer(), ws_conn_tls_info(),
     * ws_conn_set_streaming() and ws_conn_set_keepalive() work; sends and
     * closes return WS_ESTATE.
     * User data set here: a refusal ends c without on_close, so free it
     * before returning one; an acceptance is always followed by on_close
     * (by on_open first, unless the 101 could not be queued: then
     * on_close alone, with 1006).
     */
    int (*on_upgrade)(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *user_data);
    /* The 101 has been queued; the connection is open. */
    void (*on_open)(struct ws_conn *c, void *user_data);
    /* A whole message arrived. Text is valid UTF-8, NUL-terminated at
       data[len] (not counted), for convenience. */
    void (*on_message)(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data);
    /* The connection is gone: once for every connection on_open saw, or
       on_upgrade accepted. code and reason are the peer's close when it
       sent one; else the close this side sent, when it failed the
       connection (1002 "protocol error", 1007, 1008 "peer is not
       reading", 1009) or started a close the peer never answered (1001
       "idle timeout", 1001 "server shutdown", or the application's);
       else 1006 (TCP broke without a closing handshake).
       ws_conn_closed_here() says which side began. After this returns,
       c is freed. */
    void (*on_close)(struct ws_conn *c, int code, const char *reason,
                     size_t reason_len, void *user_data);
    /* Something went wrong that the application may want to log, with
       a line of detail that names the peer. c may be NULL (an accept()
       failure; connections refused with 503 past max_connections,
       WS_EBUSY, told at most once a second with their count), or a
       connection that never opened (WS_ETLS: its TLS handshake failed,
       with OpenSSL's reason; WS_EHTTP: a malformed request, an upgrade
       the library refused with 400/404/426/431..., a handshake timeout),
       on which only ws_conn_peer() and the user data may be used. An open
       connection this side fails is told here too, before its on_close:
       WS_EPROTO (1002), WS_EUTF8 (1007), WS_EFULL (1008, a peer not
       reading), WS_ETOOBIG (1009). The application's own refusals and
       closes are not. err is a WS_E* code. */
    void (*on_error)(struct ws_conn *c, int err, const char *detail,
                     void *user_data);
    /* c's output queue, which had reached drain_threshold_bytes, is empty
       again: a producer that paused on ws_conn_buffered() may resume. */
    void (*on_drain)(struct ws_conn *c, void *user_data);
    /*
     * Streaming receive, for connections switched to it with
     * ws_conn_set_streaming(): each piece of a message as it arrives, in
     * order. first marks the first piece of a message, last its final one
     * (a piece may be both, and may be empty). Text is checked as UTF-8
     * as it arrives; a bad byte closes the connection with 1007 after the
     * pieces before it were delivered. max_message_bytes, max_frame_bytes
     * and max_fragments do not apply to such connections.
     */
    void (*on_fragment)(struct ws_conn *c, enum ws_msg_type type,
                        const void *data, size_t len, int first, int last,
                        void *user_data);
    /* A pong arrived (an answer to ws_conn_ping(), or unsolicited). */
    void (*on_pong)(struct ws_conn *c, const void *data, size_t len,
                    void *user_data);
    /*
     * A plain HTTP request (not an upgrade), its body read whole
     * (ws_request_body(), at most cfg.max_body_bytes; a client that sent
     * "Expect: 100-continue" was told 100 Continue first, or 413 at once
     * for a Content-Length over the limit). Fill res; the connection
     * stays open for the next request unless the client asked to close.
     * If this is NULL the server answers 426 Upgrade Required (with
     * Upgrade: websocket) on a WebSocket endpoint, which with no
     * cfg->paths is every path, and 404 on any other path.
     */
    void (*on_http)(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *user_data);
};

/*
 * Allocate a server. cfg and cb may be NULL (all defaults). Nothing is bound
 * yet: call ws_server_listen(). Returns 0 and sets *out, or WS_EINVAL (bad
 * field), WS_ENOMEM. On error *out is NULL, and ws_server_last_error(NULL)
 * says, on the calling thread, which field and why ("ping_interval_ms is
 * negative").
 */
int ws_server_create(struct ws_server **out, const struct ws_config *cfg,
                     const struct ws_callbacks *cb, void *user_data);

/*
 * Resolve cfg.host/cfg.port with getaddrinfo() and listen on every address
 * found (IPv4 and IPv6). With cfg.tls, read its files first. Returns 0, or
 * WS_ENOTFOUND, WS_EADDRINUSE, WS_EACCES, WS_EFDSET, WS_ESYS, WS_ETLS (a
 * TLS file cannot be used); ws_server_last_error() then has one line
 * naming the operation, the address or file, and the cause. WS_ESTATE
 * when already listening or while a ws_server_shutdown() is under way
 * (WS_EINVAL for NULL); after one has finished, a listen starts the server
 * afresh (ws_server_done() is 0 again).
 */
int ws_server_listen(struct ws_server *s);

/*
 * Close every listener: new connections are refused (by the system), the
 * connections already accepted go on as before. For draining before a
 * deploy: the new process takes the port (or shares it, with
 * cfg.reuse_port) while this one finishes its clients, then ends them
 * with ws_server_shutdown(). ws_server_port() is -1 afterwards;
 * ws_server_listen() may listen again (port "0" then gets a new port
 * from the system). Returns 0 (also when not listening) or WS_EINVAL for
 * NULL. May be called from callbacks.
 */
int ws_server_unlisten(struct ws_server *s);

/*
 * Certificate rotation without a restart: read TLS files again (tls NULL:
 * the ones configured, replaced in place; otherwise the settings of tls,
 * copied) into new contexts that the connections accepted from now on
 * use; open connections keep theirs. On failure nothing changes and
 * ws_server_last_error() names the file and OpenSSL's reason. Returns 0,
 * WS_ETLS, WS_EINVAL, WS_ENOMEM, or WS_ESTATE for a server without TLS.
 */
int ws_server_tls_reload(struct ws_server *s, const struct ws_tls_config *tls);

/* The last error text of ws_server_listen() or ws_server_tls_reload();
   "" when none. Valid until the next of those calls or
   ws_server_destroy(). With s NULL: why the calling thread's last
   ws_server_create() failed ("" after one that succeeded). */
const char *ws_server_last_error(const struct ws_server *s);

/* The port of the first listener, or -1 if not listening. */
int ws_server_port(const struct ws_server *s);

/*
 * Close every connection (each open one gets a 1001 close frame, one
 * best-effort write, no waiting, and its on_close), every listener and
 * every timer, and free the server and everything it owns. Other threads
 * must have stopped posting. Returns 0, or WS_EBUSY when called from a
 * callback (nothing is freed then), WS_EINVAL for NULL.
 */
int ws_server_destroy(struct ws_server *s);

/*
 * Run the loop until ws_server_stop(), or until a ws_server_shutdown() has
 * finished. Returns 0 after either (at once when a shutdown had finished
 * before the call), WS_EBUSY from a callback, or WS_ESYS if select()
 * itself fails.
 */
int ws_server_run(struct ws_server *s);

/*
 * Make ws_server_run() return after the current iteration, whatever the
 * connections are doing (ws_server_destroy() then closes them: one 1001
 * each, no waiting). Safe from a signal handler, from any thread and from
 * callbacks; also stops a graceful shutdown that is under way.
 */
void ws_server_stop(struct ws_server *s);

/*
 * Graceful shutdown. Like ws_server_stop(), safe from a signal handler,
 * from any thread and from callbacks: it records the request and wakes
 * the loop, and returns. At the end of the loop's current iteration
 * (ws_server_run(), ws_server_run_once() or ws_server_process()), on the
 * loop thread:
 *  1. what other threads posted before the call is handled (it is queued
 *     ahead of the closes), and every listener is closed, as by
 *     ws_server_unlisten();
 *  2. connections before the upgrade end: one that has begun a request
 *     gets 503 (with Connection: close), one that has sent nothing is
 *     closed, one whose answer is being written closes after it;
 *  3. every open WebSocket connection starts the closing handshake with
 *     1001 "going away" (RFC 6455 §7.4.1), queued after everything
 *     already queued on it: the peer receives all it was sent, then the
 *     close. A queue at max_output_bytes still takes it (the close frame
 *     is the one frame allowed past the cap) and nothing queued is
 *     dropped: a peer that does not read it all in time meets the
 *     deadline below. A connection already closing goes on as it was.
 *     From now on sends on them fail with WS_ECLOSED; messages that
 *     arrive before the peer's close are still delivered;
 *  4. the loop runs on: each connection ends (on_close) once its closing
 *     handshake is complete, or when it breaks;
 *  5. close_timeout_ms after step 1, whatever is left is closed (on_close
 *     with 1006, or with the peer's code when its close came but the TCP
 *     close did not).
 * When no connection is left, ws_server_done() becomes 1 and
 * ws_server_run() returns 0; the server then has no listener and no
 * connection, but keeps its timers and watched descriptors (the
 * application's) until ws_server_destroy(). A second ws_server_shutdown(),
 * or ws_server_stop(), makes ws_server_run() return at once, as
 * ws_server_stop() does (a second Ctrl-C). Called before ws_server_run(),
 * the shutdown begins with its first iteration.
 */
void ws_server_shutdown(struct ws_server *s);

/*
 * 1 once a ws_server_shutdown() has finished (no connection was left: the
 * point where ws_server_run() returns 0), else 0: before it, while it is
 * under way, after ws_server_stop() cut it short, and after a new
 * ws_server_listen(). For a loop that drives ws_server_run_once() or
 * ws_server_process() itself: call them until this is 1, then destroy the
 * server (or listen again). 0 for NULL.
 */
int ws_server_done(const struct ws_server *s);

/*
 * Wait up to timeout_ms (-1: until something happens, 0: poll) for
 * readiness, then handle what is ready and the timers that are due (and a
 * ws_server_shutdown() asked for: ws_server_done() says when it is over).
 * Returns the number of events handled (>= 0), WS_EBUSY from a callback, or
 * WS_ESYS.
 */
int ws_server_run_once(struct ws_server *s, int timeout_ms);

/*
 * For a select() loop the application owns (libcurl multi style): add the
 * server's descriptors to the caller's sets (FD_ZERO them first: this only
 * adds bits) and raise *max_fd to the highest one added. With the select
 * backend (the default) the server never holds a descriptor at or above
 * FD_SETSIZE; with the epoll backend such descriptors cannot go in an
 * fd_set and are left out, so embed with the select backend, or per
 * descriptor with either (ws_server_socket_callback() below). Returns 0 or
 * WS_EINVAL; WS_ESTATE once per-descriptor embedding was chosen.
 */
int ws_server_fdset(struct ws_server *s, fd_set *read_set, fd_set *write_set,
                    int *max_fd);

/*
 * The longest the caller's select() may sleep before ws_server_process()
 * (or ws_server_socket_action(s, -1, 0), embedded per descriptor) must be
 * called again for the server's timers, in ms; -1 means no timer is
 * pending; 0 also when a call made outside the server's events (a send
 * from the application's own code) left work for the next one. Returns 0
 * or WS_EINVAL.
 */
int ws_server_timeout(struct ws_server *s, long *timeout_ms);

/*
 * Handle the descriptors that the caller's select() reported ready (sets
 * may be NULL) and the timers that are due, and act on a
 * ws_server_shutdown() (whose wake-up makes one of the server's
 * descriptors readable; ws_server_done() says when it is over). Returns
 * the number of events handled, or WS_EBUSY from a callback.
 */
int ws_server_process(struct ws_server *s, const fd_set *read_set,
                      const fd_set *write_set);

/*
 * Per-descriptor embedding, for an epoll, libevent or libuv loop the
 * application owns (libcurl's curl_multi_socket_action() style), with
 * either backend the library was built with: the server then polls
 * nothing itself. The library tells cb which descriptors to watch for
 * what, and the application tells ws_server_socket_action() which became
 * ready.
 *
 * ws_server_socket_callback() chooses this mode for good; call it after
 * ws_server_create() and before ws_server_listen(). Before it returns, cb
 * is told every descriptor the server watches already (its wake-up pipes,
 * and those of ws_server_watch()). From then on cb(s, fd, events, arg)
 * runs each time the interest in a descriptor changes: a listener, a new
 * connection, writability wanted or no longer wanted, a listener paused
 * (out of descriptors), a watch of the application's, a close. events is
 * the new full mask of WS_WATCH_READ | WS_WATCH_WRITE: the first non-zero
 * mask for an fd is an add, a later one a modification, and 0 a removal,
 * told before the library closes the descriptor (so an fd number told
 * again later is a new descriptor). An unchanged mask is never told.
 * ws_server_destroy() tells a 0 for each descriptor left. cb runs on the
 * loop thread, from inside ws_server_socket_action() (also in the middle
 * of the application's batch of events) and from calls such as
 * ws_server_listen(), ws_server_watch() or ws_server_destroy(); it may
 * only update the application's poller: any call into the server there
 * returns WS_EBUSY.
 *
 * In this mode ws_server_run(), ws_server_run_once(), ws_server_fdset()
 * and ws_server_process() return WS_ESTATE, ws_server_stop() only wakes
 * the loop (the application decides when its loop ends; ws_server_done()
 * still tells when a graceful shutdown is over), ws_server_backend() says
 * "external", and a max_connections left 0 defaults to the process's
 * hard descriptor limit less 24 (as with epoll, whatever the build).
 * Returns 0, WS_EINVAL (s or cb NULL), WS_ESTATE (listening, connections
 * left, or chosen already), WS_EBUSY (from a callback).
 */
typedef void (*ws_socket_cb)(struct ws_server *s, int fd, int events,
                             void *arg);
int ws_server_socket_callback(struct ws_server *s, ws_socket_cb cb, void *arg);

/*
 * fd became ready for events (WS_WATCH_READ | WS_WATCH_WRITE, as the
 * application's poller reports it: level-triggered, so leave epoll in
 * its default mode; report an error or hang-up as both bits), or fd is -1
 * with events 0 when only time passed (the application's timer fired).
 * Handles that descriptor (only for what it is watched for; a report for
 * a descriptor no longer watched, from a batch polled before a close, is
 * ignored), the timers that are due, and everything ws_server_process()
 * does around them: writes queued by the application's own code, a
 * ws_server_shutdown() asked for, work posted by other threads (when its
 * wake-up pipe is reported). One call per ready descriptor; then ask
 * ws_server_timeout() for the next deadline (or let the deadline callback
 * below tell it). Returns the number of events handled (>= 0), WS_EINVAL
 * (s NULL, fd below -1, unknown event bits, events with fd -1), WS_ESTATE
 * (not in this mode) or WS_EBUSY (from a callback, or from cb).
 */
int ws_server_socket_action(struct ws_server *s, int fd, int events);

/*
 * Optional, for loops whose timers are events (libevent, libuv), where
 * asking ws_server_timeout() before each wait is not possible (libcurl's
 * CURLMOPT_TIMERFUNCTION): cb(s, timeout_ms, arg) is told the deadline
 * the application's one-shot timer must hold. timeout_ms >= 0: (re)arm
 * it to fire in timeout_ms, replacing the one held; -1: cancel it. When
 * it fires, call ws_server_socket_action(s, -1, 0).
 *
 * The rule: the library tracks the deadline it last told (none at
 * first). It tells cb whenever the deadline it needs differs from that,
 * and at no other time: when this is called (if there is one), at the end
 * of every ws_server_socket_action() (for timers started, stopped or run
 * in callbacks, by connections and by posted work), and from any other
 * call on the loop thread that moves it (ws_server_timer_start() from
 * the application's own code; 0 when a send, close or broadcast from it
 * left work that the next ws_server_socket_action() does). A call with fd
 * -1 says the timer held has fired: none is held any more, so the
 * deadline is told again at the end of that call if there still is one
 * (also when the timer fired a little early). Work posted from other
 * threads and ws_server_shutdown() wake the loop through a descriptor
 * instead. ws_server_destroy() tells -1 if a deadline is held. cb may
 * not call into the server (WS_EBUSY). Returns 0, WS_EINVAL (s NULL),
 * WS_ESTATE (ws_server_socket_callback() not called); cb NULL stops the
 * telling.
 */
typedef void (*ws_deadline_cb)(struct ws_server *s, long timeout_ms, void *arg);
int ws_server_deadline_callback(struct ws_server *s, ws_deadline_cb cb,
                                void *arg);

/*
 * Queue one message of type on every open connection: publishing to
 * everyone (see the topics below; the same machinery). Returns the number
 * of connections it was queued on (>= 0), WS_EINVAL (bad type, text that
 * is not UTF-8) or WS_ETOOBIG (above max_message_bytes). A connection
 * with more than max_output_bytes waiting is closed with 1008 (as with
 * ws_conn_send()); the others are not held up.
 */
int ws_server_broadcast(struct ws_server *s, enum ws_msg_type type,
                        const void *data, size_t len);

/*
 * Topics (publish/subscribe). A topic is a NUL-terminated byte string of
 * 1 to max_topic_bytes bytes, compared byte for byte (case-sensitive, no
 * normalisation); it exists while it has subscribers. A connection
 * leaves all its topics when its closing handshake begins (at the end of
 * the event: a publish under way still counts it), and holds
 * at most max_topics_per_conn. Subscribing and unsubscribing cost O(1)
 * on average (a hash look-up; unsubscribing also scans the connection's
 * own topics), never a scan of other topics or connections; publishing
 * to a topic nobody is subscribed to costs one look-up.
 *
 * A published message is checked once (text must be UTF-8), framed once
 * (and compressed once per shared compressor, where permessage-deflate
 * was negotiated without server context takeover), and queued on every
 * subscriber by reference: a subscriber whose socket takes part of it
 * keeps an offset, and the frame is freed when the last one has written
 * it. A connection that keeps its own compression context gets a copy of
 * its own; one that is sending a message in pieces is skipped (not
 * counted), as ws_conn_send() would refuse it with WS_ESTATE.
 */

/* Subscribe c (open) to topic. Returns 1 (subscribed now), 0 (it was
   already), WS_EINVAL (empty or NULL name), WS_ETOOBIG (name above
   max_topic_bytes, or c at max_topics_per_conn), WS_ECLOSED, WS_ENOMEM. */
int ws_conn_subscribe(struct ws_conn *c, const char *topic);

/* Returns 1 (unsubscribed), 0 (c was not subscribed), WS_EINVAL. */
int ws_conn_unsubscribe(struct ws_conn *c, const char *topic);

/* 1 if c is subscribed to topic, else 0 (WS_EINVAL for NULL). */
int ws_conn_subscribed(const struct ws_conn *c, const char *topic);

/* c's topics: how many, and the i-th (0 <= i < count; NULL beyond), in
   no particular order; valid until c unsubscribes from it. */
size_t ws_conn_topic_count(const struct ws_conn *c);
const char *ws_conn_topic(const struct ws_conn *c, size_t i);

/* How many connections are subscribed to topic. */
size_t ws_server_subscribers(const struct ws_server *s, const char *topic);

/*
 * Queue the message on every subscriber of topic. Returns how many it was
 * queued on (0 with no subscribers), WS_EINVAL (bad type or topic, text
 * that is not UTF-8), WS_ETOOBIG (topic above max_topic_bytes, message
 * above max_message_bytes). Subscribers with more than max_output_bytes
 * waiting are closed with 1008; the others are not held up.
 */
int ws_server_publish(struct ws_server *s, const char *topic,
                      enum ws_msg_type type, const void *data, size_t len);

/* ws_server_publish() to every subscriber but c (the sender), whether or
   not c is one. */
int ws_conn_publish(struct ws_conn *c, const char *topic, enum ws_msg_type type,
                    const void *data, size_t len);

/*
 * For a bridge to a broker (ws/redis.h is one): an observer is told when
 * a topic gains its first local subscriber and loses its last, and of
 * every ws_server_publish() and ws_conn_publish() (even with no local
 * subscriber: remote ones may have it). ws_server_deliver() queues a message
 * from elsewhere on the local subscribers only and tells no observer, so a
 * bridge never sends back what it received. One observer per server
 * (WS_EBUSY for a second); NULL removes it. The callbacks run on the loop
 * thread.
 */
struct ws_topic_observer {
    void (*first)(struct ws_server *s, const char *topic, void *arg);
    void (*last)(struct ws_server *s, const char *topic, void *arg);
    void (*published)(struct ws_server *s, const char *topic,
                      enum ws_msg_type type, const void *data, size_t len,
                      void *arg);
};
int ws_server_observe_topics(struct ws_server *s,
                             const struct ws_topic_observer *o, void *arg);
int ws_server_deliver(struct ws_server *s, const char *topic,
                      enum ws_msg_type type, const void *data, size_t len);

/* The polling backend the library was built with: "select" or "epoll"
   (make BACKEND=epoll); "" for NULL. */
const char *ws_server_backend(const struct ws_server *s);

/* The number of open WebSocket connections. */
size_t ws_server_conn_count(const struct ws_server *s);

/*
 * Queue one message on c; data is copied, so the caller's buffer is free
 * when this returns. Writes are corked: what is sent to c during one
 * turn of the loop (one callback or several) leaves in one write at its
 * end. A large message (16 KiB or more) with nothing queued before it is
 * written at once instead, and only what the socket did not take is
 * copied (compressed, from the compressor's output, when that is still
 * 16 KiB or more). A message of 256 bytes or more that echoes or relays
 * what c just sent (uncompressed, from the bytes of that read, with nothing
 * queued before it) waits for the other replies to that read instead,
 * and they leave in one gather write from where they lie once the read
 * is processed. Returns 0, or:
 *   WS_EINVAL   bad argument or text that is not valid UTF-8;
 *   WS_ECLOSED  the close handshake has begun: nothing more may be sent;
 *   WS_ETOOBIG  len is larger than max_message_bytes;
 *   WS_EFULL    more than max_output_bytes wait already: the peer is not
 *               reading. The message is not queued and the connection is
 *               closed with 1008 (policy violation); on_close follows once
 *               the close is out or close_timeout_ms has passed. A
 *               producer that stops at ws_conn_buffered() >= the drain
 *               threshold and resumes in on_drain never meets it;
 *   WS_ENOMEM.
 */
int ws_conn_send(struct ws_conn *c, enum ws_msg_type type, const void *data,
                 size_t len);

/* ws_conn_send() of a NUL-terminated text. */
int ws_conn_send_text(struct ws_conn *c, const char *text);

/* ws_conn_send() of a binary message. */
int ws_conn_send_binary(struct ws_conn *c, const void *data, size_t len);

/*
 * Send a ping with up to 125 bytes of payload (RFC 6455 §5.5.2); the answer
 * comes to on_pong. Returns 0, WS_EINVAL (len > 125), WS_ECLOSED, WS_EFULL,
 * WS_ENOMEM.
 */
int ws_conn_ping(struct ws_conn *c, const void *data, size_t len);

/*
 * Start the closing handshake (RFC 6455 §7.1.2): send a close frame with
 * code (1000-4999, not 1004-1006/1015) and an optional UTF-8 reason of up to
 * 123 bytes (reason may be NULL). on_close follows once the peer answers,
 * or after close_timeout_ms. Returns 0, WS_EINVAL, WS_ECLOSED (already
 * closing: nothing changes).
 */
int ws_conn_close(struct ws_conn *c, int code, const char *reason);

/*
 * Send one message in pieces, without building it in memory (RFC 6455
 * §5.4 fragmentation): begin with the first piece and the type, continue
 * with more, finish with the last (any piece may be empty). Pings and a
 * close may go out between pieces; whole messages may not: ws_conn_send()
 * returns WS_ESTATE until the message is finished. Text pieces may split a
 * UTF-8 character; the whole must be valid (WS_EINVAL otherwise, and the
 * piece is not sent). Each returns 0, WS_ESTATE (begin while a message is
 * open, continue or finish with none), WS_EINVAL, WS_ECLOSED, WS_EFULL,
 * WS_ENOMEM.
 */
int ws_conn_send_begin(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len);
int ws_conn_send_continue(struct ws_conn *c, const void *data, size_t len);
int ws_conn_send_finish(struct ws_conn *c, const void *data, size_t len);

/*
 * Deliver c's messages piece by piece to on_fragment instead of whole to
 * on_message (on = 1), or go back (0). Call it in on_upgrade or on_open.
 * Returns 0, WS_EINVAL (no on_fragment callback), WS_ESTATE (a message is
 * half received).
 */
int ws_conn_set_streaming(struct ws_conn *c, int on);

/*
 * c's own keepalive, in place of the server's ping_interval_ms and
 * idle_timeout_ms (the same meaning; 0 turns one off, -1 keeps what c
 * has): a mobile client may be pinged more often than a desktop one, a
 * trusted service never timed out. From on_upgrade on; on an open
 * connection the quiet time so far counts against the new values at
 * once. Returns 0, WS_EINVAL (NULL, below -1), WS_ECLOSED (c is
 * closing), WS_ENOMEM (the first call keeps the values in a block made
 * for it: connections that never call it do not pay for them).
 */
int ws_conn_set_keepalive(struct ws_conn *c, int ping_interval_ms,
                          int idle_timeout_ms);

/*
 * A number that names c for as long as the server lives: never reused, so
 * another thread may keep it (unlike the pointer) and pass it to
 * ws_server_post_send(). ws_server_find() turns it back into c while c is
 * open.
 */
uint64_t ws_conn_id(const struct ws_conn *c);
struct ws_conn *ws_server_find(struct ws_server *s, uint64_t id);

/*
 * Cross-thread calls: any thread may make them; they never block on a
 * client, only briefly on the server's queue lock, and they wake the loop.
 * The work happens on the loop thread, in order. They must not be called
 * after ws_server_destroy() has begun.
 *
 * ws_server_post_send() copies data and queues it for the connection
 * named id. Returns 0, WS_ECLOSED (no open connection has that id now,
 * or its closing handshake has begun), WS_EINVAL (bad type, or text that
 * is not UTF-8), WS_EFULL (more than max_posted_bytes wait already in
 * all, or more than max_output_bytes wait for this connection: what
 * ws_server_conn_buffered() counts; the connection is not closed for
 * it, so a producer may wait and post again), WS_ENOMEM. A connection
 * that closes before the loop gets to the message simply does not
 * receive it.
 *
 * ws_server_conn_buffered() is ws_conn_buffered() for another thread:
 * the bytes waiting for the connection named id, its output queue as
 * of its last write plus what was posted to it and not yet handled by
 * the loop (each counted in 32 bits: a queue of 4 GiB or more reads as
 * just under 4 GiB, and a post past 4 GiB pending for one connection is
 * WS_EFULL). WS_ECLOSED once its closing handshake has begun or it is
 * gone, WS_EINVAL for NULL. A producer thread stops posting to a
 * connection at the drain threshold, and is woken by the application's
 * on_drain (a condition variable, a pipe) or asks again later.
 *
 * ws_server_post_broadcast() is ws_server_broadcast() from any thread,
 * and ws_server_post_publish() ws_server_publish() (topic and data are
 * copied; the topic is checked when the loop publishes).
 * Returns 0, WS_EINVAL, WS_EFULL, WS_ENOMEM.
 *
 * ws_server_post() runs fn(s, arg) on the loop thread, where every
 * ws_conn call is allowed. Each pending call counts as a small fixed size
 * against max_posted_bytes. Returns 0, WS_EINVAL, WS_EFULL, WS_ENOMEM.
 *
 * Work still queued when ws_server_destroy() runs is dropped: messages
 * are freed, posted calls are not run (free their arg yourself, or post
 * nothing that owns memory after asking the loop to stop).
 */
int ws_server_post_send(struct ws_server *s, uint64_t id, enum ws_msg_type type,
                        const void *data, size_t len);
ssize_t ws_server_conn_buffered(struct ws_server *s, uint64_t id);
int ws_server_post_broadcast(struct ws_server *s, enum ws_msg_type type,
                             const void *data, size_t len);
int ws_server_post_publish(struct ws_server *s, const char *topic,
                           enum ws_msg_type type, const void *data, size_t len);
int ws_server_post(struct ws_server *s,
                   void (*fn)(struct ws_server *s, void *arg), void *arg);

struct ws_server_timer; /* opaque; from ws_server_timer_start() */

/*
 * Timers on the server's loop: cb runs on the loop thread after
 * timeout_ms, then every repeat_ms (0: once). Returns 0 and sets *out, or
 * WS_EINVAL, WS_ENOMEM. The timer lives until ws_server_timer_stop() or
 * ws_server_destroy().
 */
int ws_server_timer_start(struct ws_server *s, struct ws_server_timer **out,
                          unsigned timeout_ms, unsigned repeat_ms,
                          void (*cb)(struct ws_server_timer *t, void *arg),
                          void *arg);

/* Stop t and free it; allowed inside t's own callback (it will not fire
   again). */
void ws_server_timer_stop(struct ws_server_timer *t);

/*
 * Descriptors of the application's own watched by the server's loop,
 * next to its connections (a broker's socket, a pipe): cb runs when fd is
 * ready for what events asks (WS_WATCH_READ | WS_WATCH_WRITE; 0 pauses
 * the watch), as any callback does. The descriptor stays the
 * application's: unwatch it before closing it. Returns 0, WS_EINVAL,
 * WS_EBUSY (fd watched already), WS_EFDSET (beyond what the backend can
 * watch), WS_ENOMEM; the others 0, WS_EINVAL or WS_ESTATE (not watched).
 */
enum { WS_WATCH_READ = 1, WS_WATCH_WRITE = 2 };
typedef void (*ws_watch_cb)(struct ws_server *s, int fd, int events, void *arg);
int ws_server_watch(struct ws_server *s, int fd, int events, ws_watch_cb cb,
                    void *arg);
int ws_server_watch_events(struct ws_server *s, int fd, int events);
int ws_server_unwatch(struct ws_server *s, int fd);

/* Attach and read back the application's pointer for c. The library never
   dereferences it; free what it points to in on_close. */
void ws_conn_set_user_data(struct ws_conn *c, void *data);
void *ws_conn_get_user_data(const struct ws_conn *c);

/* The peer address as text ("127.0.0.1:5000", "[::1]:5000"); valid
   until on_close returns, like every string about c below. */
const char *ws_conn_peer(const struct ws_conn *c);

/* The peer address as the system gives it (struct sockaddr_in or
   sockaddr_in6): up to *len bytes are copied to addr (a struct
   sockaddr_storage holds either) and *len is set to its size. Returns
   0, or WS_EINVAL for NULL arguments. */
int ws_conn_peer_addr(const struct ws_conn *c, struct sockaddr *addr,
                      socklen_t *len);

/* The peer's port, in host order. */
int ws_conn_peer_port(const struct ws_conn *c);

/*
 * Call fn for every open connection of s (on_open has run, on_close has
 * not), in no set order; for statistics, or to close one's own kind. fn
 * may send on and close the connection it is given (a close takes effect
 * after the visit) but must not destroy the server. Returns the number
 * of connections visited, or WS_EINVAL.
 */
int ws_server_each_conn(struct ws_server *s,
                        void (*fn)(struct ws_conn *c, void *arg), void *arg);

/* What c's TLS session is: its version, cipher, the server name the
   client asked for and the subject of a verified client certificate.
   From on_upgrade on (the handshake is over then). 0, or WS_ESTATE when
   c's server does not speak TLS. */
int ws_conn_tls_info(const struct ws_conn *c, struct ws_tls_info *info);

/* The request path of the upgrade ("/chat"), without the query. */
const char *ws_conn_path(const struct ws_conn *c);

/* The negotiated subprotocol, or NULL when none. */
const char *ws_conn_protocol(const struct ws_conn *c);

/* Bytes queued on c and not yet written to the socket. */
size_t ws_conn_buffered(const struct ws_conn *c);

/*
 * The extensions in force on c, as the Sec-WebSocket-Extensions value the
 * server answered with ("permessage-deflate; server_no_context_takeover;
 * client_no_context_takeover"), or "" for none. Valid until on_close
 * returns; "" also when out of memory.
 */
const char *ws_conn_extensions(const struct ws_conn *c);

/* 1 when this side (the application or the library) began the closing
   handshake or failed the connection, 0 when the peer began it or the
   connection broke without one. Most useful in on_close. */
int ws_conn_closed_here(const struct ws_conn *c);

/* The server c belongs to. */
struct ws_server *ws_conn_server(const struct ws_conn *c);

/* Request accessors; strings are NUL-terminated and valid during the
   callback only. */
const char *ws_request_method(const struct ws_request *r); /* "GET" */
/* The path as sent (still percent-encoded), without the query. */
const char *ws_request_path(const struct ws_request *r);
const char *ws_request_query(const struct ws_request *r); /* "" if none */
/*
 * The value of the query parameter name ("?room=lobby&nick=ada+b"),
 * decoded as browsers encode forms and URLSearchParams ("+" a space,
 * "%XX" a byte; names compared decoded), into out[0..size) with a NUL
 * after it. The first of repeated names; a name without "=" has the
 * empty value. Returns the value's length (a decoded %00 stays inside
 * it), WS_ENOTFOUND (no such parameter), WS_EINVAL (a bad "%" escape in
 * the value, NULL arguments, size 0) or WS_ENOSPC (out too small); out
 * holds "" after an error.
 */
ssize_t ws_request_param(const struct ws_request *r, const char *name,
                         char *out, size_t size);
/* The first header named name (case-insensitive), or NULL. */
const char *ws_request_header(const struct ws_request *r, const char *name);
/* The number of headers, and the i-th name and value (0 on success). */
size_t ws_request_header_count(const struct ws_request *r);
int ws_request_header_at(const struct ws_request *r, size_t i,
                         const char **name, const char **value);
const char *ws_request_peer(const struct ws_request *r);
/*
 * The request's body (Content-Length or chunked, RFC 7230 §3.3; without
 * the chunk framing and trailers) and, in *len when len is not NULL, its
 * length. Never NULL: "" with 0 when there is none (always so in
 * on_upgrade). A NUL follows it (not counted), so a text body is a
 * string; a binary one may hold NULs of its own. Valid until on_http
 * returns, then freed.
 */
const void *ws_request_body(const struct ws_request *r, size_t *len);

/*
 * Response building, for on_http and on_upgrade (see there what each
 * part does in an upgrade). The status defaults to 200. Header names
 * must be tokens, and names and values must not contain CR or LF
 * (WS_EINVAL); the library writes Content-Length, Connection and
 * Transfer-Encoding itself (WS_EINVAL). The body is copied. Each returns
 * 0, WS_EINVAL or WS_ENOMEM; ws_response_status() WS_ESTATE in
 * on_upgrade, whose return value is the status.
 */
int ws_response_status(struct ws_response *res, int status);
int ws_response_header(struct ws_response *res, const char *name,
                       const char *value);
int ws_response_body(struct ws_response *res, const void *data, size_t len);

/*
 * In on_upgrade: answer with the subprotocol name (RFC 6455 §4.2.2
 * /subprotocol/), which must be one the client offered in
 * Sec-WebSocket-Protocol, spelt as it offered it (clients check); NULL
 * answers with none, even when cfg.protocols has one the client
 * offered. Without this call cfg.protocols decides, as always. The name
 * is copied; ws_conn_protocol() reports it once c is open. The last call
 * wins. Returns 0, WS_EINVAL (NULL res, a name not offered or longer than
 * 128 bytes; the earlier pick stands) or WS_ESTATE (in on_http).
 */
int ws_response_protocol(struct ws_response *res, const char *name);

/*
 * Answer req, in on_http, with a file under the directory root. The request
 * path is percent-decoded, then canonicalised (dot segments resolved, "//"
 * collapsed) before anything touches the file system, so no "..",
 * "%2e%2e", encoded slash, backslash or NUL can name a file outside root;
 * a path ending in "/" serves its index.html. Sets the status (200; 404
 * when no regular file is there; 400 for a malformed path; 405 with
 * "Allow: GET, HEAD" for other methods), Content-Type from the extension,
 * and the body. Returns 0 when res holds an answer (any status), WS_EINVAL
 * for NULL arguments, WS_ETOOBIG for a file larger than max_output_bytes
 * and max_message_bytes both, WS_ENOMEM, WS_ESTATE in on_upgrade.
 */
int ws_response_file(struct ws_response *res, const struct ws_request *req,
                     const char *root);

#ifdef __cplusplus
}
#endif

#endif
