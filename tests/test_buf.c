/*
 * test_buf.c - unit tests for net/buf.c: growth, compaction, limits,
 * overflow-checked sizes, consume/clear and shrink. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/buf.h"
#include "ws/ws.h"

const char *__asan_default_options(void);
const char *__tsan_default_options(void);

/* A huge malloc must return NULL under ASan and TSan too, as it does in
   libc. */
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static int setup_buf(void **state)
{
    struct ws_buf *b = test_calloc(1, sizeof(*b));

    *state = b;
    return b ? 0 : -1;
}

static int teardown_buf(void **state)
{
    struct ws_buf *b = *state;

    ws_buf_free(b);
    test_free(b);
    return 0;
}

/* Fill p[0..n) with a pattern that starts at seed. */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i);
}

/* Append n pattern bytes starting at seed; returns the result code. */
static int append_pattern(struct ws_buf *b, size_t n, unsigned seed, size_t max)
{
    uint8_t tmp[8192];

    assert_true(n <= sizeof(tmp));
    fill(tmp, n, seed);
    return ws_buf_append(b, tmp, n, max);
}

/* Check that the readable bytes are n pattern bytes starting at seed. */
static void expect_pattern(const struct ws_buf *b, size_t n, unsigned seed)
{
    const uint8_t *p = ws_buf_head(b);

    assert_int_equal(ws_buf_size(b), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (uint8_t)(seed + i));
}

static void test_empty(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(ws_buf_size(b), 0);
    assert_null(ws_buf_head(b));
    assert_null(ws_buf_tail(b));
    assert_int_equal(ws_buf_space(b), 0);
    assert_int_equal(ws_buf_reserve(b, 0, 100), 0);
    assert_null(b->data);
    assert_int_equal(ws_buf_append(b, NULL, 0, 100), 0);
    assert_null(b->data);
    ws_buf_consume(b, 0);
    ws_buf_clear(b);
    ws_buf_shrink(b, 0);
    assert_null(b->data);
}

/* One growth row: appends of the given sizes under max, expected cap. */
struct grow_row {
    const char *label;
    size_t max;
    size_t appends[4];
    size_t cap;
};

static const struct grow_row grow_rows[] = {
    {"first growth is 4 KiB", SIZE_MAX, {10}, 4096},
    {"exact 4 KiB fits", SIZE_MAX, {4096}, 4096},
    {"second growth doubles", SIZE_MAX, {4096, 1}, 8192},
    {"big request beats doubling", SIZE_MAX, {4096, 8000}, 12096},
    {"doubling capped by max", 5000, {4096, 10}, 5000},
    {"minimum capped by max", 100, {10}, 100},
    {"growth to exactly max", 8192, {4096, 4096}, 8192},
};

static void test_growth(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(grow_rows) / sizeof(grow_rows[0]); r++) {
        const struct grow_row *row = &grow_rows[r];
        struct ws_buf b = {0};
        size_t total = 0;

        print_message("row: %s\n", row->label);
        for (size_t i = 0; i < 4 && row->appends[i]; i++) {
            assert_int_equal(
                append_pattern(&b, row->appends[i], (unsigned)total, row->max),
                0);
            total += row->appends[i];
        }
        assert_int_equal(b.cap, row->cap);
        expect_pattern(&b, total, 0);
        ws_buf_free(&b);
    }
}

static void test_compaction_avoids_growth(void **state)
{
    struct ws_buf *b = *state;
    uint8_t *before;

    assert_int_equal(append_pattern(b, 4096, 0, SIZE_MAX), 0);
    before = b->data;
    ws_buf_consume(b, 4000);
    assert_int_equal(b->off, 4000);
    /* 96 unread + 1000 new fit in 4096 once moved to the front. */
    assert_int_equal(append_pattern(b, 1000, 4096, SIZE_MAX), 0);
    assert_ptr_equal(b->data, before);
    assert_int_equal(b->cap, 4096);
    assert_int_equal(b->off, 0);
    expect_pattern(b, 1096, 4000 % 256);
}

static void test_no_compaction_when_tail_fits(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 100, 0, SIZE_MAX), 0);
    ws_buf_consume(b, 50);
    assert_int_equal(ws_buf_reserve(b, 10, SIZE_MAX), 0);
    assert_int_equal(b->off, 50);
    assert_true(ws_buf_space(b) >= 10);
    expect_pattern(b, 50, 50);
}

static void test_growth_keeps_unread_only(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 4096, 0, SIZE_MAX), 0);
    ws_buf_consume(b, 10);
    assert_int_equal(append_pattern(b, 100, 4096 % 256, SIZE_MAX), 0);
    assert_int_equal(b->off, 0);
    assert_int_equal(b->cap, 8192);
    expect_pattern(b, 4186, 10);
}

/* Assert that b still has exactly the fields in *saved. */
static void expect_unchanged(const struct ws_buf *b, const struct ws_buf *saved)
{
    assert_ptr_equal(b->data, saved->data);
    assert_int_equal(b->off, saved->off);
    assert_int_equal(b->len, saved->len);
    assert_int_equal(b->cap, saved->cap);
}

static void test_limit(void **state)
{
    struct ws_buf *b = *state;
    struct ws_buf saved;

    assert_int_equal(append_pattern(b, 60, 0, 100), 0);
    saved = *b;
    assert_int_equal(append_pattern(b, 41, 60, 100), WS_ETOOBIG);
    expect_unchanged(b, &saved);
    expect_pattern(b, 60, 0);
    assert_int_equal(ws_buf_reserve(b, 41, 100), WS_ETOOBIG);
    expect_unchanged(b, &saved);
    /* Exactly max is allowed. */
    assert_int_equal(append_pattern(b, 40, 60, 100), 0);
    expect_pattern(b, 100, 0);
    assert_int_equal(ws_buf_reserve(b, 1, 100), WS_ETOOBIG);
}

