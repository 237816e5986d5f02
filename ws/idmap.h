/*
 * idmap.h - a hash map from connection ids (uint64_t, never 0) to
 * pointers: open addressing with linear probing and backward-shift
 * deletion. Not thread-safe by itself; the server guards it.
 */
#ifndef WS_IDMAP_H
#define WS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct ws_idmap_slot {
    uint64_t id; /* 0: empty */
    void *value;
};

struct ws_idmap {
    struct ws_idmap_slot *slots; /* owned; capacity is a power of two */
    size_t cap;
    size_t len;
};

/* A zero-filled struct is an empty map. Frees the slots. */
void ws_idmap_free(struct ws_idmap *m);

/* Insert id (not present yet, not 0). Returns 0 or WS_ENOMEM. */
int ws_idmap_put(struct ws_idmap *m, uint64_t id, void *value);

/* The value for id, or NULL. */
void *ws_idmap_get(const struct ws_idmap *m, uint64_t id);

/* Remove id if present. */
void ws_idmap_del(struct ws_idmap *m, uint64_t id);

#endif
