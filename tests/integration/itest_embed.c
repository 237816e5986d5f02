/*
 * itest_embed.c - the per-descriptor embedding (ws_server_socket_callback(),
 * ws_server_socket_action(), ws_server_deadline_callback()) through the
 * public API on real sockets (127.0.0.1, port 0). The test is the
 * application: its poller is poll() over the interest the server told,
 * and it checks what was told (each change once, removals while the
 * descriptor is still open, nothing left after destroy), the deadlines
 * (timers from its own code and from callbacks, work queued outside an
 * iteration, a timer that fired), readiness reports the server no longer
 * wants, shutdown and posts waking it through a descriptor, descriptors
 * past FD_SETSIZE, and every error code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/ws.h"

#define WAIT_MS 5000
#define MAX_FD 4096
#define MAX_LOG 4096

/* The application: the interest it was told and what it saw. */
struct fixture {
    struct ws_server *srv;
    int port;
    uint8_t mask[MAX_FD]; /* the interest told, per fd */
    int nlog;
    struct {
        int fd, events;
    } log[MAX_LOG];
    int closed_when_told; /* removals told for an fd already closed */
    int repeats;          /* a mask told twice in a row for one fd */
    long deadline;        /* the deadline told last (-2: never told) */
    int deadlines;        /* how many times it was told */
    int nested_rc;        /* a call into the server from a callback */
    bool nest_in_socket_cb;
    int opens, messages, closes, timer_fires;
    struct ws_conn *conn;
};

static void on_socket(struct ws_server *s, int fd, int events, void *arg)
{
    struct fixture *f = arg;

    (void)s;
    assert_true(fd >= 0 && fd < MAX_FD);
    assert_int_equal(events & ~(WS_WATCH_READ | WS_WATCH_WRITE), 0);
    if (f->mask[fd] == events)
        f->repeats++;
    if (events == 0 && fcntl(fd, F_GETFD) < 0)
        f->closed_when_told++;
    f->mask[fd] = (uint8_t)events;
    if (f->nlog < MAX_LOG) {
        f->log[f->nlog].fd = fd;
        f->log[f->nlog].events = events;
        f->nlog++;
    }
    if (f->nest_in_socket_cb)
        f->nested_rc = ws_server_socket_action(s, -1, 0);
}

static void on_deadline(struct ws_server *s, long ms, void *arg)
{
    struct fixture *f = arg;

    (void)s;
    assert_true(ms >= -1);
    f->deadline = ms;
    f->deadlines++;
}

static void on_open(struct ws_conn *c, void *ud)
{
    struct fixture *f = ud;

    f->opens++;
    f->conn = c;
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    struct fixture *f = ud;

    f->messages++;
    f->nested_rc = ws_server_socket_action(f->srv, -1, 0);
    ws_conn_send(c, type, data, len);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct fixture *f = ud;

    (void)code;
    (void)reason;
    (void)len;
    f->closes++;
    if (f->conn == c)
        f->conn = NULL;
}

static const struct ws_callbacks callbacks = {
    .on_open = on_open, .on_message = on_message, .on_close = on_close};

/* A server in the embedding, not listening yet. */
static struct fixture *make(void **state, size_t max_output)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ws_config cfg = {
        .host = "127.0.0.1", .port = "0", .max_output_bytes = max_output};

    assert_non_null(f);
    *state = f;
    f->deadline = -2;
    assert_int_equal(ws_server_create(&f->srv, &cfg, &callbacks, f), 0);
    assert_int_equal(ws_server_socket_callback(f->srv, on_socket, f), 0);
    return f;
}

static void listen_now(struct fixture *f)
{
    assert_int_equal(ws_server_listen(f->srv), 0);
    f->port = ws_server_port(f->srv);
    assert_true(f->port > 0);
}

static int setup(void **state)
{
    listen_now(make(state, 0));
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->srv) {
        assert_int_equal(ws_server_destroy(f->srv), 0);
        /* Every descriptor was removed, each while still open. */
        for (int fd = 0; fd < MAX_FD; fd++)
            assert_int_equal(f->mask[fd], 0);
    }
    assert_int_equal(f->closed_when_told, 0);
    assert_int_equal(f->repeats, 0);
    free(f);
    return 0;
}