static void test_limit_counts_unread_bytes(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 100, 0, 100), 0);
    ws_buf_consume(b, 50);
    assert_int_equal(append_pattern(b, 50, 100, 100), 0);
    expect_pattern(b, 100, 50);
}

static void test_limit_n_above_max(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(ws_buf_reserve(b, 101, 100), WS_ETOOBIG);
    assert_null(b->data);
    assert_int_equal(ws_buf_reserve(b, 1, 0), WS_ETOOBIG);
    assert_null(b->data);
}

static void test_size_overflow(void **state)
{
    struct ws_buf *b = *state;
    struct ws_buf saved;

    assert_int_equal(append_pattern(b, 10, 0, SIZE_MAX), 0);
    saved = *b;
    /* 10 + SIZE_MAX wraps; it must be refused, not taken as 9. */
    assert_int_equal(ws_buf_reserve(b, SIZE_MAX, SIZE_MAX), WS_ETOOBIG);
    assert_int_equal(ws_buf_reserve(b, SIZE_MAX - 5, SIZE_MAX), WS_ETOOBIG);
    assert_int_equal(ws_buf_append(b, "x", SIZE_MAX, SIZE_MAX), WS_ETOOBIG);
    expect_unchanged(b, &saved);
    expect_pattern(b, 10, 0);
}

static void test_enomem(void **state)
{
    struct ws_buf *b = *state;
    struct ws_buf saved;

    /* Above PTRDIFF_MAX: refused before malloc is asked. */
    assert_int_equal(ws_buf_reserve(b, SIZE_MAX, SIZE_MAX), WS_ENOMEM);
    assert_null(b->data);
    assert_int_equal(append_pattern(b, 10, 0, SIZE_MAX), 0);
    saved = *b;
    assert_int_equal(ws_buf_reserve(b, (size_t)PTRDIFF_MAX, SIZE_MAX),
                     WS_ENOMEM);
    /* Below PTRDIFF_MAX, but far more than any machine has. */
    assert_int_equal(ws_buf_reserve(b, (size_t)1 << 62, SIZE_MAX), WS_ENOMEM);
    expect_unchanged(b, &saved);
    expect_pattern(b, 10, 0);
}

static void test_reserve_commit(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(ws_buf_reserve(b, 300, SIZE_MAX), 0);
    assert_true(ws_buf_space(b) >= 300);
    assert_ptr_equal(ws_buf_tail(b), b->data);
    fill(ws_buf_tail(b), 300, 7);
    ws_buf_commit(b, 200);
    expect_pattern(b, 200, 7);
    assert_ptr_equal(ws_buf_tail(b), b->data + 200);
    assert_int_equal(ws_buf_space(b), b->cap - 200);
}

static void test_consume(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 100, 0, SIZE_MAX), 0);
    ws_buf_consume(b, 30);
    expect_pattern(b, 70, 30);
    assert_ptr_equal(ws_buf_head(b), b->data + 30);
    ws_buf_consume(b, 70);
    assert_int_equal(ws_buf_size(b), 0);
    /* An emptied buffer starts over at the front. */
    assert_int_equal(b->off, 0);
    assert_int_equal(b->len, 0);
    assert_non_null(b->data);
}

static void test_clear_keeps_allocation(void **state)
{
    struct ws_buf *b = *state;
    uint8_t *data;

    assert_int_equal(append_pattern(b, 100, 0, SIZE_MAX), 0);
    data = b->data;
    ws_buf_consume(b, 10);
    ws_buf_clear(b);
    assert_int_equal(ws_buf_size(b), 0);
    assert_int_equal(b->off, 0);
    assert_ptr_equal(b->data, data);
    assert_int_equal(b->cap, 4096);
}

static void test_shrink(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 5000, 0, SIZE_MAX), 0);
    /* Not empty: kept whatever keep says. */
    ws_buf_shrink(b, 0);
    assert_non_null(b->data);
    expect_pattern(b, 5000, 0);
    ws_buf_consume(b, 5000);
    /* Empty but not bigger than keep: kept. */
    assert_int_equal(b->cap, 5000);
    ws_buf_shrink(b, 5000);
    assert_non_null(b->data);
    /* Empty and bigger than keep: released. */
    ws_buf_shrink(b, 4999);
    assert_null(b->data);
    assert_int_equal(b->cap, 0);
    assert_int_equal(ws_buf_size(b), 0);
    /* Usable again afterwards. */
    assert_int_equal(append_pattern(b, 10, 3, SIZE_MAX), 0);
    expect_pattern(b, 10, 3);
}

static void test_free_resets(void **state)
{
    struct ws_buf *b = *state;

    assert_int_equal(append_pattern(b, 10, 0, SIZE_MAX), 0);
    ws_buf_free(b);
    assert_null(b->data);
    assert_int_equal(b->cap, 0);
    assert_int_equal(b->len, 0);
    assert_int_equal(b->off, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_buf, teardown_buf)
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_growth),
        T(test_compaction_avoids_growth),
        T(test_no_compaction_when_tail_fits),
        T(test_growth_keeps_unread_only),
        T(test_limit),
        T(test_limit_counts_unread_bytes),
        T(test_limit_n_above_max),
        T(test_size_overflow),
        T(test_enomem),
        T(test_reserve_commit),
        T(test_consume),
        T(test_clear_keeps_allocation),
        T(test_shrink),
        T(test_free_resets),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
