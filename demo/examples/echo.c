/*
 * echo.c - every message comes back as it was sent.
 * Usage: echo [PORT]   (default 9001; 0 lets the OS pick). Ctrl-C stops it.
 */
#include <signal.h>
#include <stdio.h>

#include "ws/ws.h"

static struct ws_server *srv;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(srv); /* async-signal-safe: ws_server_run() returns */
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *user_data)
{
    (void)user_data;
    ws_conn_send(c, type, data, len); /* copied; data is only borrowed */
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.port = argc > 1 ? argv[1] : "9001"};
    struct ws_callbacks cb = {.on_message = on_message};
    int rc = ws_server_create(&srv, &cfg, &cb, NULL);

    if (rc == 0 && (rc = ws_server_listen(srv)) == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "echo: listening on port %d\n", ws_server_port(srv));
        rc = ws_server_run(srv);
    }
    if (rc < 0)
        fprintf(stderr, "echo: %s\n", ws_strerror(rc));
    ws_server_destroy(srv); /* srv is NULL if create failed: harmless */
    return rc < 0;
}