/* One turn of the application's loop: poll what the server asked for
   (at most wait_ms, and never past its deadline), report each ready fd. */
static void turn(struct fixture *f, int wait_ms)
{
    struct pollfd p[MAX_FD];
    long ms;
    int n = 0, rc;

    for (int fd = 0; fd < MAX_FD; fd++) {
        if (f->mask[fd] == 0)
            continue;
        p[n].fd = fd;
        p[n].events = (short)(((f->mask[fd] & WS_WATCH_READ) ? POLLIN : 0) |
                              ((f->mask[fd] & WS_WATCH_WRITE) ? POLLOUT : 0));
        p[n].revents = 0;
        n++;
    }
    assert_int_equal(ws_server_timeout(f->srv, &ms), 0);
    if (ms >= 0 && ms < wait_ms)
        wait_ms = (int)ms;
    rc = poll(p, (nfds_t)n, wait_ms);
    assert_true(rc >= 0 || errno == EINTR);
    for (int i = 0; i < n && rc > 0; i++) {
        int ev = ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) ? WS_WATCH_READ
                                                                : 0) |
                 ((p[i].revents & (POLLOUT | POLLERR)) ? WS_WATCH_WRITE : 0);

        if (ev)
            assert_true(ws_server_socket_action(f->srv, p[i].fd, ev) >= 0);
    }
    assert_true(ws_server_socket_action(f->srv, -1, 0) >= 0);
}

#define PUMP_UNTIL(f, cond, ms)                                                \
    do {                                                                       \
        for (int w_ = 0; w_ < (ms) && !(cond); w_ += 5)                        \
            turn((f), 5);                                                      \
    } while (0)

/* A blocking client socket with a receive timeout. */
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

static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) == 1;
}

/* Read exactly n bytes, the server running between reads. */
static bool read_n(struct fixture *f, int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r;

        PUMP_UNTIL(f, readable(fd), WAIT_MS);
        r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Send one masked client frame of up to 125 bytes. */
static void send_frame(int fd, uint8_t opcode, const void *data, size_t len)
{
    uint8_t buf[160];
    const uint8_t key[4] = {9, 8, 7, 6};
    ssize_t h = ws_frame_header_write(buf, sizeof(buf), true, opcode, len, key);

    assert_true(h > 0 && (size_t)h + len <= sizeof(buf));
    memcpy(buf + h, data, len);
    ws_mask(buf + h, len, key, 0);
    assert_int_equal(send(fd, buf, (size_t)h + len, MSG_NOSIGNAL),
                     (ssize_t)((size_t)h + len));
}

/* The first byte and payload of a short server frame, or -1. */
static int read_frame(struct fixture *f, int fd, char *payload, size_t *len)
{
    uint8_t h[2];

    if (!read_n(f, fd, h, 2) || h[1] > 125)
        return -1;
    *len = h[1];
    if (!read_n(f, fd, payload, *len))
        return -1;
    payload[*len] = '\0';
    return h[0];
}

/* A connected, upgraded client. */
static int open_client(struct fixture *f)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    int fd = client_connect(f->port);
    char head[512];
    size_t got = 0;

    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL),
                     (ssize_t)(sizeof(req) - 1));
    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        assert_true(got < sizeof(head));
        assert_true(read_n(f, fd, head + got, 1));
        got++;
    }
    assert_memory_equal(head, "HTTP/1.1 101", 12);
    PUMP_UNTIL(f, f->opens > 0, WAIT_MS);
    return fd;
}

/* The descriptors the server watches now. */
static int watched(const struct fixture *f)
{
    int n = 0;

    for (int fd = 0; fd < MAX_FD; fd++)
        n += f->mask[fd] != 0;
    return n;
}

