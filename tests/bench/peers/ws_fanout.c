/*
 * ws_fanout.c - the benchmark's fan-out server on the library: every
 * connection joins topic "room" when it opens, and every text or binary
 * message a client sends is published to "room" with ws_server_publish(),
 * the sender included, so that the library frames it once and queues it on
 * every subscriber by reference. Written only against ws/ws.h, and with
 * --redis against ws/redis.h: the room then spans every instance attached
 * to that Redis (a publish goes to the local subscribers and once to
 * Redis; what other instances publish comes back from it).
 *   ws_fanout [--host H] [--port P] [--redis HOST:PORT]
 *   (default 127.0.0.1:9004, no Redis)
 * With --redis it prints "redis up" when the bridge is connected, and its
 * counters when it stops.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ws/redis.h"
#include "ws/ws.h"

#define ROOM "room"

static struct ws_server *server;

static void on_signal(int sig)
{
    (void)sig;
    ws_server_stop(server); /* async-signal-safe */
}

static void on_open(struct ws_conn *c, void *ud)
{
    (void)ud;
    /* Before the client can read the 101, so that a message it sends
       afterwards always finds it subscribed. */
    if (ws_conn_subscribe(c, ROOM) < 0)
        ws_conn_close(c, 1011, "subscribe failed");
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    (void)c;
    (void)ud;
    ws_server_publish(server, ROOM, type, data, len);
}

static void on_error(struct ws_conn *c, int err, const char *detail, void *ud)
{
    (void)ud;
    (void)c;
    fprintf(stderr, "ws_fanout: %s (%s)\n", detail, ws_errname(err));
}

/* The bridge's events, as lines the benchmark can wait for and read. */
static void on_redis(struct ws_redis *r, enum ws_redis_event ev,
                     const char *detail, void *arg)
{
    (void)r;
    (void)arg;
    printf("redis %s: %s\n",
           ev == WS_REDIS_UP     ? "up"
           : ev == WS_REDIS_DOWN ? "down"
                                 : "dropped",
           detail ? detail : "");
    fflush(stdout);
}

/* Split "HOST:PORT" (the last colon) into cfg; 0, or -1 when it is not. */
static int parse_redis(char *arg, struct ws_redis_config *cfg)
{
    char *colon = strrchr(arg, ':');
    char *end;
    long port;

    if (colon == NULL || colon == arg)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return -1;
    *colon = '\0';
    cfg->host = arg;
    cfg->port = (int)port;
    return 0;
}

/* Detach the bridge, after printing what it forwarded, received and
   dropped. */
static void redis_done(struct ws_redis *r)
{
    struct ws_redis_stats st;

    if (r == NULL)
        return;
    ws_redis_stats(r, &st);
    printf("redis forwarded %llu received %llu dropped %llu\n",
           (unsigned long long)st.forwarded, (unsigned long long)st.received,
           (unsigned long long)st.dropped);
    fflush(stdout);
    ws_redis_detach(r);
}

/* The soft descriptor limit (often 1024) up to the hard one: the 10 000
   subscriber shapes need more. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    /* The descriptor limit is the real bound on connections; this one
       only must not be lower. No compression: the load generator offers
       none, and the peers run without it. */
    struct ws_config cfg = {
        .host = "127.0.0.1", .port = "9004", .max_connections = 1000000};
    struct ws_callbacks cb = {
        .on_open = on_open, .on_message = on_message, .on_error = on_error};
    struct ws_redis_config rcfg = {.on_event = on_redis};
    struct ws_redis *redis = NULL;
    char *redis_at = NULL;
    int rc;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            cfg.host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            cfg.port = argv[i + 1];
        else if (strcmp(argv[i], "--redis") == 0)
            redis_at = argv[i + 1];
    }
    if (redis_at && parse_redis(redis_at, &rcfg) < 0) {
        fprintf(stderr, "ws_fanout: --redis wants HOST:PORT\n");
        return 2;
    }
    raise_fd_limit();
    rc = ws_server_create(&server, &cfg, &cb, NULL);
    if (rc == 0 && (rc = ws_server_listen(server)) < 0)
        fprintf(stderr, "ws_fanout: %s\n", ws_server_last_error(server));
    else if (rc < 0)
        fprintf(stderr, "ws_fanout: %s\n", ws_strerror(rc));
    else if (redis_at && (rc = ws_redis_attach(&redis, server, &rcfg)) < 0)
        fprintf(stderr, "ws_fanout: redis: %s\n", ws_strerror(rc));
    if (rc < 0) {
        ws_server_destroy(server);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ws_fanout listening on %s port %d\n", cfg.host,
           ws_server_port(server));
    fflush(stdout);
    rc = ws_server_run(server);
    redis_done(redis);
    ws_server_destroy(server);
    return rc < 0 ? 1 : 0;
}
