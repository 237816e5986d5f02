/*
 * post.c - the hand-off from other threads to the loop thread: a FIFO of
 * posted work under one mutex, a self-pipe that wakes the loop, and the
 * map of open connections by id. Other threads only ever touch what the
 * mutex guards; everything else here runs on the loop thread. Posting never
 * waits for a client, only for the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ws/conn.h"

enum post_kind { POST_SEND, POST_BROADCAST, POST_PUBLISH, POST_CALL };

struct ws_post_item {
    struct ws_post_item *next;
    enum post_kind kind;
    enum ws_msg_type type;
    uint64_t id;
    void (*fn)(struct ws_server *s, void *arg);
    void *arg;
    size_t len;
    size_t topic_len; /* POST_PUBLISH: data holds the topic and a NUL, then
                         the message (len counts all of it) */
    uint8_t data[];   /* the copied message */
};

static void on_wake(struct ws_loop *loop, int fd, int events, void *arg);

/* s->ids reads each connection's id from the connection itself. */
_Static_assert(sizeof(((struct ws_conn *)0)->id) == sizeof(uint64_t),
               "ws_idmap reads a uint64_t id");

int ws_post_init(struct ws_server *s)
{
    int rc;

    ws_idmap_init(&s->ids, offsetof(struct ws_conn, id));
    if (pthread_mutex_init(&s->post_lock, NULL) != 0)
        return WS_ESYS;
    if (pipe2(s->wake_fd, O_NONBLOCK | O_CLOEXEC) < 0) {
        pthread_mutex_destroy(&s->post_lock);
        return WS_ESYS;
    }
    rc = ws_loop_watch(s->loop, s->wake_fd[0], WS_IO_READ, on_wake, s);
    if (rc < 0) {
        ws_net_close(s->wake_fd[0]);
        ws_net_close(s->wake_fd[1]);
        pthread_mutex_destroy(&s->post_lock);
        return rc;
    }
    s->post_ready = true;
    return 0;
}

void ws_post_free(struct ws_server *s)
{
    struct ws_post_item *it = s->post_head;

    if (!s->post_ready)
        return;
    while (it) {
        struct ws_post_item *next = it->next;

        free(it);
        it = next;
    }
    ws_loop_unwatch(s->loop, s->wake_fd[0]);
    ws_net_close(s->wake_fd[0]);
    ws_net_close(s->wake_fd[1]);
    pthread_mutex_destroy(&s->post_lock);
    ws_idmap_free(&s->ids);
}

struct ws_conn *ws_server_find(struct ws_server *s, uint64_t id)
{
    /* The loop thread is the only writer of the map, so its own reads
       need no lock. */
    struct ws_conn *c = s ? ws_idmap_get(&s->ids, id) : NULL;

    return c && c->phase == WS_CONN_WS && !c->queued_kill ? c : NULL;
}

/* What an item counts against max_posted_bytes: its message, or for a
   posted call (no message) its own size, so calls are bounded too. */
static size_t item_cost(const struct ws_post_item *it)
{
    return it->kind == POST_CALL ? sizeof(*it) : it->len;
}

/* Allocate an item with a copy of data. */
static struct ws_post_item *new_item(enum post_kind kind, const void *data,
                                     size_t len)
{
    struct ws_post_item *it;

    if (len > SIZE_MAX - sizeof(*it))
        return NULL;
    it = malloc(sizeof(*it) + len);
    if (it == NULL)
        return NULL;
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->len = len;
    if (len > 0 && data != NULL)
        memcpy(it->data, data, len);
    return it;
}

/* Under post_lock: what the connection named id has waiting, its own
   queue (as of its last write) and what was posted to it; WS_ECLOSED
   when it is closing or gone. *c gets it, or NULL. */
static ssize_t waiting_locked(struct ws_server *s, uint64_t id,
                              struct ws_conn **c)
{
    uint32_t view, pending;

    *c = ws_idmap_get(&s->ids, id);
    if (*c == NULL)
        return WS_ECLOSED;
    view = atomic_load_explicit(&(*c)->post_view, memory_order_relaxed);
    pending = atomic_load_explicit(&(*c)->post_pending, memory_order_relaxed);
    if (view == WS_CONN_GONE)
        return WS_ECLOSED;
    return (ssize_t)view + (ssize_t)pending;
}

/*
 * A send to one connection may be posted while it is open and what waits
 * for it is within its output cap: the producer learns the back-pressure
 * (WS_EFULL; the connection is not closed for it) instead of the loop
 * failing the connection with 1008 later. Under post_lock; *c gets the
 * connection.
 */
static int send_allowed(struct ws_server *s, uint64_t id, struct ws_conn **c)
{
    ssize_t waiting = waiting_locked(s, id, c);

    if (waiting < 0)
        return (int)waiting;
    return (size_t)waiting > s->cfg.max_output_bytes ? WS_EFULL : 0;
}

/*
 * Append it under the lock and wake the loop once per batch. A send to
 * one connection is checked against it under the same lock, and counted
 * as waiting for it. Frees it on failure.
 */
