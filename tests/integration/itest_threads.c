/*
 * itest_threads.c - the cross-thread calls under load, on real sockets
 * (127.0.0.1, port 0). The loop runs in its own thread; producer threads
 * post sends, broadcasts and calls; stable clients read every frame and
 * check order and counts; a churn thread opens and closes connections all
 * along. Test threads never call cmocka: they count, and the main thread
 * asserts once every thread has been joined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define NSTABLE 10      /* connections open for the whole test */
#define NPROD 4         /* producer threads */
#define NMSG 200        /* direct messages per producer and connection */
#define BCAST_EVERY 50  /* a broadcast every this many sequence numbers */
#define CALL_EVERY 10   /* a ws_server_post() call every this many */
#define CHURN_MIN 300   /* churn cycles at least */
#define CHURN_MAX 20000 /* and at most */
#define NTRACK 64       /* open churn ids remembered */
#define NCLOSED 32      /* closed ids remembered (a ring) */
#define RECV_TICK_MS 100
#define WAIT_MS 20000 /* for the stable clients to get everything */
#define NEVER_ID (UINT64_C(1) << 62)

/* What the test threads and the callbacks share. */
struct shared {
    struct ws_server *srv;
    int port;
    pthread_t loop_tid; /* written and read on the loop thread only */
    int loop_rc;
    bool check_stable; /* on_call looks the stable ids up */

    pthread_mutex_t mu; /* guards the fields up to err_mu */
    pthread_cond_t cv;  /* a stable id arrived */
    uint64_t stable_id[NSTABLE];
    uint64_t open_ids[NTRACK]; /* open, not stable */
    size_t nopen_ids;
    uint64_t closed_ids[NCLOSED];
    size_t nclosed; /* total ever; the ring holds the last NCLOSED */
    int opens, closes, untracked;
    bool shutting_down; /* on_close of a stable connection is expected */

    pthread_mutex_t err_mu; /* guards first_error */
    char first_error[256];
    atomic_int errors;

    atomic_int calls_posted, calls_run, calls_wrong_thread;
    atomic_int efull_retries;
    atomic_bool producers_done, stop_readers;
    pthread_barrier_t start; /* producers and churn begin together */
};

/* Record a failure seen on a test thread; the main thread asserts. */
static void note_fail(struct shared *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_fail(struct shared *sh, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&sh->err_mu);
    if (sh->first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(sh->first_error, sizeof(sh->first_error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&sh->err_mu);
    atomic_fetch_add(&sh->errors, 1);
}

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The number of open descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n; /* the same one extra for the DIR each time */
}

/* Remove id from a small array; returns whether it was there. */
static bool id_remove(uint64_t *ids, size_t *n, uint64_t id)
{
    for (size_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return true;
        }
    }
    return false;
}

/* --- callbacks (loop thread) --- */

static void on_open(struct ws_conn *c, void *ud)
{
    struct shared *sh = ud;

    pthread_mutex_lock(&sh->mu);
    sh->opens++;
    if (sh->nopen_ids < NTRACK)
        sh->open_ids[sh->nopen_ids++] = ws_conn_id(c);
    else
        sh->untracked++;
    pthread_mutex_unlock(&sh->mu);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    struct shared *sh = ud;
    uint64_t id = ws_conn_id(c);
    bool stable = false;

    (void)code;
    (void)reason;
    (void)len;
    pthread_mutex_lock(&sh->mu);
    sh->closes++;
    id_remove(sh->open_ids, &sh->nopen_ids, id);
    for (int i = 0; i < NSTABLE; i++)
        stable = stable || sh->stable_id[i] == id;
    sh->closed_ids[sh->nclosed++ % NCLOSED] = id;
    pthread_mutex_unlock(&sh->mu);
    if (stable && !sh->shutting_down)
        note_fail(sh, "stable connection %llu closed with %d",
                  (unsigned long long)id, code);
}

/* "hello:<i>" names stable client i; "churn..." is echoed. */
static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    struct shared *sh = ud;
    const char *text = data;

    if (type == WS_TEXT && len > 6 && memcmp(text, "hello:", 6) == 0) {
        int i = atoi(text + 6);

        if (i < 0 || i >= NSTABLE)
            return;
        pthread_mutex_lock(&sh->mu);
        sh->stable_id[i] = ws_conn_id(c);
        id_remove(sh->open_ids, &sh->nopen_ids, ws_conn_id(c));
        pthread_cond_broadcast(&sh->cv);
        pthread_mutex_unlock(&sh->mu);
    } else if (type == WS_TEXT && len >= 5 && memcmp(text, "churn", 5) == 0) {
        ws_conn_send(c, type, data, len);
    }
}

