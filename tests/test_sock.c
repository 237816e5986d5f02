/*
 * test_sock.c - unit tests for net/sock.c on loopback only (127.0.0.1 and
 * ::1, port 0): listen, accept, error lines, address formatting, socket
 * options, EOF and EPIPE without SIGPIPE. Every wait is bounded by poll().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"
#include "ws/ws.h"

#define WAIT_MS 2000

/* The number of open descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Wait until fd is readable; fails the test after WAIT_MS. */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
}

/* Listen on host port "0"; returns the fd, or -1 when the family is not
   available here (the caller skips). */
static int listen_one(const char *host)
{
    char err[256];
    int fd;
    int rc = ws_net_tcp_listen(host, "0", 16, &fd, 1, err, sizeof(err));

    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        print_message("skipped: %s\n", err);
        return -1;
    }
    assert_int_equal(rc, 1);
    assert_string_equal(err, "");
    return fd;
}

/* A plain blocking client connected to host:port. */
static int connect_to(int family, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        in6->sin6_addr = in6addr_loopback;
        len = sizeof(*in6);
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

/* Accept one pending connection, waiting for it if needed. */
static int accept_one(int lfd, struct ws_net_addr *peer)
{
    int fd = ws_net_accept(lfd, peer);

    if (fd == -EAGAIN) {
        wait_readable(lfd);
        fd = ws_net_accept(lfd, peer);
    }
    assert_true(fd >= 0);
    return fd;
}

static void expect_nonblock_cloexec(int fd)
{
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static int get_int_opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);

    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static void test_listen_v4(void **state)
{
    int fd = listen_one("127.0.0.1");

    (void)state;
    assert_true(fd >= 0);
    assert_true(ws_net_local_port(fd) > 0);
    expect_nonblock_cloexec(fd);
    assert_int_equal(get_int_opt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    assert_int_equal(get_int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    ws_net_close(fd);
}

static void test_listen_v6(void **state)
{
    int fd = listen_one("::1");
    int port, c, s;

    (void)state;
    if (fd < 0)
        skip();
    port = ws_net_local_port(fd);
    assert_true(port > 0);
    expect_nonblock_cloexec(fd);
    assert_int_equal(get_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    c = connect_to(AF_INET6, port);
    s = accept_one(fd, NULL);
    expect_nonblock_cloexec(s);
    close(c);
    close(s);
    ws_net_close(fd);
}

static void test_listen_any_shares_port(void **state)
{
    int fds[4];
    char err[256];
    int n = ws_net_tcp_listen("*", "0", 16, fds, 4, err, sizeof(err));
    int port;

    (void)state;
    assert_true(n >= 1);
    port = ws_net_local_port(fds[0]);
    for (int i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        assert_int_equal(ws_net_local_port(fds[i]), port);
        assert_int_equal(getsockname(fds[i], (void *)&ss, &len), 0);
        if (ss.ss_family == AF_INET6)
            assert_int_equal(get_int_opt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY), 1);
    }
    for (int i = 0; i < n; i++)
        ws_net_close(fds[i]);
    /* max caps the number of listeners. */
    assert_int_equal(ws_net_tcp_listen(NULL, "0", 16, fds, 1, NULL, 0), 1);
    ws_net_close(fds[0]);
}

static void test_accept_until_eagain(void **state)
{
    int lfd = listen_one("127.0.0.1");
    int port = ws_net_local_port(lfd);
    int clients[3], accepted = 0;
    struct ws_net_addr peer;
    char text[WS_NET_ADDRSTRLEN];

    (void)state;
    for (int i = 0; i < 3; i++)
        clients[i] = connect_to(AF_INET, port);
    while (accepted < 3) {
        int fd = accept_one(lfd, &peer);
        expect_nonblock_cloexec(fd);
        assert_int_equal(peer.ss.ss_family, AF_INET);
        ws_net_addr_format((struct sockaddr *)&peer.ss, peer.len, text,
                           sizeof(text));
        assert_memory_equal(text, "127.0.0.1:", 10);
        close(fd);
        accepted++;
    }
    assert_int_equal(ws_net_accept(lfd, &peer), -EAGAIN);
    assert_int_equal(ws_net_accept(lfd, NULL), -EAGAIN);
    for (int i = 0; i < 3; i++)
        close(clients[i]);
    ws_net_close(lfd);
}

static void test_accept_errors(void **state)
{
    int sv[2];

    (void)state;
    assert_int_equal(ws_net_accept(-1, NULL), -EBADF);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(ws_net_accept(sv[0], NULL), -EINVAL);
    close(sv[0]);
    close(sv[1]);
}

static void test_address_in_use(void **state)
{
    int lfd = listen_one("127.0.0.1");
    int port = ws_net_local_port(lfd);
    char portstr[16], want[64], err[256];
    int fds[4] = {-1, -1, -1, -1};
    int before = count_fds();

    (void)state;
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(want, sizeof(want), "bind 127.0.0.1:%d: ", port);
    assert_int_equal(
        ws_net_tcp_listen("127.0.0.1", portstr, 16, fds, 4, err, sizeof(err)),
        -EADDRINUSE);
    print_message("err: %s\n", err);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "Address already in use"));
    assert_int_equal(fds[0], -1);
    assert_int_equal(count_fds(), before);
    /* "*" may bind "::" first; that socket must be closed again. */
    assert_int_equal(
        ws_net_tcp_listen("*", portstr, 16, fds, 4, err, sizeof(err)),
        -EADDRINUSE);
    print_message("err: %s\n", err);
    assert_non_null(strstr(err, "Address already in use"));
    assert_int_equal(count_fds(), before);
    ws_net_close(lfd);
}

static void test_address_in_use_closes_opened(void **state)
{
    int lfd = listen_one("::1");
    char portstr[16], err[256];
    int fds[4];
    int before;

    (void)state;
    if (lfd < 0)
        skip();
    before = count_fds();
    snprintf(portstr, sizeof(portstr), "%d", ws_net_local_port(lfd));
    /* Whichever of "0.0.0.0" and "::" comes first binds; "::" then fails,
       and the listener opened before it must be closed. */
    assert_int_equal(
        ws_net_tcp_listen("*", portstr, 16, fds, 4, err, sizeof(err)),
        -EADDRINUSE);
    print_message("err: %s\n", err);
    assert_memory_equal(err, "bind [::]:", 10);
    assert_int_equal(count_fds(), before);
    ws_net_close(lfd);
}

static void test_not_found(void **state)
{
    char err[256];
    int fd;
    const char *want = "resolve nosuch.invalid:80: ";

    (void)state;
    assert_int_equal(
        ws_net_tcp_listen("nosuch.invalid", "80", 16, &fd, 1, err, sizeof(err)),
        WS_ENOTFOUND);
    print_message("err: %s\n", err);
    assert_memory_equal(err, want, strlen(want));
    assert_true(strlen(err) > strlen(want));
    assert_int_equal(ws_net_tcp_listen("127.0.0.1", "nosuchservice", 16, &fd, 1,
                                       err, sizeof(err)),
                     WS_ENOTFOUND);
    assert_string_equal(err, "resolve 127.0.0.1:nosuchservice: "
                             "Servname not supported for ai_socktype");
    /* An IPv6 literal is bracketed; a short err buffer is truncated. */
    assert_int_equal(
        ws_net_tcp_listen("::1", "nosuchservice", 16, &fd, 1, err, 12),
        WS_ENOTFOUND);
    assert_string_equal(err, "resolve [::");
    assert_int_equal(
        ws_net_tcp_listen("nosuch.invalid", "80", 16, &fd, 1, NULL, 0),
        WS_ENOTFOUND);
}

static void test_listen_bad_args(void **state)
{
    int fd;

    (void)state;
    assert_int_equal(ws_net_tcp_listen("127.0.0.1", "0", 16, NULL, 1, NULL, 0),
                     -EINVAL);
    assert_int_equal(ws_net_tcp_listen("127.0.0.1", "0", 16, &fd, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(ws_net_tcp_listen("127.0.0.1", NULL, 16, &fd, 1, NULL, 0),
                     -EINVAL);
}

/* One formatting row: an address and its expected text. */
struct fmt_row {
    const char *label;
    int family;
    const char *addr;
    int port;
    unsigned scope;
    size_t cap;
    const char *want;
};

static const struct fmt_row fmt_rows[] = {
    {"v4", AF_INET, "127.0.0.1", 80, 0, 80, "127.0.0.1:80"},
    {"v4 high port", AF_INET, "192.0.2.1", 65535, 0, 80, "192.0.2.1:65535"},
    {"v4 truncated", AF_INET, "127.0.0.1", 80, 0, 5, "127."},
    {"v6 loopback", AF_INET6, "::1", 80, 0, 80, "[::1]:80"},
    {"v6 any", AF_INET6, "::", 9001, 0, 80, "[::]:9001"},
    {"v6 mapped", AF_INET6, "::ffff:10.0.0.1", 1, 0, 80, "[::ffff:10.0.0.1]:1"},
    {"v6 scope lo", AF_INET6, "fe80::1", 443, 1, 80, "[fe80::1%lo]:443"},
    {"v6 truncated", AF_INET6, "::1", 80, 0, 4, "[::"},
};

static void test_addr_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fmt_rows) / sizeof(fmt_rows[0]); i++) {
        const struct fmt_row *row = &fmt_rows[i];
        struct sockaddr_storage ss;
        socklen_t len;
        char out[WS_NET_ADDRSTRLEN];

        print_message("row: %s\n", row->label);
        memset(&ss, 0, sizeof(ss));
        if (row->family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            in->sin_port = htons((uint16_t)row->port);
            assert_int_equal(inet_pton(AF_INET, row->addr, &in->sin_addr), 1);
            len = sizeof(*in);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)row->port);
            in6->sin6_scope_id = row->scope;
            assert_int_equal(inet_pton(AF_INET6, row->addr, &in6->sin6_addr),
                             1);
            len = sizeof(*in6);
        }
        ws_net_addr_format((struct sockaddr *)&ss, len, out, row->cap);
        assert_string_equal(out, row->want);
    }
}

