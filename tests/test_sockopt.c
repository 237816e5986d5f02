/*
 * test_sockopt.c - unit tests for net/sockopt.c: every named option set
 * and read back on a TCP socket, the all-at-once struct, range checks,
 * the error line of a failing setsockopt(), options on UDP sockets, and
 * options given to ws_net_bind() and ws_net_connect(). Loopback only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/connect.h"
#include "net/sock.h"
#include "net/sockopt.h"
#include "ws/ws.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* One option row: set value, expect want back (or at least want for
   buffer sizes, which the kernel doubles). */
struct opt_row {
    const char *label;
    int opt;
    int value;
    int want;
    int at_least;
};

static const struct opt_row opt_rows[] = {
    {"SO_REUSEADDR on", WS_NET_OPT_REUSEADDR, 1, 1, 0},
    {"SO_REUSEADDR off", WS_NET_OPT_REUSEADDR, 0, 0, 0},
    {"SO_REUSEPORT on", WS_NET_OPT_REUSEPORT, 1, 1, 0},
    {"SO_KEEPALIVE on", WS_NET_OPT_KEEPALIVE, 1, 1, 0},
    {"SO_KEEPALIVE off", WS_NET_OPT_KEEPALIVE, 0, 0, 0},
    {"TCP_KEEPIDLE 30", WS_NET_OPT_KEEPIDLE, 30, 30, 0},
    {"TCP_KEEPINTVL 5", WS_NET_OPT_KEEPINTVL, 5, 5, 0},
    {"TCP_KEEPCNT 4", WS_NET_OPT_KEEPCNT, 4, 4, 0},
    {"SO_LINGER 5 s", WS_NET_OPT_LINGER, 5, 5, 0},
    {"SO_LINGER 0 s (reset)", WS_NET_OPT_LINGER, 0, 0, 0},
    {"SO_LINGER off", WS_NET_OPT_LINGER, -1, -1, 0},
    {"TCP_NODELAY on", WS_NET_OPT_NODELAY, 1, 1, 0},
    {"TCP_NODELAY off", WS_NET_OPT_NODELAY, 0, 0, 0},
    {"SO_SNDBUF 64 KiB", WS_NET_OPT_SNDBUF, 65536, 65536, 1},
    {"SO_RCVBUF 32 KiB", WS_NET_OPT_RCVBUF, 32768, 32768, 1},
};

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    return fd;
}

static void test_opt_rows(void **state)
{
    int fd = tcp_socket();

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(opt_rows); i++) {
        const struct opt_row *row = &opt_rows[i];
        int v = -99;

        print_message("row: %s\n", row->label);
        assert_int_equal(ws_net_opt_set(fd, row->opt, row->value), 0);
        assert_int_equal(ws_net_opt_get(fd, row->opt, &v), 0);
        if (row->at_least)
            assert_true(v >= row->want);
        else
            assert_int_equal(v, row->want);
    }
    close(fd);
}

/* One out-of-range row. */
struct bad_row {
    const char *label;
    int opt;
    int value;
};

static const struct bad_row bad_rows[] = {
    {"unknown opt", WS_NET_OPT_COUNT, 1},
    {"negative opt", -1, 1},
    {"flag 2", WS_NET_OPT_NODELAY, 2},
    {"flag -1", WS_NET_OPT_REUSEADDR, -1},
    {"keepidle 0", WS_NET_OPT_KEEPIDLE, 0},
    {"keepcnt -3", WS_NET_OPT_KEEPCNT, -3},
    {"linger -2", WS_NET_OPT_LINGER, -2},
    {"sndbuf -1", WS_NET_OPT_SNDBUF, -1},
};

static void test_opt_bad_values(void **state)
{
    int fd = tcp_socket();
    int v;

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_rows); i++) {
        print_message("row: %s\n", bad_rows[i].label);
        assert_int_equal(ws_net_opt_set(fd, bad_rows[i].opt, bad_rows[i].value),
                         -EINVAL);
    }
    assert_int_equal(ws_net_opt_get(fd, WS_NET_OPT_COUNT, &v), -EINVAL);
    assert_int_equal(ws_net_opt_get(fd, WS_NET_OPT_NODELAY, NULL), -EINVAL);
    close(fd);
    assert_int_equal(ws_net_opt_set(fd, WS_NET_OPT_NODELAY, 1), -EBADF);
    assert_int_equal(ws_net_opt_get(fd, WS_NET_OPT_NODELAY, &v), -EBADF);
}

