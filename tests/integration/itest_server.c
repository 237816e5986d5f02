/*
 * itest_server.c - the public API end to end on real sockets (127.0.0.1,
 * port 0): callbacks and their counts, refusals with their statuses,
 * re-entrancy rules, the embedding calls, timeouts and limits. The server
 * runs in this thread; blocking client sockets with timeouts talk to it
 * while the test pumps ws_server_run_once().
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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/ws.h"

/* What the callbacks saw. */
struct counts {
    int upgrade, open, message, close, error, pong, http, drain;
    int ticks, once_fired, fragments, first_seen, last_seen;
    size_t fragment_bytes;
    struct ws_server_timer *timer;
    int last_close_code;
    char last_reason[128];
    int last_error;
    char last_error_detail[256];
    int last_closed_here;
    char last_message[256];
    size_t last_len;
    enum ws_msg_type last_type;
    int refuse_status;          /* on_upgrade answer */
    struct ws_conn *conns[8];   /* opened connections, in order */
    int busy_destroy, busy_run; /* results of forbidden calls */
    bool close_other;           /* on_message closes conns[1] */
    bool try_forbidden;         /* on_message tries destroy/run_once */
    struct ws_server *srv;
};

struct fixture {
    struct ws_server *srv;
    struct counts n;
    int port;
};

static int on_upgrade(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *ud)
{
    struct counts *n = ud;

    n->upgrade++;
    assert_non_null(ws_request_header(req, "host"));
    /* Not open yet: the wrong time to send or close, not a closed one. */
    assert_int_equal(ws_conn_send_text(c, "early"), WS_ESTATE);
    assert_int_equal(ws_conn_close(c, 1000, NULL), WS_ESTATE);
    assert_true(ws_conn_id(c) > 0);
    assert_non_null(ws_conn_path(c));
    /* The status is the return value. */
    assert_int_equal(ws_response_status(res, 200), WS_ESTATE);
    return n->refuse_status;
}

static void on_open(struct ws_conn *c, void *ud)
{
    struct counts *n = ud;

    if (n->open < 8)
        n->conns[n->open] = c;
    n->open++;
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    struct counts *n = ud;

    n->message++;
    n->last_type = type;
    n->last_len = len;
    memcpy(n->last_message, data, len < 255 ? len : 255);
    n->last_message[len < 255 ? len : 255] = '\0';
    if (n->try_forbidden) {
        n->busy_destroy = ws_server_destroy(n->srv);
        n->busy_run = ws_server_run_once(n->srv, 0);
    }
    if (n->close_other && n->open >= 2)
        ws_conn_close(n->conns[1], 1000, "bye");
    ws_conn_send(c, type, data, len);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct counts *n = ud;

    n->close++;
    n->last_close_code = code;
    snprintf(n->last_reason, sizeof(n->last_reason), "%.*s", (int)len, reason);
    n->last_closed_here = ws_conn_closed_here(c);
    for (int i = 0; i < 8; i++) {
        if (n->conns[i] == c)
            n->conns[i] = NULL;
    }
}

static void on_error(struct ws_conn *c, int err, const char *detail, void *ud)
{
    struct counts *n = ud;

    (void)c;
    n->error++;
    n->last_error = err;
    snprintf(n->last_error_detail, sizeof(n->last_error_detail), "%s", detail);
}

static void on_pong(struct ws_conn *c, const void *data, size_t len, void *ud)
{
    struct counts *n = ud;

    (void)c;
    (void)data;
    (void)len;
    n->pong++;
}

static void on_drain(struct ws_conn *c, void *ud)
{
    struct counts *n = ud;

    (void)c;
    n->drain++;
}

/* Streaming: count pieces, check the first/last flags bracket messages. */
static void on_fragment(struct ws_conn *c, enum ws_msg_type type,
                        const void *data, size_t len, int first, int last,
                        void *ud)
{
    struct counts *n = ud;

    (void)c;
    (void)data;
    n->fragments++;
    n->fragment_bytes += len;
    n->first_seen += first;
    n->last_seen += last;
    n->last_type = type;
    assert_true(n->first_seen - n->last_seen <= 1);
}

static void on_http(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *ud)
{
    struct counts *n = ud;

    (void)c;
    n->http++;
    if (strcmp(ws_request_path(req), "/param") == 0) {
        char value[16];
        ssize_t len = ws_request_param(req, "q", value, sizeof(value));

        /* The decoded value, or the error's name, as the body. */
        if (len < 0)
            ws_response_body(res, ws_errname((int)len),
                             strlen(ws_errname((int)len)));
        else
            ws_response_body(res, value, (size_t)len);
        return;
    }
    if (strcmp(ws_request_path(req), "/") != 0) {
        ws_response_status(res, 404);
        ws_response_body(res, "no\n", 3);
        return;
    }
    assert_int_equal(ws_response_header(res, "X-Bad", "a\r\nInjected: 1"),
                     WS_EINVAL);
    ws_response_header(res, "Content-Type", "text/plain");
    ws_response_body(res, "hello page\n", 11);
}

static const struct ws_callbacks callbacks = {
    .on_upgrade = on_upgrade,
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
    .on_error = on_error,
    .on_pong = on_pong,
    .on_http = on_http,
    .on_drain = on_drain,
    .on_fragment = on_fragment,
};

static const char *const chat_paths[] = {"/chat", "/echo", NULL};
static const char *const protocols[] = {"chat.v2", "chat.v1", NULL};

/* Create and listen with cfg's limits plus the given paths and our
   protocols. */
static struct fixture *start_paths(void **state, struct ws_config cfg,
                                   const struct ws_callbacks *cb,
                                   const char *const *paths)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f; /* before any assert, so teardown always frees it */
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.paths = paths;
    cfg.protocols = protocols;
    assert_int_equal(ws_server_create(&f->srv, &cfg, cb, &f->n), 0);
    assert_int_equal(ws_server_listen(f->srv), 0);
    assert_int_equal(ws_server_listen(f->srv), WS_ESTATE); /* listening */
    f->port = ws_server_port(f->srv);
    assert_true(f->port > 0);
    f->n.srv = f->srv;
    return f;
}