static void registration(void **state)
{
    struct fixture *f = make(state, 0);
    struct ws_server *other;
    fd_set r, w;
    int max_fd = -1;

    /* Its wake-up pipes (the loop's and the posts'), told at once. */
    assert_int_equal(f->nlog, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(f->log[i].events, WS_WATCH_READ);
    assert_string_equal(ws_server_backend(f->srv), "external");
    assert_int_equal(ws_server_socket_callback(f->srv, on_socket, f),
                     WS_ESTATE);
    listen_now(f);
    /* One listener on 127.0.0.1. */
    assert_int_equal(f->nlog, 3);
    assert_int_equal(f->log[2].events, WS_WATCH_READ);
    /* The server's own polling is gone. */
    FD_ZERO(&r);
    FD_ZERO(&w);
    assert_int_equal(ws_server_run(f->srv), WS_ESTATE);
    assert_int_equal(ws_server_run_once(f->srv, 0), WS_ESTATE);
    assert_int_equal(ws_server_fdset(f->srv, &r, &w, &max_fd), WS_ESTATE);
    assert_int_equal(ws_server_process(f->srv, &r, &w), WS_ESTATE);
    /* Not in the mode, or too late for it. */
    assert_int_equal(ws_server_create(&other, NULL, NULL, NULL), 0);
    assert_int_equal(ws_server_socket_action(other, -1, 0), WS_ESTATE);
    assert_int_equal(ws_server_deadline_callback(other, on_deadline, f),
                     WS_ESTATE);
    assert_int_equal(ws_server_listen(other), 0);
    assert_int_equal(ws_server_socket_callback(other, on_socket, f), WS_ESTATE);
    assert_int_equal(ws_server_destroy(other), 0);
    assert_int_equal(ws_server_socket_callback(NULL, on_socket, f), WS_EINVAL);
    assert_int_equal(ws_server_socket_callback(f->srv, NULL, f), WS_EINVAL);
    assert_int_equal(ws_server_deadline_callback(NULL, on_deadline, f),
                     WS_EINVAL);
}

static void action_errors(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(ws_server_socket_action(NULL, -1, 0), WS_EINVAL);
    assert_int_equal(ws_server_socket_action(f->srv, -2, 0), WS_EINVAL);
    assert_int_equal(ws_server_socket_action(f->srv, -1, WS_WATCH_READ),
                     WS_EINVAL);
    assert_int_equal(ws_server_socket_action(f->srv, 0, 4), WS_EINVAL);
    /* Descriptors it does not watch: harmless, nothing handled. */
    assert_int_equal(ws_server_socket_action(f->srv, 0, WS_WATCH_READ), 0);
    assert_int_equal(ws_server_socket_action(f->srv, 100000, WS_WATCH_WRITE),
                     0);
}

static void echo_and_removal(void **state)
{
    struct fixture *f = *state;
    int base = watched(f);
    int fd = open_client(f);
    char p[128];
    size_t len;
    int conn_fd = -1;

    /* The connection's descriptor, added for reading. */
    assert_int_equal(watched(f), base + 1);
    for (int i = 0; i < f->nlog; i++)
        if (f->log[i].events == WS_WATCH_READ)
            conn_fd = f->log[i].fd;
    send_frame(fd, WS_OP_TEXT, "hello", 5);
    assert_int_equal(read_frame(f, fd, p, &len), 0x81);
    assert_string_equal(p, "hello");
    /* A callback may not drive the server. */
    assert_int_equal(f->nested_rc, WS_EBUSY);
    send_frame(fd, WS_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(read_frame(f, fd, p, &len), 0x88);
    PUMP_UNTIL(f, f->closes == 1, WAIT_MS);
    assert_int_equal(f->closes, 1);
    PUMP_UNTIL(f, watched(f) == base, WAIT_MS);
    assert_int_equal(watched(f), base);
    assert_int_equal(f->mask[conn_fd], 0);
    /* A report from a batch polled before the close reaches nobody. */
    assert_int_equal(ws_server_socket_action(f->srv, conn_fd, WS_WATCH_READ),
                     0);
    close(fd);
}

/* Where the log, from position from, has fd told a mask that has all of
   events and none of not_; -1 if nowhere. */
static int told_at(const struct fixture *f, int from, int fd, int events,
                   int not_)
{
    for (int i = from; i < f->nlog; i++)
        if (f->log[i].fd == fd && (f->log[i].events & events) == events &&
            (f->log[i].events & not_) == 0)
            return i;
    return -1;
}

static void want_write_on_and_off(void **state)
{
    struct fixture *f = make(state, 16u << 20);
    size_t big = 8u << 20, got = 0;
    char *msg = malloc(big), *buf = malloc(1 << 16);
    int fd, conn_fd = -1, on;

    listen_now(f);
    fd = open_client(f);
    for (int i = 0; i < f->nlog; i++)
        conn_fd = f->log[i].events ? f->log[i].fd : conn_fd;
    assert_non_null(msg);
    memset(msg, 'x', big);
    /* Far more than the socket takes: writability is asked for (and
       reading paused while the output is backed up)... */
    assert_int_equal(ws_conn_send(f->conn, WS_BINARY, msg, big), 0);
    turn(f, 0);
    on = told_at(f, 0, conn_fd, WS_WATCH_WRITE, 0);
    assert_true(on >= 0);
    /* ...and dropped once the client has read it all. */
    while (got < big + 10) {
        ssize_t r;

        PUMP_UNTIL(f, readable(fd), WAIT_MS);
        r = recv(fd, buf, 1 << 16, 0);
        assert_true(r > 0);
        got += (size_t)r;
    }
    PUMP_UNTIL(f, f->mask[conn_fd] == WS_WATCH_READ, WAIT_MS);
    assert_true(told_at(f, on, conn_fd, WS_WATCH_READ, WS_WATCH_WRITE) > on);
    free(msg);
    free(buf);
    close(fd);
}

static void on_app_timer(struct ws_server_timer *t, void *arg)
{
    struct fixture *f = arg;

    (void)t;
    f->timer_fires++;
}

/* The application's timer: wait for the deadline told, then report it. */
static void fire_deadline(struct fixture *f)
{
    assert_true(f->deadline >= 0 && f->deadline < WAIT_MS);
    usleep((useconds_t)f->deadline * 1000);
    f->deadline = -1; /* fired: none is held */
    assert_true(ws_server_socket_action(f->srv, -1, 0) >= 0);
}

static void deadlines(void **state)
{
    struct fixture *f = *state;
    struct ws_server_timer *a, *b, *rep;
    int fd, n;

    assert_int_equal(ws_server_deadline_callback(f->srv, on_deadline, f), 0);
    assert_int_equal(f->deadlines, 0); /* no deadline: nothing to tell */
    /* Timers from the application's own code, each move told once. */
    assert_int_equal(
        ws_server_timer_start(f->srv, &a, 60000, 0, on_app_timer, f), 0);
    assert_int_equal(f->deadlines, 1);
    assert_true(f->deadline > 59000 && f->deadline <= 60000);
    assert_int_equal(
        ws_server_timer_start(f->srv, &b, 90000, 0, on_app_timer, f), 0);
    assert_int_equal(f->deadlines, 1); /* not the first */
    ws_server_timer_stop(b);
    assert_int_equal(f->deadlines, 1);
    ws_server_timer_stop(a);
    assert_int_equal(f->deadlines, 2);
    assert_int_equal(f->deadline, -1);
    /* A repeating one: each firing told again through fd -1. */
    assert_int_equal(
        ws_server_timer_start(f->srv, &rep, 20, 20, on_app_timer, f), 0);
    assert_int_equal(f->deadlines, 3);
    for (int i = 1; i <= 3; i++) {
        n = f->deadlines;
        fire_deadline(f);
        assert_true(f->deadlines > n);
        assert_true(f->deadline >= 0 && f->deadline <= 20);
    }
    assert_true(f->timer_fires >= 2);
    ws_server_timer_stop(rep);
    assert_int_equal(f->deadline, -1);
    /* A send from the application's own code: "now", then written by
       the next iteration, and nothing is left. */
    fd = open_client(f);
    n = f->deadlines;
    assert_int_equal(ws_conn_send(f->conn, WS_TEXT, "own", 3), 0);
    assert_int_equal(f->deadlines, n + 1);
    assert_int_equal(f->deadline, 0);
    assert_int_equal(ws_conn_send(f->conn, WS_TEXT, "two", 3), 0);
    assert_int_equal(f->deadlines, n + 1); /* unchanged: not told */
    fire_deadline(f);
    assert_int_equal(f->deadline, -1);
    assert_true(readable(fd));
    close(fd);
    /* Destroy cancels a deadline held. */
    assert_int_equal(
        ws_server_timer_start(f->srv, &a, 60000, 0, on_app_timer, f), 0);
    n = f->deadlines;
    assert_int_equal(ws_server_destroy(f->srv), 0);
    f->srv = NULL;
    assert_int_equal(f->deadlines, n + 1);
    assert_int_equal(f->deadline, -1);
    for (int fd2 = 0; fd2 < MAX_FD; fd2++)
        assert_int_equal(f->mask[fd2], 0);
}

static void nested_from_socket_cb(void **state)
{
    struct fixture *f = *state;

    f->nest_in_socket_cb = true;
    assert_int_equal(ws_server_unlisten(f->srv), 0);
    f->nest_in_socket_cb = false;
    assert_int_equal(f->nested_rc, WS_EBUSY);
}

static void shutdown_wakes(void **state)
{
    struct fixture *f = *state;
    int fd = open_client(f);
    char p[128];
    size_t len;

    /* From outside any call: only a descriptor can tell the poller. */
    ws_server_shutdown(f->srv);
    assert_int_equal(read_frame(f, fd, p, &len), 0x88);
    assert_memory_equal(p, "\x03\xe9", 2);
    send_frame(fd, WS_OP_CLOSE, "\x03\xe9", 2);
    PUMP_UNTIL(f, ws_server_done(f->srv), WAIT_MS);
    assert_int_equal(ws_server_done(f->srv), 1);
    close(fd);
}

static void posted_fn(struct ws_server *s, void *arg)
{
    (void)s;
    ((struct fixture *)arg)->timer_fires = 100;
}

static void *poster(void *arg)
{
    struct fixture *f = arg;

    assert_int_equal(ws_server_post(f->srv, posted_fn, f), 0);
    return NULL;
}

static void post_wakes(void **state)
{
    struct fixture *f = *state;
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, poster, f), 0);
    pthread_join(th, NULL);
    PUMP_UNTIL(f, f->timer_fires == 100, WAIT_MS);
    assert_int_equal(f->timer_fires, 100);
}