static void test_addr_format_odd(void **state)
{
    struct sockaddr_storage ss;
    char out[WS_NET_ADDRSTRLEN] = "unchanged";

    (void)state;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    ws_net_addr_format((struct sockaddr *)&ss, sizeof(ss), out, sizeof(out));
    assert_string_equal(out, "(address family 1)");
    /* A length too short for the family is not trusted. */
    ss.ss_family = AF_INET;
    ws_net_addr_format((struct sockaddr *)&ss, 4, out, sizeof(out));
    assert_string_equal(out, "(address family 2)");
    strcpy(out, "unchanged");
    ws_net_addr_format((struct sockaddr *)&ss, sizeof(ss), out, 0);
    assert_string_equal(out, "unchanged");
}

static void test_local_port_errors(void **state)
{
    int sv[2];

    (void)state;
    assert_int_equal(ws_net_local_port(-1), -EBADF);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(ws_net_local_port(sv[0]), -EAFNOSUPPORT);
    close(sv[0]);
    close(sv[1]);
}

/* A connected pair: a blocking client and the accepted server side. */
static void tcp_pair(int *lfd, int *client, int *server)
{
    *lfd = listen_one("127.0.0.1");
    *client = connect_to(AF_INET, ws_net_local_port(*lfd));
    *server = accept_one(*lfd, NULL);
}