/* The same with our paths. */
static struct fixture *start(void **state, struct ws_config cfg,
                             const struct ws_callbacks *cb)
{
    return start_paths(state, cfg, cb, chat_paths);
}

/* Every path is an endpoint. */
static int setup_any_path(void **state)
{
    struct ws_config cfg = {0};

    start_paths(state, cfg, &callbacks, NULL);
    return 0;
}

static int setup(void **state)
{
    struct ws_config cfg = {0};

    start(state, cfg, &callbacks);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(ws_server_destroy(f->srv), 0);
    free(f);
    return 0;
}

/* Pump the server for up to ms, until fd is readable (fd < 0: just pump). */
static bool pump_until_readable(struct fixture *f, int fd, int ms)
{
    for (int waited = 0; waited < ms; waited += 5) {
        ws_server_run_once(f->srv, 5);
        if (fd >= 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};

            if (poll(&p, 1, 0) == 1)
                return true;
        }
    }
    return false;
}

/* Pump until cond() holds or ms pass. */
#define PUMP_UNTIL(f, cond, ms)                                                \
    do {                                                                       \
        for (int w_ = 0; w_ < (ms) && !(cond); w_ += 5)                        \
            ws_server_run_once((f)->srv, 5);                                   \
    } while (0)

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

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* How many bytes of buf[0..got) make a whole reply, or 0 while more is
   needed; arg says what a reply is. */
typedef size_t (*whole_fn)(const char *buf, size_t got, int arg);

/* An HTTP response: headers, then Content-Length bytes of body (none when
   it has no Content-Length, as a 101 has, or when arg says it answers a
   HEAD). */
static size_t http_whole(const char *buf, size_t got, int arg)
{
    const char *end = memmem(buf, got, "\r\n\r\n", 4);
    const char *cl;
    size_t head, body = 0;

    if (end == NULL)
        return 0;
    head = (size_t)(end - buf) + 4;
    cl = memmem(buf, head, "Content-Length: ", 16);
    if (cl != NULL && !arg)
        body = strtoul(cl + 16, NULL, 10);
    return got >= head + body ? head + body : 0;
}

/* arg whole server frames (unmasked, RFC 6455 §5.2). */
static size_t frames_whole(const char *buf, size_t got, int arg)
{
    size_t pos = 0;

    for (int i = 0; i < arg; i++) {
        const uint8_t *p = (const uint8_t *)buf + pos;
        size_t have = got - pos, hlen = 2, len;

        if (have < 2)
            return 0;
        len = p[1] & 0x7f;
        if (len == 126)
            hlen = 4;
        else if (len == 127)
            hlen = 10;
        if (have < hlen)
            return 0;
        if (len == 126)
            len = (size_t)p[2] << 8 | p[3];
        else if (len == 127)
            for (int k = 0; k < 8; k++)
                len = (k ? len << 8 : 0) | p[2 + k];
        if (have < hlen + len)
            return 0;
        pos += hlen + len;
    }
    return pos;
}

/*
 * Read into buf, running the server, until whole() says a reply is in it
 * (then exactly that reply, NUL-terminated, is kept and its length
 * returned), the peer closes, or 5 s pass: waits for what the test
 * expects, never for a stretch of silence.
 */
static size_t recv_until(struct fixture *f, int fd, char *buf, size_t cap,
                         whole_fn whole, int arg)
{
    size_t got = 0, done = 0;

    while (got < cap - 1 && (done = whole(buf, got, arg)) == 0 &&
           pump_until_readable(f, fd, 5000)) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (done == 0)
        done = whole(buf, got, arg);
    if (done > 0)
        got = done;
    buf[got] = '\0';
    return got;
}

/* One HTTP response (to a request other than HEAD). */
static size_t recv_http(struct fixture *f, int fd, char *buf, size_t cap)
{
    return recv_until(f, fd, buf, cap, http_whole, 0);
}

/* n whole frames. */
static size_t recv_frames(struct fixture *f, int fd, char *buf, size_t cap,
                          int n)
{
    return recv_until(f, fd, buf, cap, frames_whole, n);
}

static const char key_req[] =
    "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

/* Send an upgrade for path with extra header lines; return the reply. */
static int upgrade(struct fixture *f, const char *path, const char *extra,
                   char *reply, size_t cap)
{
    char req[1024];
    int fd = client_connect(f->port);

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n%s%s\r\n", path, key_req,
             extra);
    send_all(fd, req, strlen(req));
    recv_http(f, fd, reply, cap);
    return fd;
}

/* Send one masked client frame. */
static void send_frame(int fd, uint8_t opcode, const void *data, size_t len)
{
    uint8_t buf[256];
    const uint8_t key[4] = {1, 2, 3, 4};
    ssize_t h = ws_frame_header_write(buf, sizeof(buf), true, opcode, len, key);

    assert_true(h > 0 && (size_t)h + len <= sizeof(buf));
    memcpy(buf + h, data, len);
    ws_mask(buf + h, len, key, 0);
    send_all(fd, buf, (size_t)h + len);
}