static int enqueue(struct ws_server *s, struct ws_post_item *it, bool need_id)
{
    struct ws_conn *c = NULL;
    int rc = 0;

    pthread_mutex_lock(&s->post_lock);
    if (need_id)
        rc = send_allowed(s, it->id, &c);
    if (rc == 0 && item_cost(it) > s->cfg.max_posted_bytes - s->posted_bytes)
        rc = WS_EFULL;
    /* Only the loop lowers the count, so it cannot pass 32 bits here. */
    if (rc == 0 && c != NULL &&
        it->len > UINT32_MAX - atomic_load_explicit(&c->post_pending,
                                                    memory_order_relaxed))
        rc = WS_EFULL;
    if (rc == 0 && c != NULL)
        atomic_fetch_add_explicit(&c->post_pending, (uint32_t)it->len,
                                  memory_order_relaxed);
    if (rc == 0) {
        *(s->post_tail ? &s->post_tail->next : &s->post_head) = it;
        s->post_tail = it;
        s->posted_bytes += item_cost(it);
        if (!s->wake_pending) {
            ssize_t n;

            /* A full pipe already guarantees a wake-up. */
            s->wake_pending = true;
            n = write(s->wake_fd[1], "", 1);
            (void)n;
        }
    }
    pthread_mutex_unlock(&s->post_lock);
    if (rc < 0)
        free(it);
    return rc;
}

int ws_message_check(enum ws_msg_type type, const void *data, size_t len)
{
    if (type != WS_TEXT && type != WS_BINARY)
        return WS_EINVAL;
    if (len > 0 && data == NULL)
        return WS_EINVAL;
    if (type == WS_TEXT && !ws_utf8_valid(data, len))
        return WS_EINVAL;
    return 0;
}

int ws_server_post_send(struct ws_server *s, uint64_t id, enum ws_msg_type type,
                        const void *data, size_t len)
{
    struct ws_post_item *it;
    int rc = s ? ws_message_check(type, data, len) : WS_EINVAL;

    if (rc < 0)
        return rc;
    it = new_item(POST_SEND, data, len);
    if (it == NULL)
        return WS_ENOMEM;
    it->id = id;
    it->type = type;
    return enqueue(s, it, true);
}

ssize_t ws_server_conn_buffered(struct ws_server *s, uint64_t id)
{
    struct ws_conn *c;
    ssize_t waiting;

    if (s == NULL)
        return WS_EINVAL;
    pthread_mutex_lock(&s->post_lock);
    waiting = waiting_locked(s, id, &c);
    pthread_mutex_unlock(&s->post_lock);
    return waiting;
}

int ws_server_post_broadcast(struct ws_server *s, enum ws_msg_type type,
                             const void *data, size_t len)
{
    struct ws_post_item *it;
    int rc = s ? ws_message_check(type, data, len) : WS_EINVAL;

    if (rc < 0)
        return rc;
    it = new_item(POST_BROADCAST, data, len);
    if (it == NULL)
        return WS_ENOMEM;
    it->type = type;
    return enqueue(s, it, false);
}

int ws_server_post_publish(struct ws_server *s, const char *topic,
                           enum ws_msg_type type, const void *data, size_t len)
{
    struct ws_post_item *it;
    size_t tlen;
    int rc = s && topic ? ws_message_check(type, data, len) : WS_EINVAL;

    if (rc < 0)
        return rc;
    tlen = strlen(topic);
    if (len > SIZE_MAX - tlen - 1)
        return WS_ENOMEM;
    it = new_item(POST_PUBLISH, NULL, tlen + 1 + len);
    if (it == NULL)
        return WS_ENOMEM;
    memcpy(it->data, topic, tlen + 1);
    if (len > 0)
        memcpy(it->data + tlen + 1, data, len);
    it->topic_len = tlen;
    it->type = type;
    return enqueue(s, it, false);
}

int ws_server_post(struct ws_server *s,
                   void (*fn)(struct ws_server *s, void *arg), void *arg)
{
    struct ws_post_item *it;

    if (s == NULL || fn == NULL)
        return WS_EINVAL;
    it = new_item(POST_CALL, NULL, 0);
    if (it == NULL)
        return WS_ENOMEM;
    it->fn = fn;
    it->arg = arg;
    return enqueue(s, it, false);
}

/* Do one posted item on the loop thread. */
static void run_item(struct ws_server *s, const struct ws_post_item *it)
{
    struct ws_conn *c;

    switch (it->kind) {
    case POST_SEND:
        /* Still in the map while it closes: its count goes down as the
           posts it no longer takes are dropped. */
        c = ws_idmap_get(&s->ids, it->id);
        if (c != NULL)
            atomic_fetch_sub_explicit(&c->post_pending, (uint32_t)it->len,
                                      memory_order_relaxed);
        c = ws_server_find(s, it->id);
        if (c != NULL)
            ws_conn_send(c, it->type, it->data, it->len);
        break;
    case POST_BROADCAST:
        ws_server_broadcast(s, it->type, it->data, it->len);
        break;
    case POST_PUBLISH:
        ws_server_publish(s, (const char *)it->data, it->type,
                          it->data + it->topic_len + 1,
                          it->len - it->topic_len - 1);
        break;
    case POST_CALL:
        WS_CALLBACK(s, it->fn(s, it->arg));
        break;
    }
}

/* The wake pipe is readable: take the whole queue and run it in order. */
static void on_wake(struct ws_loop *loop, int fd, int events, void *arg)
{
    char sink[64];

    (void)loop;
    (void)events;
    while (read(fd, sink, sizeof(sink)) > 0)
        ;
    ws_post_run(arg);
}

void ws_post_run(struct ws_server *s)
{
    struct ws_post_item *it;

    pthread_mutex_lock(&s->post_lock);
    it = s->post_head;
    s->post_head = s->post_tail = NULL;
    s->posted_bytes = 0;
    s->wake_pending = false;
    pthread_mutex_unlock(&s->post_lock);
    while (it) {
        struct ws_post_item *next = it->next;

        run_item(s, it);
        free(it);
        it = next;
        ws_conn_settle(s); /* write each as it comes: keep queues low */
    }
}
