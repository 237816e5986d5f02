/*
 * test_addr.c - unit tests for net/addr.c (resolution and "host:port"
 * text) and net/neterr.c (the one-line error messages). Only loopback and
 * literal addresses are resolved, plus names under .invalid (RFC 6761),
 * which never resolve; no packet leaves the host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/addr.h"
#include "net/neterr.h"
#include "net/sock.h"
#include "ws/ws.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* One resolution row: the query and the first address expected. */
struct resolve_row {
    const char *label;
    struct ws_net_query q;
    int want_rc;       /* 1: at least one address; or a WS_E or -errno */
    const char *first; /* formatted first address, NULL: not checked */
    const char *err;   /* expected err text, NULL: empty */
};

static const struct resolve_row resolve_rows[] = {
    {"v4 literal", {"127.0.0.1", "80", 0, 0, 0}, 1, "127.0.0.1:80", NULL},
    {"v6 literal", {"::1", "443", 0, 0, 0}, 1, "[::1]:443", NULL},
    {"v6 bracketed", {"[::1]", "8080", 0, 0, 0}, 1, "[::1]:8080", NULL},
    {"udp", {"127.0.0.1", "53", SOCK_DGRAM, 0, 0}, 1, "127.0.0.1:53", NULL},
    {"NULL port is 0", {"127.0.0.1", NULL, 0, 0, 0}, 1, "127.0.0.1:0", NULL},
    {"v4 only", {"127.0.0.1", "1", 0, AF_INET, 0}, 1, "127.0.0.1:1", NULL},
    {"passive any v4", {"*", "9", 0, AF_INET, 1}, 1, "0.0.0.0:9", NULL},
    {"passive NULL v6", {NULL, "9", 0, AF_INET6, 1}, 1, "[::]:9", NULL},
    {"connect NULL is loopback",
     {NULL, "7", 0, AF_INET, 0},
     1,
     "127.0.0.1:7",
     NULL},
    {"host not found",
     {"nosuch.invalid", "80", 0, 0, 0},
     WS_ENOTFOUND,
     NULL,
     "resolve nosuch.invalid:80: host not found"},
    {"bad service",
     {"127.0.0.1", "nosuchservice", 0, 0, 0},
     WS_ENOTFOUND,
     NULL,
     "resolve 127.0.0.1:nosuchservice: "
     "Servname not supported for ai_socktype"},
    {"v6 literal, v4 family",
     {"::1", "80", 0, AF_INET, 0},
     WS_ENOTFOUND,
     NULL,
     "resolve [::1]:80: host not found"},
    {"bad socktype", {"127.0.0.1", "80", SOCK_RAW, 0, 0}, -EINVAL, NULL, NULL},
    {"highest port",
     {"127.0.0.1", "65535", 0, 0, 0},
     1,
     "127.0.0.1:65535",
     NULL},
    {"leading zeros", {"127.0.0.1", "0080", 0, 0, 0}, 1, "127.0.0.1:80", NULL},
    /* getaddrinfo() keeps a number's low 16 bits: 65536 would be 0 and
       70000 would be 4464. */
    {"port 65536",
     {"127.0.0.1", "65536", 0, 0, 0},
     WS_ENOTFOUND,
     NULL,
     "resolve 127.0.0.1:65536: port 65536 is out of range (0-65535)"},
    {"port 70000, passive",
     {"*", "70000", 0, AF_INET, 1},
     WS_ENOTFOUND,
     NULL,
     "resolve *:70000: port 70000 is out of range (0-65535)"},
    {"port of 20 digits",
     {"::1", "99999999999999999999", 0, 0, 0},
     WS_ENOTFOUND,
     NULL,
     "resolve [::1]:99999999999999999999: port 99999999999999999999 is out "
     "of range (0-65535)"},
};

static void test_resolve_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(resolve_rows); i++) {
        const struct resolve_row *row = &resolve_rows[i];
        struct ws_net_addr out[WS_NET_MAXADDRS];
        char err[256] = "untouched", text[WS_NET_ADDRSTRLEN];
        int rc;

        print_message("row: %s\n", row->label);
        rc = ws_net_resolve(&row->q, out, WS_NET_MAXADDRS, err, sizeof(err));
        if (row->want_rc == 1) {
            assert_true(rc >= 1);
            assert_string_equal(err, "");
        } else {
            assert_int_equal(rc, row->want_rc);
        }
        if (row->first != NULL) {
            ws_net_addr_format((struct sockaddr *)&out[0].ss, out[0].len, text,
                               sizeof(text));
            assert_string_equal(text, row->first);
        }
        if (row->err != NULL)
            assert_string_equal(err, row->err);
    }
}

