/*
 * backend.h - the contract every polling backend implements. The loop owns
 * the watcher table; a backend only turns interest into readiness. The
 * Makefile links exactly one backend_*.c.
 */
#ifndef WS_NET_BACKEND_H
#define WS_NET_BACKEND_H

#include <stddef.h>

struct ws_backend; /* defined by each backend */

/* One ready descriptor, as reported by poll. */
struct ws_backend_event {
    int fd;
    int events; /* WS_IO_READ | WS_IO_WRITE */
};

/* Returns a new backend or NULL (out of memory or a syscall failed). */
struct ws_backend *ws_backend_create(void);
void ws_backend_free(struct ws_backend *b);

/* The largest fd + 1 the backend can watch (FD_SETSIZE for select). */
int ws_backend_fd_limit(const struct ws_backend *b);

/* Add (events) to or remove (events) from fd's interest. 0 or -errno. */
int ws_backend_add(struct ws_backend *b, int fd, int events);
int ws_backend_del(struct ws_backend *b, int fd, int events);

/*
 * Wait up to timeout_ms (-1 forever) and store at most max (>= 1) ready
 * descriptors in out. Returns the count, 0 on timeout or EINTR, or -errno
 * (-EINVAL for max < 1). Readiness is level-triggered: an fd left out
 * because out was full is reported by a later poll while it stays ready,
 * and successive polls must reach every ready fd, so a small max delays
 * some fds by an iteration but starves none.
 */
int ws_backend_poll(struct ws_backend *b, int timeout_ms,
                    struct ws_backend_event *out, int max);

const char *ws_backend_name(void);

#endif
