/*
 * transport.h - the one interface a connection's bytes go through: read
 * into pieces, write from pieces, end our direction, and what the
 * implementation holds that readiness cannot show. Two implementations:
 * the plain socket (transport_plain.c) and TLS (transport_tls.c, net/tls.h), so
 * that the layers above (http/, ws/) never learn which one they use.
 * Every call returns the codes of net/error.h.
 */
#ifndef WS_NET_TRANSPORT_H
#define WS_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * One connection's end of a transport, embedded in the connection; an
 * implementation keeps what it needs per connection here. Zero-filled with
 * fd -1 before open.
 */
struct ws_transport {
    int fd;
    void *state; /* the implementation's (NULL for the plain socket) */
};

/*
 * An implementation. The server picks one for all its connections and
 * keeps ctx, its shared state (NULL for the plain socket).
 */
struct ws_transport_ops {
    const char *name;
    /* Take over fd, an accepted non-blocking socket. 0 or a code; on
       failure fd is still the caller's to close. */
    int (*open)(struct ws_transport *t, int fd, void *ctx);
    /* Read into n pieces, each filled before the next, up to their
       total: the count (> 0), 0 at the end of the peer's stream,
       WS_EAGAIN when nothing can be read until the loop reports
       readiness again, or another code (the connection is broken). Less
       than the total, with pending() 0, means the socket is empty for
       now. */
    ssize_t (*readv)(struct ws_transport *t, const struct iovec *iov, int n);
    /* Write from n pieces: the bytes taken (> 0), WS_EAGAIN when none
       could be, or another code (broken). After WS_EAGAIN the next call
       must bring the same bytes again (at least as many; they may have
       moved): TLS holds a record made of them. */
    ssize_t (*writev)(struct ws_transport *t, const struct iovec *iov, int n);
    /* End our direction in order (after the last write): 0, or a code. */
    int (*shutdown)(struct ws_transport *t);
    /* Bytes the implementation has taken from the socket but read() has
       not returned yet: readiness will not report them, so the owner must
       read again before it waits. Always 0 for the plain socket. */
    size_t (*pending)(const struct ws_transport *t);
    /* The socket events (WS_IO_READ | WS_IO_WRITE of net/loop.h) to watch
       while the owner wants those in want: an implementation that must
       write to read (or read to write) asks for the other one too. */
    int (*events)(const struct ws_transport *t, int want);
    /* The loop reported events on the socket: the ones the owner should
       act on (a read that waited for the socket to be writable goes on
       when it is). */
    int (*ready)(const struct ws_transport *t, int events);
    /* The cause of the last WS_ETLS-like failure of t, as text ("" when
       the code says it all), written to buf[0..n). */
    void (*why)(const struct ws_transport *t, char *buf, size_t n);
    /* Release what open made and close the socket; fd becomes -1. */
    void (*close)(struct ws_transport *t);
};

/* The plain TCP socket. */
extern const struct ws_transport_ops ws_transport_plain;

#endif
