/*
 * test_listener.c - listening sockets on a loop: accepted connections
 * reach the callback (which may close the listener), and running out of
 * descriptors pauses accepting (instead of a spinning loop) and resumes it
 * after the back-off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/listener.h"
#include "ws/ws.h"

struct seen {
    int accepted, errors, last_err, last_pause;
    int fds[8];
};

static void on_accept(void *arg, int fd, const struct ws_net_addr *peer)
{
    struct seen *n = arg;

    (void)peer;
    if (n->accepted < 8)
        n->fds[n->accepted] = fd;
    else
        close(fd);
    n->accepted++;
}

static void on_error(void *arg, int err, int pause_ms)
{
    struct seen *n = arg;

    n->errors++;
    n->last_err = err;
    n->last_pause = pause_ms;
}

/* A blocking client connection to 127.0.0.1:port. */
static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Open a listener on 127.0.0.1, port 0, with a 100 ms back-off. */
static void open_listener(struct ws_net_listener *l, struct ws_loop *loop,
                          struct seen *n)
{
    struct ws_net_listener_config cfg = {.host = "127.0.0.1",
                                         .port = "0",
                                         .backlog = 16,
                                         .pause_ms = 100,
                                         .on_accept = on_accept,
                                         .on_error = on_error,
                                         .arg = n};
    char err[128];

    assert_int_equal(ws_net_listener_open(l, loop, &cfg, err, sizeof(err)), 0);
    assert_int_equal(l->n, 1);
}

/* Connections reach on_accept, and the address reads back. */
static void accepts(void **state)
{
    struct ws_loop *loop;
    struct ws_net_listener l;
    struct seen n = {0};
    char addr[WS_NET_ADDRSTRLEN];
    int c1, c2;

    (void)state;
    assert_int_equal(ws_loop_create(&loop), 0);
    open_listener(&l, loop, &n);
    ws_net_listener_addr(&l, 0, addr, sizeof(addr));
    assert_memory_equal(addr, "127.0.0.1:", 10);
    c1 = connect_to(ws_net_local_port(l.fds[0]));
    c2 = connect_to(ws_net_local_port(l.fds[0]));
    for (int i = 0; i < 100 && n.accepted < 2; i++)
        ws_loop_run_once(loop, 10);
    assert_int_equal(n.accepted, 2);
    assert_int_equal(n.errors, 0);
    for (int i = 0; i < 2; i++)
        close(n.fds[i]);
    close(c1);
    close(c2);
    ws_net_listener_close(&l);
    ws_net_listener_close(&l); /* twice is harmless */
    ws_loop_destroy(loop);
}

/* The accepted socket's TCP_NODELAY, after a connection to a listener
   opened with cfg.nodelay = nodelay. */
static int accepted_nodelay(bool nodelay)
{
    struct ws_loop *loop;
    struct ws_net_listener l;
    struct seen n = {0};
    struct ws_net_listener_config cfg = {.host = "127.0.0.1",
                                         .port = "0",
                                         .backlog = 16,
                                         .nodelay = nodelay,
                                         .on_accept = on_accept,
                                         .arg = &n};
    char err[128];
    int c, v = -1;
    socklen_t len = sizeof(v);

    assert_int_equal(ws_loop_create(&loop), 0);
    assert_int_equal(ws_net_listener_open(&l, loop, &cfg, err, sizeof(err)), 0);
    c = connect_to(ws_net_local_port(l.fds[0]));
    for (int i = 0; i < 100 && n.accepted < 1; i++)
        ws_loop_run_once(loop, 10);
    assert_int_equal(n.accepted, 1);
    assert_int_equal(getsockopt(n.fds[0], IPPROTO_TCP, TCP_NODELAY, &v, &len),
                     0);
    close(n.fds[0]);
    close(c);
    ws_net_listener_close(&l);
    ws_loop_destroy(loop);
    return v;
}

/* cfg.nodelay: the sockets accepted start with Nagle's algorithm off,
   without a call of their own (Linux copies it from the listener). */
static void nodelay_inherited(void **state)
{
    (void)state;
    assert_int_equal(accepted_nodelay(true), 1);
    assert_int_equal(accepted_nodelay(false), 0);
}