/* No fd_set is involved: with the select build too, a connection past
   FD_SETSIZE is served. */
static void beyond_fd_setsize(void **state)
{
    struct fixture *f = *state;
    struct rlimit rl;
    int fillers[FD_SETSIZE + 8], nfill = 0, far = 0, fd;
    char p[128];
    size_t len;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < FD_SETSIZE + 64 ||
        FD_SETSIZE + 64 > MAX_FD) {
        skip();
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (nfill < FD_SETSIZE + 8) {
        int d = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(d >= 0);
        fillers[nfill++] = d;
        if (d > FD_SETSIZE)
            break;
    }
    fd = open_client(f);
    send_frame(fd, WS_OP_TEXT, "far", 3);
    assert_int_equal(read_frame(f, fd, p, &len), 0x81);
    assert_string_equal(p, "far");
    for (int i = FD_SETSIZE; i < MAX_FD; i++)
        far += f->mask[i] != 0;
    assert_int_equal(far, 1); /* the connection */
    close(fd);
    PUMP_UNTIL(f, f->closes == 1, WAIT_MS);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(registration, teardown),
        T(action_errors),
        T(echo_and_removal),
        cmocka_unit_test_teardown(want_write_on_and_off, teardown),
        T(deadlines),
        T(nested_from_socket_cb),
        T(shutdown_wakes),
        T(post_wakes),
        T(beyond_fd_setsize),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