static const struct ws_callbacks callbacks = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

/* A ws_server_post() function: must run on the loop thread. */
static void on_call(struct ws_server *s, void *arg)
{
    struct shared *sh = arg;
    int n = atomic_fetch_add(&sh->calls_run, 1);

    if (!pthread_equal(pthread_self(), sh->loop_tid))
        atomic_fetch_add(&sh->calls_wrong_thread, 1);
    if (sh->check_stable) {
        /* stable_id is written on this thread only (on_message). */
        uint64_t id = sh->stable_id[n % NSTABLE];
        struct ws_conn *c = ws_server_find(s, id);

        if (c == NULL || ws_conn_id(c) != id)
            note_fail(sh, "ws_server_find(%llu) in a posted call",
                      (unsigned long long)id);
        if (ws_server_conn_count(s) < NSTABLE)
            note_fail(sh, "conn_count %zu in a posted call",
                      ws_server_conn_count(s));
    }
}

static void on_stop(struct ws_server *s, void *arg)
{
    (void)arg;
    ws_server_stop(s);
}

static void *loop_main(void *arg)
{
    struct shared *sh = arg;

    sh->loop_tid = pthread_self();
    sh->loop_rc = ws_server_run(sh->srv);
    return NULL;
}

/* --- a raw client: blocking socket, RECV_TICK_MS receive timeout --- */

struct client {
    int fd;
    size_t len; /* bytes in buf */
    uint8_t buf[8192];
};

struct frame {
    uint8_t opcode;
    size_t len;
    char data[8192]; /* NUL-terminated */
};

static int client_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval rcv = {.tv_usec = RECV_TICK_MS * 1000};
    struct timeval snd = {.tv_sec = 5};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *b = p;

    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_upgrade(int fd)
{
    static const char req[] =
        "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";

    return send_all(fd, req, sizeof(req) - 1);
}

/* Send one masked client frame (payload up to 200 bytes). */
static bool send_frame(int fd, uint8_t opcode, const void *data, size_t len)
{
    uint8_t buf[256];
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    ssize_t h = ws_frame_header_write(buf, sizeof(buf), true, opcode, len, key);

    if (h < 0 || (size_t)h + len > sizeof(buf))
        return false;
    memcpy(buf + h, data, len);
    ws_mask(buf + h, len, key, 0);
    return send_all(fd, buf, (size_t)h + len);
}

