/*
 * itest_http.c - the HTTP side of the public API on real sockets
 * (127.0.0.1, port 0): request bodies read by on_http (Content-Length and
 * chunked, RFC 7230 §3.3), max_body_bytes and 413, Expect: 100-continue
 * (RFC 7231 §5.1.1), keep-alive and pipelining after a body, and what
 * on_upgrade puts in its response: headers in the 101, refusals with
 * their headers and bodies, redirects, and the subprotocol it picks. The
 * server runs in this thread; blocking client sockets with timeouts talk
 * to it while the test pumps ws_server_run_once().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ws/ws.h"

/* What the callbacks saw and did. */
struct counts {
    int upgrade, open, close, http;
    size_t body_len;      /* the last body on_http read */
    bool body_nul;        /* a NUL followed it */
    int http_protocol_rc; /* ws_response_protocol() in on_http */
    int protocol_rc;      /* ws_response_protocol() in on_upgrade */
    int reserved_rc[6];   /* ws_response_header() of reserved names */
    int file_rc;          /* ws_response_file() in on_upgrade */
    char protocol[64];    /* ws_conn_protocol() at on_open */
    bool protocol_null;   /* it was NULL */
};

struct fixture {
    struct ws_server *srv;
    struct counts n;
    int port;
};

static const char *const protocols[] = {"chat.v2", "chat.v1", NULL};

/* on_http: /echo answers "<len>:<body>"; anything else 404. */
static void on_http(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *ud)
{
    struct counts *n = ud;
    size_t len = 99;
    const char *body = ws_request_body(req, &len);
    char head[32];
    char *out;
    int k;

    (void)c;
    n->http++;
    n->body_len = len;
    n->body_nul = body[len] == '\0';
    assert_ptr_equal(ws_request_body(req, NULL), body);
    n->http_protocol_rc = ws_response_protocol(res, "chat.v1");
    if (strcmp(ws_request_path(req), "/echo") != 0) {
        ws_response_status(res, 404);
        return;
    }
    k = snprintf(head, sizeof(head), "%zu:", len);
    out = malloc((size_t)k + len);
    assert_non_null(out);
    memcpy(out, head, (size_t)k);
    memcpy(out + k, body, len);
    ws_response_body(res, out, (size_t)k + len);
    free(out);
}

/* Names the library owns in an upgrade's response. */
static void try_reserved(struct counts *n, struct ws_response *res)
{
    static const char *const names[6] = {"Upgrade",
                                         "Connection",
                                         "Sec-WebSocket-Accept",
                                         "sec-websocket-protocol",
                                         "Content-Length",
                                         "Sec-WebSocket-Extensions"};

    for (int i = 0; i < 6; i++)
        n->reserved_rc[i] = ws_response_header(res, names[i], "x");
}

/* /auth: 401 with a challenge unless an Authorization came. */
static int auth_upgrade(const struct ws_request *req, struct ws_response *res)
{
    if (ws_request_header(req, "Authorization") != NULL)
        return 0;
    ws_response_header(res, "WWW-Authenticate", "Basic realm=\"ws\"");
    ws_response_body(res, "login first\n", 12);
    return 401;
}

/* The answer on_upgrade gives, chosen by the path and the query. */
static int on_upgrade(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *ud)
{
    struct counts *n = ud;
    const char *path = ws_request_path(req);
    char proto[64];

    (void)c;
    n->upgrade++;
    n->file_rc = ws_response_file(res, req, ".");
    if (ws_request_param(req, "proto", proto, sizeof(proto)) >= 0)
        n->protocol_rc = ws_response_protocol(
            res, strcmp(proto, "none") == 0 ? NULL : proto);
    if (strcmp(path, "/auth") == 0)
        return auth_upgrade(req, res);
    if (strcmp(path, "/forbidden") == 0) {
        ws_response_header(res, "X-Reason", "closed today");
        return 403;
    }
    if (strcmp(path, "/old") == 0) {
        ws_response_header(res, "Location", "/chat");
        return 302;
    }
    if (strcmp(path, "/old-nowhere") == 0)
        return 302; /* a redirect with no Location: 500 */
    if (strcmp(path, "/cookie") == 0) {
        try_reserved(n, res);
        assert_int_equal(ws_response_header(res, "Set-Cookie",
                                            "sid=42; "
                                            "HttpOnly"),
                         0);
        ws_response_body(res, "never sent", 10); /* a 101 has no body */
    }
    return 0;
}