static void test_resolve_localhost_both_families(void **state)
{
    struct ws_net_query q = {.host = "localhost", .port = "80"};
    struct ws_net_addr out[WS_NET_MAXADDRS];
    int n = ws_net_resolve(&q, out, WS_NET_MAXADDRS, NULL, 0);

    (void)state;
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        int fam = out[i].ss.ss_family;
        assert_true(fam == AF_INET || fam == AF_INET6);
        assert_int_equal(ws_net_sockaddr_port((struct sockaddr *)&out[i].ss),
                         80);
    }
    /* max caps the count. */
    assert_int_equal(ws_net_resolve(&q, out, 1, NULL, 0), 1);
}

static void test_resolve_bad_args(void **state)
{
    struct ws_net_query q = {.host = "127.0.0.1", .port = "80"};
    struct ws_net_addr out[1];

    (void)state;
    assert_int_equal(ws_net_resolve(NULL, out, 1, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_resolve(&q, NULL, 1, NULL, 0), -EINVAL);
    assert_int_equal(ws_net_resolve(&q, out, 0, NULL, 0), -EINVAL);
}

/* One "host:port" row. */
struct hostport_row {
    const char *label;
    const char *host, *port;
    size_t cap;
    const char *want;
};

static const struct hostport_row hostport_rows[] = {
    {"name", "example.invalid", "80", 64, "example.invalid:80"},
    {"v4", "127.0.0.1", "7", 64, "127.0.0.1:7"},
    {"v6 gets brackets", "::1", "7", 64, "[::1]:7"},
    {"v6 keeps brackets", "[::1]", "7", 64, "[::1]:7"},
    {"wildcard", NULL, "9", 64, "*:9"},
    {"NULL port", "h", NULL, 64, "h:0"},
    {"truncated", "127.0.0.1", "80", 4, "127"},
};

static void test_hostport_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(hostport_rows); i++) {
        const struct hostport_row *row = &hostport_rows[i];
        char out[64];

        print_message("row: %s\n", row->label);
        ws_net_hostport_format(row->host, row->port, out, row->cap);
        assert_string_equal(out, row->want);
    }
    ws_net_hostport_format("h", "1", NULL, 10); /* no crash */
}

static void test_addr_ports(void **state)
{
    struct ws_net_addr a;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.ss.ss_family = AF_INET;
    assert_int_equal(ws_net_addr_set_port(&a, 65535), 0);
    assert_int_equal(ws_net_sockaddr_port((struct sockaddr *)&a.ss), 65535);
    a.ss.ss_family = AF_INET6;
    assert_int_equal(ws_net_addr_set_port(&a, 1), 0);
    assert_int_equal(ws_net_sockaddr_port((struct sockaddr *)&a.ss), 1);
    assert_int_equal(ws_net_addr_set_port(&a, 65536), -EINVAL);
    assert_int_equal(ws_net_addr_set_port(&a, -1), -EINVAL);
    a.ss.ss_family = AF_UNIX;
    assert_int_equal(ws_net_addr_set_port(&a, 1), -EINVAL);
    assert_int_equal(ws_net_sockaddr_port((struct sockaddr *)&a.ss), -1);
}

/* One message row: what the user reads for an errno. */
struct errfmt_row {
    const char *label;
    const char *op, *addr;
    int err;
    const char *want;
};