/* recv into cl->buf: 1 got bytes, 0 timed out, -1 EOF or error. */
static int client_fill(struct client *cl)
{
    ssize_t n;

    if (cl->len == sizeof(cl->buf))
        return -1;
    do {
        n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        cl->len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}

/* Read the 101 (up to ticks timeouts); bytes after it stay in cl->buf. */
static bool client_read_upgrade(struct client *cl, int ticks)
{
    static const char ok[] = "HTTP/1.1 101 ";

    for (;;) {
        const uint8_t *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
        int rc;

        if (end != NULL) {
            size_t head = (size_t)(end - cl->buf) + 4;

            if (memcmp(cl->buf, ok, sizeof(ok) - 1) != 0)
                return false;
            memmove(cl->buf, cl->buf + head, cl->len - head);
            cl->len -= head;
            return true;
        }
        rc = client_fill(cl);
        if (rc < 0 || (rc == 0 && --ticks <= 0))
            return false;
    }
}

/* Connect and upgrade; returns false (and no fd) on failure. */
static bool client_open(struct client *cl, int port)
{
    cl->len = 0;
    cl->fd = client_connect(port);
    if (cl->fd < 0)
        return false;
    if (send_upgrade(cl->fd) && client_read_upgrade(cl, 100))
        return true;
    close(cl->fd);
    cl->fd = -1;
    return false;
}

/* Take one whole server frame from cl->buf. */
static bool take_frame(struct client *cl, struct frame *fr, int *err)
{
    struct ws_frame_header h;
    int hl = ws_frame_header_parse(cl->buf, cl->len, WS_FRAME_FROM_SERVER, &h);
    size_t total;

    *err = 0;
    if (hl == WS_EAGAIN)
        return false;
    if (hl < 0 || !h.fin || h.payload_len >= sizeof(fr->data)) {
        *err = -1;
        return false;
    }
    total = (size_t)hl + (size_t)h.payload_len;
    if (cl->len < total)
        return false;
    fr->opcode = h.opcode;
    fr->len = (size_t)h.payload_len;
    memcpy(fr->data, cl->buf + hl, fr->len);
    fr->data[fr->len] = '\0';
    memmove(cl->buf, cl->buf + total, cl->len - total);
    cl->len -= total;
    return true;
}

/* Read one server frame: 1 got it, 0 timed out, -1 EOF or error. */
static int client_frame(struct client *cl, struct frame *fr)
{
    for (;;) {
        int err, rc;

        if (take_frame(cl, fr, &err))
            return 1;
        if (err < 0)
            return -1;
        rc = client_fill(cl);
        if (rc <= 0)
            return rc;
    }
}

/* --- stable clients: read every frame, check order and counts --- */

struct stable {
    struct shared *sh;
    int idx;
    pthread_t tid;
    struct client cl;
    int next_seq[NPROD]; /* reader thread only, read after join */
    atomic_int direct, bcast;
};

/* A direct message "p<P>:c<conn>:<seq>": for us, and the next of P. */
static void check_direct(struct stable *st, const struct frame *fr)
{
    int p, conn, seq, end = 0;

    if (sscanf(fr->data, "p%d:c%d:%d%n", &p, &conn, &seq, &end) != 3 ||
        (size_t)end != fr->len || p < 0 || p >= NPROD) {
        note_fail(st->sh, "stable %d: bad message '%s'", st->idx, fr->data);
        return;
    }
    if (conn != st->idx || seq != st->next_seq[p])
        note_fail(st->sh, "stable %d: got '%s', expected p%d:c%d:%d", st->idx,
                  fr->data, p, st->idx, st->next_seq[p]);
    st->next_seq[p] = seq + 1;
    atomic_fetch_add(&st->direct, 1);
}

static void *stable_main(void *arg)
{
    struct stable *st = arg;
    struct frame *fr = malloc(sizeof(*fr));

    if (fr == NULL) {
        note_fail(st->sh, "stable %d: out of memory", st->idx);
        return NULL;
    }
    while (!atomic_load(&st->sh->stop_readers)) {
        int rc = client_frame(&st->cl, fr);

        if (rc == 0)
            continue;
        if (rc < 0 || fr->opcode != WS_OP_TEXT) {
            note_fail(st->sh, "stable %d: %s", st->idx,
                      rc < 0 ? "connection lost" : "unexpected frame");
            break;
        }
        if (fr->data[0] == 'b')
            atomic_fetch_add(&st->bcast, 1);
        else
            check_direct(st, fr);
    }
    free(fr);
    return NULL;
}

/* --- churn: open, maybe talk, close cleanly, abruptly or with RST --- */

struct churn {
    struct shared *sh;
    pthread_t tid;
    int cycles, clean_closes;
};

/* Send a close and read until the server's close comes back. */
static bool close_cleanly(struct client *cl, struct frame *fr)
{
    int ticks = 100;

    if (!send_frame(cl->fd, WS_OP_CLOSE, "\x03\xe8", 2))
        return false;
    while (ticks > 0) {
        int rc = client_frame(cl, fr);

        if (rc < 0)
            return false;
        if (rc == 0)
            ticks--;
        else if (fr->opcode == WS_OP_CLOSE)
            return fr->len >= 2 && memcmp(fr->data, "\x03\xe8", 2) == 0;
    }
    return false;
}

/* One cycle; mode 0 closes with a close frame, 1 with close(), 2 RST. */
static void churn_cycle(struct churn *ch, struct client *cl, struct frame *fr)
{
    int i = ch->cycles;
    char msg[32];

    if (!client_open(cl, ch->sh->port)) {
        note_fail(ch->sh, "churn %d: upgrade failed", i);
        return;
    }
    ch->cycles++;
    snprintf(msg, sizeof(msg), "churn:%d", i);
    if (i % 2 == 0 && !send_frame(cl->fd, WS_OP_TEXT, msg, strlen(msg)))
        note_fail(ch->sh, "churn %d: send failed", i);
    if (i % 3 == 0) {
        if (close_cleanly(cl, fr))
            ch->clean_closes++;
        else
            note_fail(ch->sh, "churn %d: no close frame back", i);
    } else if (i % 3 == 2) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(cl->fd);
    cl->fd = -1;
}

static void *churn_main(void *arg)
{
    struct churn *ch = arg;
    struct client *cl = malloc(sizeof(*cl));
    struct frame *fr = malloc(sizeof(*fr));

    pthread_barrier_wait(&ch->sh->start);
    while (cl && fr && ch->cycles < CHURN_MAX &&
           atomic_load(&ch->sh->errors) < 10 &&
           (ch->cycles < CHURN_MIN || !atomic_load(&ch->sh->producers_done)))
        churn_cycle(ch, cl, fr);
    if (cl == NULL || fr == NULL)
        note_fail(ch->sh, "churn: out of memory");
    free(cl);
    free(fr);
    return NULL;
}

/* --- producers --- */

struct producer {
    struct shared *sh;
    int idx;
    pthread_t tid;
    uint64_t ids[NSTABLE];
    uint32_t rng;
    int sent, bcasts, churn_ok, churn_closed;
};

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* ws_server_post_send(), retried while the posted queue is full. */
static int post_send_retry(struct shared *sh, uint64_t id, const char *text)
{
    for (int tries = 0; tries < 100000; tries++) {
        int rc = ws_server_post_send(sh->srv, id, WS_TEXT, text, strlen(text));

        if (rc != WS_EFULL)
            return rc;
        atomic_fetch_add(&sh->efull_retries, 1);
        sleep_us(200);
    }
    return WS_EFULL;
}

static int post_broadcast_retry(struct shared *sh, const char *text)
{
    for (int tries = 0; tries < 100000; tries++) {
        int rc = ws_server_post_broadcast(sh->srv, WS_TEXT, text, strlen(text));

        if (rc != WS_EFULL)
            return rc;
        atomic_fetch_add(&sh->efull_retries, 1);
        sleep_us(200);
    }
    return WS_EFULL;
}

/* ws_server_post(), retried while the posted queue is full: calls count
   against max_posted_bytes too. */
static int post_call_retry(struct shared *sh)
{
    for (int tries = 0; tries < 100000; tries++) {
        int rc = ws_server_post(sh->srv, on_call, sh);

        if (rc != WS_EFULL)
            return rc;
        atomic_fetch_add(&sh->efull_retries, 1);
        sleep_us(200);
    }
    return WS_EFULL;
}

/* Post to an id that is open (churn), closed, or never was. */
static void post_churn(struct producer *p, int seq)
{
    struct shared *sh = p->sh;
    uint32_t r = next_rand(&p->rng);
    uint64_t id = NEVER_ID + r;
    bool may_be_open = false;
    char msg[48];
    int rc;

    pthread_mutex_lock(&sh->mu);
    if (r % 3 == 0 && sh->nopen_ids > 0) {
        id = sh->open_ids[(r / 3) % sh->nopen_ids];
        may_be_open = true;
    } else if (r % 3 == 1 && sh->nclosed > 0) {
        size_t n = sh->nclosed < NCLOSED ? sh->nclosed : NCLOSED;

        id = sh->closed_ids[(r / 3) % n];
    }
    pthread_mutex_unlock(&sh->mu);
    snprintf(msg, sizeof(msg), "x%d:%d", p->idx, seq);
    rc = ws_server_post_send(sh->srv, id, WS_TEXT, msg, strlen(msg));
    if (rc == 0 && may_be_open)
        p->churn_ok++;
    else if (rc == WS_ECLOSED)
        p->churn_closed++;
    else if (!(rc == WS_EFULL && may_be_open))
        note_fail(sh, "post_send to %s id %llu: %s",
                  may_be_open ? "churn" : "dead", (unsigned long long)id,
                  ws_errname(rc));
}

/* One sequence number: a message to each stable client, and extras. */
static void produce_one(struct producer *p, int seq)
{
    struct shared *sh = p->sh;
    char msg[48];
    int rc;

    for (int c = 0; c < NSTABLE; c++) {
        snprintf(msg, sizeof(msg), "p%d:c%d:%d", p->idx, c, seq);
        rc = post_send_retry(sh, p->ids[c], msg);
        if (rc == 0)
            p->sent++;
        else
            note_fail(sh, "post_send '%s': %s", msg, ws_errname(rc));
    }
    post_churn(p, seq);
    if (seq % BCAST_EVERY == 0) {
        snprintf(msg, sizeof(msg), "b%d:%d", p->idx, seq);
        rc = post_broadcast_retry(sh, msg);
        if (rc == 0)
            p->bcasts++;
        else
            note_fail(sh, "post_broadcast: %s", ws_errname(rc));
    }
    if (seq % CALL_EVERY == 0) {
        rc = post_call_retry(sh);
        if (rc == 0)
            atomic_fetch_add(&sh->calls_posted, 1);
        else
            note_fail(sh, "ws_server_post: %s", ws_errname(rc));
    }
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;

    pthread_mutex_lock(&p->sh->mu);
    memcpy(p->ids, p->sh->stable_id, sizeof(p->ids));
    pthread_mutex_unlock(&p->sh->mu);
    pthread_barrier_wait(&p->sh->start);
    for (int seq = 0; seq < NMSG; seq++)
        produce_one(p, seq);
    return NULL;
}

/* --- fixture --- */

static int setup(void **state)
{
    struct shared *sh = calloc(1, sizeof(*sh));

    if (sh == NULL)
        return -1;
    pthread_mutex_init(&sh->mu, NULL);
    pthread_mutex_init(&sh->err_mu, NULL);
    pthread_cond_init(&sh->cv, NULL);
    *state = sh;
    return 0;
}

static int teardown(void **state)
{
    struct shared *sh = *state;

    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->err_mu);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
    return 0;
}