static void on_open(struct ws_conn *c, void *ud)
{
    struct counts *n = ud;
    const char *p = ws_conn_protocol(c);

    n->open++;
    n->protocol_null = p == NULL;
    snprintf(n->protocol, sizeof(n->protocol), "%s", p ? p : "");
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct counts *n = ud;

    (void)c;
    (void)code;
    (void)reason;
    (void)len;
    n->close++;
}

static const struct ws_callbacks callbacks = {
    .on_upgrade = on_upgrade,
    .on_open = on_open,
    .on_close = on_close,
    .on_http = on_http,
};

/* Create and listen with cfg and our protocols. */
static struct fixture *start(void **state, struct ws_config cfg,
                             const struct ws_callbacks *cb)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.protocols = protocols;
    assert_int_equal(ws_server_create(&f->srv, &cfg, cb, &f->n), 0);
    assert_int_equal(ws_server_listen(f->srv), 0);
    f->port = ws_server_port(f->srv);
    return f;
}

/* A body limit of 1024 bytes, so that the tests stay small. */
static int setup(void **state)
{
    struct ws_config cfg = {.max_body_bytes = 1024};

    start(state, cfg, &callbacks);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->srv)
        assert_int_equal(ws_server_destroy(f->srv), 0);
    free(f);
    return 0;
}

/* Pump the server for up to ms, until fd is readable. */
static bool pump_until_readable(struct fixture *f, int fd, int ms)
{
    for (int waited = 0; waited < ms; waited += 5) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        ws_server_run_once(f->srv, 5);
        if (poll(&p, 1, 0) == 1)
            return true;
    }
    return false;
}

static int client_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Send all of p, pumping the server while the socket is full (the
   server runs in this thread). */
static void send_all(struct fixture *f, int fd, const void *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t k = send(fd, (const char *)p + done, n - done,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ws_server_run_once(f->srv, 5);
            continue;
        }
        assert_true(k > 0);
        done += (size_t)k;
    }
}

static void send_str(struct fixture *f, int fd, const char *s)
{
    send_all(f, fd, s, strlen(s));
}

/* The length of the response whose head is buf[0..head) (a 1xx or a
   101 has no body). */
static size_t http_length(const char *buf, size_t head)
{
    const char *cl = memmem(buf, head, "Content-Length: ", 16);

    if (cl == NULL || strncmp(buf, "HTTP/1.1 1", 10) == 0)
        return head;
    return head + strtoul(cl + 16, NULL, 10);
}