static void test_read_write(void **state)
{
    int lfd, c, s;
    char buf[64];
    char hel[] = "hel", lo[] = "lo!";
    struct iovec iov[2] = {{.iov_base = hel, .iov_len = 3},
                           {.iov_base = lo, .iov_len = 3}};

    (void)state;
    tcp_pair(&lfd, &c, &s);
    assert_int_equal(ws_net_read(s, buf, sizeof(buf)), -EAGAIN);
    assert_int_equal(ws_net_write(c, "abc", 3), 3);
    wait_readable(s);
    assert_int_equal(ws_net_read(s, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(ws_net_writev(s, iov, 2), 6);
    assert_int_equal(ws_net_read(c, buf, 6), 6);
    assert_memory_equal(buf, "hello!", 6);
    assert_int_equal(ws_net_writev(s, iov, -1), -EINVAL);
    assert_int_equal(ws_net_write(-1, "x", 1), -EBADF);
    assert_int_equal(ws_net_read(-1, buf, 1), -EBADF);
    close(c);
    close(s);
    ws_net_close(lfd);
}

static void test_eof_and_epipe(void **state)
{
    struct sigaction dfl, old;
    char buf[16] = "x";
    struct iovec iov = {.iov_base = buf, .iov_len = 1};
    int lfd, c, s;
    ssize_t rc = 0;

    (void)state;
    /* Default SIGPIPE disposition: a raised SIGPIPE would end the test. */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    tcp_pair(&lfd, &c, &s);
    close(c);
    wait_readable(s);
    assert_int_equal(ws_net_read(s, buf, sizeof(buf)), 0);
    /* The first write may still be accepted; the peer's RST then turns the
       next ones into EPIPE. */
    for (int i = 0; i < 1000 && rc >= 0; i++) {
        rc = ws_net_write(s, "x", 1);
        if (rc >= 0)
            usleep(1000);
    }
    assert_int_equal(rc, -EPIPE);
    assert_int_equal(ws_net_write(s, "x", 1), -EPIPE);
    assert_int_equal(ws_net_writev(s, &iov, 1), -EPIPE);
    close(s);
    ws_net_close(lfd);
    sigaction(SIGPIPE, &old, NULL);
}

static void test_options(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    assert_true(fd >= 0);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_false(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(ws_net_set_nonblock(fd), 0);
    assert_int_equal(ws_net_set_cloexec(fd), 0);
    expect_nonblock_cloexec(fd);
    /* Idempotent. */
    assert_int_equal(ws_net_set_nonblock(fd), 0);
    assert_int_equal(ws_net_set_cloexec(fd), 0);
    assert_int_equal(ws_net_set_nodelay(fd, 1), 0);
    assert_int_equal(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    assert_int_equal(ws_net_set_nodelay(fd, 0), 0);
    assert_int_equal(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    ws_net_close(fd);
    assert_int_equal(ws_net_set_nonblock(fd), -EBADF);
    assert_int_equal(ws_net_set_cloexec(fd), -EBADF);
    assert_int_equal(ws_net_set_nodelay(fd, 1), -EBADF);
}

static void test_close_keeps_errno(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    assert_true(fd >= 0);
    errno = 1234;
    ws_net_close(fd);
    assert_int_equal(errno, 1234);
    /* Closing a bad fd fails inside, but errno still survives. */
    ws_net_close(fd);
    assert_int_equal(errno, 1234);
    ws_net_close(-1);
    assert_int_equal(errno, 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_v4),
        cmocka_unit_test(test_listen_v6),
        cmocka_unit_test(test_listen_any_shares_port),
        cmocka_unit_test(test_accept_until_eagain),
        cmocka_unit_test(test_accept_errors),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_address_in_use_closes_opened),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_listen_bad_args),
        cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_addr_format_odd),
        cmocka_unit_test(test_local_port_errors),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_eof_and_epipe),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_close_keeps_errno),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
