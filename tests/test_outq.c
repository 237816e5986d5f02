/*
 * test_outq.c - unit tests for net/outq.c: shared blocks queued among a
 * buffer's own bytes come out in order however the writes split them
 * (every write size from 1 byte, and gathers limited to 1..8 entries),
 * each block is released exactly when written out (or when the queue is
 * freed), and the queue frees itself once empty. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/outq.h"
#include "ws/ws.h"

#define MAX_STREAM 4096

/* A script step: own bytes appended (shared == 0) or a block pushed. */
struct step {
    int shared;
    const char *text;
};

/* The stream the steps make, and the queue holding it. */
struct fixture {
    struct ws_buf own;
    struct ws_outq *q;
    struct ws_shared *blocks[16];
    int n_blocks;
    char want[MAX_STREAM];
    size_t want_len;
};

static void build(struct fixture *f, const struct step *steps, int n)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < n; i++) {
        size_t len = strlen(steps[i].text);

        memcpy(f->want + f->want_len, steps[i].text, len);
        f->want_len += len;
        if (!steps[i].shared) {
            assert_int_equal(
                ws_buf_append(&f->own, steps[i].text, len, MAX_STREAM), 0);
            continue;
        }
        struct ws_shared *b = ws_shared_new(len);

        assert_non_null(b);
        memcpy(b->data, steps[i].text, len);
        /* The queue takes a reference; the test keeps one to watch. */
        assert_int_equal(ws_outq_push(&f->q, &f->own, ws_shared_ref(b)), 0);
        f->blocks[f->n_blocks++] = b;
    }
}

/* Write everything with writes of at most chunk bytes through gathers of
   at most max entries; return the bytes as written. */
static size_t drain(struct fixture *f, size_t chunk, int max, char *out)
{
    size_t got = 0;

    while (ws_buf_size(&f->own) + ws_outq_bytes(f->q) > 0) {
        struct iovec iov[8];
        int n = ws_outq_iov(f->q, &f->own, iov, max, chunk);
        size_t w = 0;

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            memcpy(out + got + w, iov[i].iov_base, iov[i].iov_len);
            w += iov[i].iov_len;
        }
        assert_true(w <= chunk);
        ws_outq_consume(&f->q, &f->own, w);
        got += w;
    }
    return got;
}

static void release_fixture(struct fixture *f)
{
    for (int i = 0; i < f->n_blocks; i++) {
        assert_int_equal(f->blocks[i]->refs, 1); /* only the test's */
        ws_shared_release(f->blocks[i]);
    }
    ws_buf_free(&f->own);
    assert_null(f->q);
}

static const struct step mixed[] = {
    {0, "hello "}, {1, "SHARED-ONE "}, {1, "TWO "},  {0, "own "},
    {0, "more "},  {1, "THREE"},       {0, " tail"},
};
static const struct step shared_only[] = {{1, "a"}, {1, "bc"}, {1, "def"}};
static const struct step own_only[] = {{0, "just "}, {0, "own bytes"}};
static const struct step shared_first[] = {{1, "first"}, {0, " then own"}};

static void check_script(const struct step *steps, int n)
{
    for (size_t chunk = 1; chunk <= 40; chunk++) {
        for (int max = 1; max <= 8; max++) {
            struct fixture f;
            char out[MAX_STREAM];

            build(&f, steps, n);
            assert_int_equal(drain(&f, chunk, max, out), f.want_len);
            assert_memory_equal(out, f.want, f.want_len);
            release_fixture(&f);
        }
    }
}

static void test_order_under_every_split(void **state)
{
    (void)state;
    check_script(mixed, sizeof(mixed) / sizeof(mixed[0]));
    check_script(shared_only, 3);
    check_script(own_only, 2);
    check_script(shared_first, 2);
}

/* Own bytes appended while blocks wait go after them. */
static void test_appends_while_queued(void **state)
{
    struct fixture f;
    struct iovec iov[4];
    char out[64];
    size_t got = 0;

    (void)state;
    build(&f, mixed, 2); /* "hello " then a block */
    /* Write 3 bytes, then append more own bytes, then drain. */
    int n = ws_outq_iov(f.q, &f.own, iov, 4, 3);
    assert_int_equal(n, 1);
    memcpy(out, iov[0].iov_base, 3);
    ws_outq_consume(&f.q, &f.own, 3);
    got = 3;
    assert_int_equal(ws_buf_append(&f.own, "after", 5, 64), 0);
    memcpy(f.want + f.want_len, "after", 5);
    f.want_len += 5;
    got += drain(&f, 64, 4, out + got);
    assert_int_equal(got, f.want_len);
    assert_memory_equal(out, f.want, got);
    release_fixture(&f);
}

/* A block is released as soon as its last byte is written, and freeing
   the queue releases what was never written. */
static void test_release_points(void **state)
{
    struct fixture f;

    (void)state;
    build(&f, shared_only, 3);
    assert_int_equal(ws_outq_bytes(f.q), 6);
    ws_outq_consume(&f.q, &f.own, 1); /* "a" */
    assert_int_equal(f.blocks[0]->refs, 1);
    assert_int_equal(f.blocks[1]->refs, 2);
    ws_outq_consume(&f.q, &f.own, 1); /* "b" of "bc": offset, no copy */
    assert_int_equal(f.blocks[1]->refs, 2);
    assert_int_equal(ws_outq_bytes(f.q), 4);
    ws_outq_free(&f.q);
    assert_null(f.q);
    release_fixture(&f);
}

/* The ring grows past its first size and keeps the order. */
static void test_many_blocks(void **state)
{
    struct ws_buf own = {0};
    struct ws_outq *q = NULL;
    struct ws_shared *last = NULL;
    char want[200], out[200];
    size_t got = 0;

    (void)state;
    for (int i = 0; i < 100; i++) {
        struct ws_shared *b = ws_shared_new(1);

        assert_non_null(b);
        b->data[0] = (uint8_t)('A' + i % 26);
        want[2 * i] = (char)b->data[0];
        want[2 * i + 1] = (char)('a' + i % 26);
        assert_int_equal(ws_outq_push(&q, &own, b), 0);
        assert_int_equal(ws_buf_append(&own, &want[2 * i + 1], 1, 200), 0);
        last = b;
    }
    (void)last;
    while (ws_buf_size(&own) + ws_outq_bytes(q) > 0) {
        struct iovec iov[3];
        int n = ws_outq_iov(q, &own, iov, 3, 7);
        size_t w = 0;

        for (int i = 0; i < n; i++) {
            memcpy(out + got + w, iov[i].iov_base, iov[i].iov_len);
            w += iov[i].iov_len;
        }
        ws_outq_consume(&q, &own, w);
        got += w;
    }
    assert_int_equal(got, 200);
    assert_memory_equal(out, want, 200);
    assert_null(q);
    ws_buf_free(&own);
}

static void test_empty(void **state)
{
    struct ws_buf own = {0};
    struct iovec iov[2];

    (void)state;
    assert_int_equal(ws_outq_bytes(NULL), 0);
    assert_int_equal(ws_outq_iov(NULL, &own, iov, 2, 100), 0);
    ws_outq_free(&(struct ws_outq *){NULL});
    ws_shared_release(NULL);
    assert_null(ws_shared_new(SIZE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_under_every_split),
        cmocka_unit_test(test_appends_while_queued),
        cmocka_unit_test(test_release_points),
        cmocka_unit_test(test_many_blocks),
        cmocka_unit_test(test_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
