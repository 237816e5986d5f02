/*
 * publish.c - topics for the application (subscribe, unsubscribe, list)
 * and fan-out: ws_server_publish() to a topic's subscribers and
 * ws_server_broadcast() to every open connection share one machinery that
 * builds each frame once and queues it on every receiver by reference
 * (net/outq.h). The plain frame is made for the first receiver that sends
 * uncompressed, the compressed one for the first that uses each shared
 * compressor (permessage-deflate without server context takeover, RFC
 * 7692 §7.1.1.1: the same input always gives the same bytes); only a
 * connection that keeps its own compression context gets a frame of its
 * own. One in the middle of a message sent in pieces is skipped, as
 * ws_conn_send() would refuse it (WS_ESTATE).
 */
#include <string.h>

#include "ws/conn.h"

#define MAX_VARIANTS 8 /* compressed forms per fan-out (window sizes) */

/* A compressed form of the message, for one shared compressor. */
struct variant {
    const void *key; /* ws_deflate_share_key() */
    struct ws_shared *frame;
};

/* One message on its way to many connections. */
struct fanout {
    struct ws_server *srv;
    uint8_t opcode;
    const void *data;
    size_t len;
    struct ws_shared *plain; /* made on first use */
    struct variant z[MAX_VARIANTS];
    int n_z;
};

static void fanout_begin(struct fanout *f, struct ws_server *s,
                         enum ws_msg_type type, const void *data, size_t len)
{
    *f = (struct fanout){
        .srv = s, .opcode = (uint8_t)type, .data = data, .len = len};
}

static void fanout_end(struct fanout *f)
{
    ws_shared_release(f->plain);
    for (int i = 0; i < f->n_z; i++)
        ws_shared_release(f->z[i].frame);
}

/* A frame of the payload p[0..n), RSV1 set when it is compressed. */
static struct ws_shared *make_frame(uint8_t opcode, uint8_t rsv, const void *p,
                                    size_t n)
{
    size_t hlen = ws_frame_header_size(n, false);
    struct ws_shared *b = n <= SIZE_MAX - hlen ? ws_shared_new(hlen + n) : NULL;

    if (b == NULL)
        return NULL;
    ws_frame_header_write_ext(b->data, hlen, true, rsv, opcode, n, NULL);
    if (n > 0)
        memcpy(b->data + hlen, p, n);
    return b;
}

/* The compressed frame for c's shared compressor key, made once. */
static struct ws_shared *compressed_for(struct fanout *f, struct ws_conn *c,
                                        const void *key)
{
    const uint8_t *z;
    size_t zlen;
    struct ws_shared *b;

    for (int i = 0; i < f->n_z; i++)
        if (f->z[i].key == key)
            return f->z[i].frame;
    if (f->n_z == MAX_VARIANTS ||
        ws_deflate_tx(c->session.z, f->data, f->len, WS_DEFLATE_WHOLE, SIZE_MAX,
                      &z, &zlen) < 0)
        return NULL;
    b = make_frame(f->opcode, WS_FRAME_RSV1, z, zlen);
    ws_deflate_tx_done(c->session.z);
    if (b != NULL)
        f->z[f->n_z++] = (struct variant){key, b};
    return b;
}

/* Queue the message on c: the shared frame its session calls for, or, if
   none can serve it, a send of its own. Returns 0 or a send's error. */
static int fanout_send(struct fanout *f, struct ws_conn *c)
{
    struct ws_session *ss = &c->session;
    struct ws_shared *frame;

    if (c->phase != WS_CONN_WS || c->queued_kill)
        return WS_ECLOSED;
    if (ss->out_open)
        return WS_ESTATE; /* §5.4: not inside its message in pieces */
    if (ws_session_compresses(ss, f->opcode, f->len)) {
        const void *key = ws_deflate_share_key(ss->z, f->len);

        if (key == NULL) /* its own context: its own bytes */
            return ws_conn_send_checked(c, (enum ws_msg_type)f->opcode, f->data,
                                        f->len);
        frame = compressed_for(f, c, key);
    } else {
        if (f->plain == NULL)
            f->plain = make_frame(f->opcode, 0, f->data, f->len);
        frame = f->plain;
    }
    if (frame == NULL)
        return WS_ENOMEM;
    return ws_conn_send_shared(c, f->opcode, frame);
}

/* Whether a message may be fanned out: a data type, valid text (checked
   once here for every receiver), not above max_message_bytes. */
static int check_message(const struct ws_server *s, enum ws_msg_type type,
                         const void *data, size_t len)
{
    int rc = ws_message_check(type, data, len);

    if (rc == 0 && len > s->cfg.max_message_bytes)
        rc = WS_ETOOBIG;
    return rc;
}

int ws_server_broadcast(struct ws_server *s, enum ws_msg_type type,
                        const void *data, size_t len)
{
    struct fanout f;
    struct ws_conn *c;
    int sent = 0, rc;

    if (s == NULL)
        return WS_EINVAL;
    if ((rc = check_message(s, type, data, len)) < 0)
        return rc;
    fanout_begin(&f, s, type, data, len);
    for (size_t i = 0; (c = ws_conn_walk(s, &i)) != NULL;)
        if (c->phase == WS_CONN_WS && fanout_send(&f, c) == 0)
            sent++;
    fanout_end(&f);
    return sent;
}