/* on_accept that closes the listener (a server unlistening from a
   callback): nothing more is accepted from the closed descriptor, and no
   error is reported for it. */
static struct ws_net_listener *closing_listener;

static void on_accept_close(void *arg, int fd, const struct ws_net_addr *peer)
{
    on_accept(arg, fd, peer);
    ws_net_listener_close(closing_listener);
}

static void close_in_accept(void **state)
{
    struct ws_loop *loop;
    struct ws_net_listener l;
    struct seen n = {0};
    int c1, c2, port;

    (void)state;
    assert_int_equal(ws_loop_create(&loop), 0);
    open_listener(&l, loop, &n);
    l.cfg.on_accept = on_accept_close;
    closing_listener = &l;
    port = ws_net_local_port(l.fds[0]);
    c1 = connect_to(port);
    c2 = connect_to(port); /* both pending: one readiness event */
    for (int i = 0; i < 100 && n.accepted < 1; i++)
        ws_loop_run_once(loop, 10);
    assert_int_equal(n.accepted, 1);
    assert_int_equal(n.errors, 0);
    assert_int_equal(l.n, 0);
    ws_loop_run_once(loop, 0);
    assert_int_equal(n.accepted, 1);
    close(n.fds[0]);
    close(c1);
    close(c2);
    ws_loop_destroy(loop);
}

/* Out of descriptors: one error with the pause, no spinning while paused,
   and the pending connection is accepted once descriptors are back. */
static void emfile_pauses(void **state)
{
    struct ws_loop *loop;
    struct ws_net_listener l;
    struct seen n = {0};
    struct rlimit saved, low;
    int client, spare;

    (void)state;
    /* valgrind keeps its own descriptor limit and ignores ours, so accept
       never meets EMFILE there (tests/run_all.sh sets this variable). */
    if (getenv("WS_TEST_VALGRIND") &&
        strcmp(getenv("WS_TEST_VALGRIND"), "1") == 0)
        skip();
    assert_int_equal(ws_loop_create(&loop), 0);
    open_listener(&l, loop, &n);
    client = connect_to(ws_net_local_port(l.fds[0]));
    /* Use up every descriptor below a limit just above the highest open. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    spare = dup(0);
    assert_true(spare >= 0);
    low = saved;
    low.rlim_cur = (rlim_t)spare; /* fds 0..spare-1 are the only ones */
    close(spare);
    spare = dup(0); /* takes the last free one below the limit */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < 10; i++)
        ws_loop_run_once(loop, 5);
    /* Paused after the first failure: the readable listener is not
       watched, so the loop does not report it over and over. */
    assert_int_equal(n.errors, 1);
    assert_int_equal(n.last_err, EMFILE);
    assert_int_equal(n.last_pause, 100);
    assert_int_equal(n.accepted, 0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    close(spare);
    for (int i = 0; i < 100 && n.accepted < 1; i++)
        ws_loop_run_once(loop, 10);
    assert_int_equal(n.accepted, 1);
    close(n.fds[0]);
    close(client);
    ws_net_listener_close(&l);
    ws_loop_destroy(loop);
}

/* A port in use: the error line names the address and the cause. */
static void address_in_use(void **state)
{
    struct ws_loop *loop;
    struct ws_net_listener a, b;
    struct seen n = {0};
    char port[16], err[128];
    struct ws_net_listener_config cfg = {.host = "127.0.0.1",
                                         .port = port,
                                         .backlog = 16,
                                         .on_accept = on_accept,
                                         .arg = &n};

    (void)state;
    assert_int_equal(ws_loop_create(&loop), 0);
    open_listener(&a, loop, &n);
    snprintf(port, sizeof(port), "%d", ws_net_local_port(a.fds[0]));
    assert_int_equal(ws_net_listener_open(&b, loop, &cfg, err, sizeof(err)),
                     -EADDRINUSE);
    assert_non_null(strstr(err, port));
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(b.n, 0);
    ws_net_listener_close(&a);
    ws_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts),         cmocka_unit_test(nodelay_inherited),
        cmocka_unit_test(close_in_accept), cmocka_unit_test(emfile_pauses),
        cmocka_unit_test(address_in_use),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