static void start_server(struct shared *sh, size_t max_posted)
{
    struct ws_config cfg = {
        .host = "127.0.0.1", .port = "0", .max_posted_bytes = max_posted};

    assert_int_equal(ws_server_create(&sh->srv, &cfg, &callbacks, sh), 0);
    assert_int_equal(ws_server_listen(sh->srv), 0);
    sh->port = ws_server_port(sh->srv);
    assert_true(sh->port > 0);
}

/* --- the stress test --- */

/* Open the stable clients, say hello, wait until the loop named them all. */
static bool open_stable(struct shared *sh, struct stable *st)
{
    struct timespec deadline;
    char hello[32];
    bool ok = true;
    int rc = 0;

    for (int i = 0; i < NSTABLE; i++) {
        st[i].sh = sh;
        st[i].idx = i;
        snprintf(hello, sizeof(hello), "hello:%d", i);
        if (!client_open(&st[i].cl, sh->port) ||
            !send_frame(st[i].cl.fd, WS_OP_TEXT, hello, strlen(hello))) {
            note_fail(sh, "stable %d: upgrade or hello failed", i);
            return false;
        }
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&sh->mu);
    for (int i = 0; i < NSTABLE && rc == 0; i++) {
        while (sh->stable_id[i] == 0 && rc == 0)
            rc = pthread_cond_timedwait(&sh->cv, &sh->mu, &deadline);
    }
    ok = rc == 0;
    pthread_mutex_unlock(&sh->mu);
    if (!ok)
        note_fail(sh, "stable clients were not all named in 10 s");
    return ok;
}

