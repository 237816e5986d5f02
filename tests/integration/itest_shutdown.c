/*
 * itest_shutdown.c - ws_server_unlisten(), ws_server_shutdown() and
 * ws_server_done() through the public API on real sockets (127.0.0.1,
 * port 0): listeners closed and opened again, the 1001 after what was
 * queued and posted, the answers awaited, the deadline, a stop or a
 * second shutdown cutting it short, and the calls from a callback, a
 * signal handler and a ws_server_run_once() loop. Clients are blocking
 * sockets with timeouts; the one that must run beside ws_server_run() is
 * a thread that only counts (the main thread asserts).
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
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/ws.h"

#define WAIT_MS 5000

/* What the callbacks saw. */
struct counts {
    int open, message, close, last_close_code;
    struct ws_conn *conn;  /* the last one opened */
    bool shutdown_on_open; /* on_open calls ws_server_shutdown() */
    struct ws_server *srv;
};

struct fixture {
    struct ws_server *srv;
    struct counts n;
    int port;
};

static void on_open(struct ws_conn *c, void *ud)
{
    struct counts *n = ud;

    n->open++;
    n->conn = c;
    if (n->shutdown_on_open)
        ws_server_shutdown(n->srv);
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    struct counts *n = ud;

    n->message++;
    ws_conn_send(c, type, data, len);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct counts *n = ud;

    (void)reason;
    (void)len;
    n->close++;
    n->last_close_code = code;
    if (n->conn == c)
        n->conn = NULL;
}

static const struct ws_callbacks callbacks = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

static struct fixture *start(void **state, struct ws_config cfg)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f; /* before any assert, so teardown always frees it */
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    assert_int_equal(ws_server_create(&f->srv, &cfg, &callbacks, &f->n), 0);
    assert_int_equal(ws_server_listen(f->srv), 0);
    f->port = ws_server_port(f->srv);
    assert_true(f->port > 0);
    f->n.srv = f->srv;
    return f;
}

static int setup(void **state)
{
    start(state, (struct ws_config){0});
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(ws_server_destroy(f->srv), 0);
    free(f);
    return 0;
}

/* Pump until cond holds or ms pass. */
#define PUMP_UNTIL(f, cond, ms)                                                \
    do {                                                                       \
        for (int w_ = 0; w_ < (ms) && !(cond); w_ += 5)                        \
            ws_server_run_once((f)->srv, 5);                                   \
    } while (0)

/* A blocking client socket with a receive timeout; -errno on failure. */
static int client_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;

        close(fd);
        return -err;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Send one masked client frame (payload up to 125 bytes). */
static bool send_frame(int fd, uint8_t opcode, const void *data, size_t len)
{
    uint8_t buf[160];
    const uint8_t key[4] = {1, 2, 3, 4};
    ssize_t h = ws_frame_header_write(buf, sizeof(buf), true, opcode, len, key);

    if (h <= 0 || (size_t)h + len > sizeof(buf))
        return false;
    memcpy(buf + h, data, len);
    ws_mask(buf + h, len, key, 0);
    return send_all(fd, buf, (size_t)h + len);
}

/* Whether fd is readable now (data or end of stream). */
static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) == 1;
}

/* Read exactly n bytes; with f, the server runs between reads (a client
   in the loop's own thread); without, the read blocks (a client thread). */
static bool read_n(struct fixture *f, int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r;

        if (f != NULL) {
            PUMP_UNTIL(f, readable(fd), WAIT_MS);
            if (!readable(fd))
                return false;
        }
        r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* One unmasked server frame of at most 125 bytes: its first byte and
   payload; -1 when it does not come. */
static int read_frame(struct fixture *f, int fd, char *payload, size_t *len)
{
    uint8_t h[2];

    if (!read_n(f, fd, h, 2) || (h[1] & 0xff) > 125)
        return -1;
    *len = h[1];
    if (!read_n(f, fd, payload, *len))
        return -1;
    payload[*len] = '\0';
    return h[0];
}

/* The upgrade and its 101. */
static bool handshake(struct fixture *f, int fd)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    char head[512];
    size_t got = 0;

    if (!send_all(fd, req, sizeof(req) - 1))
        return false;
    while (got < sizeof(head) - 1) {
        if (!read_n(f, fd, head + got, 1))
            return false;
        got++;
        head[got] = '\0';
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            return strncmp(head, "HTTP/1.1 101", 12) == 0;
    }
    return false;
}

/* A client in the loop's thread, open. */
static int open_client(struct fixture *f)
{
    int fd = client_connect(f->port);

    assert_true(fd >= 0);
    assert_true(handshake(f, fd));
    return fd;
}

