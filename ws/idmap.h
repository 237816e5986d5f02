/*
 * idmap.h - a hash map from 64-bit ids (never 0) to the elements that
 * hold them: open addressing with linear probing and backward-shift
 * deletion. Intrusive: a slot is only the element's pointer, and an
 * element's id is the uint64_t it holds at the map's key offset, so an
 * entry costs one pointer. Not thread-safe by itself; the server guards it.
 */
#ifndef WS_IDMAP_H
#define WS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct ws_idmap {
    void **slots;      /* owned array of borrowed elements, NULL: empty */
    size_t cap;        /* slots: 0 or a power of two */
    size_t len;        /* elements in the map */
    size_t key_offset; /* offset of the uint64_t id in each element */
};

/* Make m an empty map of elements that hold their id at key_offset (for
   example offsetof(struct conn, id)). A zero-filled struct is an empty
   map with key_offset 0. */
void ws_idmap_init(struct ws_idmap *m, size_t key_offset);

/* Free the slots; m stays an empty map with the same key offset. */
void ws_idmap_free(struct ws_idmap *m);

/*
 * Insert elem under the id it holds, which must not be 0 or in the map
 * yet. Lookups read the ids of the elements they pass, so each element
 * must stay allocated, with its id unchanged, until it is deleted. Returns
 * 0, WS_EINVAL (id 0) or WS_ENOMEM (the map is unchanged).
 */
int ws_idmap_put(struct ws_idmap *m, void *elem);

/* The element with this id, or NULL. */
void *ws_idmap_get(const struct ws_idmap *m, uint64_t id);

/* Remove the element with this id, if any. */
void ws_idmap_del(struct ws_idmap *m, uint64_t id);

/* Walk the map in slot order: the first element in a slot at or after
   *pos, with *pos moved past it, or NULL when none is left. Start with
   *pos = 0. A put or a delete moves elements, so only a walk over a map
   that does not change meanwhile sees each element exactly once. */
void *ws_idmap_next(const struct ws_idmap *m, size_t *pos);

#endif
