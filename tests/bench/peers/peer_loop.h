/*
 * peer_loop.h - the epoll loop the benchmark's own echo peers share
 * (raw_echo.c, floor_echo.c, tls_echo.c): listen, accept with
 * TCP_NODELAY, and keep what a peer is slow to take back. Each program
 * supplies what it does with a readable connection, and may supply how
 * its bytes are written (TLS).
 */
#ifndef WS_PEER_LOOP_H
#define WS_PEER_LOOP_H

#include <stddef.h>
#include <sys/uio.h>

/* Reads per readiness event, as in ws/conn.c. */
#define WS_PEER_READS_PER_WAKE 4

struct ws_peer;

/* fd is readable and has nothing waiting to be written. Returns 0, or -1
   to close fd. */
typedef int (*ws_peer_read_fn)(struct ws_peer *p, int fd);

/* fd is being closed: drop what the program keeps for it. */
typedef void (*ws_peer_drop_fn)(int fd);

/* Write up to n bytes to fd, like send(): the bytes taken, or -1 with
   errno (EAGAIN: call again with the same bytes, and maybe more, once fd
   is writable; what OpenSSL asks of an SSL_write retried). */
typedef ssize_t (*ws_peer_write_fn)(int fd, const void *buf, size_t n);

/* What a program supplies; drop and write may be NULL (nothing to drop;
   send() with MSG_NOSIGNAL, and sendmsg() for several pieces). */
struct ws_peer_ops {
    ws_peer_read_fn read;
    ws_peer_drop_fn drop;
    ws_peer_write_fn write;
};

/* Write iov[0..n) to fd, after anything still kept for it; what the
   socket does not take now is kept and written when fd is writable (reads
   on fd wait until then). 0 or -1. */
int ws_peer_send(struct ws_peer *p, int fd, const struct iovec *iov, int n);

/* Whether fd still has bytes waiting to be written. */
int ws_peer_blocked(const struct ws_peer *p, int fd);

/*
 * Parse --host H --port P (default 127.0.0.1:9002), listen, and run until
 * SIGINT or SIGTERM. name is the program's, for its messages. Returns the
 * exit status.
 */
int ws_peer_main(int argc, char **argv, const char *name,
                 ws_peer_read_fn on_read, ws_peer_drop_fn on_drop);

/* The same with every operation supplied; other options in argv are the
   program's and ignored here. */
int ws_peer_run(int argc, char **argv, const char *name,
                const struct ws_peer_ops *ops);

#endif
