/*
 * test_idmap.c - the intrusive id map against a plain array model: random
 * puts and deletes (backward-shift deletion is where such maps go wrong),
 * growth, probe clusters that wrap around the table, absent ids and id 0.
 * Elements keep their id at a nonzero, unaligned offset, so the map must
 * read it from where it was told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ws/idmap.h"
#include "ws/ws.h"

#define MODEL 4096

/* An element: its id at offset 3, where no uint64_t would be aligned. */
struct item {
    unsigned char bytes[16];
};

#define KEY_OFFSET 3

static void item_set_id(struct item *it, uint64_t id)
{
    memset(it->bytes, 0xa5, sizeof(it->bytes));
    memcpy(it->bytes + KEY_OFFSET, &id, sizeof(id));
}

/* items[i] holds id i + 1; present[i] says whether it is in the map. */
struct model {
    struct item items[MODEL];
    bool present[MODEL];
};

static void model_init(struct model *ref)
{
    for (uint64_t id = 1; id <= MODEL; id++) {
        item_set_id(&ref->items[id - 1], id);
        ref->present[id - 1] = false;
    }
}

/* A walk visits every element in the model exactly once and nothing
   else. */
static void check_walk(const struct ws_idmap *m, const struct model *ref,
                       size_t live)
{
    static bool seen[MODEL];
    size_t pos = 0, n = 0;
    struct item *it;

    memset(seen, 0, sizeof(seen));
    while ((it = ws_idmap_next(m, &pos)) != NULL) {
        size_t i = (size_t)(it - ref->items);

        assert_true(it >= ref->items && i < MODEL);
        assert_true(ref->present[i]);
        assert_false(seen[i]);
        seen[i] = true;
        n++;
    }
    assert_int_equal(n, live);
    assert_int_equal(pos, m->cap);
    assert_null(ws_idmap_next(m, &pos)); /* stays at the end */
}

/* Check that the map answers exactly like the model for every id, that
   ids outside the model miss, and the capacity rules. */
static void check_all(const struct ws_idmap *m, const struct model *ref)
{
    size_t live = 0;

    for (uint64_t id = 1; id <= MODEL; id++) {
        const void *want = ref->present[id - 1] ? &ref->items[id - 1] : NULL;

        assert_ptr_equal(ws_idmap_get(m, id), want);
        live += ref->present[id - 1];
    }
    for (uint64_t id = MODEL + 1; id <= MODEL + 64; id++)
        assert_null(ws_idmap_get(m, id));
    assert_null(ws_idmap_get(m, UINT64_MAX));
    assert_int_equal(m->len, live);
    assert_true(m->cap == 0 || m->len * 4 <= m->cap * 3); /* at most 3/4 */
    assert_int_equal(m->cap & (m->cap - 1), 0);           /* power of two */
    check_walk(m, ref, live);
}

/* Random puts and deletes, checked against the model as they go. */
static void random_against_model(void **state)
{
    static struct model ref;
    struct ws_idmap m;
    unsigned seed = 12345;

    (void)state;
    model_init(&ref);
    ws_idmap_init(&m, KEY_OFFSET);
    for (int round = 0; round < 20000; round++) {
        uint64_t id = 1 + (uint64_t)(rand_r(&seed) % MODEL);

        if (!ref.present[id - 1] && rand_r(&seed) % 3 != 0) {
            assert_int_equal(ws_idmap_put(&m, &ref.items[id - 1]), 0);
            ref.present[id - 1] = true;
        } else {
            ws_idmap_del(&m, id);
            ref.present[id - 1] = false;
        }
        if (round % 1000 == 0)
            check_all(&m, &ref);
    }
    check_all(&m, &ref);
    ws_idmap_free(&m);
}

/* Sequential ids, as the server hands them out: every growth keeps what
   was put before it, and a slot costs one pointer. Then deleted in order:
   the map empties and every lookup after that misses. */
static void sequential_ids(void **state)
{
    static struct model ref;
    struct ws_idmap m;
    size_t cap = 0;
    int growths = 0;

    (void)state;
    model_init(&ref);
    ws_idmap_init(&m, KEY_OFFSET);
    assert_int_equal(sizeof(*m.slots), sizeof(void *));
    for (uint64_t id = 1; id <= MODEL; id++) {
        assert_int_equal(ws_idmap_put(&m, &ref.items[id - 1]), 0);
        ref.present[id - 1] = true;
        if (m.cap != cap) {
            /* Doubles, exactly when a put would pass 3/4. */
            assert_true(cap == 0 ? m.cap == 16 : m.cap == cap * 2);
            assert_true(m.len * 4 > cap * 3);
            cap = m.cap;
            growths++;
            check_all(&m, &ref);
        }
    }
    assert_int_equal(m.len, MODEL);
    assert_true(growths >= 9); /* 16 ... 8192 */
    check_all(&m, &ref);
    for (uint64_t id = 1; id <= MODEL; id++) {
        assert_ptr_equal(ws_idmap_get(&m, id), &ref.items[id - 1]);
        ws_idmap_del(&m, id);
        assert_null(ws_idmap_get(&m, id));
    }
    assert_int_equal(m.len, 0);
    for (size_t i = 0; i < m.cap; i++)
        assert_null(m.slots[i]);
    ws_idmap_free(&m);
}

/* The slot a lone id takes in an empty 16-slot map: its home there. */
static size_t home16(uint64_t id)
{
    struct ws_idmap m;
    struct item it;
    size_t home = SIZE_MAX;

    ws_idmap_init(&m, KEY_OFFSET);
    item_set_id(&it, id);
    assert_int_equal(ws_idmap_put(&m, &it), 0);
    assert_int_equal(m.cap, 16);
    for (size_t i = 0; i < m.cap; i++) {
        if (m.slots[i] == &it)
            home = i;
    }
    ws_idmap_free(&m);
    assert_true(home < 16);
    return home;
}

