/*
 * redis.h - the Redis bridge, an optional module (libws_redis, on
 * Debian's libhiredis-dev): it connects a server's topics to Redis
 * pub/sub channels, so that a room spans every instance attached to the
 * same Redis. A local publish is delivered locally at once and published
 * to Redis once, tagged with this instance's id; a message from Redis is
 * delivered to the local subscribers, and an instance ignores its own.
 * The instance subscribes to a topic's channel when the topic gets its
 * first local subscriber and unsubscribes when the last one leaves.
 *
 * Redis slow, down or restarted: local delivery goes on; the bridge
 * reconnects with backoff (100 ms doubling to 5 s by default) and
 * subscribes again; the loop never waits for Redis.
 *
 * What is lost: Redis pub/sub delivers at most once. A message published
 * while the bridge is not connected, or while more than
 * max_pending_bytes wait to be written to Redis (a stalled Redis), is
 * not forwarded (counted as dropped, reported once per outage); messages
 * other instances publish while this one is disconnected, or before its
 * subscription is confirmed, never reach it.
 *
 * Beside the bridge, ws_redis_command() sends the application's own
 * commands (keys, lists, scripts) on the same connection, so that a
 * program that shares more than messages through Redis needs no second
 * client.
 *
 * Thread: the loop thread, like the rest of the library.
 */
#ifndef WS_REDIS_H
#define WS_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "ws/ws.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ws_redis;

enum ws_redis_event {
    WS_REDIS_UP,     /* both connections are up (again) */
    WS_REDIS_DOWN,   /* a connection failed or closed; retrying */
    WS_REDIS_DROPPED /* the first message not forwarded in an outage */
};

struct ws_redis_config {
    const char *host;         /* default "127.0.0.1" */
    int port;                 /* default 6379 */
    const char *prefix;       /* channel = prefix + topic; default "ws:" */
    int connect_timeout_ms;   /* default 2000 */
    int retry_min_ms;         /* first retry; default 100 */
    int retry_max_ms;         /* the longest; default 5000 */
    size_t max_pending_bytes; /* unwritten forwards; default 8 MiB */
    /* Told of the events above, with a line of detail; may be NULL. */
    void (*on_event)(struct ws_redis *r, enum ws_redis_event ev,
                     const char *detail, void *arg);
    void *arg;
};

struct ws_redis_stats {
    uint64_t forwarded; /* local publishes sent to Redis */
    uint64_t received;  /* messages from other instances, delivered */
    uint64_t dropped;   /* local publishes not forwarded */
    int up;             /* 1 while both connections are up */
};

/*
 * Attach a bridge to s (one per server), copying cfg (NULL: defaults);
 * it connects in the background. Returns 0, WS_EINVAL, WS_EBUSY (s
 * observes its topics already) or WS_ENOMEM.
 */
int ws_redis_attach(struct ws_redis **out, struct ws_server *s,
                    const struct ws_redis_config *cfg);

/* The counters, as now. */
void ws_redis_stats(const struct ws_redis *r, struct ws_redis_stats *st);

/* This instance's id (16 hex digits), which tags what it publishes. */
const char *ws_redis_id(const struct ws_redis *r);

struct redisReply; /* hiredis's: <hiredis/hiredis.h> reads it */

/* The answer to ws_redis_command(): reply is NULL when the command did
   not complete (Redis went away, or the bridge was detached: whether
   Redis ran it is then unknown). hiredis frees reply after the call. */
typedef void (*ws_redis_reply_fn)(struct ws_redis *r, struct redisReply *reply,
                                  void *arg);

/*
 * Send one command, argc words of argv (argvlen[i] bytes each, binary
 * safe; argvlen NULL: C strings), on the connection that publishes, so
 * it runs after every publish and command made before it. fn (may be
 * NULL) runs once on the loop thread, with the reply or NULL as above,
 * and only if this returns 0; it may run inside ws_redis_detach().
 * Returns 0, WS_ECLOSED (Redis not connected: nothing sent), WS_EFULL
 * (more than max_pending_bytes wait to be written), WS_EINVAL or
 * WS_ENOMEM.
 */
int ws_redis_command(struct ws_redis *r, ws_redis_reply_fn fn, void *arg,
                     int argc, const char *const *argv, const size_t *argvlen);

/* Disconnect and free the bridge; before ws_server_destroy(). */
void ws_redis_detach(struct ws_redis *r);

#ifdef __cplusplus
}
#endif

#endif
