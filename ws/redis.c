/*
 * redis.c - the Redis bridge (ws/redis.h) on hiredis 0.14's async API:
 * two connections, since one in subscribe mode may send nothing but
 * (un)subscriptions: "pub" publishes, "sub" holds the subscriptions.
 * hiredis asks for read and write interest through its five hooks,
 * which map onto ws_server_watch*(); it has no timers, so connect
 * timeouts and retries are the server's timers. Everything goes through
 * the public API of ws/ws.h. A message on Redis is the instance id (16
 * hex digits), 't' or 'b' for its type, then the message.
 */
#include "ws/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ID_LEN 16
#define TAG_LEN (ID_LEN + 1)

struct link {
    struct ws_redis *r;
    const char *name; /* "pub" or "sub", for the log */
    redisAsyncContext *ac;
    int fd;
    int events; /* what is watched */
    bool up;
    int retry_ms;
    struct ws_server_timer *timer; /* connect timeout or next retry */
};

struct ws_redis {
    struct ws_server *srv;
    struct ws_redis_config cfg;
    char *host, *prefix; /* owned copies */
    size_t prefix_len;
    char id[ID_LEN + 1];
    struct link pub, sub;
    char **topics; /* the topics with local subscribers */
    size_t n_topics, cap_topics;
    struct ws_redis_stats st;
    bool closing;
    bool drop_reported; /* in this outage */
};

static void connect_link(struct link *l);
static void on_message(redisAsyncContext *ac, void *reply, void *arg);

static void report(struct ws_redis *r, enum ws_redis_event ev, const char *line)
{
    if (r->cfg.on_event)
        r->cfg.on_event(r, ev, line, r->cfg.arg);
}

/* --- hiredis's event hooks, on the server's loop --- */

static void set_events(struct link *l, int add, int del)
{
    int ev = (l->events | add) & ~del;

    if (ev != l->events && l->fd >= 0)
        ws_server_watch_events(l->r->srv, l->fd, ev);
    l->events = ev;
}

static void add_read(void *p)
{
    set_events(p, WS_WATCH_READ, 0);
}
static void del_read(void *p)
{
    set_events(p, 0, WS_WATCH_READ);
}
static void add_write(void *p)
{
    set_events(p, WS_WATCH_WRITE, 0);
}
static void del_write(void *p)
{
    set_events(p, 0, WS_WATCH_WRITE);
}

static void cleanup(void *p)
{
    struct link *l = p;

    if (l->fd >= 0)
        ws_server_unwatch(l->r->srv, l->fd);
    l->fd = -1;
    l->events = 0;
}

static void on_ready(struct ws_server *s, int fd, int events, void *arg)
{
    struct link *l = arg;

    (void)s;
    (void)fd;
    if ((events & WS_WATCH_READ) && l->ac)
        redisAsyncHandleRead(l->ac);
    if ((events & WS_WATCH_WRITE) && l->ac)
        redisAsyncHandleWrite(l->ac);
}

/* --- connecting, retrying --- */

static void stop_timer(struct link *l)
{
    if (l->timer)
        ws_server_timer_stop(l->timer);
    l->timer = NULL;
}

static void on_retry(struct ws_server_timer *t, void *arg)
{
    struct link *l = arg;

    (void)t;
    stop_timer(l);
    connect_link(l);
}

/* Try again after the backoff, doubled each time (with some jitter). */
static void retry_later(struct link *l)
{
    struct ws_redis *r = l->r;
    unsigned ms = (unsigned)l->retry_ms;

    if (r->closing)
        return;
    ms += (unsigned)rand() % (ms / 4 + 1);
    l->retry_ms = l->retry_ms * 2 > r->cfg.retry_max_ms ? r->cfg.retry_max_ms
                                                        : l->retry_ms * 2;
    stop_timer(l);
    ws_server_timer_start(r->srv, &l->timer, ms, 0, on_retry, l);
}

/* The link went down (or never came up): note it and try again. */
static void went_down(struct link *l, const char *why)
{
    struct ws_redis *r = l->r;
    bool was_up = r->st.up;

    l->ac = NULL; /* hiredis frees it */
    l->up = false;
    r->st.up = 0;
    if (!r->closing && was_up) {
        char line[256];

        snprintf(line, sizeof(line), "redis %s: %s; reconnecting", l->name,
                 why);
        report(r, WS_REDIS_DOWN, line);
    }
    retry_later(l);
}

static void on_connect_timeout(struct ws_server_timer *t, void *arg)
{
    struct link *l = arg;
    redisAsyncContext *ac = l->ac;

    (void)t;
    stop_timer(l);
    if (ac == NULL || l->up)
        return;
    l->ac = NULL;
    redisAsyncFree(ac); /* not connected: no disconnect callback */
    went_down(l, "connect timed out");
}

