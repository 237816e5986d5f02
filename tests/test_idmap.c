/*
 * test_idmap.c - the id-to-pointer hash map against a plain array model:
 * random puts and deletes (backward-shift deletion is where such maps go
 * wrong), growth, absent ids and id 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "ws/idmap.h"
#include "ws/ws.h"

#define MODEL 4096

/* Reference: model[i] is the value stored for id i + 1, NULL if absent. */
struct model {
    void *value[MODEL];
};

/* Check that the map answers exactly like the model for every id. */
static void check_all(const struct ws_idmap *m, const struct model *ref)
{
    size_t live = 0;

    for (uint64_t id = 1; id <= MODEL; id++) {
        assert_ptr_equal(ws_idmap_get(m, id), ref->value[id - 1]);
        live += ref->value[id - 1] != NULL;
    }
    assert_int_equal(m->len, live);
    assert_true(m->cap == 0 || m->len * 4 <= m->cap * 3); /* at most 3/4 full */
}

/* Random puts and deletes, checked against the model as they go. */
static void random_against_model(void **state)
{
    static struct model ref;
    struct ws_idmap m = {0};
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        uint64_t id = 1 + (uint64_t)(rand_r(&seed) % MODEL);
        void *v = (void *)(uintptr_t)(round + 1);

        if (ref.value[id - 1] == NULL && rand_r(&seed) % 3 != 0) {
            assert_int_equal(ws_idmap_put(&m, id, v), 0);
            ref.value[id - 1] = v;
        } else {
            ws_idmap_del(&m, id);
            ref.value[id - 1] = NULL;
        }
        if (round % 1000 == 0)
            check_all(&m, &ref);
    }
    check_all(&m, &ref);
    ws_idmap_free(&m);
}

/* Sequential ids, as the server hands them out, then deleted in order:
   the map empties and every lookup after that misses. */
static void sequential_ids(void **state)
{
    struct ws_idmap m = {0};
    int marker;

    (void)state;
    for (uint64_t id = 1; id <= 10000; id++)
        assert_int_equal(ws_idmap_put(&m, id, &marker), 0);
    assert_int_equal(m.len, 10000);
    for (uint64_t id = 1; id <= 10000; id++) {
        assert_ptr_equal(ws_idmap_get(&m, id), &marker);
        ws_idmap_del(&m, id);
        assert_null(ws_idmap_get(&m, id));
    }
    assert_int_equal(m.len, 0);
    ws_idmap_free(&m);
}

/* Edge cases: empty map, id 0, deleting what is not there. */
static void edges(void **state)
{
    struct ws_idmap m = {0};
    int x;

    (void)state;
    assert_null(ws_idmap_get(&m, 1));
    ws_idmap_del(&m, 1);
    assert_int_equal(ws_idmap_put(&m, 0, &x), WS_EINVAL);
    assert_int_equal(ws_idmap_put(&m, 7, &x), 0);
    assert_null(ws_idmap_get(&m, 0));
    ws_idmap_del(&m, 8);
    assert_ptr_equal(ws_idmap_get(&m, 7), &x);
    assert_int_equal(m.len, 1);
    ws_idmap_free(&m);
    assert_null(m.slots);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_against_model),
        cmocka_unit_test(sequential_ids),
        cmocka_unit_test(edges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