/* Wait until every stable client has its messages, or WAIT_MS. */
static bool wait_delivery(struct stable *st, int bcasts)
{
    uint64_t end = now_ms() + WAIT_MS;

    for (;;) {
        bool all = true;

        for (int i = 0; i < NSTABLE; i++) {
            all = all && atomic_load(&st[i].direct) == NPROD * NMSG &&
                  atomic_load(&st[i].bcast) == bcasts;
        }
        if (all)
            return true;
        if (now_ms() > end)
            return false;
        sleep_us(10000);
    }
}

/* Run the producers and the churn thread to their end. */
static int run_producers(struct shared *sh, struct producer *pr,
                         struct churn *ch)
{
    int bcasts = 0;

    pthread_barrier_init(&sh->start, NULL, NPROD + 1);
    ch->sh = sh;
    pthread_create(&ch->tid, NULL, churn_main, ch);
    for (int i = 0; i < NPROD; i++) {
        pr[i].sh = sh;
        pr[i].idx = i;
        pr[i].rng = 0x9e3779b9u * (uint32_t)(i + 1);
        pthread_create(&pr[i].tid, NULL, producer_main, &pr[i]);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(pr[i].tid, NULL);
        bcasts += pr[i].bcasts;
    }
    atomic_store(&sh->producers_done, true);
    return bcasts;
}