/* Take exactly n bytes into buf, running the server meanwhile. */
static size_t recv_exactly(struct fixture *f, int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n && pump_until_readable(f, fd, 5000)) {
        ssize_t k = recv(fd, buf + got, n - got, MSG_DONTWAIT);

        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/*
 * Read exactly one response into buf (NUL-terminated), running the
 * server; returns its length, 0 if the peer closed first. The head is
 * found by peeking, so that a response after it stays in the socket.
 */
static size_t recv_http(struct fixture *f, int fd, char *buf, size_t cap)
{
    size_t head = 0, total;
    ssize_t k = 0;

    buf[0] = '\0';
    while (head == 0 && pump_until_readable(f, fd, 5000)) {
        const char *end;

        k = recv(fd, buf, cap - 1, MSG_PEEK);
        if (k <= 0)
            return 0;
        end = memmem(buf, (size_t)k, "\r\n\r\n", 4);
        if (end != NULL)
            head = (size_t)(end - buf) + 4;
    }
    if (head == 0)
        return 0;
    total = http_length(buf, head);
    assert_true(total < cap);
    total = recv_exactly(f, fd, buf, total);
    buf[total] = '\0';
    return total;
}

/* The server has closed fd (after what it had to say). */
static void assert_closed(struct fixture *f, int fd)
{
    char c;

    assert_true(pump_until_readable(f, fd, 3000));
    assert_int_equal(recv(fd, &c, 1, 0), 0);
}

/* Nothing more arrives on fd for 100 ms. */
static void assert_quiet(struct fixture *f, int fd)
{
    assert_false(pump_until_readable(f, fd, 100));
}

static const char key_req[] =
    "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

/* Send an upgrade to target with extra header lines; read the reply. */
static int upgrade(struct fixture *f, const char *target, const char *extra,
                   char *reply, size_t cap)
{
    char req[1024];
    int fd = client_connect(f->port);

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n%s%s\r\n", target, key_req,
             extra);
    send_str(f, fd, req);
    recv_http(f, fd, reply, cap);
    return fd;
}

/* A POST body reaches on_http, NUL after it; the connection stays open
   and the next request on it (no body) is parsed on its own. */
static void post_body_read(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
             "Content-Length: 3\r\n\r\nabc");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(reply, "Connection: keep-alive\r\n"));
    assert_non_null(strstr(reply, "\r\n\r\n3:abc"));
    assert_true(f->n.body_nul);
    assert_int_equal(f->n.http_protocol_rc, WS_ESTATE);
    send_str(f, fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n0:"));
    assert_int_equal(f->n.http, 2);
    assert_int_equal(f->n.body_len, 0);
    close(fd);
}

/* A chunked body (RFC 7230 §4.1) arrives in pieces, with an extension
   and a trailer; on_http sees the data only. */
static void chunked_body(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel");
    assert_quiet(f, fd);
    send_str(f, fd, "lo\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n11:hello world"));
    assert_int_equal(f->n.http, 1);
    close(fd);
}

/* Pipelined: a request with a body and one after it, sent together, are
   answered in order. */
static void pipelined_after_body(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
             "abcdGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n4:abcd"));
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 404 "));
    assert_int_equal(f->n.http, 2);
    /* Two bodies back to back. */
    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz"
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nyy");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n1:z"));
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n2:yy"));
    close(fd);
}

/* Expect: 100-continue with a body within the limit: 100 Continue comes
   before the body is sent, then the answer. */
static void expect_continue_accepted(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 5\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_string_equal(reply, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(f, fd, "hello");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(reply, "\r\n\r\n5:hello"));
    /* The body sent at once with the headers: no 100 is needed. */
    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 2\r\n\r\nok");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(reply, "\r\n\r\n2:ok"));
    close(fd);
}

/* Expect: 100-continue with a Content-Length over max_body_bytes: 413 at
   once, without waiting for the body, and the connection closes. */
static void expect_continue_too_large(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 1025\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 413 Payload Too Large\r\n"));
    assert_non_null(strstr(reply, "Connection: close\r\n"));
    assert_closed(f, fd);
    assert_int_equal(f->n.http, 0);
    close(fd);
}

/* Bodies over the limit without Expect: 413 and the connection closes,
   for a Content-Length and for chunks adding up past it; exactly the
   limit passes. */
static void body_over_limit(void **state)
{
    struct fixture *f = *state;
    static char big[1100];
    char reply[2048], head[128];
    int fd = client_connect(f->port);
    int k;

    memset(big, 'b', sizeof(big));
    k = snprintf(
        head, sizeof(head),
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
        sizeof(big));
    send_all(f, fd, head, (size_t)k);
    send_all(f, fd, big, sizeof(big));
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 413 "));
    assert_closed(f, fd);
    close(fd);
    fd = client_connect(f->port);
    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\n"
             "Transfer-Encoding: chunked\r\n\r\n200\r\n");
    send_all(f, fd, big, 0x200);
    send_str(f, fd, "\r\n201\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 413 "));
    assert_closed(f, fd);
    close(fd);
    fd = client_connect(f->port);
    send_str(f, fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
    send_all(f, fd, big, 1024);
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "\r\n\r\n1024:bbb"));
    assert_int_equal(f->n.http, 1);
    close(fd);
}