/* The first n ids from *next on whose 16-slot home is h. */
static void ids_with_home(size_t h, int n, uint64_t *next, uint64_t *out)
{
    for (int k = 0; k < n; (*next)++) {
        if (home16(*next) == h)
            out[k++] = *next;
    }
}

/* The index of the slot holding the item with id, or SIZE_MAX. */
static size_t slot_index(const struct ws_idmap *m, uint64_t id)
{
    for (size_t i = 0; i < m->cap; i++) {
        uint64_t got;

        if (m->slots[i] == NULL)
            continue;
        memcpy(&got, (const unsigned char *)m->slots[i] + KEY_OFFSET,
               sizeof(got));
        if (got == id)
            return i;
    }
    return SIZE_MAX;
}

/*
 * A probe run across the end of the table: three ids at home 14 and two
 * at home 15 fill slots 14, 15, 0, 1, 2. Deleting the first shifts each
 * later one back towards its home, so the run stays without holes and
 * every lookup (and a miss that starts inside the run) still ends right.
 */
static void backward_shift_wraps(void **state)
{
    struct item items[5];
    uint64_t a[3], b[2], next = 1, absent[1];
    struct ws_idmap m;

    (void)state;
    ids_with_home(14, 3, &next, a);
    ids_with_home(15, 2, &next, b);
    ids_with_home(15, 1, &next, absent);
    ws_idmap_init(&m, KEY_OFFSET);
    for (int i = 0; i < 5; i++) {
        item_set_id(&items[i], i < 3 ? a[i] : b[i - 3]);
        assert_int_equal(ws_idmap_put(&m, &items[i]), 0);
    }
    assert_int_equal(m.cap, 16);
    assert_int_equal(slot_index(&m, a[0]), 14);
    assert_int_equal(slot_index(&m, a[1]), 15);
    assert_int_equal(slot_index(&m, a[2]), 0);
    assert_int_equal(slot_index(&m, b[0]), 1);
    assert_int_equal(slot_index(&m, b[1]), 2);
    assert_null(ws_idmap_get(&m, absent[0]));

    ws_idmap_del(&m, a[0]);
    assert_int_equal(slot_index(&m, a[1]), 14);
    assert_int_equal(slot_index(&m, a[2]), 15);
    assert_int_equal(slot_index(&m, b[0]), 0);
    assert_int_equal(slot_index(&m, b[1]), 1);
    assert_null(m.slots[2]);
    assert_null(ws_idmap_get(&m, a[0]));
    assert_null(ws_idmap_get(&m, absent[0]));

    /* Both b move back, b[0] into its home slot 15. */
    ws_idmap_del(&m, a[2]);
    assert_int_equal(slot_index(&m, b[0]), 15);
    assert_int_equal(slot_index(&m, b[1]), 0);
    /* Neither may move to 14, before its home: the hole stays there. */
    ws_idmap_del(&m, a[1]);
    assert_null(m.slots[14]);
    assert_int_equal(slot_index(&m, b[0]), 15);
    assert_int_equal(slot_index(&m, b[1]), 0);
    for (int i = 3; i < 5; i++)
        assert_ptr_equal(ws_idmap_get(&m, b[i - 3]), &items[i]);
    assert_int_equal(m.len, 2);
    ws_idmap_free(&m);
}

/* Edge cases: empty map, id 0, NULL, deleting what is not there; free
   leaves an empty map that can be used again. */
static void edges(void **state)
{
    struct ws_idmap m = {0};
    struct item x, zero, y;

    (void)state;
    ws_idmap_init(&m, KEY_OFFSET);
    item_set_id(&x, 7);
    item_set_id(&zero, 0);
    item_set_id(&y, 8);
    assert_null(ws_idmap_get(&m, 1));
    ws_idmap_del(&m, 1);
    assert_int_equal(ws_idmap_put(&m, &zero), WS_EINVAL);
    assert_int_equal(ws_idmap_put(&m, NULL), WS_EINVAL);
    assert_int_equal(m.len, 0);
    assert_int_equal(ws_idmap_put(&m, &x), 0);
    assert_null(ws_idmap_get(&m, 0));
    ws_idmap_del(&m, 8);
    ws_idmap_del(&m, 0);
    assert_ptr_equal(ws_idmap_get(&m, 7), &x);
    assert_int_equal(m.len, 1);
    ws_idmap_free(&m);
    assert_null(m.slots);
    assert_null(ws_idmap_get(&m, 7));
    assert_int_equal(ws_idmap_put(&m, &y), 0);
    assert_ptr_equal(ws_idmap_get(&m, 8), &y);
    ws_idmap_free(&m);
}

/* A zero-filled map reads ids at offset 0. */
static void zero_filled_offset_0(void **state)
{
    struct ws_idmap m = {0};
    uint64_t ids[3] = {5, 6, 1u << 31};

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ws_idmap_put(&m, &ids[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(ws_idmap_get(&m, ids[i]), &ids[i]);
    ws_idmap_del(&m, 6);
    assert_null(ws_idmap_get(&m, 6));
    assert_ptr_equal(ws_idmap_get(&m, 5), &ids[0]);
    ws_idmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_against_model),
        cmocka_unit_test(sequential_ids),
        cmocka_unit_test(backward_shift_wraps),
        cmocka_unit_test(edges),
        cmocka_unit_test(zero_filled_offset_0),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
