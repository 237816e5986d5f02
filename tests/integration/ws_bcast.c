/*
 * ws_bcast.c - a test server on the public API: every message a client
 * sends goes to every open connection, the sender's included. Limits come from
 * flags so that tests can reach them quickly. Prints "listening on port N".
 *   ws_bcast [--port P] [--max-output BYTES] [--max-message BYTES]
 *            [--max-connections N] [--handshake-ms MS] [--idle-ms MS]
 *            [--ping-ms MS] [--close-ms MS]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

static struct ws_server *server;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(server);
}

/* Relay a message to everyone. */
static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    (void)ud;
    ws_server_broadcast(ws_conn_server(c), type, data, len);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    (void)ud;
    printf("close %s %d %.*s\n", ws_conn_peer(c), code, (int)len, reason);
}

/* Parse "--name value" pairs into cfg; exit 2 on anything else. */
static void parse(int argc, char **argv, struct ws_config *cfg)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        long n = strtol(v, NULL, 10);

        if (strcmp(k, "--port") == 0)
            cfg->port = v;
        else if (strcmp(k, "--max-output") == 0)
            cfg->max_output_bytes = (size_t)n;
        else if (strcmp(k, "--max-message") == 0)
            cfg->max_message_bytes = (size_t)n;
        else if (strcmp(k, "--max-connections") == 0)
            cfg->max_connections = (size_t)n;
        else if (strcmp(k, "--handshake-ms") == 0)
            cfg->handshake_timeout_ms = (int)n;
        else if (strcmp(k, "--idle-ms") == 0)
            cfg->idle_timeout_ms = (int)n;
        else if (strcmp(k, "--ping-ms") == 0)
            cfg->ping_interval_ms = (int)n;
        else if (strcmp(k, "--close-ms") == 0)
            cfg->close_timeout_ms = (int)n;
        else
            exit(2);
    }
    if (argc % 2 == 0)
        exit(2);
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.host = "127.0.0.1"};
    struct ws_callbacks cb = {.on_message = on_message, .on_close = on_close};
    int rc;

    parse(argc, argv, &cfg);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = ws_server_create(&server, &cfg, &cb, NULL);
    if (rc == 0)
        rc = ws_server_listen(server);
    if (rc < 0) {
        fprintf(stderr, "ws_bcast: %s\n",
                server ? ws_server_last_error(server) : ws_strerror(rc));
        ws_server_destroy(server);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("listening on port %d\n", ws_server_port(server));
    rc = ws_server_run(server);
    ws_server_destroy(server);
    return rc < 0 ? 1 : 0;
}