/* The default limit is 1 MiB: a body of 1 MiB passes, 1 MiB + 1 is 413;
   the field is checked at create. */
static void default_limit(void **state)
{
    struct ws_config cfg = {0};
    struct fixture *f = start(state, cfg, &callbacks);
    char *body = malloc(1u << 20), *reply = malloc((1u << 20) + 512);
    struct ws_config bad = {.max_body_bytes = SIZE_MAX};
    struct ws_server *s = NULL;
    int fd = client_connect(f->port);

    assert_non_null(body);
    assert_non_null(reply);
    memset(body, 'd', 1u << 20);
    send_str(
        f, fd,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n");
    send_all(f, fd, body, 1u << 20);
    recv_http(f, fd, reply, (1u << 20) + 512);
    assert_non_null(strstr(reply, "\r\n\r\n1048576:ddd"));
    send_str(f, fd,
             "PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 1048577\r\n\r\n");
    recv_http(f, fd, reply, 2048);
    assert_non_null(strstr(reply, "HTTP/1.1 413 "));
    close(fd);
    free(body);
    free(reply);
    assert_int_equal(ws_server_create(&s, &bad, NULL, NULL), WS_EINVAL);
    assert_null(s);
    assert_string_equal(ws_server_last_error(NULL),
                        "max_body_bytes is too large");
}

/* Without on_http, a client waiting on Expect gets the final answer (426
   on an endpoint) at once instead of a 100. */
static void expect_without_on_http(void **state)
{
    static const struct ws_callbacks no_http = {.on_upgrade = on_upgrade};
    struct ws_config cfg = {0};
    struct fixture *f = start(state, cfg, &no_http);
    char reply[2048];
    int fd = client_connect(f->port);

    send_str(f, fd,
             "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 5\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 426 "));
    assert_closed(f, fd);
    close(fd);
}

/* An upgrade with a body is refused with 400 (RFC 7231 §4.3.1: the bytes
   after the handshake are frames): whole, or as soon as its headers are
   in; on_upgrade never runs. */
