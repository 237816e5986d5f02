/*
 * tls_server.c - a TLS test server on the public API, for test_tls.py:
 * every message is echoed, except on /whoami, which answers once with
 * what ws_conn_tls_info() says (JSON). on_error lines go to stdout as
 * "error NAME detail", so tests can wait for the reason a handshake
 * failed; SIGHUP reloads the certificate files in place and prints
 * "reload ok" or "reload failed: WHY".
 *   tls_server --port P --cert F --key F [--host H] [--ca F]
 *              [--client none|optional|required] [--min 1.2|1.3]
 *              [--ciphersuites S] [--handshake-ms MS] [--max-output B]
 *              [--sni NAME CERT KEY]... [--no-deflate]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

#define MAX_NAMES 4

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

static int on_upgrade(struct ws_conn *c, const struct ws_request *req, void *ud)
{
    struct ws_tls_info info;

    (void)ud;
    /* The hook sees the session already: a whoami request is answered
       from it at on_open. */
    if (ws_conn_tls_info(c, &info) != 0)
        return 500;
    if (strcmp(ws_request_path(req), "/whoami") == 0)
        ws_conn_set_user_data(c, c);
    return 0;
}

static void on_open(struct ws_conn *c, void *ud)
{
    struct ws_tls_info info;
    char json[600];

    (void)ud;
    if (ws_conn_get_user_data(c) == NULL || ws_conn_tls_info(c, &info) != 0)
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
    ws_conn_send(c, type, data, len);
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
        else
            exit(2);
    }
    if (n > 0)
        tls->names = names;
}

/* Serve until SIGTERM, reloading the files on SIGHUP. */
static int serve(struct ws_server *s)
{
    while (!stop_flag) {
        int rc = ws_server_run_once(s, 50);

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
    ws_server_destroy(s);
    return rc < 0 ? 1 : 0;
}