static const struct errfmt_row errfmt_rows[] = {
    {"refused", "connect", "127.0.0.1:1", -ECONNREFUSED,
     "connect 127.0.0.1:1: Connection refused"},
    {"in use", "bind", "[::1]:8080", -EADDRINUSE,
     "bind [::1]:8080: Address already in use"},
    {"permission", "bind", "[::1]:80", -EACCES,
     "bind [::1]:80: Permission denied"},
    {"net unreachable", "connect", "192.0.2.1:80", -ENETUNREACH,
     "connect 192.0.2.1:80: Network is unreachable"},
    {"host unreachable", "connect", "192.0.2.1:80", -EHOSTUNREACH,
     "connect 192.0.2.1:80: No route to host"},
    {"kernel timeout", "connect", "192.0.2.1:80", -ETIMEDOUT,
     "connect 192.0.2.1:80: Connection timed out"},
    {"positive errno", "connect", "127.0.0.1:1", ECONNREFUSED,
     "connect 127.0.0.1:1: Connection refused"},
    {"reset", "recv", "127.0.0.1:9", -ECONNRESET,
     "recv 127.0.0.1:9: Connection reset by peer"},
    {"no address", "accept", NULL, -EMFILE, "accept: Too many open files"},
    {"empty address", "accept", "", -ENFILE,
     "accept: Too many open files in system"},
    {"not in table", "open", "x", -ENOENT, "open x: No such file or directory"},
    {"unknown errno", "op", "x", -4000, "op x: Unknown error 4000"},
};

static void test_errfmt_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(errfmt_rows); i++) {
        const struct errfmt_row *row = &errfmt_rows[i];
        char out[256];

        print_message("row: %s\n", row->label);
        ws_net_errfmt(out, sizeof(out), row->op, row->addr, row->err);
        assert_string_equal(out, row->want);
    }
}

static void test_errfmt_timeout_and_limits(void **state)
{
    char out[256] = "untouched";
    char small[12];

    (void)state;
    ws_net_errfmt_timeout(out, sizeof(out), "connect", "10.255.255.1:80", 2000);
    assert_string_equal(out,
                        "connect 10.255.255.1:80: timed out after 2000 ms");
    ws_net_errfmt_timeout(out, sizeof(out), "recv", NULL, 5);
    assert_string_equal(out, "recv: timed out after 5 ms");
    /* Truncated, never overrun; NULL or empty buffers are left alone. */
    ws_net_errfmt(small, sizeof(small), "connect", "127.0.0.1:1",
                  -ECONNREFUSED);
    assert_string_equal(small, "connect 127");
    ws_net_errfmt(NULL, 10, "connect", "x", -EINVAL);
    ws_net_errfmt(out, 0, "connect", "x", -EINVAL);
    assert_string_equal(out, "recv: timed out after 5 ms");
    /* ws_net_strerror() without a buffer still answers. */
    assert_string_equal(ws_net_strerror(-ECONNREFUSED, NULL, 0),
                        "Connection refused");
    assert_string_equal(ws_net_strerror(-ENOENT, NULL, 0), "unknown error");
}

/* One getaddrinfo() row. */
struct gai_row {
    const char *label;
    int gai_rc, sys_errno;
    const char *want;
};

static const struct gai_row gai_rows[] = {
    {"EAI_NONAME", EAI_NONAME, 0, "resolve h:1: host not found"},
#ifdef EAI_NODATA
    {"EAI_NODATA", EAI_NODATA, 0, "resolve h:1: host not found"},
#endif
#ifdef EAI_ADDRFAMILY
    {"EAI_ADDRFAMILY", EAI_ADDRFAMILY, 0, "resolve h:1: host not found"},
#endif
    {"EAI_AGAIN", EAI_AGAIN, 0,
     "resolve h:1: host not found (temporary failure in name resolution)"},
    {"EAI_SYSTEM", EAI_SYSTEM, ENETUNREACH,
     "resolve h:1: Network is unreachable"},
    {"EAI_SERVICE", EAI_SERVICE, 0,
     "resolve h:1: Servname not supported for ai_socktype"},
    {"EAI_FAIL", EAI_FAIL, 0,
     "resolve h:1: Non-recoverable failure in name "
     "resolution"},
};

static void test_gai_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(gai_rows); i++) {
        const struct gai_row *row = &gai_rows[i];
        char out[256];

        print_message("row: %s\n", row->label);
        ws_net_errfmt_gai(out, sizeof(out), "resolve", "h:1", row->gai_rc,
                          row->sys_errno);
        assert_string_equal(out, row->want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_rows),
        cmocka_unit_test(test_resolve_localhost_both_families),
        cmocka_unit_test(test_resolve_bad_args),
        cmocka_unit_test(test_hostport_rows),
        cmocka_unit_test(test_addr_ports),
        cmocka_unit_test(test_errfmt_rows),
        cmocka_unit_test(test_errfmt_timeout_and_limits),
        cmocka_unit_test(test_gai_rows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