/* Check a topic name; its length in *len. */
static int topic_name(const struct ws_server *s, const char *topic, size_t *len)
{
    if (topic == NULL || *topic == '\0')
        return WS_EINVAL;
    *len = strlen(topic);
    return *len > s->cfg.max_topic_bytes ? WS_ETOOBIG : 0;
}

/* Publish to topic's subscribers but skip (NULL: none); tell the
   observer, if any and if tell. */
static int publish(struct ws_server *s, const struct ws_conn *skip, bool tell,
                   const char *topic, enum ws_msg_type type, const void *data,
                   size_t len)
{
    const struct ws_topic *t;
    struct fanout f;
    size_t tlen;
    int sent = 0, rc;

    if ((rc = topic_name(s, topic, &tlen)) < 0 ||
        (rc = check_message(s, type, data, len)) < 0)
        return rc;
    if (tell && s->observer && s->observer->published)
        WS_CALLBACK(s, s->observer->published(s, topic, type, data, len,
                                              s->observer_arg));
    t = ws_topics_find(&s->topics, topic, tlen);
    if (t == NULL)
        return 0; /* nobody subscribed: a look-up, nothing more */
    fanout_begin(&f, s, type, data, len);
    /* Sends never run callbacks, so the subscribers stay as they are. */
    for (uint32_t i = 0; i < t->n; i++) {
        struct ws_conn *c = WS_CONN_OF_TOPICS(t->subs[i].set);

        if (c != skip && fanout_send(&f, c) == 0)
            sent++;
    }
    fanout_end(&f);
    return sent;
}

int ws_server_publish(struct ws_server *s, const char *topic,
                      enum ws_msg_type type, const void *data, size_t len)
{
    if (s == NULL)
        return WS_EINVAL;
    return publish(s, NULL, true, topic, type, data, len);
}

int ws_server_deliver(struct ws_server *s, const char *topic,
                      enum ws_msg_type type, const void *data, size_t len)
{
    if (s == NULL)
        return WS_EINVAL;
    return publish(s, NULL, false, topic, type, data, len);
}

/* The registry's events, passed on to the observer. */
static void topic_first(void *ctx, const char *name)
{
    struct ws_server *s = ctx;

    if (s->observer && s->observer->first)
        WS_CALLBACK(s, s->observer->first(s, name, s->observer_arg));
}

static void topic_last(void *ctx, const char *name)
{
    struct ws_server *s = ctx;

    if (s->observer && s->observer->last)
        WS_CALLBACK(s, s->observer->last(s, name, s->observer_arg));
}

int ws_server_observe_topics(struct ws_server *s,
                             const struct ws_topic_observer *o, void *arg)
{
    if (s == NULL)
        return WS_EINVAL;
    if (o != NULL && s->observer != NULL)
        return WS_EBUSY;
    s->observer = o;
    s->observer_arg = arg;
    s->topics.on_first = o ? topic_first : NULL;
    s->topics.on_last = o ? topic_last : NULL;
    s->topics.ctx = s;
    return 0;
}

int ws_conn_publish(struct ws_conn *c, const char *topic, enum ws_msg_type type,
                    const void *data, size_t len)
{
    if (c == NULL)
        return WS_EINVAL;
    return publish(c->srv, c, true, topic, type, data, len);
}

int ws_conn_subscribe(struct ws_conn *c, const char *topic)
{
    size_t len;
    int rc;

    if (c == NULL)
        return WS_EINVAL;
    if ((rc = topic_name(c->srv, topic, &len)) < 0)
        return rc;
    if (c->phase != WS_CONN_WS || c->queued_kill ||
        c->session.state != WS_SESSION_OPEN)
        return WS_ECLOSED;
    return ws_topics_subscribe(&c->srv->topics, &c->topics, topic, len,
                               c->srv->cfg.max_topics_per_conn);
}

int ws_conn_unsubscribe(struct ws_conn *c, const char *topic)
{
    size_t len;
    int rc;

    if (c == NULL)
        return WS_EINVAL;
    if ((rc = topic_name(c->srv, topic, &len)) < 0)
        return rc;
    return ws_topics_unsubscribe(&c->srv->topics, &c->topics, topic, len);
}

int ws_conn_subscribed(const struct ws_conn *c, const char *topic)
{
    const struct ws_topic *t;

    if (c == NULL || topic == NULL)
        return WS_EINVAL;
    t = ws_topics_find(&c->srv->topics, topic, strlen(topic));
    return t && ws_topics_slot(&c->topics, t) >= 0;
}

size_t ws_conn_topic_count(const struct ws_conn *c)
{
    return c ? c->topics.n : 0;
}

const char *ws_conn_topic(const struct ws_conn *c, size_t i)
{
    return c && i < c->topics.n ? c->topics.m[i].t->name : NULL;
}

size_t ws_server_subscribers(const struct ws_server *s, const char *topic)
{
    const struct ws_topic *t;

    if (s == NULL || topic == NULL)
        return 0;
    t = ws_topics_find(&s->topics, topic, strlen(topic));
    return t ? t->n : 0;
}

void ws_conn_leave_topics(struct ws_conn *c)
{
    ws_topics_leave_all(&c->srv->topics, &c->topics);
}
