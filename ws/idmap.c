/*
 * idmap.c - the id-to-connection hash map: open addressing, linear
 * probing, load factor at most 1/2, backward-shift deletion so lookups
 * never need tombstones. No I/O; allocates only its slot array.
 */
#include <stdlib.h>

#include "ws/idmap.h"
#include "ws/ws.h"

/* Spread sequential ids over the table (a 64-bit finaliser). */
static size_t slot_of(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id & (cap - 1));
}

void ws_idmap_free(struct ws_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

/* Place an entry known to be absent; the table has room. */
static void place(struct ws_idmap_slot *slots, size_t cap, uint64_t id,
                  void *value)
{
    size_t i = slot_of(id, cap);

    while (slots[i].id != 0)
        i = (i + 1) & (cap - 1);
    slots[i].id = id;
    slots[i].value = value;
}

/* Double the table (or make the first one) and re-place every entry. */
static int grow(struct ws_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct ws_idmap_slot *slots;

    if (cap > SIZE_MAX / sizeof(*slots))
        return WS_ENOMEM;
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return WS_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].id != 0)
            place(slots, cap, m->slots[i].id, m->slots[i].value);
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ws_idmap_put(struct ws_idmap *m, uint64_t id, void *value)
{
    if (id == 0)
        return WS_EINVAL;
    /* Up to 3/4 full: ids are handed out in sequence, so live ones sit in
       runs of adjacent slots and probes stay short even this full. */
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return WS_ENOMEM;
    place(m->slots, m->cap, id, value);
    m->len++;
    return 0;
}

/* The index holding id, or cap when absent. */
static size_t find(const struct ws_idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return m->cap;
    for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].id == id)
            return i;
        if (m->slots[i].id == 0)
            return m->cap;
    }
}

void *ws_idmap_get(const struct ws_idmap *m, uint64_t id)
{
    size_t i = find(m, id);

    return i < m->cap ? m->slots[i].value : NULL;
}

/*
 * Remove id, then shift back the entries after it in the same probe run
 * that would otherwise be cut off from their home slot (Knuth 6.4,
 * Algorithm R).
 */
void ws_idmap_del(struct ws_idmap *m, uint64_t id)
{
    size_t mask = m->cap - 1, hole = find(m, id);

    if (hole == m->cap)
        return;
    m->slots[hole].id = 0;
    m->len--;
    for (size_t i = (hole + 1) & mask; m->slots[i].id != 0;
         i = (i + 1) & mask) {
        size_t home = slot_of(m->slots[i].id, m->cap);

        /* Move i into the hole unless its home lies cyclically in
           (hole, i]. */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            m->slots[i].id = 0;
            hole = i;
        }
    }
}