static void assert_stable(const struct stable *st, int bcasts)
{
    for (int i = 0; i < NSTABLE; i++) {
        assert_int_equal(atomic_load(&st[i].direct), NPROD * NMSG);
        assert_int_equal(atomic_load(&st[i].bcast), bcasts);
        for (int p = 0; p < NPROD; p++)
            assert_int_equal(st[i].next_seq[p], NMSG);
    }
}

static void report(const struct shared *sh, const struct producer *pr,
                   const struct churn *ch, int bcasts)
{
    int ok = 0, closed = 0;

    for (int i = 0; i < NPROD; i++) {
        ok += pr[i].churn_ok;
        closed += pr[i].churn_closed;
    }
    print_message("churn: %d cycles (%d clean closes); posts to churn ids: "
                  "%d queued, %d WS_ECLOSED; %d broadcasts; %d calls; "
                  "%d WS_EFULL retries\n",
                  ch->cycles, ch->clean_closes, ok, closed, bcasts,
                  atomic_load(&sh->calls_run), atomic_load(&sh->efull_retries));
}

/* P producers x S stable clients x M messages, with churn, broadcasts and
   posted calls; then stop through a posted call and count fds. */
static void stress(void **state)
{
    struct shared *sh = *state;
    struct stable *st = calloc(NSTABLE, sizeof(*st));
    struct producer pr[NPROD] = {{0}};
    struct churn ch = {0};
    int fds_before = count_fds(), bcasts = 0, nreaders = 0;
    pthread_t loop;
    bool delivered = false;

    assert_non_null(st);
    assert_true(fds_before > 0);
    start_server(sh, 4096); /* small: producers meet WS_EFULL */
    sh->check_stable = true;
    assert_int_equal(pthread_create(&loop, NULL, loop_main, sh), 0);
    if (open_stable(sh, st)) {
        for (; nreaders < NSTABLE; nreaders++)
            pthread_create(&st[nreaders].tid, NULL, stable_main, &st[nreaders]);
        bcasts = run_producers(sh, pr, &ch);
        delivered = wait_delivery(st, bcasts);
        pthread_join(ch.tid, NULL);
        pthread_barrier_destroy(&sh->start);
    }
    /* Everything posted before is done when this runs (FIFO). */
    assert_int_equal(ws_server_post(sh->srv, on_stop, NULL), 0);
    pthread_join(loop, NULL);
    atomic_store(&sh->stop_readers, true);
    for (int i = 0; i < nreaders; i++)
        pthread_join(st[i].tid, NULL);
    sh->shutting_down = true;
    assert_int_equal(ws_server_destroy(sh->srv), 0);
    for (int i = 0; i < NSTABLE; i++) {
        if (st[i].cl.fd > 0)
            close(st[i].cl.fd);
    }
    report(sh, pr, &ch, bcasts);
    assert_string_equal(sh->first_error, "");
    assert_int_equal(atomic_load(&sh->errors), 0);
    assert_int_equal(sh->loop_rc, 0);
    assert_true(delivered);
    assert_stable(st, bcasts);
    for (int i = 0; i < NPROD; i++) {
        assert_int_equal(pr[i].sent, NSTABLE * NMSG);
        assert_int_equal(pr[i].bcasts, (NMSG + BCAST_EVERY - 1) / BCAST_EVERY);
    }
    assert_true(ch.cycles >= CHURN_MIN);
    assert_int_equal(atomic_load(&sh->calls_posted),
                     NPROD * ((NMSG + CALL_EVERY - 1) / CALL_EVERY));
    assert_int_equal(atomic_load(&sh->calls_run),
                     atomic_load(&sh->calls_posted));
    assert_int_equal(atomic_load(&sh->calls_wrong_thread), 0);
    assert_int_equal(sh->opens, NSTABLE + ch.cycles);
    assert_int_equal(sh->closes, sh->opens);
    assert_int_equal(sh->untracked, 0);
    assert_int_equal(count_fds(), fds_before);
    free(st);
}

/* --- the error codes, with the loop pumped on this thread --- */

/* Pump the server until fd is readable or ms pass. */
static bool pump_until_readable(struct shared *sh, int fd, int ms)
{
    for (int waited = 0; waited < ms; waited += 5) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        ws_server_run_once(sh->srv, 5);
        if (poll(&p, 1, 0) == 1)
            return true;
    }
    return false;
}

