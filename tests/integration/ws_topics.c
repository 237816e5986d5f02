/*
 * ws_topics.c - a pub/sub test server on the public API, for
 * test_topics.py. Text commands, each answered (when it says so) with a
 * text reply to the sender:
 *   sub T / unsub T        reply "ok N" (the call's result) or "err NAME"
 *   pub T MSG              ws_conn_publish: every subscriber but the sender
 *   all T MSG              ws_server_publish: the sender too, if subscribed
 *   pubclose T MSG         publish, then close every other subscriber of T
 *                          and unsubscribe the sender, inside this callback
 *   count T                reply "count N" (ws_server_subscribers)
 *   topics                 reply "topics A B ..." (the sender's)
 * Binary messages "T\0payload" are published to T as binary.
 * --post-threads N starts N threads that ws_server_post_publish "tick K"
 * to topic "ticks" every millisecond until the server stops. --redis
 * HOST:PORT attaches the Redis bridge (ws/redis.h): its events are
 * printed as "redis up|down|dropped DETAIL", and "stats" answers
 * "stats FORWARDED RECEIVED DROPPED UP".
 *   ws_topics [--port P] [--max-topics N] [--max-topic-bytes N]
 *             [--max-output B] [--max-connections N] [--deflate]
 *             [--deflate-context] [--post-threads N] [--redis HOST:PORT]
 * Prints "listening on port N".
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ws/redis.h"
#include "ws/ws.h"

#define MAX_THREADS 8

static struct ws_server *server;
static struct ws_redis *bridge;
static const char *redis_at; /* --redis HOST:PORT */
static atomic_bool stopping;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, true);
    ws_server_stop(server);
}

#define MAX_OPEN 16384

/* The open connections, for pubclose (each knows its slot). */
static struct ws_conn *open_conns[MAX_OPEN];
static size_t n_open;

static void on_open(struct ws_conn *c, void *ud)
{
    (void)ud;
    if (n_open < MAX_OPEN) {
        ws_conn_set_user_data(c, (void *)(uintptr_t)(n_open + 1));
        open_conns[n_open++] = c;
    }
}

static void on_close(struct ws_conn *c, int code, const char *reason,
                     size_t len, void *ud)
{
    size_t slot = (size_t)(uintptr_t)ws_conn_get_user_data(c);

    (void)code, (void)reason, (void)len, (void)ud;
    if (slot == 0)
        return;
    open_conns[slot - 1] = open_conns[--n_open];
    ws_conn_set_user_data(open_conns[slot - 1], (void *)(uintptr_t)slot);
}

/* Answer "WORD N" with the call's result, or "err NAME". */
static void reply(struct ws_conn *c, const char *word, int rc)
{
    char text[64];

    if (rc < 0)
        snprintf(text, sizeof(text), "err %s", ws_errname(rc));
    else
        snprintf(text, sizeof(text), "%s %d", word, rc);
    ws_conn_send_text(c, text);
}

/* "pubclose": publish, then close the other subscribers and leave. */
static void publish_and_close(struct ws_conn *c, const char *topic,
                              const char *msg, size_t len)
{
    ws_conn_publish(c, topic, WS_TEXT, msg, len);
    /* Closing does not remove them from open_conns until on_close. */
    for (size_t i = 0; i < n_open; i++)
        if (open_conns[i] != c && ws_conn_subscribed(open_conns[i], topic) == 1)
            ws_conn_close(open_conns[i], WS_CLOSE_NORMAL, "bye");
    reply(c, "ok", ws_conn_unsubscribe(c, topic));
}

static void list_topics(struct ws_conn *c)
{
    char text[4096] = "topics";
    size_t used = strlen(text);

    for (size_t i = 0; i < ws_conn_topic_count(c); i++) {
        int n = snprintf(text + used, sizeof(text) - used, " %s",
                         ws_conn_topic(c, i));

        if (n < 0 || (size_t)n >= sizeof(text) - used)
            break;
        used += (size_t)n;
    }
    ws_conn_send_text(c, text);
}

static void send_stats(struct ws_conn *c)
{
    struct ws_redis_stats st;
    char text[128];

    ws_redis_stats(bridge, &st);
    snprintf(text, sizeof(text), "stats %llu %llu %llu %d",
             (unsigned long long)st.forwarded, (unsigned long long)st.received,
             (unsigned long long)st.dropped, st.up);
    ws_conn_send_text(c, text);
}

static void on_redis(struct ws_redis *r, enum ws_redis_event ev,
                     const char *detail, void *arg)
{
    static const char *const names[] = {"up", "down", "dropped"};

    (void)r;
    (void)arg;
    printf("redis %s %s\n", names[ev], detail);
}