/* The next frame is the server's 1001 close. */
static void expect_going_away(struct fixture *f, int fd)
{
    char p[128];
    size_t len;

    assert_int_equal(read_frame(f, fd, p, &len), 0x88);
    assert_true(len >= 2);
    assert_memory_equal(p, "\x03\xe9", 2); /* 1001 */
    assert_string_equal(p + 2, "server shutdown");
}

/* Answer the close and see the server's FIN. */
static void answer_close(struct fixture *f, int fd)
{
    char c;

    assert_true(send_frame(fd, WS_OP_CLOSE, "\x03\xe9", 2));
    PUMP_UNTIL(f, readable(fd), WAIT_MS);
    assert_int_equal(recv(fd, &c, 1, 0), 0);
    close(fd);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Unlisten: new connections are refused, open ones go on; a listen
   again takes new ones. */
static void unlisten_and_listen_again(void **state)
{
    struct fixture *f = *state;
    int a = open_client(f), b, old = f->port;
    char p[128];
    size_t len;

    assert_int_equal(ws_server_unlisten(f->srv), 0);
    assert_int_equal(ws_server_unlisten(f->srv), 0); /* not listening */
    assert_int_equal(ws_server_unlisten(NULL), WS_EINVAL);
    assert_int_equal(ws_server_port(f->srv), -1);
    assert_int_equal(client_connect(old), -ECONNREFUSED);
    assert_true(send_frame(a, WS_OP_TEXT, "still", 5));
    assert_int_equal(read_frame(f, a, p, &len), 0x81);
    assert_string_equal(p, "still");
    assert_int_equal(ws_server_listen(f->srv), 0);
    f->port = ws_server_port(f->srv);
    assert_true(f->port > 0);
    b = open_client(f);
    assert_int_equal(f->n.open, 2);
    assert_int_equal(ws_server_done(f->srv), 0);
    close(a);
    close(b);
}

/* A ws_server_run_once() loop: the echo queued before the shutdown comes
   first, then 1001; no listen meanwhile; done once the peer answered. */
static void shutdown_embedded(void **state)
{
    struct fixture *f = *state;
    int fd = open_client(f), port = f->port;
    long timeout = -1;
    char p[128];
    size_t len;

    assert_true(send_frame(fd, WS_OP_TEXT, "one", 3));
    PUMP_UNTIL(f, f->n.message == 1, WAIT_MS);
    assert_int_equal(f->n.message, 1);
    ws_server_shutdown(f->srv);
    assert_int_equal(ws_server_timeout(f->srv, &timeout), 0);
    assert_int_equal(timeout, 0); /* it waits to begin */
    assert_int_equal(ws_server_done(f->srv), 0);
    assert_int_equal(read_frame(f, fd, p, &len), 0x81);
    assert_string_equal(p, "one");
    expect_going_away(f, fd);
    assert_int_equal(ws_server_port(f->srv), -1);
    assert_int_equal(client_connect(port), -ECONNREFUSED);
    assert_int_equal(ws_server_listen(f->srv), WS_ESTATE);
    assert_int_equal(ws_conn_send_text(f->n.conn, "late"), WS_ECLOSED);
    assert_int_equal(ws_server_done(f->srv), 0);
    answer_close(f, fd);
    PUMP_UNTIL(f, ws_server_done(f->srv), WAIT_MS);
    assert_int_equal(ws_server_done(f->srv), 1);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_int_equal(ws_server_conn_count(f->srv), 0);
    assert_int_equal(ws_server_run(f->srv), 0); /* over already */
    /* A listen starts afresh. */
    assert_int_equal(ws_server_listen(f->srv), 0);
    assert_int_equal(ws_server_done(f->srv), 0);
    f->port = ws_server_port(f->srv);
    fd = open_client(f);
    close(fd);
}

/* What another thread posted before asking for the shutdown is queued
   ahead of the close. */
static void posted_before_close(void **state)
{
    struct fixture *f = *state;
    int fd = open_client(f);
    char p[128];
    size_t len;

    assert_int_equal(
        ws_server_post_send(f->srv, ws_conn_id(f->n.conn), WS_TEXT, "last", 4),
        0);
    ws_server_shutdown(f->srv);
    assert_int_equal(read_frame(f, fd, p, &len), 0x81);
    assert_string_equal(p, "last");
    expect_going_away(f, fd);
    answer_close(f, fd);
    PUMP_UNTIL(f, ws_server_done(f->srv), WAIT_MS);
    assert_int_equal(ws_server_done(f->srv), 1);
}

/* A client in a thread of its own: open, wait for the close, answer,
   see the FIN. It only counts; the main thread asserts. */
struct client {
    int port;
    pthread_t tid;
    bool opened, got_1001, clean_end;
};

static void *client_main(void *arg)
{
    struct client *cl = arg;
    int fd = client_connect(cl->port);
    char p[128], c;
    size_t len;

    if (fd < 0)
        return NULL;
    cl->opened = handshake(NULL, fd);
    cl->got_1001 = cl->opened && read_frame(NULL, fd, p, &len) == 0x88 &&
                   len >= 2 && memcmp(p, "\x03\xe9", 2) == 0;
    if (cl->got_1001 && send_frame(fd, WS_OP_CLOSE, "\x03\xe9", 2))
        cl->clean_end = recv(fd, &c, 1, 0) == 0;
    close(fd);
    return NULL;
}

/* Asked for from on_open: ws_server_run() returns 0 once the peer has
   answered, and at once when called again. */
static void run_returns_after_shutdown(void **state)
{
    struct fixture *f = *state;
    struct client cl = {.port = f->port};

    f->n.shutdown_on_open = true;
    assert_int_equal(pthread_create(&cl.tid, NULL, client_main, &cl), 0);
    assert_int_equal(ws_server_run(f->srv), 0);
    pthread_join(cl.tid, NULL);
    assert_true(cl.opened);
    assert_true(cl.got_1001);
    assert_true(cl.clean_end);
    assert_int_equal(ws_server_done(f->srv), 1);
    assert_int_equal(f->n.close, 1);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_int_equal(ws_server_run(f->srv), 0);
}

/* A peer that never answers is closed close_timeout_ms after the
   shutdown began (on_close reports the 1001 it never answered), then
   the shutdown is over. The loop sits idle first, as an application's
   own loop may between two ws_server_run_once() calls: the deadline
   counts from the shutdown, not from the loop's last look at the clock
   (it came 100 ms early before that was fixed). */
static void deadline(void **state)
{
    struct fixture *f =
        start(state, (struct ws_config){.close_timeout_ms = 200});
    int fd = open_client(f);
    uint64_t t0;
    char c;

    usleep(100 * 1000);
    t0 = now_ms();

    ws_server_shutdown(f->srv);
    expect_going_away(f, fd);
    PUMP_UNTIL(f, ws_server_done(f->srv), WAIT_MS);
    assert_int_equal(ws_server_done(f->srv), 1);
    assert_true(now_ms() - t0 >= 190);
    assert_int_equal(f->n.last_close_code, 1001);
    assert_true(recv(fd, &c, 1, 0) <= 0); /* FIN or reset */
    close(fd);
}

/* ws_server_stop(), or a second ws_server_shutdown(), during a shutdown
   makes ws_server_run() return at once; destroy ends what is left. */
static void cut_short(void **state)
{
    struct fixture *f =
        start(state, (struct ws_config){.close_timeout_ms = 60000});
    int a = open_client(f);
    uint64_t t0;

    ws_server_shutdown(f->srv);
    expect_going_away(f, a);
    t0 = now_ms();
    ws_server_stop(f->srv);
    assert_int_equal(ws_server_run(f->srv), 0);
    assert_int_equal(ws_server_conn_count(f->srv), 1);
    assert_int_equal(ws_server_done(f->srv), 0);
    ws_server_shutdown(f->srv); /* the second */
    assert_int_equal(ws_server_run(f->srv), 0);
    assert_int_equal(ws_server_conn_count(f->srv), 1);
    assert_true(now_ms() - t0 < 2000);
    close(a);
}

static struct ws_server *alarm_server;

static void on_alarm(int sig)
{
    (void)sig;
    ws_server_shutdown(alarm_server);
}

/* From a signal handler, with no connection: ws_server_run() returns 0
   and the shutdown is done. */
static void from_signal(void **state)
{
    struct fixture *f = *state;
    struct itimerval it = {.it_value = {0, 50000}};

    alarm_server = f->srv;
    signal(SIGALRM, on_alarm);
    setitimer(ITIMER_REAL, &it, NULL);
    assert_int_equal(ws_server_run(f->srv), 0);
    signal(SIGALRM, SIG_DFL);
    assert_int_equal(ws_server_done(f->srv), 1);
    assert_int_equal(ws_server_port(f->srv), -1);
    assert_int_equal(ws_server_done(NULL), 0);
    ws_server_shutdown(NULL); /* harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unlisten_and_listen_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(shutdown_embedded, setup, teardown),
        cmocka_unit_test_setup_teardown(posted_before_close, setup, teardown),
        cmocka_unit_test_setup_teardown(run_returns_after_shutdown, setup,
                                        teardown),
        cmocka_unit_test_teardown(deadline, teardown),
        cmocka_unit_test_teardown(cut_short, teardown),
        cmocka_unit_test_setup_teardown(from_signal, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
