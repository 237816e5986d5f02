/*
 * echo.c - the echo server that conformance suites are pointed at: every
 * message comes back with the same type. Written only against ws/ws.h.
 *   ws_echo [--host H] [--port P] [--verbose] [--no-deflate]
 *           [--deflate-context] [--tls-cert FILE --tls-key FILE]
 *           [--reuse-port] [--workers N] [--close-timeout MS]
 *           [--embed epoll]                   (default 127.0.0.1:9001)
 * permessage-deflate is on unless --no-deflate; --deflate-context lets
 * both sides keep their compression context between messages. The first
 * SIGINT or SIGTERM shuts down gracefully (every client gets what was
 * queued for it, then 1001; the peers' closes are awaited up to
 * --close-timeout, default 5000 ms); a second one stops at once.
 * --embed epoll runs the server inside an epoll loop of this program's own
 * (demo/embed_epoll.c) instead of ws_server_run(): the same server,
 * through the per-descriptor embedding.
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo/embed_epoll.h"
#include "demo/workers.h"
#include "ws/ws.h"

static struct ws_server *server;
static int verbose;
static volatile sig_atomic_t signals; /* --embed: its loop counts them */

/* The first signal begins a graceful shutdown, a second one stops at once
   (ws_server_shutdown() counts them); async-signal-safe. */
static void on_signal(int sig)
{
    (void)sig;
    signals = signals + 1;
    ws_server_shutdown(server);
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
                    "[--reuse-port] [--workers N]\n"
                    "               [--close-timeout MS] [--embed epoll]\n");
    exit(2);
}

/* What main() parsed, for each worker. */
struct options {
    struct ws_config cfg;
    struct ws_tls_config tls;
    int workers;
    int embed; /* --embed epoll */
};

/* One server until SIGINT or SIGTERM (and the shutdown it begins); the
   process's exit status. */
static int serve(void *arg)
{
    struct options *o = arg;
    struct ws_callbacks cb = {.on_open = on_open,
                              .on_message = on_message,
                              .on_close = on_close,
                              .on_error = on_error};
    struct ws_embed_epoll *ep = NULL;
    int rc = ws_server_create(&server, &o->cfg, &cb, NULL);

    if (rc == 0 && o->embed && (rc = ws_embed_epoll_attach(server, &ep)) < 0)
        fprintf(stderr, "ws_echo: --embed epoll: %s\n", ws_strerror(rc));
    else if (rc == 0 && (rc = ws_server_listen(server)) < 0)
        fprintf(stderr, "ws_echo: %s\n", ws_server_last_error(server));
    else if (rc < 0)
        fprintf(stderr, "ws_echo: %s\n", ws_server_last_error(NULL));
    if (rc < 0) {
        ws_server_destroy(server);
        ws_embed_epoll_free(ep);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ws_echo listening on %s port %d%s\n", o->cfg.host,
           ws_server_port(server), o->cfg.tls ? " (TLS)" : "");
    rc = ep ? ws_embed_epoll_run(ep, &signals) : ws_server_run(server);
    /* A late signal (a second one, passed on by the --workers supervisor)
       must not reach the server while or after it is freed. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    ws_server_destroy(server);
    ws_embed_epoll_free(ep); /* after destroy, which still tells it */
    return rc < 0 ? 1 : 0;
}

static void parse(int argc, char **argv, struct options *o)
{
    struct ws_config *cfg = &o->cfg;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            cfg->host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            cfg->port = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--no-deflate") == 0)
            cfg->permessage_deflate = 0;
        else if (strcmp(argv[i], "--deflate-context") == 0)
            cfg->deflate_server_context = cfg->deflate_client_context = 1;
        else if (strcmp(argv[i], "--reuse-port") == 0)
            cfg->reuse_port = 1; /* run several: the kernel spreads clients */
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            o->workers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--close-timeout") == 0 && i + 1 < argc)
            cfg->close_timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--embed") == 0 && i + 1 < argc)
            o->embed = strcmp(argv[++i], "epoll") == 0 ? 1 : -1;
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            o->tls.cert_file = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            o->tls.key_file = argv[++i];
        else
            usage();
    }
    if ((o->tls.cert_file == NULL) != (o->tls.key_file == NULL) ||
        o->workers < 1 || cfg->close_timeout_ms < 0 || o->embed < 0)
        usage();
    if (o->tls.cert_file)
        cfg->tls = &o->tls;
    /* Workers share one port, so it must be known, not picked. */
    if (o->workers > 1 && strcmp(cfg->port, "0") == 0)
        usage();
    if (o->workers > 1)
        cfg->reuse_port = 1;
}

int main(int argc, char **argv)
{
    /* An echo queues what the client has in flight, which a client that
       pipelines large messages can make far more than the library's 1 MiB
       default output cap. */
    struct options o = {.cfg = {.host = "127.0.0.1",
                                .port = "9001",
                                .permessage_deflate = 1,
                                .max_output_bytes = 64u << 20},
                        .workers = 1};

    parse(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_fd_limit();
    if (o.workers > 1)
        return ws_workers_run(o.workers, serve, &o, "ws_echo");
    return serve(&o);
}