/* The 101 and one echo of "hi" through the public API, counted. */
static void echo_roundtrip(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 101"));
    assert_non_null(strstr(reply, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_int_equal(f->n.open, 1);
    assert_int_equal(ws_server_conn_count(f->srv), 1);
    send_frame(fd, WS_OP_TEXT, "hi", 2);
    assert_int_equal(recv_frames(f, fd, reply, sizeof(reply), 1), 4);
    assert_memory_equal(reply, "\x81\x02hi", 4);
    assert_int_equal(f->n.message, 1);
    assert_string_equal(f->n.last_message, "hi");
    send_frame(fd, WS_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(recv_frames(f, fd, reply, sizeof(reply), 1), 4);
    assert_memory_equal(reply, "\x88\x02\x03\xe8", 4);
    close(fd);
    PUMP_UNTIL(f, f->n.close == 1, 2000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1000);
    assert_int_equal(ws_server_conn_count(f->srv), 0);
}

/* on_upgrade refusing (an Origin check) gives its status, no on_open. */
static void upgrade_hook_refuses(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd;

    f->n.refuse_status = 403;
    fd = upgrade(f, "/chat", "Origin: http://evil.example\r\n", reply,
                 sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 403 "));
    assert_int_equal(f->n.upgrade, 1);
    assert_int_equal(f->n.open, 0);
    close(fd);
}

/* Paths with no endpoint get 404; plain GET on an endpoint 426. */
static void paths_and_plain_http(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/nope", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 404 "));
    assert_int_equal(f->n.upgrade, 0);
    close(fd);
    fd = client_connect(f->port);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    recv_http(f, fd, reply, sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(reply, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(reply, "Content-Length: 11\r\n"));
    assert_null(strstr(reply, "Injected"));
    assert_non_null(strstr(reply, "\r\n\r\nhello page\n"));
    /* Keep-alive: a second request on the same connection. */
    send_all(fd, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    recv_until(f, fd, reply, sizeof(reply), http_whole, 1);
    assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(reply, "hello page"));
    assert_int_equal(f->n.http, 2);
    close(fd);
}

/* ws_request_param() through on_http: decoded as browsers encode. */
static void query_parameters(void **state)
{
    static const struct {
        const char *target, *body;
    } rows[] = {
        {"/param?x=1&q=a+b%26c", "a b&c"},
        {"/param?q=%C3%A9t%C3%A9&q=2", "\xc3\xa9t\xc3\xa9"},
        {"/param?x=1", "WS_ENOTFOUND"},
        {"/param?q=%zz", "WS_EINVAL"},
        {"/param?q=0123456789abcdef", "WS_ENOSPC"},
    };
    struct fixture *f = *state;
    char req[256], reply[2048], want[64];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int fd = client_connect(f->port);
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                         rows[i].target);

        send_all(fd, req, (size_t)n);
        recv_http(f, fd, reply, sizeof(reply));
        snprintf(want, sizeof(want), "\r\n\r\n%s", rows[i].body);
        assert_non_null(strstr(reply, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(reply, want));
        close(fd);
    }
}

/* The server's order of preference wins; none matching sends none. */
static void subprotocol_choice(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n",
                     reply, sizeof(reply));

    assert_non_null(strstr(reply, "Sec-WebSocket-Protocol: chat.v2\r\n"));
    assert_string_equal(ws_conn_protocol(f->n.conns[0]), "chat.v2");
    close(fd);
    fd = upgrade(f, "/chat", "Sec-WebSocket-Protocol: other\r\n", reply,
                 sizeof(reply));
    assert_non_null(strstr(reply, "HTTP/1.1 101"));
    assert_null(strstr(reply, "Sec-WebSocket-Protocol"));
    assert_null(ws_conn_protocol(f->n.conns[1]));
    close(fd);
}

/* Destroying or running the server from a callback is refused. */
static void reentrancy_refused(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    f->n.try_forbidden = true;
    send_frame(fd, WS_OP_BINARY, "x", 1);
    recv_frames(f, fd, reply, sizeof(reply), 1);
    assert_int_equal(f->n.busy_destroy, WS_EBUSY);
    assert_int_equal(f->n.busy_run, WS_EBUSY);
    close(fd);
}

/* A callback closes another connection: it gets a close frame, and
   on_close runs once, outside the callback. */
static void close_other_from_callback(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int a = upgrade(f, "/chat", "", reply, sizeof(reply));
    int b = upgrade(f, "/echo", "", reply, sizeof(reply));

    assert_int_equal(f->n.open, 2);
    f->n.close_other = true;
    send_frame(a, WS_OP_TEXT, "go", 2);
    recv_frames(f, b, reply, sizeof(reply), 1);
    assert_memory_equal(reply,
                        "\x88\x05\x03\xe8"
                        "bye",
                        7);
    assert_int_equal(ws_conn_send_text(f->n.conns[1], "late"), WS_ECLOSED);
    send_frame(b, WS_OP_CLOSE, "\x03\xe8", 2);
    close(b);
    PUMP_UNTIL(f, f->n.close == 1, 2000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1000);
    close(a);
}

/* on_upgrade attaches memory to c and accepts; on_close frees it. */
static int attach_on_upgrade(struct ws_conn *c, const struct ws_request *req,
                             struct ws_response *res, void *ud)
{
    struct counts *n = ud;

    (void)req;
    (void)res;
    n->upgrade++;
    ws_conn_set_user_data(c, malloc(64));
    return 0;
}

static void free_on_close(struct ws_conn *c, int code, const char *reason,
                          size_t len, void *ud)
{
    struct counts *n = ud;

    (void)reason;
    (void)len;
    n->close++;
    n->last_close_code = code;
    free(ws_conn_get_user_data(c));
}

static const struct ws_callbacks attach_callbacks = {
    .on_upgrade = attach_on_upgrade,
    .on_open = on_open,
    .on_close = free_on_close,
};

/* An output queue too small for the 101: the upgrade fails. */
static int setup_tiny_output(void **state)
{
    struct ws_config cfg = {.max_message_bytes = 16, .max_output_bytes = 120};

    start(state, cfg, &attach_callbacks);
    return 0;
}

/* on_upgrade accepted, the 101 could not be queued: on_close follows
   (1006, without on_open), so that what on_upgrade attached is freed
   (valgrind checks the memory). */
static void accepted_upgrade_that_fails(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    /* A 500 if it fits in the queue, else a bare close: never a 101. */
    assert_null(strstr(reply, "HTTP/1.1 101 "));
    PUMP_UNTIL(f, f->n.close == 1, 2000);
    assert_int_equal(f->n.upgrade, 1);
    assert_int_equal(f->n.open, 0);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, WS_CLOSE_ABNORMAL);
    close(fd);
}