static void upgrade_with_body(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    /* The body is never sent: the answer comes without waiting for it. */
    int fd = upgrade(f, "/chat", "Content-Length: 5\r\n", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    assert_closed(f, fd);
    close(fd);
    fd = client_connect(f->port);
    send_str(f, fd, "GET /chat HTTP/1.1\r\n");
    send_str(f, fd, key_req);
    send_str(f, fd, "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    close(fd);
    assert_int_equal(f->n.upgrade, 0);
}

/* Headers added in on_upgrade go into the 101 (Set-Cookie); the ones
   the handshake owns are WS_EINVAL; the body is not sent. */
static void cookie_in_101(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/cookie", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(reply, "\r\nSet-Cookie: sid=42; HttpOnly\r\n\r\n"));
    assert_non_null(strstr(reply, "Sec-WebSocket-Accept: "
                                  "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_null(strstr(reply, "Upgrade: x"));
    for (int i = 0; i < 6; i++)
        assert_int_equal(f->n.reserved_rc[i], WS_EINVAL);
    assert_int_equal(f->n.file_rc, WS_ESTATE);
    assert_int_equal(f->n.open, 1);
    assert_quiet(f, fd); /* no body after the 101 */
    close(fd);
}

/* A refusal carries what on_upgrade added: 401 with WWW-Authenticate and
   its body; 403 with a header and the library's short text; then the
   connection closes. With the credentials the same path opens. */
static void refusal_with_headers(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/auth", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_non_null(strstr(reply, "WWW-Authenticate: Basic realm=\"ws\"\r\n"));
    assert_non_null(strstr(reply, "Content-Length: 12\r\n"));
    assert_non_null(strstr(reply, "Connection: close\r\n"));
    assert_non_null(strstr(reply, "\r\n\r\nlogin first\n"));
    assert_closed(f, fd);
    close(fd);
    fd = upgrade(f, "/forbidden", "", reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 403 Forbidden\r\n"));
    assert_non_null(strstr(reply, "X-Reason: closed today\r\n"));
    assert_non_null(strstr(reply, "Content-Type: text/plain"));
    assert_non_null(strstr(reply, "\r\n\r\n403 Forbidden\n"));
    close(fd);
    fd = upgrade(f, "/auth", "Authorization: Basic YTpi\r\n", reply,
                 sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 101 "));
    assert_int_equal(f->n.open, 1);
    close(fd);
}

/* A redirect with a Location is sent as it is; one without is 500. */
static void redirect(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/old", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 302 Found\r\n"));
    assert_non_null(strstr(reply, "Location: /chat\r\n"));
    assert_closed(f, fd);
    close(fd);
    fd = upgrade(f, "/old-nowhere", "", reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 500 "));
    close(fd);
    assert_int_equal(f->n.open, 0);
}

/* Upgrade to target offering offer; the 101 must name want (NULL: no
   Sec-WebSocket-Protocol), and so must ws_conn_protocol(). */
static void check_pick(struct fixture *f, const char *target, const char *offer,
                       const char *want, int want_rc)
{
    char reply[2048], extra[128], line[128];
    int opened = f->n.open;
    int fd;

    snprintf(extra, sizeof(extra), "Sec-WebSocket-Protocol: %s\r\n", offer);
    f->n.protocol_rc = 99;
    fd = upgrade(f, target, extra, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 101 "));
    assert_int_equal(f->n.open, opened + 1);
    assert_int_equal(f->n.protocol_rc, want_rc);
    if (want == NULL) {
        assert_null(strstr(reply, "Sec-WebSocket-Protocol"));
        assert_true(f->n.protocol_null);
    } else {
        snprintf(line, sizeof(line), "\r\nSec-WebSocket-Protocol: %s\r\n",
                 want);
        assert_non_null(strstr(reply, line));
        assert_string_equal(f->n.protocol, want);
    }
    close(fd);
}

/* on_upgrade picks the subprotocol per request (here from ?proto=):
   one of cfg.protocols against its order, one outside it, none at all;
   a pick the client did not offer (or spelt otherwise) is WS_EINVAL and
   the configured preference stands. */
static void protocol_pick(void **state)
{
    struct fixture *f = *state;

    check_pick(f, "/chat", "chat.v1, chat.v2", "chat.v2", 99);
    check_pick(f, "/chat?proto=chat.v1", "chat.v1, chat.v2", "chat.v1", 0);
    check_pick(f, "/chat?proto=mqtt", "chat.v1, mqtt", "mqtt", 0);
    check_pick(f, "/chat?proto=none", "chat.v1, chat.v2", NULL, 0);
    check_pick(f, "/chat?proto=mqtt", "chat.v1, chat.v2", "chat.v2", WS_EINVAL);
    check_pick(f, "/chat?proto=CHAT.V1", "chat.v1", "chat.v1", WS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(post_body_read, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_body, setup, teardown),
        cmocka_unit_test_setup_teardown(pipelined_after_body, setup, teardown),
        cmocka_unit_test_setup_teardown(expect_continue_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(expect_continue_too_large, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(body_over_limit, setup, teardown),
        cmocka_unit_test_teardown(default_limit, teardown),
        cmocka_unit_test_teardown(expect_without_on_http, teardown),
        cmocka_unit_test_setup_teardown(upgrade_with_body, setup, teardown),
        cmocka_unit_test_setup_teardown(cookie_in_101, setup, teardown),
        cmocka_unit_test_setup_teardown(refusal_with_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(protocol_pick, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
