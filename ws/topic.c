/*
 * topic.c - the topic registry: a chained hash table (FNV-1a, doubled
 * when it holds more topics than buckets) of topics, each with an array
 * of subscribers; each subscriber's set is an array of its topics. The two
 * arrays point at each other's slots, so removal is a swap with the last
 * element on both sides, fixing the one index that moved.
 */
#include "ws/topic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/error.h"

#define FIRST_BUCKETS 16u

static uint64_t hash_of(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t bucket_of(const struct ws_topics *r, uint64_t h)
{
    return (size_t)(h & (r->n_buckets - 1));
}

static struct ws_topic *find(const struct ws_topics *r, const char *name,
                             size_t len, uint64_t h)
{
    if (r->n_buckets == 0)
        return NULL;
    for (struct ws_topic *t = r->buckets[bucket_of(r, h)]; t; t = t->next)
        if (t->hash == h && t->len == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

struct ws_topic *ws_topics_find(const struct ws_topics *r, const char *name,
                                size_t len)
{
    return find(r, name, len, hash_of(name, len));
}

/* Double the table (or make it). */
static int rehash(struct ws_topics *r)
{
    size_t n = r->n_buckets ? r->n_buckets * 2 : FIRST_BUCKETS;
    struct ws_topic **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return WS_ENOMEM;
    for (size_t i = 0; i < r->n_buckets; i++) {
        struct ws_topic *t = r->buckets[i], *next;

        for (; t; t = next) {
            next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->n_buckets = n;
    return 0;
}

static struct ws_topic *add_topic(struct ws_topics *r, const char *name,
                                  size_t len, uint64_t h)
{
    struct ws_topic *t;

    if (r->count >= r->n_buckets && rehash(r) < 0 && r->n_buckets == 0)
        return NULL;
    t = calloc(1, sizeof(*t) + len + 1);
    if (t == NULL)
        return NULL;
    t->hash = h;
    t->len = len;
    memcpy(t->name, name, len);
    t->next = r->buckets[bucket_of(r, h)];
    r->buckets[bucket_of(r, h)] = t;
    r->count++;
    return t;
}

static void remove_topic(struct ws_topics *r, struct ws_topic *t, bool told)
{
    struct ws_topic **p = &r->buckets[bucket_of(r, t->hash)];

    while (*p != t)
        p = &(*p)->next;
    *p = t->next;
    r->count--;
    if (told && r->on_last)
        r->on_last(r->ctx, t->name);
    free(t->subs);
    free(t);
}

/* Grow an array of elements of size sz to hold one more. */
static int grow(void **arr, uint32_t *cap, uint32_t n, size_t sz)
{
    uint32_t c = *cap ? *cap * 2 : 4;
    void *p;

    if (n < *cap)
        return 0;
    if (c < *cap)
        return WS_ENOMEM;
    p = realloc(*arr, (size_t)c * sz);
    if (p == NULL)
        return WS_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

long ws_topics_slot(const struct ws_topic_set *set, const struct ws_topic *t)
{
    for (uint32_t i = 0; i < set->n; i++)
        if (set->m[i].t == t)
            return (long)i;
    return -1;
}

int ws_topics_subscribe(struct ws_topics *r, struct ws_topic_set *set,
                        const char *name, size_t len, size_t max)
{
    uint64_t h = hash_of(name, len);
    struct ws_topic *t = find(r, name, len, h);
    bool made = false;

    if (t != NULL && ws_topics_slot(set, t) >= 0)
        return 0;
    if (set->n >= max)
        return WS_ETOOBIG;
    if (grow((void **)&set->m, &set->cap, set->n, sizeof(*set->m)) < 0)
        return WS_ENOMEM;
    if (t == NULL) {
        t = add_topic(r, name, len, h);
        if (t == NULL)
            return WS_ENOMEM;
        made = true;
    }
    if (grow((void **)&t->subs, &t->cap, t->n, sizeof(*t->subs)) < 0) {
        if (made)
            remove_topic(r, t, false);
        return WS_ENOMEM;
    }
    t->subs[t->n] = (struct ws_topic_sub){set, set->n};
    set->m[set->n] = (struct ws_topic_member){t, t->n};
    t->n++;
    set->n++;
    if (made && r->on_first)
        r->on_first(r->ctx, t->name);
    return 1;
}

/* Remove membership slot of set: from the topic's subscribers and from
   the set, each by moving its last element into the hole. */
static void leave(struct ws_topics *r, struct ws_topic_set *set, uint32_t slot)
{
    struct ws_topic_member m = set->m[slot];
    struct ws_topic *t = m.t;

    t->n--;
    if (m.index != t->n) {
        t->subs[m.index] = t->subs[t->n];
        t->subs[m.index].set->m[t->subs[m.index].slot].index = m.index;
    }
    set->n--;
    if (slot != set->n) {
        set->m[slot] = set->m[set->n];
        set->m[slot].t->subs[set->m[slot].index].slot = slot;
    }
    if (t->n == 0)
        remove_topic(r, t, true);
}

int ws_topics_unsubscribe(struct ws_topics *r, struct ws_topic_set *set,
                          const char *name, size_t len)
{
    struct ws_topic *t = ws_topics_find(r, name, len);
    long slot = t ? ws_topics_slot(set, t) : -1;

    if (slot < 0)
        return 0;
    leave(r, set, (uint32_t)slot);
    return 1;
}

void ws_topics_leave_all(struct ws_topics *r, struct ws_topic_set *set)
{
    while (set->n > 0)
        leave(r, set, set->n - 1);
    free(set->m);
    *set = (struct ws_topic_set){0};
}

void ws_topics_free(struct ws_topics *r)
{
    for (size_t i = 0; i < r->n_buckets; i++) {
        struct ws_topic *t = r->buckets[i], *next;

        for (; t; t = next) {
            next = t->next;
            free(t->subs);
            free(t);
        }
    }
    free(r->buckets);
    *r = (struct ws_topics){0};
}
