/*
 * test_sock.c - unit tests for net/sock.c and net/connect.c on loopback
 * only (127.0.0.1 and ::1, port 0): listen, accept, error lines, address
 * formatting, socket options, EOF and EPIPE without SIGPIPE, connect with
 * its time limit, UDP bind/sendto/recvfrom, shutdown. Every wait is
 * bounded by poll().
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
#include <sys/wait.h>
#include <unistd.h>

#include "net/connect.h"
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

/* A port on host that nothing listens on: bound, then closed again. */
static int closed_port(const char *host)
{
    int fd = listen_one(host);
    int port;

    if (fd < 0)
        return -1;
    port = ws_net_local_port(fd);
    ws_net_close(fd);
    return port;
}

/* One connect row: where, and the first bytes of the peer's text. */
struct connect_row {
    const char *label;
    const char *listen_host;
    const char *connect_host;
    const char *peer_prefix;
};

static const struct connect_row connect_rows[] = {
    {"v4", "127.0.0.1", "127.0.0.1", "127.0.0.1:"},
    {"v6", "::1", "::1", "[::1]:"},
    {"v6 bracketed", "::1", "[::1]", "[::1]:"},
};

static void test_connect_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(connect_rows) / sizeof(connect_rows[0]);
         i++) {
        const struct connect_row *row = &connect_rows[i];
        struct ws_net_connect_req req = {.host = row->connect_host};
        struct ws_net_addr peer;
        char port[16], err[256] = "untouched", text[WS_NET_ADDRSTRLEN];
        int lfd = listen_one(row->listen_host);
        int fd, s;

        print_message("row: %s\n", row->label);
        if (lfd < 0)
            continue;
        snprintf(port, sizeof(port), "%d", ws_net_local_port(lfd));
        req.port = port;
        fd = ws_net_connect(&req, &peer, err, sizeof(err));
        assert_true(fd >= 0);
        assert_string_equal(err, "");
        expect_nonblock_cloexec(fd);
        ws_net_addr_format((struct sockaddr *)&peer.ss, peer.len, text,
                           sizeof(text));
        assert_memory_equal(text, row->peer_prefix, strlen(row->peer_prefix));
        s = accept_one(lfd, NULL);
        assert_int_equal(ws_net_write(fd, "ping", 4), 4);
        wait_readable(s);
        assert_int_equal(ws_net_read(s, text, sizeof(text)), 4);
        close(s);
        ws_net_close(fd);
        ws_net_close(lfd);
    }
}

static void test_connect_refused(void **state)
{
    const char *hosts[] = {"127.0.0.1", "::1"};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct ws_net_connect_req req = {.host = hosts[i]};
        char port[16], want[96], err[256];
        int p = closed_port(hosts[i]);

        if (p < 0)
            continue;
        snprintf(port, sizeof(port), "%d", p);
        req.port = port;
        snprintf(want, sizeof(want), "connect %s%s%s:%d: Connection refused",
                 i ? "[" : "", hosts[i], i ? "]" : "", p);
        assert_int_equal(ws_net_connect(&req, NULL, err, sizeof(err)),
                         -ECONNREFUSED);
        print_message("err: %s\n", err);
        assert_string_equal(err, want);
    }
}

/* Fill a listener's queue (backlog 0, never accepted) until a connect
   times out; Linux then drops further SYNs, so this stays on loopback. */
static void test_connect_timeout(void **state)
{
    struct ws_net_connect_req req = {.host = "127.0.0.1", .timeout_ms = 200};
    char port[16], want[96], err[256];
    int fds[4], lfd, n = 0, rc = 0;

    (void)state;
    assert_int_equal(ws_net_tcp_listen("127.0.0.1", "0", 0, &lfd, 1, NULL, 0),
                     1);
    snprintf(port, sizeof(port), "%d", ws_net_local_port(lfd));
    req.port = port;
    while (n < 4 && (rc = ws_net_connect(&req, NULL, err, sizeof(err))) >= 0)
        fds[n++] = rc;
    while (n > 0)
        ws_net_close(fds[--n]);
    ws_net_close(lfd);
    if (rc >= 0) {
        print_message("skipped: the listen queue never filled up\n");
        skip();
    }
    snprintf(want, sizeof(want),
             "connect 127.0.0.1:%s: timed out after "
             "200 ms",
             port);
    print_message("err: %s\n", err);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_string_equal(err, want);
}

