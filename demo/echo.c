/*
 * echo.c - the echo server that conformance suites are pointed at: every
 * message comes back with the same type. Written only against ws/ws.h.
 *   ws_echo [--host H] [--port P] [--verbose] [--no-deflate]
 *           [--deflate-context] [--tls-cert FILE --tls-key FILE]
 *           [--reuse-port]
 *                                             (default 127.0.0.1:9001)
 * permessage-deflate is on unless --no-deflate; --deflate-context lets
 * both sides keep their compression context between messages.
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

static struct ws_server *server;
static int verbose;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(server); /* async-signal-safe */
}

static void on_open(struct ws_conn *c, void *ud)
{
    (void)ud;
    if (verbose)
        printf("open  %s %s\n", ws_conn_peer(c), ws_conn_path(c));
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    (void)ud;
    if (verbose)
        printf("%s %zu bytes from %s\n", type == WS_TEXT ? "text" : "binary",
               len, ws_conn_peer(c));
    ws_conn_send(c, type, data, len);
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    (void)ud;
    if (verbose)
        printf("close %s %d %.*s\n", ws_conn_peer(c), code, (int)len, reason);
}

static void on_error(struct ws_conn *c, int err, const char *detail, void *ud)
{
    (void)ud;
    (void)c;
    fprintf(stderr, "ws_echo: %s (%s)\n", detail, ws_errname(err));
}

/* Serve as many clients as the system allows: the soft descriptor limit
   (often 1024) up to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: ws_echo [--host HOST] [--port PORT] "
                    "[--verbose] [--no-deflate] [--deflate-context]\n"
                    "               [--tls-cert FILE --tls-key FILE] "
                    "[--reuse-port]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {
        .host = "127.0.0.1", .port = "9001", .permessage_deflate = 1};
    struct ws_callbacks cb = {.on_open = on_open,
                              .on_message = on_message,
                              .on_close = on_close,
                              .on_error = on_error};
    struct ws_tls_config tls = {0};
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            cfg.host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            cfg.port = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--no-deflate") == 0)
            cfg.permessage_deflate = 0;
        else if (strcmp(argv[i], "--deflate-context") == 0)
            cfg.deflate_server_context = cfg.deflate_client_context = 1;
        else if (strcmp(argv[i], "--reuse-port") == 0)
            cfg.reuse_port = 1; /* run several: the kernel spreads clients */
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            tls.cert_file = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            tls.key_file = argv[++i];
        else
            usage();
    }
    if ((tls.cert_file == NULL) != (tls.key_file == NULL))
        usage();
    if (tls.cert_file)
        cfg.tls = &tls;
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_fd_limit();
    rc = ws_server_create(&server, &cfg, &cb, NULL);
    if (rc == 0 && (rc = ws_server_listen(server)) < 0)
        fprintf(stderr, "ws_echo: %s\n", ws_server_last_error(server));
    else if (rc < 0)
        fprintf(stderr, "ws_echo: %s\n", ws_strerror(rc));
    if (rc < 0) {
        ws_server_destroy(server);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ws_echo listening on %s port %d%s\n", cfg.host,
           ws_server_port(server), cfg.tls ? " (TLS)" : "");
    rc = ws_server_run(server);
    ws_server_destroy(server);
    return rc < 0 ? 1 : 0;
}