/* What ws_server_each_conn() hands fn: the ports seen, one to close. */
struct visit {
    int ports[4];
    int n;
    int close_port;
};

static void visit_conn(struct ws_conn *c, void *arg)
{
    struct visit *v = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(ws_conn_peer_addr(c, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
                     ws_conn_peer_port(c));
    if (v->n < 4)
        v->ports[v->n++] = ws_conn_peer_port(c);
    if (ws_conn_peer_port(c) == v->close_port)
        assert_int_equal(ws_conn_close(c, 4001, "visited"), 0);
}

/* The local port of the client socket fd: the server's peer port. */
static int local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

/* Every open connection is visited once, with its peer's address and
   port; one closed during the visit gets its close frame. */
static void visit_connections(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int a = upgrade(f, "/chat", "", reply, sizeof(reply));
    int b = upgrade(f, "/echo", "", reply, sizeof(reply));
    struct visit v = {.close_port = local_port(b)};
    int pa = local_port(a);

    assert_int_equal(ws_server_each_conn(f->srv, visit_conn, &v), 2);
    assert_int_equal(v.n, 2);
    assert_true((v.ports[0] == pa && v.ports[1] == v.close_port) ||
                (v.ports[1] == pa && v.ports[0] == v.close_port));
    recv_frames(f, b, reply, sizeof(reply), 1);
    assert_memory_equal(reply, "\x88\x09\x0f\xa1visited", 11);
    assert_int_equal(ws_server_each_conn(NULL, visit_conn, &v), WS_EINVAL);
    close(a);
    close(b);
}

/* Broadcast reaches every open connection. */
static void broadcast_all(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fds[3];

    for (int i = 0; i < 3; i++)
        fds[i] = upgrade(f, "/chat", "", reply, sizeof(reply));
    assert_int_equal(ws_server_broadcast(f->srv, WS_TEXT, "all", 3), 3);
    assert_int_equal(ws_server_broadcast(f->srv, WS_TEXT, "\xff", 1),
                     WS_EINVAL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(recv_frames(f, fds[i], reply, sizeof(reply), 1), 5);
        assert_memory_equal(reply,
                            "\x81\x03"
                            "all",
                            5);
        close(fds[i]);
    }
}

/* The fd_set calls drive the server from the caller's own select(). */
static void embedded_select_loop(void **state)
{
    struct fixture *f = *state;
    char req[1024], reply[2048];
    size_t got = 0;
    int fd = client_connect(f->port);
    long timeout;

    snprintf(req, sizeof(req), "GET /chat HTTP/1.1\r\n%s\r\n", key_req);
    send_all(fd, req, strlen(req));
    for (int i = 0; i < 200 && f->n.open == 0; i++) {
        fd_set r, w;
        int max_fd = -1;
        struct timeval tv = {0, 10000};

        FD_ZERO(&r);
        FD_ZERO(&w);
        assert_int_equal(ws_server_fdset(f->srv, &r, &w, &max_fd), 0);
        assert_true(max_fd >= 0);
        assert_int_equal(ws_server_timeout(f->srv, &timeout), 0);
        assert_true(timeout >= -1);
        if (select(max_fd + 1, &r, &w, NULL, &tv) >= 0)
            ws_server_process(f->srv, &r, &w);
    }
    assert_int_equal(f->n.open, 1);
    got = recv_http(f, fd, reply, sizeof(reply));
    assert_true(got > 12);
    assert_non_null(strstr(reply, "101 Switching Protocols"));
    close(fd);
}

static struct ws_server *alarm_server;

static void on_alarm(int sig)
{
    (void)sig;
    ws_server_stop(alarm_server);
}

/* ws_server_stop() from a signal handler ends ws_server_run(). */
static void stop_from_signal(void **state)
{
    struct fixture *f = *state;
    struct itimerval it = {.it_value = {0, 50000}};

    alarm_server = f->srv;
    signal(SIGALRM, on_alarm);
    setitimer(ITIMER_REAL, &it, NULL);
    assert_int_equal(ws_server_run(f->srv), 0);
    signal(SIGALRM, SIG_DFL);
}

/* A client that never finishes its request is cut off. */
static void handshake_timeout(void **state)
{
    struct ws_config cfg = {.handshake_timeout_ms = 100};
    struct fixture *f = start(state, cfg, &callbacks);
    char buf[64];
    int fd = client_connect(f->port);

    send_all(fd, "GET /chat HTTP/1.1\r\nHo", 22);
    assert_true(pump_until_readable(f, fd, 3000));
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
    close(fd);
    assert_int_equal(f->n.error, 1);
    assert_int_equal(f->n.last_error, WS_EHTTP);
    assert_non_null(strstr(f->n.last_error_detail, "handshake timeout"));
}

/* Our close gets no answer: on_close reports it after the timeout. */
static void close_timeout(void **state)
{
    struct ws_config cfg = {.close_timeout_ms = 100};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_int_equal(ws_conn_close(f->n.conns[0], 4000, "x"), 0);
    assert_int_equal(ws_conn_close(f->n.conns[0], 4000, "x"), WS_ECLOSED);
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 4000);
    assert_string_equal(f->n.last_reason, "x");
    assert_int_equal(f->n.last_closed_here, 1);
    close(fd);
}

/* Beyond max_connections a client gets 503 and the others carry on. */
static void connection_limit(void **state)
{
    struct ws_config cfg = {.max_connections = 2};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int a = upgrade(f, "/chat", "", reply, sizeof(reply));
    int b = upgrade(f, "/chat", "", reply, sizeof(reply));
    int c = upgrade(f, "/chat", "", reply, sizeof(reply));

    int d = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_non_null(strstr(reply, "HTTP/1.1 503 "));
    assert_int_equal(f->n.open, 2);
    /* Told once for the two refusals within the second. */
    assert_int_equal(f->n.error, 1);
    assert_int_equal(f->n.last_error, WS_EBUSY);
    assert_non_null(strstr(f->n.last_error_detail, "max_connections (2)"));
    close(a);
    close(b);
    close(c);
    close(d);
}

