/*
 * listener.h - the listening sockets of one server on one loop: listen on
 * every address host:port resolves to, watch them, accept within a budget
 * per wake-up, and back off when the process is out of descriptors.
 */
#ifndef WS_NET_LISTENER_H
#define WS_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "net/loop.h"
#include "net/sock.h"

#define WS_NET_MAX_LISTENERS 16

/* A new connection: fd (non-blocking, close-on-exec) now belongs to the
   callee. */
typedef void (*ws_net_accept_cb)(void *arg, int fd,
                                 const struct ws_net_addr *peer);

/* accept() failed with -err; for EMFILE/ENFILE the listeners are already
   paused for pause_ms. */
typedef void (*ws_net_accept_err_cb)(void *arg, int err, int pause_ms);

struct ws_net_listener_config {
    const char *host; /* NULL or "*": every local address */
    const char *port;
    int backlog;
    int budget;      /* accepts per readiness event; 0: 64 */
    int pause_ms;    /* back-off after EMFILE/ENFILE; 0: 1000 */
    bool reuse_port; /* SO_REUSEPORT: share the port with other sockets */
    /* TCP_NODELAY on the listeners, which Linux copies to every socket
       they accept: no setsockopt() per connection. */
    bool nodelay;
    ws_net_accept_cb on_accept;
    ws_net_accept_err_cb on_error; /* may be NULL */
    void *arg;
};

struct ws_net_listener {
    struct ws_loop *loop; /* not owned */
    struct ws_net_listener_config cfg;
    int fds[WS_NET_MAX_LISTENERS]; /* owned */
    int n;
    struct ws_timer resume; /* re-arms the listeners after a back-off */
};

/*
 * Listen and start watching. Returns 0, or the code of the first failure
 * (net/error.h: WS_ENOTFOUND, the -errno of a socket call, or the loop's
 * WS_EFDSET / WS_ENOMEM for a listener it cannot watch); err then names
 * the operation, the address and the cause. Nothing is left open on
 * failure.
 */
int ws_net_listener_open(struct ws_net_listener *l, struct ws_loop *loop,
                         const struct ws_net_listener_config *cfg, char *err,
                         size_t errlen);

/* Stop watching, close every listener and the back-off timer. Safe on a
   zero-filled or already closed listener. */
void ws_net_listener_close(struct ws_net_listener *l);

/* The local address of listener i as "127.0.0.1:80" or "[::1]:80". */
void ws_net_listener_addr(const struct ws_net_listener *l, int i, char *out,
                          size_t cap);

#endif
