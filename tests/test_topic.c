/*
 * test_topic.c - unit tests for ws/topic.c: subscribe, unsubscribe and
 * leave-all checked against a plain matrix of who is in what after every
 * step of a seeded random walk (64 sets, 300 topics, growth and rehash
 * included); limits; byte-string names (case, embedded NUL); the topic
 * disappears with its last subscriber. No I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ws/topic.h"
#include "ws/ws.h"

#define SETS 64
#define TOPICS 300

static bool model[SETS][TOPICS];

static size_t name_of(int t, char *buf)
{
    return (size_t)snprintf(buf, 32, "topic/%d", t);
}

/* Every topic's subscribers and every set's topics agree with the model,
   and with each other's indexes. */
static void check(const struct ws_topics *r, struct ws_topic_set *sets)
{
    size_t live = 0;

    for (int t = 0; t < TOPICS; t++) {
        char name[32];
        size_t len = name_of(t, name);
        const struct ws_topic *tp = ws_topics_find(r, name, len);
        uint32_t want = 0;

        for (int s = 0; s < SETS; s++)
            want += model[s][t];
        if (want == 0) {
            assert_null(tp);
            continue;
        }
        live++;
        assert_non_null(tp);
        assert_int_equal(tp->n, want);
        for (uint32_t i = 0; i < tp->n; i++) {
            const struct ws_topic_sub *sub = &tp->subs[i];
            int s = (int)(sub->set - sets);

            assert_true(model[s][t]);
            assert_ptr_equal(sub->set->m[sub->slot].t, tp);
            assert_int_equal(sub->set->m[sub->slot].index, i);
        }
    }
    assert_int_equal(r->count, live);
    for (int s = 0; s < SETS; s++) {
        uint32_t want = 0;

        for (int t = 0; t < TOPICS; t++)
            want += model[s][t];
        assert_int_equal(sets[s].n, want);
    }
}

static void test_random_walk(void **state)
{
    struct ws_topics r = {0};
    struct ws_topic_set sets[SETS] = {{0}};
    uint32_t seed = 12345;

    (void)state;
    memset(model, 0, sizeof(model));
    for (int step = 0; step < 20000; step++) {
        int s, t, op;
        char name[32];
        size_t len;

        seed = seed * 1103515245u + 12345u;
        s = (int)((seed >> 8) % SETS);
        t = (int)((seed >> 16) % TOPICS);
        op = (int)((seed >> 4) % 8);
        len = name_of(t, name);
        if (op < 5) {
            int rc = ws_topics_subscribe(&r, &sets[s], name, len, 1000);

            assert_int_equal(rc, model[s][t] ? 0 : 1);
            model[s][t] = true;
        } else if (op < 7) {
            assert_int_equal(ws_topics_unsubscribe(&r, &sets[s], name, len),
                             model[s][t] ? 1 : 0);
            model[s][t] = false;
        } else if (step % 50 == 0) {
            ws_topics_leave_all(&r, &sets[s]);
            memset(model[s], 0, sizeof(model[s]));
        }
        if (step % 500 == 0)
            check(&r, sets);
    }
    check(&r, sets);
    for (int s = 0; s < SETS; s++)
        ws_topics_leave_all(&r, &sets[s]);
    assert_int_equal(r.count, 0);
    ws_topics_free(&r);
}

static void test_limits_and_names(void **state)
{
    struct ws_topics r = {0};
    struct ws_topic_set a = {0}, b = {0};

    (void)state;
    assert_int_equal(ws_topics_subscribe(&r, &a, "x", 1, 2), 1);
    assert_int_equal(ws_topics_subscribe(&r, &a, "y", 1, 2), 1);
    assert_int_equal(ws_topics_subscribe(&r, &a, "z", 1, 2), WS_ETOOBIG);
    assert_int_equal(ws_topics_subscribe(&r, &a, "x", 1, 2), 0); /* had it */
    /* Names are bytes: case matters, and a NUL is part of the name. */
    assert_int_equal(ws_topics_subscribe(&r, &b, "Room", 4, 10), 1);
    assert_null(ws_topics_find(&r, "room", 4));
    assert_int_equal(ws_topics_subscribe(&r, &b, "a\0b", 3, 10), 1);
    assert_null(ws_topics_find(&r, "a", 1));
    assert_non_null(ws_topics_find(&r, "a\0b", 3));
    assert_int_equal(ws_topics_unsubscribe(&r, &b, "nope", 4), 0);
    assert_int_equal(ws_topics_unsubscribe(&r, &b, "Room", 4), 1);
    assert_null(ws_topics_find(&r, "Room", 4)); /* gone with its last */
    ws_topics_leave_all(&r, &a);
    ws_topics_leave_all(&r, &b);
    assert_null(ws_topics_find(&r, "x", 1));
    assert_int_equal(r.count, 0);
    ws_topics_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_walk),
        cmocka_unit_test(test_limits_and_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