/* A port in use gives WS_EADDRINUSE and a line that says so. */
static void address_in_use(void **state)
{
    struct fixture *f = *state;
    char port[16];
    struct ws_config cfg = {.host = "127.0.0.1", .port = port};
    struct ws_server *s2;

    snprintf(port, sizeof(port), "%d", f->port);
    assert_int_equal(ws_server_create(&s2, &cfg, NULL, NULL), 0);
    assert_int_equal(ws_server_listen(s2), WS_EADDRINUSE);
    assert_non_null(strstr(ws_server_last_error(s2), "in use"));
    assert_non_null(strstr(ws_server_last_error(s2), port));
    assert_int_equal(ws_server_destroy(s2), 0);
}

/* At most 65535 subprotocols (a connection keeps its pick in 16 bits):
   that many are taken, one more is refused. */
static void protocol_count_checked(void)
{
    enum { MAX = 65535 };
    const char **names = calloc(MAX + 2, sizeof(*names));
    struct ws_config cfg = {0};
    struct ws_server *s = NULL;

    assert_non_null(names);
    for (size_t i = 0; i < MAX + 1; i++)
        names[i] = "p";
    cfg.protocols = names;
    assert_int_equal(ws_server_create(&s, &cfg, NULL, NULL), WS_EINVAL);
    assert_null(s);
    names[MAX] = NULL;
    assert_int_equal(ws_server_create(&s, &cfg, NULL, NULL), 0);
    assert_int_equal(ws_server_destroy(s), 0);
    free(names);
}

/* With select, more connections than an fd_set holds are refused at
   create (they could never be served); epoll takes them. */
static void backend_limit_checked(void)
{
    struct ws_config cfg = {.max_connections = 5000};
    struct ws_server *s = NULL;
    int rc = ws_server_create(&s, &cfg, NULL, NULL);
    const char *backend;

    if (rc == WS_EINVAL) {
        assert_null(s);
        assert_non_null(strstr(ws_server_last_error(NULL), "max_connections"));
        cfg.max_connections = 0;
        assert_int_equal(ws_server_create(&s, &cfg, NULL, NULL), 0);
        assert_string_equal(ws_server_backend(s), "select");
        assert_int_equal(ws_server_destroy(s), 0);
        return;
    }
    assert_int_equal(rc, 0);
    backend = ws_server_backend(s);
    assert_string_equal(backend, "epoll");
    assert_int_equal(ws_server_destroy(s), 0);
}

/* Bad configurations are refused at create, and the calling thread is
   told which field and why. */
static void config_checked(void **state)
{
    struct ws_config cfg = {.max_message_bytes = SIZE_MAX};
    struct ws_config neg = {.ping_interval_ms = -5};
    struct ws_server *s = (struct ws_server *)1;

    (void)state;
    assert_int_equal(ws_server_create(&s, &cfg, NULL, NULL), WS_EINVAL);
    assert_null(s);
    assert_string_equal(ws_server_last_error(NULL),
                        "max_message_bytes is too large");
    assert_int_equal(ws_server_create(&s, &neg, NULL, NULL), WS_EINVAL);
    assert_string_equal(ws_server_last_error(NULL),
                        "ping_interval_ms is negative");
    assert_int_equal(ws_server_create(&s, NULL, NULL, NULL), 0);
    assert_string_equal(ws_server_last_error(NULL), "");
    assert_int_equal(ws_server_destroy(s), 0);
    protocol_count_checked();
    backend_limit_checked();
    assert_int_equal(ws_server_create(NULL, NULL, NULL, NULL), WS_EINVAL);
    assert_int_equal(ws_server_destroy(NULL), WS_EINVAL);
    assert_string_equal(ws_errname(WS_EPROTO), "WS_EPROTO");
    assert_string_equal(ws_strerror(0), "success");
}

/* Sends are checked: bad UTF-8, bad close codes, big pings. */
static void send_arguments_checked(void **state)
{
    struct fixture *f = *state;
    char reply[2048], big[200] = {0};
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    struct ws_conn *c = f->n.conns[0];

    assert_int_equal(ws_conn_send(c, WS_TEXT, "\xc0\xaf", 2), WS_EINVAL);
    assert_int_equal(ws_conn_send(c, (enum ws_msg_type)9, "x", 1), WS_EINVAL);
    assert_int_equal(ws_conn_ping(c, big, sizeof(big)), WS_EINVAL);
    assert_int_equal(ws_conn_close(c, 1005, NULL), WS_EINVAL);
    assert_int_equal(ws_conn_close(c, 999, NULL), WS_EINVAL);
    assert_int_equal(ws_conn_ping(c, "p", 1), 0);
    recv_frames(f, fd, reply, sizeof(reply), 1);
    assert_memory_equal(reply, "\x89\x01p", 3);
    send_frame(fd, WS_OP_PONG, "p", 1);
    PUMP_UNTIL(f, f->n.pong == 1, 2000);
    assert_int_equal(f->n.pong, 1);
    ws_conn_set_user_data(c, &f->n);
    assert_ptr_equal(ws_conn_get_user_data(c), &f->n);
    assert_ptr_equal(ws_conn_server(c), f->srv);
    assert_string_equal(ws_conn_path(c), "/chat");
    assert_non_null(strstr(ws_conn_peer(c), "127.0.0.1:"));
    close(fd);
}

/* ws_conn_path() outlives the request whatever the path was: "/", an
   endpoint (with our paths: send_arguments_checked) or any other, which
   the connection copies; with a query, the path alone. */
