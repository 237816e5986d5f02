/*
 * sock.h - TCP and UDP socket helpers: listeners and bound datagram
 * sockets on every address a host resolves to (through net/addr.c),
 * accept, and read/write/sendto/recvfrom wrappers that retry EINTR and
 * never raise SIGPIPE. Functions here return 0 (or a count) or the negated
 * errno of the call that failed, so that cleanup cannot overwrite it;
 * resolution failures return WS_ENOTFOUND. Setup calls take an optional
 * err buffer that receives one line naming the operation, the address and
 * the cause (net/neterr.h).
 */
#ifndef WS_NET_SOCK_H
#define WS_NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Enough for "[ffff:...:ffff%interface]:65535". */
#define WS_NET_ADDRSTRLEN 80

struct ws_net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Format sa as "127.0.0.1:80" or "[::1]:80" into out[0..cap). */
void ws_net_addr_format(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t cap);

/* The port of a bound socket, or -errno. */
int ws_net_local_port(int fd);

/*
 * Bind and listen on every address host:port resolves to (host NULL or "*"
 * means every local address, IPv4 and IPv6; IPv6 listeners are V6ONLY so
 * both can coexist). Sockets are non-blocking, close-on-exec, SO_REUSEADDR.
 * Stores up to max descriptors in fds. Returns the number of listeners
 * (>= 1), WS_ENOTFOUND, or -errno of the first failure (every socket opened
 * so far is closed); -EINVAL for NULL fds or port, or max < 1. Addresses
 * of a family the kernel lacks (EAFNOSUPPORT) are skipped unless none is
 * left. With port "0" every listener gets the port the kernel chose for
 * the first. err is emptied on success.
 */
int ws_net_tcp_listen(const char *host, const char *port, int backlog, int *fds,
                      int max, char *err, size_t errlen);

struct ws_net_sockopts;

/* What ws_net_bind() binds. Zero-filled: TCP on every address, port 0. */
struct ws_net_bind_req {
    const char *host; /* NULL or "*": every local address */
    const char *port; /* service or number; NULL means "0" */
    int socktype;     /* SOCK_STREAM (0 means this) or SOCK_DGRAM */
    int backlog;      /* listen() backlog for SOCK_STREAM; 0: SOMAXCONN */
    /* Applied to each socket before bind(); NULL: none. The borrowed
       struct is only read during the call. */
    const struct ws_net_sockopts *opts;
};

/*
 * Bind (and for SOCK_STREAM listen) a non-blocking close-on-exec socket on
 * every address req->host resolves to, IPv6 ones V6ONLY, up to max of
 * them; with port "0" all get the port the kernel chose for the first.
 * Returns the number of sockets stored in fds (>= 1), WS_ENOTFOUND, -EINVAL
 * (NULL req or fds, max < 1, a bad socktype or option) or -errno of the
 * first failure, with every socket opened so far closed and err (optional)
 * set, for instance "bind 127.0.0.1:80: Permission denied". Families the
 * kernel lacks are skipped unless none is left. err is emptied on success.
 */
int ws_net_bind(const struct ws_net_bind_req *req, int *fds, int max, char *err,
                size_t errlen);

/* ws_net_bind() for SOCK_DGRAM with no options: SO_REUSEADDR stays off,
   so that a port in use fails with -EADDRINUSE as it does for TCP. */
int ws_net_udp_bind(const char *host, const char *port, int *fds, int max,
                    char *err, size_t errlen);

/*
 * Accept one connection, non-blocking and close-on-exec (accept4).
 * Returns the fd, or -errno: -EAGAIN when none is pending, -EMFILE/-ENFILE
 * when out of descriptors. EINTR is retried; ECONNABORTED is reported as
 * -EAGAIN-like transient -ECONNABORTED.
 */
int ws_net_accept(int listen_fd, struct ws_net_addr *peer);

/* read() that retries EINTR: n > 0, 0 at end of stream, or -errno
   (-EAGAIN when nothing is available). */
ssize_t ws_net_read(int fd, void *buf, size_t len);

/* readv() that retries EINTR, filling the pieces in order: as
   ws_net_read(). One piece is a plain read(). */
ssize_t ws_net_readv(int fd, const struct iovec *iov, int iovcnt);

/* send(MSG_NOSIGNAL) that retries EINTR: bytes written or -errno. */
ssize_t ws_net_write(int fd, const void *buf, size_t len);

/* sendmsg(MSG_NOSIGNAL) over an iovec, retrying EINTR. */
ssize_t ws_net_writev(int fd, const struct iovec *iov, int iovcnt);

/* sendto(MSG_NOSIGNAL) retrying EINTR; to NULL sends on a connected
   socket. Bytes sent or -errno (-EAGAIN when the socket buffer is full). */
ssize_t ws_net_sendto(int fd, const void *buf, size_t len,
                      const struct ws_net_addr *to);

/* recvfrom() retrying EINTR; from (optional) gets the sender. Returns the
   datagram's length (a longer one is cut to len) or -errno: -EAGAIN when
   none is queued, -ECONNREFUSED on a connected socket whose peer port
   answered an earlier datagram with ICMP port unreachable. */
ssize_t ws_net_recvfrom(int fd, void *buf, size_t len,
                        struct ws_net_addr *from);

/* shutdown(how) (SHUT_WR: orderly end of our stream); 0 or -errno. */
int ws_net_shutdown(int fd, int how);

int ws_net_set_nonblock(int fd);
int ws_net_set_cloexec(int fd);
int ws_net_set_nodelay(int fd, int on);

/* close() that keeps errno's value for the caller. */
void ws_net_close(int fd);

#endif