#define PUMP_UNTIL(sh, cond, ms)                                               \
    do {                                                                       \
        for (int w_ = 0; w_ < (ms) && !(cond); w_ += 5)                        \
            ws_server_run_once((sh)->srv, 5);                                  \
    } while (0)

/* Open one client while pumping; returns the connection's id. */
static uint64_t open_one(struct shared *sh, struct client *cl)
{
    cl->len = 0;
    cl->fd = client_connect(sh->port);
    assert_true(cl->fd >= 0);
    assert_true(send_upgrade(cl->fd));
    assert_true(pump_until_readable(sh, cl->fd, 2000));
    assert_true(client_read_upgrade(cl, 20));
    assert_int_equal(sh->opens, 1);
    assert_int_equal(sh->nopen_ids, 1);
    return sh->open_ids[0];
}

/* Every error code of the post calls; a queued item freed by destroy. */
static void post_errors(void **state)
{
    struct shared *sh = *state;
    static const uint8_t big[1024];
    int fds_before = count_fds();
    struct client *cl = calloc(1, sizeof(*cl));
    struct frame *fr = calloc(1, sizeof(*fr));
    uint64_t id;

    assert_non_null(cl);
    assert_non_null(fr);
    start_server(sh, 100);
    sh->loop_tid = pthread_self();
    /* Ids that never existed. */
    assert_int_equal(ws_server_post_send(sh->srv, 0, WS_TEXT, "a", 1),
                     WS_ECLOSED);
    assert_int_equal(ws_server_post_send(sh->srv, NEVER_ID, WS_TEXT, "a", 1),
                     WS_ECLOSED);
    assert_int_equal(
        ws_server_post_send(sh->srv, UINT64_MAX, WS_BINARY, big, 10),
        WS_ECLOSED);
    id = open_one(sh, cl);
    assert_ptr_not_equal(ws_server_find(sh->srv, id), NULL);
    assert_null(ws_server_find(sh->srv, id + 1));
    /* Bad arguments. */
    assert_int_equal(ws_server_post_send(NULL, id, WS_TEXT, "a", 1), WS_EINVAL);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_TEXT, "\xff", 1),
                     WS_EINVAL);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_TEXT, "\xc3", 1),
                     WS_EINVAL);
    assert_int_equal(
        ws_server_post_send(sh->srv, id, (enum ws_msg_type)3, "a", 1),
        WS_EINVAL);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_BINARY, NULL, 5),
                     WS_EINVAL);
    assert_int_equal(ws_server_post_broadcast(sh->srv, WS_TEXT, "\xff", 1),
                     WS_EINVAL);
    assert_int_equal(ws_server_post(sh->srv, NULL, NULL), WS_EINVAL);
    assert_int_equal(ws_server_post(NULL, on_call, sh), WS_EINVAL);
    /* More than max_posted_bytes (100) waiting. */
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_BINARY, big, 1024),
                     WS_EFULL);
    assert_int_equal(ws_server_post_broadcast(sh->srv, WS_BINARY, big, 1024),
                     WS_EFULL);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_BINARY, big, 60), 0);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_BINARY, big, 60),
                     WS_EFULL);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_TEXT, "queued", 6), 0);
    /* 66 bytes wait: a posted call, which counts as its own size, does
       not fit either. */
    assert_int_equal(ws_server_post(sh->srv, on_call, sh), WS_EFULL);
    /* The loop delivers both in order. */
    assert_true(pump_until_readable(sh, cl->fd, 2000));
    assert_int_equal(client_frame(cl, fr), 1);
    assert_int_equal(fr->opcode, WS_OP_BINARY);
    assert_int_equal(fr->len, 60);
    if (cl->len == 0)
        assert_true(pump_until_readable(sh, cl->fd, 2000));
    assert_int_equal(client_frame(cl, fr), 1);
    assert_int_equal(fr->opcode, WS_OP_TEXT);
    assert_string_equal(fr->data, "queued");
    /* The queue is empty again: the call fits and runs on the loop. */
    assert_int_equal(ws_server_post(sh->srv, on_call, sh), 0);
    PUMP_UNTIL(sh, atomic_load(&sh->calls_run) == 1, 2000);
    assert_int_equal(atomic_load(&sh->calls_run), 1);
    assert_int_equal(atomic_load(&sh->calls_wrong_thread), 0);
    /* The queue is empty again: 100 bytes fit. */
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_BINARY, big, 100), 0);
    /* A closed connection's id. */
    close(cl->fd);
    PUMP_UNTIL(sh, sh->closes == 1, 2000);
    assert_int_equal(sh->closes, 1);
    assert_null(ws_server_find(sh->srv, id));
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_TEXT, "late", 4),
                     WS_ECLOSED);
    /* Left queued, never run: destroy frees them (ASan, valgrind). */
    assert_int_equal(ws_server_post_broadcast(sh->srv, WS_BINARY, big, 40), 0);
    assert_int_equal(ws_server_post_broadcast(sh->srv, WS_BINARY, big, 61),
                     WS_EFULL);
    assert_int_equal(ws_server_post(sh->srv, on_call, sh), 0);
    assert_int_equal(ws_server_destroy(sh->srv), 0);
    assert_int_equal(sh->errors, 0);
    assert_int_equal(count_fds(), fds_before);
    free(cl);
    free(fr);
}