static void path_kept_beyond_request(void **state)
{
    struct fixture *f = *state;
    const char *paths[] = {"/", "/room/42", "/deep/er/path"};
    char reply[2048];
    int fds[3];

    for (int i = 0; i < 3; i++) {
        char target[64];

        snprintf(target, sizeof(target), "%s?user=%d", paths[i], i);
        fds[i] = upgrade(f, target, "", reply, sizeof(reply));
        assert_non_null(strstr(reply, " 101 "));
    }
    PUMP_UNTIL(f, f->n.open == 3, 2000);
    for (int i = 0; i < 3; i++) { /* opened in the order they came */
        assert_string_equal(ws_conn_path(f->n.conns[i]), paths[i]);
        close(fds[i]);
    }
}

/* A quiet connection gets an empty keepalive ping (RFC 6455 §5.5.2). */
static void keepalive_ping(void **state)
{
    /* Longer than the 500 ms of quiet that upgrade() waits for. */
    struct ws_config cfg = {.ping_interval_ms = 700};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_true(pump_until_readable(f, fd, 3000));
    assert_int_equal(recv(fd, reply, 2, 0), 2);
    assert_memory_equal(reply, "\x89\x00", 2);
    assert_int_equal(f->n.close, 0);
    close(fd);
}

/* A connection silent past idle_timeout_ms is closed with 1001. */
static void idle_timeout(void **state)
{
    /* Longer than the 500 ms of quiet that upgrade() waits for. */
    struct ws_config cfg = {.idle_timeout_ms = 1000};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int fd;

    fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    assert_int_equal(f->n.open, 1);
    assert_true(pump_until_readable(f, fd, 3000));
    assert_int_equal(recv(fd, reply, 4, 0), 4);
    assert_memory_equal(reply, "\x88", 1);
    assert_memory_equal(reply + 2, "\x03\xe9", 2);
    send_frame(fd, WS_OP_CLOSE, "\x03\xe9", 2);
    close(fd);
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_int_equal(f->n.last_closed_here, 1);
}

/* ws_conn_set_keepalive(): one connection turns the server's idle
   timeout off, another pings every 200 ms; only the second meets the
   timeout (it never answers the pings), the first stays open. */
static void keepalive_per_conn(void **state)
{
    struct ws_config cfg = {.idle_timeout_ms = 1500, .close_timeout_ms = 300};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int fd1 = upgrade(f, "/chat", "", reply, sizeof(reply)), fd2;

    assert_int_equal(ws_conn_set_keepalive(f->n.conns[0], -1, 0), 0);
    assert_int_equal(ws_conn_set_keepalive(f->n.conns[0], -2, 0), WS_EINVAL);
    assert_int_equal(ws_conn_set_keepalive(NULL, 0, 0), WS_EINVAL);
    fd2 = upgrade(f, "/chat", "", reply, sizeof(reply));
    assert_int_equal(ws_conn_set_keepalive(f->n.conns[1], 200, -1), 0);
    assert_true(pump_until_readable(f, fd2, 1000));
    assert_int_equal(recv(fd2, reply, 2, 0), 2);
    assert_memory_equal(reply, "\x89\x00", 2);
    PUMP_UNTIL(f, f->n.close == 1, 4000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_string_equal(f->n.last_reason, "idle timeout");
    /* The first, quiet for longer, is still open and reachable. */
    assert_int_equal(ws_conn_send_text(f->n.conns[0], "still"), 0);
    assert_true(pump_until_readable(f, fd1, 1000));
    assert_int_equal(recv(fd1, reply, 7, 0), 7);
    assert_memory_equal(reply, "\x81\x05still", 7);
    close(fd1);
    close(fd2);
}

/* A dead peer past idle_timeout_ms never answers the close: on_close
   reports the close that ended it, 1001 "idle timeout", begun here. */
static void idle_timeout_dead_peer(void **state)
{
    struct ws_config cfg = {.idle_timeout_ms = 1000, .close_timeout_ms = 300};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_true(pump_until_readable(f, fd, 3000)); /* the close */
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_string_equal(f->n.last_reason, "idle timeout");
    assert_int_equal(f->n.last_closed_here, 1);
    close(fd);
}

/* The server fails a connection: on_close has the reason that went on
   the wire; a close the peer begins is not begun here. */
static void close_causes(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    const uint8_t unmasked[] = {0x81, 0x01, 'x'};

    send_all(fd, unmasked, sizeof(unmasked));      /* §5.1: must be masked */
    assert_true(pump_until_readable(f, fd, 3000)); /* our 1002 */
    close(fd);
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.last_close_code, 1002);
    assert_string_equal(f->n.last_reason, "protocol error");
    assert_int_equal(f->n.last_closed_here, 1);
    /* Told to on_error too, with the peer. */
    assert_int_equal(f->n.error, 1);
    assert_int_equal(f->n.last_error, WS_EPROTO);
    assert_non_null(
        strstr(f->n.last_error_detail, "closed with 1002 (protocol error)"));
    assert_non_null(strstr(f->n.last_error_detail, "127.0.0.1:"));
    fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    send_frame(fd, WS_OP_CLOSE,
               "\x0f\xa0"
               "bye",
               5);
    assert_true(pump_until_readable(f, fd, 3000)); /* the echo */
    close(fd);
    PUMP_UNTIL(f, f->n.close == 2, 3000);
    assert_int_equal(f->n.last_close_code, 4000);
    assert_string_equal(f->n.last_reason, "bye");
    assert_int_equal(f->n.last_closed_here, 0);
    assert_int_equal(f->n.error, 1); /* the peer's close is no error */
    /* A malformed request and a library refusal are told, with the
       status answered. */
    fd = client_connect(f->port);
    send_all(fd, "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
             strlen("GET / HTTP/1.1\r\nBad Header\r\n\r\n"));
    recv_http(f, fd, reply, sizeof(reply));
    close(fd);
    assert_int_equal(f->n.error, 2);
    assert_int_equal(f->n.last_error, WS_EHTTP);
    assert_non_null(
        strstr(f->n.last_error_detail, "bad request: answered 400"));
    fd = upgrade(f, "/nope", "", reply, sizeof(reply));
    close(fd);
    assert_int_equal(f->n.error, 3);
    assert_non_null(
        strstr(f->n.last_error_detail, "upgrade refused: answered 404"));
}

