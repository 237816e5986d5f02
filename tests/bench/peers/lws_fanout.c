/*
 * lws_fanout.c - a libwebsockets (Debian libwebsockets-dev) fan-out server
 * for the benchmark: every whole message a client sends goes to every
 * connection, the sender included, with its opcode, in order.
 *   lws_fanout [--host H] [--port P]   (default 127.0.0.1:9007)
 * The usual lws pattern: a message is stored once in a shared queue, every
 * connection keeps the sequence number of the next one it must write, and
 * lws_callback_on_writable_all_protocol() asks for a WRITEABLE callback on
 * each, which writes one message (lws allows one write per callback) and
 * asks again while more wait. Instead of lws_ring's oldest-tail scan
 * (every connection's consume can walk all connections) each message
 * counts the connections that still have to write it.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (16u << 20)

/* One message on its way to every connection that was open when it came. */
struct fan_msg {
    size_t refs; /* connections that have not written it yet */
    size_t len;
    int binary;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the payload */
};

/* The queue: message seq is slot[seq % cap], for first <= seq < next. */
struct fan_queue {
    struct fan_msg **slot; /* owned, and the messages in it */
    size_t cap;
    uint64_t first, next;
    size_t conns; /* established connections */
};

/* Per-connection state; lws zero-fills it at establishment. */
struct session {
    uint64_t next;     /* the seq of the next message to write */
    unsigned char *rx; /* owned; the message being assembled */
    size_t rx_len, rx_cap;
};

static volatile sig_atomic_t stop_flag;
static struct lws_context *context;
static struct fan_queue queue;

/* SIGTERM/SIGINT: leave the service loop. */
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    if (context)
        lws_cancel_service(context);
}

/* Double the queue, keeping each message at its seq; 0 or -1. */
static int queue_grow(struct fan_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 1024;
    struct fan_msg **slot = calloc(cap, sizeof(*slot));

    if (slot == NULL)
        return -1;
    for (uint64_t s = q->first; s < q->next; s++)
        slot[s % cap] = q->slot[s % q->cap];
    free(q->slot);
    q->slot = slot;
    q->cap = cap;
    return 0;
}

/* One connection is done with message seq; the last one frees it. */
static void queue_release(struct fan_queue *q, uint64_t seq)
{
    struct fan_msg **m = &q->slot[seq % q->cap];

    if (--(*m)->refs > 0)
        return;
    free(*m);
    *m = NULL;
    /* Connections write in order, so older messages go first, except when
       a connection closes with messages unwritten; skip the gaps then. */
    while (q->first < q->next && q->slot[q->first % q->cap] == NULL)
        q->first++;
}

/* Append n received bytes to the message being assembled; 0 or -1. */
static int rx_append(struct session *ss, const void *in, size_t n)
{
    if (ss->rx_len + n > MAX_MESSAGE)
        return -1;
    if (ss->rx_len + n > ss->rx_cap) {
        size_t cap = ss->rx_cap ? ss->rx_cap * 2 : 256;
        unsigned char *p;

        while (cap < ss->rx_len + n)
            cap *= 2;
        p = realloc(ss->rx, cap);
        if (p == NULL)
            return -1;
        ss->rx = p;
        ss->rx_cap = cap;
    }
    memcpy(ss->rx + ss->rx_len, in, n);
    ss->rx_len += n;
    return 0;
}

/* A whole message is in: queue it for every connection; 0 or -1. */
static int publish(struct lws *wsi, struct session *ss)
{
    struct fan_queue *q = &queue;
    struct fan_msg *m = malloc(sizeof(*m) + LWS_PRE + ss->rx_len);

    if (m == NULL || (q->next - q->first == q->cap && queue_grow(q) < 0)) {
        free(m);
        return -1;
    }
    m->refs = q->conns;
    m->len = ss->rx_len;
    m->binary = lws_frame_is_binary(wsi);
    memcpy(m->data + LWS_PRE, ss->rx, ss->rx_len);
    ss->rx_len = 0;
    q->slot[q->next++ % q->cap] = m;
    lws_callback_on_writable_all_protocol(lws_get_context(wsi),
                                          lws_get_protocol(wsi));
    return 0;
}

/* Write the next message this connection owes, one per callback. */
static int tx_one(struct lws *wsi, struct session *ss)
{
    struct fan_msg *m;
    int n;

    if (ss->next == queue.next)
        return 0;
    m = queue.slot[ss->next % queue.cap];
    n = lws_write(wsi, m->data + LWS_PRE, m->len,
                  m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    queue_release(&queue, ss->next++);
    if (n < 0)
        return -1;
    if (ss->next < queue.next)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The protocol callback: join, assemble, fan out, write, leave. */
static int callback_fanout(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len)
{
    struct session *ss = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        ss->next = queue.next; /* only messages from now on */
        queue.conns++;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (rx_append(ss, in, len) < 0)
            return -1;
        if (lws_is_final_fragment(wsi) &&
            lws_remaining_packet_payload(wsi) == 0)
            return publish(wsi, ss);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return tx_one(wsi, ss);
    case LWS_CALLBACK_CLOSED:
        while (ss->next < queue.next)
            queue_release(&queue, ss->next++);
        queue.conns--;
        free(ss->rx);
        ss->rx = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

int main(int argc, char **argv)
{
    struct lws_protocols protocols[] = {
        {"fanout", callback_fanout, sizeof(struct session), 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    const char *host = "127.0.0.1";
    int port = 9007;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    }
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    context = lws_create_context(&info);
    if (context == NULL) {
        lwsl_err("lws_fanout: cannot listen on %s:%d\n", host, port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("lws_fanout listening on %s port %d\n", host, port);
    fflush(stdout);
    while (!stop_flag && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
