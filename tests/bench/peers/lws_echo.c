/*
 * lws_echo.c - a libwebsockets (Debian libwebsockets-dev) echo server for
 * the benchmark: every whole message comes back with its opcode, in order.
 * Text is UTF-8 checked by lws, as our library checks it.
 *   lws_echo [--host H] [--port P] [--rx-buffer BYTES]
 *            [--tls-cert FILE --tls-key FILE]
 * With --tls-cert and --tls-key (PEM) it serves wss:// only, on lws's
 * OpenSSL.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (64u << 20)

/* A message being assembled or waiting to be written back. */
struct echo_msg {
    struct echo_msg *next;
    size_t len, cap;
    int binary;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the payload */
};

/* Per-connection state; lws zero-fills it at establishment. */
struct session {
    struct echo_msg *rx;          /* owned; the message being assembled */
    struct echo_msg *head, *tail; /* owned; queue of whole messages */
};

static volatile sig_atomic_t stop_flag;
static struct lws_context *context;

/* SIGTERM/SIGINT: leave the service loop. */
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    if (context)
        lws_cancel_service(context);
}

/* Append n bytes to the message being assembled; 0 or -1. */
static int rx_append(struct session *ss, const void *in, size_t n, int binary)
{
    struct echo_msg *m = ss->rx;
    size_t need = (m ? m->len : 0) + n;

    if (need > MAX_MESSAGE)
        return -1;
    if (m == NULL || need > m->cap) {
        size_t cap = m ? m->cap * 2 : (n < 256 ? 256 : n);
        struct echo_msg *grown;

        while (cap < need)
            cap *= 2;
        grown = realloc(m, sizeof(*m) + LWS_PRE + cap);
        if (grown == NULL)
            return -1;
        if (m == NULL)
            grown->len = 0;
        grown->cap = cap;
        m = ss->rx = grown;
    }
    memcpy(m->data + LWS_PRE + m->len, in, n);
    m->len += n;
    m->binary = binary;
    return 0;
}

/* A whole message is in: queue it and ask for a writable callback. */
static void rx_done(struct lws *wsi, struct session *ss)
{
    struct echo_msg *m = ss->rx;

    ss->rx = NULL;
    m->next = NULL;
    if (ss->tail)
        ss->tail->next = m;
    else
        ss->head = m;
    ss->tail = m;
    lws_callback_on_writable(wsi);
}

/* Write the oldest queued message: lws allows one write per callback. */
static int tx_one(struct lws *wsi, struct session *ss)
{
    struct echo_msg *m = ss->head;
    int n;

    if (m == NULL)
        return 0;
    n = lws_write(wsi, m->data + LWS_PRE, m->len,
                  m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    ss->head = m->next;
    if (ss->head == NULL)
        ss->tail = NULL;
    free(m);
    if (n < 0)
        return -1;
    if (ss->head)
        lws_callback_on_writable(wsi);
    return 0;
}

/* Free everything the session holds. */
static void session_free(struct session *ss)
{
    while (ss->head) {
        struct echo_msg *m = ss->head;

        ss->head = m->next;
        free(m);
    }
    ss->tail = NULL;
    free(ss->rx);
    ss->rx = NULL;
}

/* The protocol callback: assemble, queue, write back. */
static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    struct session *ss = user;

    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        if (rx_append(ss, in, len, lws_frame_is_binary(wsi)) < 0)
            return -1;
        if (lws_is_final_fragment(wsi) &&
            lws_remaining_packet_payload(wsi) == 0)
            rx_done(wsi, ss);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return tx_one(wsi, ss);
    case LWS_CALLBACK_CLOSED:
        session_free(ss);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

int main(int argc, char **argv)
{
    struct lws_protocols protocols[] = {
        {"echo", callback_echo, sizeof(struct session), 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    int port = 9003;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rx-buffer") == 0)
            protocols[0].rx_buffer_size = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--tls-cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--tls-key") == 0)
            key = argv[i + 1];
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "lws_echo: --tls-cert and --tls-key go together\n");
        return 2;
    }
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = key;
    }
    context = lws_create_context(&info);
    if (context == NULL) {
        lwsl_err("lws_echo: cannot listen on %s:%d\n", host, port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("lws_echo listening on %s port %d%s\n", host, port,
           cert ? " (TLS)" : "");
    fflush(stdout);
    while (!stop_flag && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