/* on_drain fires once a queue past the threshold is written out. */
static void drain_callback(void **state)
{
    struct ws_config cfg = {.drain_threshold_bytes = 4096};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    static char big[1 << 20];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    size_t got = 0, sent = 0;

    /* A large send goes straight to the socket while nothing is queued,
       so send until the socket is full and the rest is buffered. */
    while (ws_conn_buffered(f->n.conns[0]) < 4096 && sent < 32) {
        assert_int_equal(ws_conn_send_binary(f->n.conns[0], big, sizeof(big)),
                         0);
        sent++;
    }
    assert_true(ws_conn_buffered(f->n.conns[0]) >= 4096);
    assert_int_equal(f->n.drain, 0);
    while (got < sent * (sizeof(big) + 10) &&
           pump_until_readable(f, fd, 2000)) {
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    assert_int_equal(got, sent * (sizeof(big) + 10));
    PUMP_UNTIL(f, f->n.drain == 1, 2000);
    assert_int_equal(f->n.drain, 1);
    assert_int_equal(ws_conn_buffered(f->n.conns[0]), 0);
    close(fd);
}

/* A peer that never reads passes max_output_bytes: the send fails with
   WS_EFULL and the connection is closed with 1008. */
static void slow_consumer_closed(void **state)
{
    struct ws_config cfg = {.max_message_bytes = 65536,
                            .max_output_bytes = 256 * 1024,
                            .close_timeout_ms = 100};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    static char msg[65536];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    int rc = 0, sent = 0;

    while (sent < 10000) {
        rc = ws_conn_send_binary(f->n.conns[0], msg, sizeof(msg));
        if (rc != 0)
            break;
        sent++;
        ws_server_run_once(f->srv, 0);
    }
    assert_int_equal(rc, WS_EFULL);
    assert_int_equal(ws_conn_send_binary(f->n.conns[0], "x", 1), WS_ECLOSED);
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1008);
    close(fd);
}

/* max_output_bytes bounds what waits before a send, not the message: a
   message far larger than the cap is taken by an empty queue; the next
   one, with more than the cap waiting, is refused with WS_EFULL and the
   connection is closed with 1008. What waits never passes the cap and
   one whole frame. */
static void cap_counts_backlog(void **state)
{
    struct ws_config cfg = {.max_message_bytes = 1 << 20,
                            .max_output_bytes = 1024,
                            .close_timeout_ms = 100};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    static char msg[1 << 20];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    struct ws_conn *c = f->n.conns[0];
    int rc = 0, sent = 0;
    size_t most = 0;

    while (rc == 0 && sent < 1000) {
        rc = ws_conn_send_binary(c, msg, sizeof(msg));
        if (rc == 0) {
            sent++;
            ws_server_run_once(f->srv, 0);
            if (ws_conn_buffered(c) > most)
                most = ws_conn_buffered(c);
        }
    }
    assert_int_equal(rc, WS_EFULL);
    assert_true(sent >= 1);
    assert_true(most > 1024); /* the socket did not take it all */
    assert_true(most <= 1024 + sizeof(msg) + 14);
    PUMP_UNTIL(f, f->n.close == 1, 3000);
    assert_int_equal(f->n.last_close_code, 1008);
    close(fd);
}

/* A repeating timer stops itself from its own callback after 3 runs. */
static void on_tick(struct ws_server_timer *t, void *arg)
{
    struct counts *n = arg;

    assert_ptr_equal(t, n->timer);
    if (++n->ticks == 3)
        ws_server_timer_stop(t);
}

static void on_once(struct ws_server_timer *t, void *arg)
{
    (void)t;
    ((struct counts *)arg)->once_fired++;
}

/* Timers: repeating, stopped inside its callback; a one-shot; one left
   running is freed by destroy (valgrind and ASan check). */
static void timers(void **state)
{
    struct fixture *f = *state;
    struct ws_server_timer *once, *left;

    assert_int_equal(
        ws_server_timer_start(f->srv, &f->n.timer, 10, 10, on_tick, &f->n), 0);
    assert_int_equal(
        ws_server_timer_start(f->srv, &once, 30, 0, on_once, &f->n), 0);
    assert_int_equal(
        ws_server_timer_start(f->srv, &left, 100000, 0, on_once, &f->n), 0);
    PUMP_UNTIL(f, f->n.ticks >= 3 && f->n.once_fired >= 1, 2000);
    pump_until_readable(f, -1, 100);
    assert_int_equal(f->n.ticks, 3);
    assert_int_equal(f->n.once_fired, 1);
    ws_server_timer_stop(once);
    assert_int_equal(ws_server_timer_start(f->srv, NULL, 1, 0, on_once, NULL),
                     WS_EINVAL);
}

/* Send one masked client frame with explicit FIN and opcode. */
static void send_part_frame(int fd, bool fin, uint8_t opcode, const void *data,
                            size_t len)
{
    static uint8_t buf[1 << 17];
    const uint8_t key[4] = {9, 8, 7, 6};
    ssize_t h = ws_frame_header_write(buf, sizeof(buf), fin, opcode, len, key);

    assert_true(h > 0 && (size_t)h + len <= sizeof(buf));
    memcpy(buf + h, data, len);
    ws_mask(buf + h, len, key, 0);
    send_all(fd, buf, (size_t)h + len);
}

/* Streaming receive: pieces with first/last flags, no size limit, and a
   bad UTF-8 byte closes with 1007 after the good pieces. */