static void test_opt_names(void **state)
{
    (void)state;
    for (int i = 0; i < WS_NET_OPT_COUNT; i++) {
        const char *name = ws_net_opt_name(i);
        assert_non_null(name);
        assert_int_equal(ws_net_opt_lookup(name), i);
    }
    assert_string_equal(ws_net_opt_name(WS_NET_OPT_NODELAY), "TCP_NODELAY");
    assert_string_equal(ws_net_opt_name(WS_NET_OPT_LINGER), "SO_LINGER");
    assert_null(ws_net_opt_name(WS_NET_OPT_COUNT));
    assert_null(ws_net_opt_name(-1));
    assert_int_equal(ws_net_opt_lookup("SO_BOGUS"), -EINVAL);
    assert_int_equal(ws_net_opt_lookup(NULL), -EINVAL);
}

static void test_struct_apply_read(void **state)
{
    struct ws_net_sockopts o = {.reuseaddr = WS_NET_ON,
                                .reuseport = WS_NET_OFF,
                                .keepalive = WS_NET_ON,
                                .keepidle_s = 60,
                                .keepintvl_s = 10,
                                .keepcnt = 3,
                                .linger = WS_NET_ON,
                                .linger_s = 2,
                                .nodelay = WS_NET_ON,
                                .sndbuf = 16384,
                                .rcvbuf = 16384};
    struct ws_net_sockopts got;
    char err[128] = "untouched";
    int fd = tcp_socket();

    (void)state;
    assert_int_equal(ws_net_sockopts_apply(fd, &o, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(ws_net_sockopts_read(fd, &got), 0);
    assert_int_equal(got.reuseaddr, WS_NET_ON);
    assert_int_equal(got.reuseport, WS_NET_OFF);
    assert_int_equal(got.keepalive, WS_NET_ON);
    assert_int_equal(got.keepidle_s, 60);
    assert_int_equal(got.keepintvl_s, 10);
    assert_int_equal(got.keepcnt, 3);
    assert_int_equal(got.linger, WS_NET_ON);
    assert_int_equal(got.linger_s, 2);
    assert_int_equal(got.nodelay, WS_NET_ON);
    assert_true(got.sndbuf >= 16384);
    assert_true(got.rcvbuf >= 16384);
    /* Turning things off again, and leaving the rest alone. */
    memset(&o, 0, sizeof(o));
    o.linger = WS_NET_OFF;
    o.nodelay = WS_NET_OFF;
    assert_int_equal(ws_net_sockopts_apply(fd, &o, NULL, 0), 0);
    assert_int_equal(ws_net_sockopts_read(fd, &got), 0);
    assert_int_equal(got.linger, WS_NET_OFF);
    assert_int_equal(got.linger_s, 0);
    assert_int_equal(got.nodelay, WS_NET_OFF);
    assert_int_equal(got.keepalive, WS_NET_ON);
    close(fd);
}

/* One invalid struct row: which field, and its bad value. */
struct bad_struct_row {
    const char *label;
    struct ws_net_sockopts o;
};

static const struct bad_struct_row bad_struct_rows[] = {
    {"switch 2", {.nodelay = 2}},
    {"negative buffer", {.sndbuf = -1}},
    {"negative keepidle", {.keepidle_s = -5}},
    {"linger on, negative", {.linger = WS_NET_ON, .linger_s = -1}},
    {"linger 3", {.linger = 3}},
};

static void test_struct_invalid_changes_nothing(void **state)
{
    int fd = tcp_socket();
    char err[128];
    int v;

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_struct_rows); i++) {
        struct ws_net_sockopts o = bad_struct_rows[i].o;
        print_message("row: %s\n", bad_struct_rows[i].label);
        /* A valid field before the bad one must not be applied. */
        o.reuseaddr = WS_NET_ON;
        assert_int_equal(ws_net_sockopts_apply(fd, &o, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, "setsockopt: Invalid argument");
        assert_int_equal(ws_net_opt_get(fd, WS_NET_OPT_REUSEADDR, &v), 0);
        assert_int_equal(v, 0);
    }
    assert_int_equal(ws_net_sockopts_apply(fd, NULL, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_sockopts_read(fd, NULL), -EINVAL);
    close(fd);
}

static void test_struct_error_line(void **state)
{
    struct ws_net_sockopts o = {.sndbuf = 4096};
    char err[128];
    int fd = tcp_socket();

    (void)state;
    close(fd);
    assert_int_equal(ws_net_sockopts_apply(fd, &o, err, sizeof(err)), -EBADF);
    assert_string_equal(err, "setsockopt SO_SNDBUF=4096: Bad file descriptor");
    assert_int_equal(ws_net_sockopts_read(fd, &o), -EBADF);
}

static void test_udp_socket_options(void **state)
{
    struct ws_net_sockopts o = {.nodelay = WS_NET_ON};
    struct ws_net_sockopts got;
    char err[128];
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    (void)state;
    assert_true(fd >= 0);
    /* TCP options do not apply to UDP: the error names the option. */
    assert_true(ws_net_sockopts_apply(fd, &o, err, sizeof(err)) < 0);
    print_message("err: %s\n", err);
    assert_memory_equal(err, "setsockopt TCP_NODELAY=1: ", 26);
    memset(&o, 0, sizeof(o));
    o.reuseport = WS_NET_ON;
    o.sndbuf = 8192;
    assert_int_equal(ws_net_sockopts_apply(fd, &o, NULL, 0), 0);
    assert_int_equal(ws_net_sockopts_read(fd, &got), 0);
    assert_int_equal(got.reuseport, WS_NET_ON);
    assert_true(got.sndbuf >= 8192);
    /* ...and are left 0 ("not read") by ws_net_sockopts_read(). */
    assert_int_equal(got.nodelay, 0);
    assert_int_equal(got.keepidle_s, 0);
    close(fd);
}

/* One formatting row. */
struct fmt_row {
    const char *label;
    struct ws_net_sockopts o;
    const char *want;
};

static const struct fmt_row fmt_rows[] = {
    {"nothing", {0}, "defaults"},
    {"nodelay", {.nodelay = WS_NET_ON}, "TCP_NODELAY=on"},
    {"buffers",
     {.sndbuf = 4096, .rcvbuf = 8192},
     "SO_SNDBUF=4096 SO_RCVBUF=8192"},
    {"linger", {.linger = WS_NET_ON, .linger_s = 3}, "SO_LINGER=3s"},
    {"linger off, keepalive",
     {.keepalive = WS_NET_OFF, .linger = WS_NET_OFF},
     "SO_KEEPALIVE=off SO_LINGER=off"},
};

static void test_format_rows(void **state)
{
    char out[128], small[8];

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(fmt_rows); i++) {
        print_message("row: %s\n", fmt_rows[i].label);
        ws_net_sockopts_format(&fmt_rows[i].o, out, sizeof(out));
        assert_string_equal(out, fmt_rows[i].want);
    }
    ws_net_sockopts_format(&fmt_rows[2].o, small, sizeof(small));
    assert_string_equal(small, "SO_SNDB");
    ws_net_sockopts_format(NULL, out, sizeof(out));
    assert_string_equal(out, "defaults");
}

static void test_bind_and_connect_apply_options(void **state)
{
    struct ws_net_sockopts o = {
        .reuseport = WS_NET_ON, .nodelay = WS_NET_ON, .keepalive = WS_NET_ON};
    struct ws_net_bind_req b = {.host = "127.0.0.1", .opts = &o};
    struct ws_net_connect_req c = {.host = "127.0.0.1", .opts = &o};
    char port[16], err[128];
    int lfd, cfd, v;

    (void)state;
    assert_int_equal(ws_net_bind(&b, &lfd, 1, err, sizeof(err)), 1);
    assert_int_equal(ws_net_opt_get(lfd, WS_NET_OPT_REUSEPORT, &v), 0);
    assert_int_equal(v, 1);
    snprintf(port, sizeof(port), "%d", ws_net_local_port(lfd));
    c.port = port;
    cfd = ws_net_connect(&c, NULL, err, sizeof(err));
    assert_true(cfd >= 0);
    assert_int_equal(ws_net_opt_get(cfd, WS_NET_OPT_NODELAY, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(ws_net_opt_get(cfd, WS_NET_OPT_KEEPALIVE, &v), 0);
    assert_int_equal(v, 1);
    close(cfd);
    /* A bad option fails the connect before any packet is sent. */
    o.sndbuf = -1;
    assert_int_equal(ws_net_connect(&c, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "setsockopt: Invalid argument");
    assert_int_equal(ws_net_bind(&b, &cfd, 1, err, sizeof(err)), -EINVAL);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_rows),
        cmocka_unit_test(test_opt_bad_values),
        cmocka_unit_test(test_opt_names),
        cmocka_unit_test(test_struct_apply_read),
        cmocka_unit_test(test_struct_invalid_changes_nothing),
        cmocka_unit_test(test_struct_error_line),
        cmocka_unit_test(test_udp_socket_options),
        cmocka_unit_test(test_format_rows),
        cmocka_unit_test(test_bind_and_connect_apply_options),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