/* Attach the bridge to "HOST:PORT"; 0 or a code. */
static int attach_redis(void)
{
    char host[256];
    int port;
    struct ws_redis_config rc = {.on_event = on_redis, .retry_max_ms = 1000};

    if (sscanf(redis_at, "%255[^:]:%d", host, &port) != 2)
        return WS_EINVAL;
    rc.host = host;
    rc.port = port;
    return ws_redis_attach(&bridge, server, &rc);
}

static void on_text(struct ws_conn *c, const char *text, size_t len)
{
    char topic[1024];
    int at = 0;

    if (sscanf(text, "sub %1023s", topic) == 1)
        reply(c, "ok", ws_conn_subscribe(c, topic));
    else if (sscanf(text, "unsub %1023s", topic) == 1)
        reply(c, "ok", ws_conn_unsubscribe(c, topic));
    else if (sscanf(text, "count %1023s", topic) == 1)
        reply(c, "count", (int)ws_server_subscribers(ws_conn_server(c), topic));
    else if (strcmp(text, "topics") == 0)
        list_topics(c);
    else if (strcmp(text, "stats") == 0 && bridge)
        send_stats(c);
    else if (sscanf(text, "pubclose %1023s %n", topic, &at) == 1 && at > 0)
        publish_and_close(c, topic, text + at, len - (size_t)at);
    else if (sscanf(text, "pub %1023s %n", topic, &at) == 1 && at > 0)
        ws_conn_publish(c, topic, WS_TEXT, text + at, len - (size_t)at);
    else if (sscanf(text, "all %1023s %n", topic, &at) == 1 && at > 0)
        ws_server_publish(ws_conn_server(c), topic, WS_TEXT, text + at,
                          len - (size_t)at);
}

static void on_message(struct ws_conn *c, enum ws_msg_type type,
                       const void *data, size_t len, void *ud)
{
    const char *nul;

    (void)ud;
    if (type == WS_TEXT) {
        on_text(c, data, len);
        return;
    }
    nul = memchr(data, '\0', len);
    if (nul)
        ws_conn_publish(c, data, WS_BINARY, nul + 1,
                        len - (size_t)(nul + 1 - (const char *)data));
}

/* A producer thread: a tick to "ticks" every millisecond. */
static void *ticker(void *arg)
{
    const struct timespec ms = {0, 1000000};
    char text[64];
    long id = (long)(intptr_t)arg;

    for (long k = 0; !atomic_load(&stopping); k++) {
        int n = snprintf(text, sizeof(text), "tick %ld %ld", id, k);

        ws_server_post_publish(server, "ticks", WS_TEXT, text, (size_t)n);
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static int parse(int argc, char **argv, struct ws_config *cfg)
{
    int threads = 0;

    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        size_t n = strtoul(v, NULL, 10);

        if (strcmp(k, "--deflate") == 0) {
            cfg->permessage_deflate = 1;
            continue;
        }
        if (strcmp(k, "--deflate-context") == 0) {
            cfg->permessage_deflate = 1;
            cfg->deflate_server_context = 1;
            continue;
        }
        i++;
        if (strcmp(k, "--port") == 0)
            cfg->port = v;
        else if (strcmp(k, "--max-topics") == 0)
            cfg->max_topics_per_conn = n;
        else if (strcmp(k, "--max-topic-bytes") == 0)
            cfg->max_topic_bytes = n;
        else if (strcmp(k, "--max-output") == 0)
            cfg->max_output_bytes = n;
        else if (strcmp(k, "--max-connections") == 0)
            cfg->max_connections = n;
        else if (strcmp(k, "--post-threads") == 0)
            threads = (int)n;
        else if (strcmp(k, "--redis") == 0)
            redis_at = v;
        else
            exit(2);
    }
    return threads < MAX_THREADS ? threads : MAX_THREADS;
}

int main(int argc, char **argv)
{
    struct ws_config cfg = {.host = "127.0.0.1", .port = "0"};
    struct ws_callbacks cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close};
    pthread_t threads[MAX_THREADS];
    int n_threads = parse(argc, argv, &cfg), started = 0, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = ws_server_create(&server, &cfg, &cb, NULL);
    if (rc == 0)
        rc = ws_server_listen(server);
    if (rc == 0 && redis_at)
        rc = attach_redis();
    if (rc < 0) {
        fprintf(stderr, "ws_topics: %s\n",
                server ? ws_server_last_error(server) : ws_strerror(rc));
        ws_server_destroy(server);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (int i = 0; i < n_threads; i++)
        if (pthread_create(&threads[started], NULL, ticker,
                           (void *)(intptr_t)i) == 0)
            started++;
    printf("listening on port %d\n", ws_server_port(server));
    rc = ws_server_run(server);
    atomic_store(&stopping, true);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    ws_redis_detach(bridge);
    ws_server_destroy(server);
    return rc < 0 ? 1 : 0;
}