static void test_connect_errors(void **state)
{
    struct ws_net_connect_req req = {.host = "nosuch.invalid", .port = "80"};
    char err[256];

    (void)state;
    assert_int_equal(ws_net_connect(&req, NULL, err, sizeof(err)),
                     WS_ENOTFOUND);
    assert_string_equal(err, "resolve nosuch.invalid:80: host not found");
    assert_int_equal(ws_net_connect(NULL, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "connect: Invalid argument");
    req.host = NULL;
    assert_int_equal(ws_net_connect(&req, NULL, NULL, 0), -EINVAL);
    req.host = "127.0.0.1";
    req.port = NULL;
    assert_int_equal(ws_net_connect(&req, NULL, NULL, 0), -EINVAL);
}

/* Bind UDP on host, connect a client, and echo one datagram by hand. */
static void udp_round_trip(const char *host)
{
    struct ws_net_connect_req req = {.host = host, .socktype = SOCK_DGRAM};
    struct ws_net_addr from;
    char port[16], buf[64], err[256];
    int sfd, cfd, rc;

    rc = ws_net_udp_bind(host, "0", &sfd, 1, err, sizeof(err));
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        print_message("skipped %s: %s\n", host, err);
        return;
    }
    assert_int_equal(rc, 1);
    expect_nonblock_cloexec(sfd);
    assert_int_equal(get_int_opt(sfd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
    snprintf(port, sizeof(port), "%d", ws_net_local_port(sfd));
    req.port = port;
    cfd = ws_net_connect(&req, NULL, err, sizeof(err));
    assert_true(cfd >= 0);
    assert_int_equal(ws_net_recvfrom(sfd, buf, sizeof(buf), &from), -EAGAIN);
    assert_int_equal(ws_net_sendto(cfd, "7 hi", 4, NULL), 4);
    wait_readable(sfd);
    assert_int_equal(ws_net_recvfrom(sfd, buf, sizeof(buf), &from), 4);
    assert_int_equal(ws_net_sendto(sfd, buf, 4, &from), 4);
    wait_readable(cfd);
    assert_int_equal(ws_net_recvfrom(cfd, buf, sizeof(buf), NULL), 4);
    assert_memory_equal(buf, "7 hi", 4);
    ws_net_close(cfd);
    ws_net_close(sfd);
}

static void test_udp_round_trip(void **state)
{
    (void)state;
    udp_round_trip("127.0.0.1");
    udp_round_trip("::1");
}

static void test_udp_bind_in_use_and_refused(void **state)
{
    struct ws_net_connect_req req = {.host = "127.0.0.1",
                                     .socktype = SOCK_DGRAM};
    char port[16], want[96], err[256], buf[8];
    int sfd, fd;

    (void)state;
    assert_int_equal(ws_net_udp_bind("127.0.0.1", "0", &sfd, 1, NULL, 0), 1);
    snprintf(port, sizeof(port), "%d", ws_net_local_port(sfd));
    snprintf(want, sizeof(want), "bind 127.0.0.1:%s: Address already in use",
             port);
    assert_int_equal(
        ws_net_udp_bind("127.0.0.1", port, &fd, 1, err, sizeof(err)),
        -EADDRINUSE);
    assert_string_equal(err, want);
    ws_net_close(sfd);
    /* Nobody there now: the ICMP answer reaches the connected socket. */
    req.port = port;
    fd = ws_net_connect(&req, NULL, err, sizeof(err));
    assert_true(fd >= 0);
    assert_int_equal(ws_net_sendto(fd, "x", 1, NULL), 1);
    wait_readable(fd);
    assert_int_equal(ws_net_recvfrom(fd, buf, sizeof(buf), NULL),
                     -ECONNREFUSED);
    ws_net_close(fd);
}

/* Bind 127.0.0.1:1 and check the error line: 0 for EACCES with the
   expected text, 77 when the bind was allowed, 1 otherwise. */
static int bind_low_port(void)
{
    char err[256];
    int fd;
    int rc = ws_net_tcp_listen("127.0.0.1", "1", 16, &fd, 1, err, sizeof(err));

    if (rc >= 0) {
        ws_net_close(fd);
        return 77;
    }
    print_message("err: %s\n", err);
    if (rc == -EADDRINUSE)
        return 77;
    return rc == -EACCES &&
                   strcmp(err, "bind 127.0.0.1:1: Permission denied") == 0
               ? 0
               : 1;
}

static void test_bind_permission_denied(void **state)
{
    int status = 0, rc;
    pid_t pid;

    (void)state;
    if (geteuid() != 0) {
        rc = bind_low_port();
    } else {
        /* As root, drop to "nobody" in a child: the parent keeps its
           privileges for the other tests. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(setgid(65534) == 0 && setuid(65534) == 0 ? bind_low_port()
                                                           : 77);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        rc = WEXITSTATUS(status);
    }
    if (rc == 77) {
        print_message("skipped: port 1 is open to this user\n");
        skip();
    }
    assert_int_equal(rc, 0);
}

static void test_bind_req(void **state)
{
    struct ws_net_bind_req req = {.host = "127.0.0.1", .socktype = SOCK_RAW};
    char err[256];
    int fds[2];

    (void)state;
    assert_int_equal(ws_net_bind(NULL, fds, 2, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_bind(&req, fds, 2, NULL, 0), -EINVAL);
    req.socktype = 0; /* TCP; backlog 0 means SOMAXCONN here */
    assert_int_equal(ws_net_bind(&req, NULL, 2, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_bind(&req, fds, 0, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_bind(&req, fds, 2, err, sizeof(err)), 1);
    assert_string_equal(err, "");
    assert_int_equal(get_int_opt(fds[0], SOL_SOCKET, SO_ACCEPTCONN), 1);
    /* Only the listener of ws_net_tcp_listen() gets SO_REUSEADDR. */
    assert_int_equal(get_int_opt(fds[0], SOL_SOCKET, SO_REUSEADDR), 0);
    ws_net_close(fds[0]);
    req.host = "nosuch.invalid";
    assert_int_equal(ws_net_bind(&req, fds, 2, err, sizeof(err)), WS_ENOTFOUND);
    assert_string_equal(err, "resolve nosuch.invalid:0: host not found");
}

static void test_wait_and_shutdown(void **state)
{
    int lfd, c, s;
    char buf[8];

    (void)state;
    tcp_pair(&lfd, &c, &s);
    assert_int_equal(ws_net_wait(s, 0, 0), 0);
    assert_int_equal(ws_net_wait(s, 0, 20), 0);
    assert_int_equal(ws_net_wait(s, 1, WAIT_MS), 1);
    assert_int_equal(ws_net_shutdown(c, SHUT_WR), 0);
    assert_int_equal(ws_net_wait(s, 0, WAIT_MS), 1);
    assert_int_equal(ws_net_read(s, buf, sizeof(buf)), 0);
    /* Half-closed: the other direction still works. */
    assert_int_equal(ws_net_write(s, "ok", 2), 2);
    assert_int_equal(read(c, buf, sizeof(buf)), 2);
    close(c);
    close(s);
    ws_net_close(lfd);
    assert_int_equal(ws_net_shutdown(c, SHUT_WR), -EBADF);
    assert_int_equal(ws_net_wait(c, 0, 0), -EBADF);
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
        cmocka_unit_test(test_connect_rows),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_udp_round_trip),
        cmocka_unit_test(test_udp_bind_in_use_and_refused),
        cmocka_unit_test(test_bind_permission_denied),
        cmocka_unit_test(test_bind_req),
        cmocka_unit_test(test_wait_and_shutdown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
