/*
 * topic.h - the topics of a server: names (byte strings, compared byte for
 * byte, so case-sensitive) mapped to their subscribers, and each
 * subscriber's own list of topics, so that publishing to a topic finds
 * its subscribers with one hash look-up, and subscribing, unsubscribing
 * and leaving all topics never scan other topics or other subscribers.
 * A subscriber is a struct ws_topic_set its owner embeds (the connection
 * gets back to itself from it). A topic exists while it has subscribers.
 * No I/O; single-threaded. Internal.
 */
#ifndef WS_TOPIC_H
#define WS_TOPIC_H

#include <stddef.h>
#include <stdint.h>

struct ws_topic;

/* One subscriber's topics; zero-filled: none. */
struct ws_topic_set {
    struct ws_topic_member *m; /* owned */
    uint32_t n, cap;
};

struct ws_topic_member {
    struct ws_topic *t;
    uint32_t index; /* in t's subscribers */
};

/* A topic's subscriber: its set, and where t is in the set. */
struct ws_topic_sub {
    struct ws_topic_set *set;
    uint32_t slot;
};

struct ws_topic {
    struct ws_topic *next; /* hash chain */
    uint64_t hash;
    struct ws_topic_sub *subs; /* owned */
    uint32_t n, cap;
    size_t len;
    char name[]; /* len bytes and a NUL */
};

/* The registry; zero-filled: empty. */
struct ws_topics {
    struct ws_topic **buckets; /* owned */
    size_t n_buckets, count;
    /* Told when a topic is made by its first subscriber and when its
       last one leaves (before it is freed); may be NULL. */
    void (*on_first)(void *ctx, const char *name);
    void (*on_last)(void *ctx, const char *name);
    void *ctx;
};

/* The topic named name[0..len), or NULL when nobody is subscribed. */
struct ws_topic *ws_topics_find(const struct ws_topics *r, const char *name,
                                size_t len);

/* Where t is in set's topics, or -1: a scan of set's own topics only. */
long ws_topics_slot(const struct ws_topic_set *set, const struct ws_topic *t);

/* Subscribe set to name[0..len). Returns 1 (subscribed now), 0 (it was
   already), WS_ETOOBIG (set holds max topics already) or WS_ENOMEM. */
int ws_topics_subscribe(struct ws_topics *r, struct ws_topic_set *set,
                        const char *name, size_t len, size_t max);

/* Returns 1 (unsubscribed) or 0 (set was not subscribed to it). */
int ws_topics_unsubscribe(struct ws_topics *r, struct ws_topic_set *set,
                          const char *name, size_t len);

/* Leave every topic of set and free its list. */
void ws_topics_leave_all(struct ws_topics *r, struct ws_topic_set *set);

/* Free the registry (every set must have left already). */
void ws_topics_free(struct ws_topics *r);

#endif