/* Read and drop what fd holds now; false once it reached end of file. */
static bool discard_input(int fd)
{
    char sink[65536];
    ssize_t n;

    while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
        ;
    return n != 0;
}

/* Producers learn a connection's back-pressure: posts to a client that
   does not read fail with WS_EFULL once more than max_output_bytes wait
   for it (its queue and what was posted), without closing it; after it
   reads, posts go through again; once its close has begun, posts and
   ws_server_conn_buffered() say WS_ECLOSED. */
static void post_backpressure(void **state)
{
    struct shared *sh = *state;
    struct ws_config cfg = {.host = "127.0.0.1", .max_output_bytes = 65536};
    static const uint8_t msg[16384];
    struct client *cl = calloc(1, sizeof(*cl));
    int rc = 0, posted = 0;
    ssize_t waiting = 0;
    uint64_t id;

    assert_non_null(cl);
    assert_int_equal(ws_server_create(&sh->srv, &cfg, &callbacks, sh), 0);
    assert_int_equal(ws_server_listen(sh->srv), 0);
    sh->port = ws_server_port(sh->srv);
    sh->loop_tid = pthread_self();
    id = open_one(sh, cl);
    assert_int_equal(ws_server_conn_buffered(sh->srv, id), 0);
    assert_int_equal(ws_server_conn_buffered(sh->srv, NEVER_ID), WS_ECLOSED);
    assert_int_equal(ws_server_conn_buffered(NULL, id), WS_EINVAL);
    while (posted < 100000) {
        rc = ws_server_post_send(sh->srv, id, WS_BINARY, msg, sizeof(msg));
        if (rc != 0)
            break;
        posted++;
        ws_server_run_once(sh->srv, 0);
    }
    assert_int_equal(rc, WS_EFULL);
    waiting = ws_server_conn_buffered(sh->srv, id);
    assert_true(waiting > 65536);
    /* At most the cap, one message and its header, and the one post
       that found the cap not yet passed. */
    assert_true((size_t)waiting <= 65536 + 2 * (sizeof(msg) + 14));
    ws_server_run_once(sh->srv, 0);
    assert_int_equal(sh->closes, 0); /* pressure, not a failure */
    /* The client reads it all: the queue empties and posts go again. */
    for (int i = 0; i < 2000 && ws_server_conn_buffered(sh->srv, id) > 0; i++) {
        assert_true(discard_input(cl->fd));
        ws_server_run_once(sh->srv, 1);
    }
    assert_int_equal(ws_server_conn_buffered(sh->srv, id), 0);
    assert_int_equal(
        ws_server_post_send(sh->srv, id, WS_BINARY, msg, sizeof(msg)), 0);
    /* This side begins the close: the connection is not gone yet (no
       on_close before the peer answers) but takes nothing more. */
    ws_server_run_once(sh->srv, 0);
    assert_int_equal(ws_conn_close(ws_server_find(sh->srv, id), 1000, NULL), 0);
    ws_server_run_once(sh->srv, 0);
    assert_int_equal(sh->closes, 0);
    assert_int_equal(ws_server_conn_buffered(sh->srv, id), WS_ECLOSED);
    assert_int_equal(ws_server_post_send(sh->srv, id, WS_TEXT, "late", 4),
                     WS_ECLOSED);
    close(cl->fd);
    PUMP_UNTIL(sh, sh->closes == 1, 2000);
    assert_int_equal(sh->closes, 1);
    assert_int_equal(ws_server_destroy(sh->srv), 0);
    assert_int_equal(sh->errors, 0);
    free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(post_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(post_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(stress, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