static void streaming_receive(void **state)
{
    struct ws_config cfg = {.max_message_bytes = 1000};
    struct fixture *f = start(state, cfg, &callbacks);
    char reply[2048];
    static char big[100000];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));

    assert_int_equal(ws_conn_set_streaming(f->n.conns[0], 1), 0);
    send_part_frame(fd, false, WS_OP_TEXT, "h\xc3", 2);
    send_part_frame(fd, false, WS_OP_CONT, "\xa9ll", 3);
    send_part_frame(fd, true, WS_OP_CONT, "o", 1);
    PUMP_UNTIL(f, f->n.last_seen == 1, 2000);
    assert_int_equal(f->n.first_seen, 1);
    assert_int_equal(f->n.fragment_bytes, 6);
    assert_int_equal(f->n.message, 0);
    /* 100 kB in one frame, over max_message_bytes: delivered in pieces. */
    memset(big, 'a', sizeof(big));
    send_part_frame(fd, true, WS_OP_BINARY, big, sizeof(big));
    PUMP_UNTIL(f, f->n.last_seen == 2, 2000);
    assert_int_equal(f->n.fragment_bytes, 6 + sizeof(big));
    assert_int_equal(f->n.last_type, WS_BINARY);
    send_part_frame(fd, false, WS_OP_TEXT, "ok", 2);
    send_part_frame(fd, true, WS_OP_CONT, "\xff", 1);
    assert_true(pump_until_readable(f, fd, 2000));
    assert_true(recv(fd, reply, 4, 0) == 4);
    assert_memory_equal(reply + 2, "\x03\xef", 2); /* 1007 */
    assert_int_equal(f->n.first_seen, 3);
    assert_int_equal(f->n.last_seen, 2);
    close(fd);
}

/* Fragmented sending: begin/continue/finish frames on the wire, a ping
   between them, whole messages refused meanwhile, UTF-8 across pieces. */
static void fragmented_send(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int fd = upgrade(f, "/chat", "", reply, sizeof(reply));
    struct ws_conn *c = f->n.conns[0];
    static const char want[] = "\x01\x02h\xc3"
                               "\x89\x01p"
                               "\x00\x01\xa9"
                               "\x80\x01!";

    assert_int_equal(ws_conn_send_continue(c, "x", 1), WS_ESTATE);
    assert_int_equal(ws_conn_send_begin(c, WS_TEXT, "h\xc3", 2), 0);
    assert_int_equal(ws_conn_send_begin(c, WS_TEXT, "x", 1), WS_ESTATE);
    assert_int_equal(ws_conn_send_text(c, "whole"), WS_ESTATE);
    assert_int_equal(ws_conn_ping(c, "p", 1), 0);
    assert_int_equal(ws_conn_send_continue(c, "\xff", 1), WS_EINVAL);
    assert_int_equal(ws_conn_send_continue(c, "\xa9", 1), 0);
    assert_int_equal(ws_conn_send_finish(c, "!", 1), 0);
    assert_int_equal(ws_conn_send_finish(c, "!", 1), WS_ESTATE);
    assert_int_equal(recv_frames(f, fd, reply, sizeof(reply), 4),
                     sizeof(want) - 1);
    assert_memory_equal(reply, want, sizeof(want) - 1);
    assert_int_equal(ws_conn_send_text(c, "whole"), 0);
    close(fd);
}

/* Ids name connections for their whole life, and never come back. */
static void conn_ids(void **state)
{
    struct fixture *f = *state;
    char reply[2048];
    int a = upgrade(f, "/chat", "", reply, sizeof(reply));
    int b = upgrade(f, "/chat", "", reply, sizeof(reply));
    uint64_t ia = ws_conn_id(f->n.conns[0]), ib = ws_conn_id(f->n.conns[1]);

    assert_true(ia != 0 && ib != 0 && ia != ib);
    assert_ptr_equal(ws_server_find(f->srv, ia), f->n.conns[0]);
    assert_null(ws_server_find(f->srv, ia + ib + 1000));
    close(a);
    PUMP_UNTIL(f, f->n.close == 1, 2000);
    assert_null(ws_server_find(f->srv, ia));
    assert_int_equal(ws_server_post_send(f->srv, ia, WS_TEXT, "x", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_server_post_send(f->srv, ib, WS_TEXT, "hey", 3), 0);
    assert_int_equal(recv_frames(f, b, reply, sizeof(reply), 1), 5);
    assert_memory_equal(reply, "\x81\x03hey", 5);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(echo_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(upgrade_hook_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(paths_and_plain_http, setup, teardown),
        cmocka_unit_test_setup_teardown(query_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(visit_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(accepted_upgrade_that_fails,
                                        setup_tiny_output, teardown),
        cmocka_unit_test_setup_teardown(subprotocol_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(reentrancy_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(close_other_from_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broadcast_all, setup, teardown),
        cmocka_unit_test_setup_teardown(embedded_select_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_from_signal, setup, teardown),
        cmocka_unit_test_teardown(handshake_timeout, teardown),
        cmocka_unit_test_teardown(close_timeout, teardown),
        cmocka_unit_test_teardown(connection_limit, teardown),
        cmocka_unit_test_setup_teardown(address_in_use, setup, teardown),
        cmocka_unit_test(config_checked),
        cmocka_unit_test_setup_teardown(send_arguments_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(path_kept_beyond_request,
                                        setup_any_path, teardown),
        cmocka_unit_test_teardown(keepalive_ping, teardown),
        cmocka_unit_test_teardown(idle_timeout, teardown),
        cmocka_unit_test_teardown(keepalive_per_conn, teardown),
        cmocka_unit_test_teardown(idle_timeout_dead_peer, teardown),
        cmocka_unit_test_setup_teardown(close_causes, setup, teardown),
        cmocka_unit_test_teardown(drain_callback, teardown),
        cmocka_unit_test_teardown(cap_counts_backlog, teardown),
        cmocka_unit_test_teardown(slow_consumer_closed, teardown),
        cmocka_unit_test_setup_teardown(timers, setup, teardown),
        cmocka_unit_test_teardown(streaming_receive, teardown),
        cmocka_unit_test_setup_teardown(fragmented_send, setup, teardown),
        cmocka_unit_test_setup_teardown(conn_ids, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
