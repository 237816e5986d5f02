/*
 * tls_server.c - a TLS test server on the public API, for test_tls.py:
 * every message is echoed, except on /whoami, which answers once with
 * what ws_conn_tls_info() says (JSON); on /stream the connection streams
 * (each message is gathered from its pieces and echoed whole); on /post
 * another thread posts "post 0" .. "post 99" to it. With --embed the
 * application's own select() drives the server (ws_server_fdset,
 * ws_server_timeout, ws_server_process). A text "poison" leaves an error
 * on this thread's OpenSSL queue, as an application's failed libcrypto
 * call would. A plain GET /N answers N bytes of 'x'. on_error lines go to
 * stdout as
 * "error NAME detail", so tests can wait for the reason a handshake
 * failed; SIGHUP reloads the certificate files in place and prints
 * "reload ok" or "reload failed: WHY".
 *   tls_server --port P --cert F --key F [--host H] [--ca F]
 *              [--client none|optional|required] [--min 1.2|1.3]
 *              [--ciphersuites S] [--handshake-ms MS] [--max-output B]
 *              [--max-message B]
 *              [--sni NAME CERT KEY]... [--no-deflate] [--embed]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ws/ws.h"

#define MAX_NAMES 4
#define MAX_POSTERS 16
#define POSTS 100

static volatile sig_atomic_t stop_flag, reload_flag;
static int embed;

/* Mark the connection's kind in its user data. */
static char kind_whoami, kind_stream, kind_post;

/* A message gathered from its pieces (/stream). */
struct gather {
    char *data;
    size_t len;
};

/* The posting threads (/post), joined before the server is destroyed. */
struct poster {
    struct ws_server *srv;
    uint64_t id;
};
static pthread_t posters[MAX_POSTERS];
static struct poster poster_args[MAX_POSTERS];
static int n_posters;