static void subscribe(struct ws_redis *r, const char *topic)
{
    if (r->sub.up)
        redisAsyncCommand(r->sub.ac, on_message, r, "SUBSCRIBE %s%s", r->prefix,
                          topic);
}

static void unsubscribe(struct ws_redis *r, const char *topic)
{
    if (r->sub.up)
        redisAsyncCommand(r->sub.ac, NULL, NULL, "UNSUBSCRIBE %s%s", r->prefix,
                          topic);
}

static void both_up(struct ws_redis *r)
{
    char line[256];

    r->st.up = 1;
    r->drop_reported = false;
    snprintf(line, sizeof(line), "redis %s:%d up", r->host, r->cfg.port);
    report(r, WS_REDIS_UP, line);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    struct ws_redis *r = l->r;

    stop_timer(l);
    if (status != REDIS_OK) {
        went_down(l, ac->errstr);
        return;
    }
    l->up = true;
    l->retry_ms = r->cfg.retry_min_ms;
    if (l == &r->sub)
        for (size_t i = 0; i < r->n_topics; i++)
            subscribe(r, r->topics[i]);
    if (r->pub.up && r->sub.up)
        both_up(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;

    (void)status;
    went_down(l, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_link(struct link *l)
{
    struct ws_redis *r = l->r;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->cfg.port);

    if (ac == NULL || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        retry_later(l);
        return;
    }
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    l->ac = ac;
    l->fd = ac->c.fd;
    l->events = WS_WATCH_WRITE; /* the connect completes on writable */
    if (ws_server_watch(r->srv, l->fd, l->events, on_ready, l) < 0) {
        l->fd = -1;
        l->ac = NULL;
        redisAsyncFree(ac);
        retry_later(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    ws_server_timer_start(r->srv, &l->timer,
                          (unsigned)r->cfg.connect_timeout_ms, 0,
                          on_connect_timeout, l);
}

/* --- messages --- */

/* A message on a subscribed channel: deliver it here, unless ours. */
static void on_message(redisAsyncContext *ac, void *reply, void *arg)
{
    struct ws_redis *r = arg;
    const redisReply *m = reply;
    const redisReply *ch, *body;

    (void)ac;
    if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
        m->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(m->element[0]->str, "message") != 0)
        return; /* a subscribe confirmation */
    ch = m->element[1];
    body = m->element[2];
    if (ch->len <= r->prefix_len || body->len < TAG_LEN ||
        memcmp(body->str, r->id, ID_LEN) == 0)
        return; /* not ours to deliver, or our own */
    r->st.received++;
    ws_server_deliver(r->srv, ch->str + r->prefix_len,
                      body->str[ID_LEN] == 'b' ? WS_BINARY : WS_TEXT,
                      body->str + TAG_LEN, body->len - TAG_LEN);
}

static void dropped(struct ws_redis *r, const char *topic)
{
    r->st.dropped++;
    if (!r->drop_reported) {
        char line[320];

        r->drop_reported = true;
        snprintf(line, sizeof(line), "redis: not forwarded (topic %.200s): %s",
                 topic,
                 r->pub.up ? "Redis is not taking writes"
                           : "Redis is not connected");
        report(r, WS_REDIS_DROPPED, line);
    }
}

/* More than max_pending_bytes wait to be written to Redis (stalled). */
static bool pub_backed_up(const struct ws_redis *r)
{
    return sdslen(r->pub.ac->c.obuf) > r->cfg.max_pending_bytes;
}

/* The observer: a local publish goes to Redis once. */
static void on_published(struct ws_server *s, const char *topic,
                         enum ws_msg_type type, const void *data, size_t len,
                         void *arg)
{
    struct ws_redis *r = arg;
    char *body;

    (void)s;
    if (!r->pub.up || pub_backed_up(r)) {
        dropped(r, topic);
        return;
    }
    body = malloc(TAG_LEN + len);
    if (body == NULL) {
        dropped(r, topic);
        return;
    }
    memcpy(body, r->id, ID_LEN);
    body[ID_LEN] = type == WS_BINARY ? 'b' : 't';
    memcpy(body + TAG_LEN, data, len);
    redisAsyncCommand(r->pub.ac, NULL, NULL, "PUBLISH %s%s %b", r->prefix,
                      topic, body, TAG_LEN + len);
    free(body);
    r->st.forwarded++;
    /* The observer runs before the local fan-out: written now, the
       message travels to the other instances while this one delivers it
       here, instead of after (hiredis would write at the next poll). A
       failed write goes down the usual disconnect path. */
    redisAsyncHandleWrite(r->pub.ac);
}

static void on_first(struct ws_server *s, const char *topic, void *arg)
{
    struct ws_redis *r = arg;
    char *copy = strdup(topic);

    (void)s;
    if (copy == NULL)
        return;
    if (r->n_topics == r->cap_topics) {
        size_t cap = r->cap_topics ? r->cap_topics * 2 : 16;
        char **t = realloc(r->topics, cap * sizeof(*t));

        if (t == NULL) {
            free(copy);
            return;
        }
        r->topics = t;
        r->cap_topics = cap;
    }
    r->topics[r->n_topics++] = copy;
    subscribe(r, topic);
}

static void on_last(struct ws_server *s, const char *topic, void *arg)
{
    struct ws_redis *r = arg;

    (void)s;
    for (size_t i = 0; i < r->n_topics; i++) {
        if (strcmp(r->topics[i], topic) == 0) {
            free(r->topics[i]);
            r->topics[i] = r->topics[--r->n_topics];
            unsubscribe(r, topic);
            return;
        }
    }
}

/* --- the application's commands --- */

struct command {
    struct ws_redis *r;
    ws_redis_reply_fn fn;
    void *arg;
};

static void on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
    struct command *cmd = arg;

    (void)ac;
    if (cmd->fn)
        cmd->fn(cmd->r, reply, cmd->arg);
    free(cmd);
}

int ws_redis_command(struct ws_redis *r, ws_redis_reply_fn fn, void *arg,
                     int argc, const char *const *argv, const size_t *argvlen)
{
    struct command *cmd;

    if (r == NULL || argc <= 0 || argv == NULL)
        return WS_EINVAL;
    if (!r->pub.up || r->closing)
        return WS_ECLOSED;
    if (pub_backed_up(r))
        return WS_EFULL;
    cmd = malloc(sizeof(*cmd));
    if (cmd == NULL)
        return WS_ENOMEM;
    *cmd = (struct command){.r = r, .fn = fn, .arg = arg};
    /* hiredis copies the words; it calls on_reply once, with NULL for a
       command still waiting when the connection goes. */
    if (redisAsyncCommandArgv(r->pub.ac, on_reply, cmd, argc,
                              (const char **)argv, argvlen) != REDIS_OK) {
        free(cmd);
        return WS_ENOMEM;
    }
    return 0;
}

static const struct ws_topic_observer observer = {
    .first = on_first, .last = on_last, .published = on_published};

/* --- the public calls --- */

static void make_id(char *id)
{
    unsigned char raw[ID_LEN / 2];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)rand();
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
}

int ws_redis_attach(struct ws_redis **out, struct ws_server *s,
                    const struct ws_redis_config *cfg)
{
    struct ws_redis *r;
    int rc;

    if (out == NULL || s == NULL)
        return WS_EINVAL;
    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return WS_ENOMEM;
    if (cfg)
        r->cfg = *cfg;
    r->host = strdup(r->cfg.host ? r->cfg.host : "127.0.0.1");
    r->prefix = strdup(r->cfg.prefix ? r->cfg.prefix : "ws:");
    if (r->cfg.port == 0)
        r->cfg.port = 6379;
    if (r->cfg.connect_timeout_ms <= 0)
        r->cfg.connect_timeout_ms = 2000;
    if (r->cfg.retry_min_ms <= 0)
        r->cfg.retry_min_ms = 100;
    if (r->cfg.retry_max_ms < r->cfg.retry_min_ms)
        r->cfg.retry_max_ms =
            r->cfg.retry_min_ms > 5000 ? r->cfg.retry_min_ms : 5000;
    if (r->cfg.max_pending_bytes == 0)
        r->cfg.max_pending_bytes = 8u << 20;
    if (r->host == NULL || r->prefix == NULL) {
        free(r->host);
        free(r->prefix);
        free(r);
        return WS_ENOMEM;
    }
    r->prefix_len = strlen(r->prefix);
    r->srv = s;
    make_id(r->id);
    r->pub = (struct link){
        .r = r, .name = "pub", .fd = -1, .retry_ms = r->cfg.retry_min_ms};
    r->sub = (struct link){
        .r = r, .name = "sub", .fd = -1, .retry_ms = r->cfg.retry_min_ms};
    rc = ws_server_observe_topics(s, &observer, r);
    if (rc < 0) {
        free(r->host);
        free(r->prefix);
        free(r);
        return rc;
    }
    connect_link(&r->pub);
    connect_link(&r->sub);
    *out = r;
    return 0;
}

void ws_redis_stats(const struct ws_redis *r, struct ws_redis_stats *st)
{
    *st = r->st;
}

const char *ws_redis_id(const struct ws_redis *r)
{
    return r->id;
}

static void close_link(struct link *l)
{
    redisAsyncContext *ac = l->ac;

    stop_timer(l);
    l->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* on_disconnect sees closing: no retry */
}

void ws_redis_detach(struct ws_redis *r)
{
    if (r == NULL)
        return;
    r->closing = true;
    ws_server_observe_topics(r->srv, NULL, NULL);
    close_link(&r->pub);
    close_link(&r->sub);
    for (size_t i = 0; i < r->n_topics; i++)
        free(r->topics[i]);
    free(r->topics);
    free(r->host);
    free(r->prefix);
    free(r);
}
