/*
 * connect.h - connect to host:port with a time limit: resolution through
 * net/addr.c, named options applied before connect(), a non-blocking
 * connect() waited for with poll(), and each address tried in turn. Also
 * a bounded wait for one descriptor's readiness.
 */
#ifndef WS_NET_CONNECT_H
#define WS_NET_CONNECT_H

#include <stddef.h>

#include "net/sock.h"

struct ws_net_sockopts;

/* Default connect time limit per address, in ms. */
#define WS_NET_CONNECT_TIMEOUT_MS 10000

/* Where and how to connect. Zero-filled: TCP, any family, 10 s. */
struct ws_net_connect_req {
    const char *host; /* name or literal ("::1", "[::1]", "localhost") */
    const char *port; /* service or number */
    int socktype;     /* SOCK_STREAM (0 means this) or SOCK_DGRAM */
    int timeout_ms;   /* per address; 0: WS_NET_CONNECT_TIMEOUT_MS;
                         < 0: no limit but the kernel's */
    /* Applied before connect(); NULL: none. Only read during the call. */
    const struct ws_net_sockopts *opts;
};

/*
 * Connect to the first address of req->host that accepts, trying each in
 * the resolver's order. A datagram socket is connected at once: its peer
 * is fixed, and ICMP errors come back as -ECONNREFUSED on later calls.
 * Returns the connected fd (non-blocking, close-on-exec; the caller owns
 * it) with *peer (optional) set, or: WS_ENOTFOUND (err: "resolve
 * nosuch.invalid:80: host not found"); -ETIMEDOUT ("connect
 * 127.0.0.1:80: timed out after 2000 ms"); -EINVAL for a NULL req, host or
 * port or a bad option; or the negated errno of the last address tried
 * ("connect 127.0.0.1:1: Connection refused").
 */
int ws_net_connect(const struct ws_net_connect_req *req,
                   struct ws_net_addr *peer, char *err, size_t errlen);

/*
 * Wait up to timeout_ms (< 0: forever) until fd is readable, or writable
 * when for_write is nonzero; EINTR restarts with the time left. Returns 1
 * when ready (an error or hang-up counts: the next call reports it), 0 on
 * timeout, or -errno.
 */
int ws_net_wait(int fd, int for_write, int timeout_ms);

#endif
