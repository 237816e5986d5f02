/*
 * idmap.c - the id-to-connection hash map: open addressing, linear
 * probing, load factor at most 3/4, backward-shift deletion so lookups
 * never need tombstones. Slots hold element pointers only; ids are read
 * from the elements. No I/O; allocates only its slot array.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/idmap.h"
#include "net/error.h"

/* Spread sequential ids over the table (a 64-bit finaliser). */
static size_t slot_of(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id & (cap - 1));
}

/* The id elem holds at key_offset; memcpy, as nothing says how the
   element aligns it. */
static uint64_t id_of(size_t key_offset, const void *elem)
{
    uint64_t id;

    memcpy(&id, (const char *)elem + key_offset, sizeof(id));
    return id;
}

void ws_idmap_init(struct ws_idmap *m, size_t key_offset)
{
    m->slots = NULL;
    m->cap = m->len = 0;
    m->key_offset = key_offset;
}

void ws_idmap_free(struct ws_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

/* Place an element known to be absent; the table has room. */
static void place(void **slots, size_t cap, uint64_t id, void *elem)
{
    size_t i = slot_of(id, cap);

    while (slots[i] != NULL)
        i = (i + 1) & (cap - 1);
    slots[i] = elem;
}

/* Double the table (or make the first one) and re-place every element. */
static int grow(struct ws_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    void **slots;

    if (cap > SIZE_MAX / sizeof(*slots))
        return WS_ENOMEM;
    /* calloc's zero bytes are NULL pointers on every platform we build
       for (POSIX requires it). */
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return WS_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i] != NULL)
            place(slots, cap, id_of(m->key_offset, m->slots[i]), m->slots[i]);
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ws_idmap_put(struct ws_idmap *m, void *elem)
{
    uint64_t id = elem != NULL ? id_of(m->key_offset, elem) : 0;

    if (id == 0)
        return WS_EINVAL;
    /* Up to 3/4 full: with ids spread evenly, linear probing then takes
       about 2.5 probes per hit and 8.5 per miss (Knuth 6.4), and lookups
       here are mostly hits, of open connections. */
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return WS_ENOMEM;
    place(m->slots, m->cap, id, elem);
    m->len++;
    return 0;
}

/* The index holding id, or cap when absent. Each probe reads the id from
   the element, so a miss touches every element of the probe run. */
static size_t find(const struct ws_idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return m->cap;
    for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i] == NULL)
            return m->cap;
        if (id_of(m->key_offset, m->slots[i]) == id)
            return i;
    }
}

void *ws_idmap_get(const struct ws_idmap *m, uint64_t id)
{
    size_t i = find(m, id);

    return i < m->cap ? m->slots[i] : NULL;
}

/*
 * Remove id, then shift back the elements after it in the same probe run
 * that would otherwise be cut off from their home slot (Knuth 6.4,
 * Algorithm R).
 */
void ws_idmap_del(struct ws_idmap *m, uint64_t id)
{
    size_t mask = m->cap - 1, hole = find(m, id);

    if (hole == m->cap)
        return;
    m->slots[hole] = NULL;
    m->len--;
    for (size_t i = (hole + 1) & mask; m->slots[i] != NULL;
         i = (i + 1) & mask) {
        size_t home = slot_of(id_of(m->key_offset, m->slots[i]), m->cap);

        /* Move i into the hole unless its home lies cyclically in
           (hole, i]. */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            m->slots[i] = NULL;
            hole = i;
        }
    }
}

void *ws_idmap_next(const struct ws_idmap *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *elem = m->slots[(*pos)++];
        if (elem != NULL)
            return elem;
    }
    return NULL;
}