static void *post_all(void *arg)
{
    const struct poster *p = arg;
    char msg[32];

    for (int i = 0; i < POSTS; i++) {
        int n = snprintf(msg, sizeof(msg), "post %d", i);

        if (ws_server_post_send(p->srv, p->id, WS_TEXT, msg, (size_t)n) < 0)
            break;
    }
    return NULL;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

static int on_upgrade(struct ws_conn *c, const struct ws_request *req,
                      struct ws_response *res, void *ud)
{
    struct ws_tls_info info;

    (void)res;
    (void)ud;
    /* The hook sees the session already: a whoami request is answered
       from it at on_open. */
    if (ws_conn_tls_info(c, &info) != 0)
        return 500;
    if (strcmp(ws_request_path(req), "/whoami") == 0)
        ws_conn_set_user_data(c, &kind_whoami);
    if (strcmp(ws_request_path(req), "/post") == 0)
        ws_conn_set_user_data(c, &kind_post);
    if (strcmp(ws_request_path(req), "/stream") == 0) {
        ws_conn_set_user_data(c, &kind_stream);
        ws_conn_set_streaming(c, 1);
    }
    return 0;
}

/* /stream: gather the pieces, echo the whole message. */
static void on_fragment(struct ws_conn *c, enum ws_msg_type type,
                        const void *data, size_t len, int first, int last,
                        void *ud)
{
    static struct gather g;
    char *grown;

    (void)ud;
    if (first)
        g.len = 0;
    grown = realloc(g.data, g.len + len + 1);
    if (grown == NULL) {
        ws_conn_close(c, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    g.data = grown;
    memcpy(g.data + g.len, data, len);
    g.len += len;
    if (last)
        ws_conn_send(c, type, g.data, g.len);
}

static void on_open(struct ws_conn *c, void *ud)
{
    struct ws_tls_info info;
    char json[600];

    (void)ud;
    if (ws_conn_get_user_data(c) == &kind_post && n_posters < MAX_POSTERS) {
        struct poster *p = &poster_args[n_posters];

        *p = (struct poster){ws_conn_server(c), ws_conn_id(c)};
        if (pthread_create(&posters[n_posters], NULL, post_all, p) == 0)
            n_posters++;
        return;
    }
    if (ws_conn_get_user_data(c) != &kind_whoami ||
        ws_conn_tls_info(c, &info) != 0)
        return;
    snprintf(json, sizeof(json),
             "{\"version\":\"%s\",\"cipher\":\"%s\",\"sni\":\"%s\","
             "\"verified\":%d,\"subject\":\"%s\"}",
             info.version, info.cipher,
             info.server_name ? info.server_name : "", info.peer_verified,
             info.peer_subject);
    ws_conn_send(c, WS_TEXT, json, strlen(json));
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    (void)ud;
    if (type == WS_TEXT && len == 6 && memcmp(data, "poison", 6) == 0)
        ERR_raise(ERR_LIB_USER, 42); /* left there on purpose */
    ws_conn_send(c, type, data, len);
}

/* GET /N: N bytes. */
static void on_http(struct ws_conn *c, const struct ws_request *req,
                    struct ws_response *res, void *ud)
{
    size_t n = strtoul(ws_request_path(req) + 1, NULL, 10);
    char *body = n ? malloc(n) : NULL;

    (void)c;
    (void)ud;
    if (body) {
        memset(body, 'x', n);
        ws_response_body(res, body, n);
    }
    free(body);
}

static void on_error(struct ws_conn *c, int err, const char *detail, void *ud)
{
    (void)c;
    (void)ud;
    printf("error %s %s\n", ws_errname(err), detail);
}

static enum ws_tls_client_auth client_mode(const char *v)
{
    if (strcmp(v, "optional") == 0)
        return WS_TLS_CLIENT_OPTIONAL;
    if (strcmp(v, "required") == 0)
        return WS_TLS_CLIENT_REQUIRED;
    return WS_TLS_CLIENT_NONE;
}

/* Parse the flags into cfg and tls; exit 2 on anything else. */
static void parse(int argc, char **argv, struct ws_config *cfg,
                  struct ws_tls_config *tls, struct ws_tls_name *names)
{
    int n = 0;

    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(k, "--no-deflate") == 0) {
            cfg->permessage_deflate = 0;
            continue;
        }
        if (strcmp(k, "--embed") == 0) {
            embed = 1;
            continue;
        }
        if (strcmp(k, "--sni") == 0 && i + 3 < argc && n < MAX_NAMES) {
            names[n++] =
                (struct ws_tls_name){argv[i + 1], argv[i + 2], argv[i + 3]};
            i += 3;
            continue;
        }
        if (v == NULL)
            exit(2);
        i++;
        if (strcmp(k, "--port") == 0)
            cfg->port = v;
        else if (strcmp(k, "--host") == 0)
            cfg->host = v;
        else if (strcmp(k, "--cert") == 0)
            tls->cert_file = v;
        else if (strcmp(k, "--key") == 0)
            tls->key_file = v;
        else if (strcmp(k, "--ca") == 0)
            tls->ca_file = v;
        else if (strcmp(k, "--client") == 0)
            tls->client_auth = client_mode(v);
        else if (strcmp(k, "--min") == 0)
            tls->min_version = strcmp(v, "1.3") == 0 ? WS_TLS_1_3 : WS_TLS_1_2;
        else if (strcmp(k, "--ciphersuites") == 0)
            tls->ciphersuites = v;
        else if (strcmp(k, "--handshake-ms") == 0)
            cfg->handshake_timeout_ms = atoi(v);
        else if (strcmp(k, "--max-output") == 0)
            cfg->max_output_bytes = strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-message") == 0)
            cfg->max_message_bytes = strtoul(v, NULL, 10);
        else
            exit(2);
    }
    if (n > 0)
        tls->names = names;
}

/* One turn of the application's own select() loop (--embed). */
static int embedded_turn(struct ws_server *s)
{
    fd_set r, w;
    int max_fd = -1;
    long ms;
    struct timeval tv;

    FD_ZERO(&r);
    FD_ZERO(&w);
    if (ws_server_fdset(s, &r, &w, &max_fd) < 0 ||
        ws_server_timeout(s, &ms) < 0)
        return -1;
    if (ms < 0 || ms > 50)
        ms = 50;
    tv = (struct timeval){ms / 1000, (ms % 1000) * 1000};
    if (select(max_fd + 1, &r, &w, NULL, &tv) < 0) {
        FD_ZERO(&r);
        FD_ZERO(&w);
    }
    return ws_server_process(s, &r, &w);
}

/* Serve until SIGTERM, reloading the files on SIGHUP. */
static int serve(struct ws_server *s)
{
    while (!stop_flag) {
        int rc = embed ? embedded_turn(s) : ws_server_run_once(s, 50);

        if (rc < 0)
            return rc;
        if (reload_flag) {
            reload_flag = 0;
            if (ws_server_tls_reload(s, NULL) == 0)
                printf("reload ok\n");
            else
                printf("reload failed: %s\n", ws_server_last_error(s));
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct ws_tls_name names[MAX_NAMES + 1] = {{0}};
    struct ws_tls_config tls = {0};
    struct ws_config cfg = {.port = "0", .permessage_deflate = 1, .tls = &tls};
    struct ws_callbacks cb = {.on_upgrade = on_upgrade,
                              .on_open = on_open,
                              .on_message = on_message,
                              .on_fragment = on_fragment,
                              .on_http = on_http,
                              .on_error = on_error};
    struct ws_server *s;
    int rc;

    parse(argc, argv, &cfg, &tls, names);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = ws_server_create(&s, &cfg, &cb, NULL);
    if (rc < 0) {
        fprintf(stderr, "tls_server: %s\n", ws_strerror(rc));
        return 1;
    }
    if (ws_server_listen(s) < 0) {
        fprintf(stderr, "tls_server: %s\n", ws_server_last_error(s));
        ws_server_destroy(s);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    printf("tls_server listening on %s port %d\n",
           cfg.host ? cfg.host : "127.0.0.1", ws_server_port(s));
    rc = serve(s);
    for (int i = 0; i < n_posters; i++)
        pthread_join(posters[i], NULL);
    ws_server_destroy(s);
    return rc < 0 ? 1 : 0;
}
