/*
 * raw_echo.c - the benchmark's ceiling: a plain TCP echo server on one
 * epoll loop (peer_loop.c), no protocol at all.
 *   raw_echo [--host H] [--port P]   (default 127.0.0.1:9002)
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "tests/bench/peers/peer_loop.h"

#define BUF_SIZE (256u << 10)

static unsigned char *shared_buf; /* owned: every connection reads here */

/* fd is readable: echo what arrived. */
static int on_read(struct ws_peer *p, int fd)
{
    for (int i = 0; i < WS_PEER_READS_PER_WAKE && !ws_peer_blocked(p, fd);
         i++) {
        ssize_t n = recv(fd, shared_buf, BUF_SIZE, 0);
        struct iovec iov = {shared_buf, (size_t)n};

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0 || ws_peer_send(p, fd, &iov, 1) < 0)
            return -1;
        if ((size_t)n < BUF_SIZE)
            return 0;
    }
    return 0;
}

int main(int argc, char **argv)
{
    shared_buf = malloc(BUF_SIZE);
    if (shared_buf == NULL)
        return 1;
    return ws_peer_main(argc, argv, "raw_echo", on_read, NULL);
}
