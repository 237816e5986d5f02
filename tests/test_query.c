/*
 * test_query.c - http/query.c: query parameters as browsers encode them
 * (URLSearchParams), decoded names, the first of repeated names, empty
 * pairs and values, bad escapes, a value that does not fit, inner NULs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/query.h"
#include "net/error.h"

struct row {
    const char *query;
    const char *name;
    ssize_t rc;        /* the length, or the error */
    const char *value; /* when rc >= 0 */
};

static const struct row rows[] = {
    {"room=lobby&nick=ada", "room", 5, "lobby"},
    {"room=lobby&nick=ada", "nick", 3, "ada"},
    {"room=lobby&nick=ada", "ro", WS_ENOTFOUND, NULL},
    {"room=lobby&nick=ada", "roomx", WS_ENOTFOUND, NULL},
    {"", "room", WS_ENOTFOUND, NULL},
    /* What new URLSearchParams({q: "a b&c=d/é"}).toString() writes. */
    {"q=a+b%26c%3Dd%2F%C3%A9", "q", 10, "a b&c=d/\xc3\xa9"},
    {"n%61me=1", "name", 1, "1"},    /* names are compared decoded */
    {"a+b=1", "a b", 1, "1"},        /* "+" in a name too */
    {"x=1&x=2", "x", 1, "1"},        /* the first of repeated names */
    {"flag&x=1", "flag", 0, ""},     /* no "=": the empty value */
    {"x=&y=2", "x", 0, ""},          /* an empty value */
    {"&&x=1&", "x", 1, "1"},         /* empty pairs name nothing */
    {"x=a=b", "x", 3, "a=b"},        /* split at the first "=" */
    {"=v", "", 1, "v"},              /* the empty name */
    {"x=%zz", "x", WS_EINVAL, NULL}, /* not hex */
    {"x=%4", "x", WS_EINVAL, NULL},  /* cut short */
    {"x=%", "x", WS_EINVAL, NULL},
    {"b%zz=1&x=2", "x", 1, "2"}, /* another name's bad escape */
    {"x=%41%42", "x", 2, "AB"},
    {"x=%e2%82%ac", "x", 3, "\xe2\x82\xac"}, /* lower-case hex */
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        char out[64];
        ssize_t rc = ws_http_query_param(r->query, strlen(r->query), r->name,
                                         out, sizeof(out));

        if (rc != r->rc)
            fail_msg("%s [%s]: %zd, want %zd", r->query, r->name, rc, r->rc);
        assert_string_equal(out, rc >= 0 ? r->value : "");
    }
}

/* The value and its NUL must fit; a value that does not is not cut. */
static void test_space(void **state)
{
    char out[4];

    (void)state;
    assert_int_equal(ws_http_query_param("x=abc", 5, "x", out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(ws_http_query_param("x=abcd", 6, "x", out, 4), WS_ENOSPC);
    assert_string_equal(out, "");
    assert_int_equal(ws_http_query_param("x=", 2, "x", out, 1), 0);
    assert_int_equal(ws_http_query_param("x=a", 3, "x", out, 0), WS_EINVAL);
    assert_int_equal(ws_http_query_param(NULL, 0, "x", out, 4), WS_EINVAL);
    assert_int_equal(ws_http_query_param("x=a", 3, NULL, out, 4), WS_EINVAL);
}

/* A decoded NUL is kept; the length tells where the value ends. Only
   query[0..len) is read: what follows is not part of it. */
static void test_nul_and_length(void **state)
{
    char out[16];

    (void)state;
    assert_int_equal(ws_http_query_param("x=a%00b", 7, "x", out, 16), 3);
    assert_memory_equal(out, "a\0b", 4);
    assert_int_equal(ws_http_query_param("x=abc&y=2", 4, "x", out, 16), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(ws_http_query_param("x=abc&y=2", 9, "y", out, 16), 1);
    assert_int_equal(ws_http_query_param("x=abc&y=2", 5, "y", out, 16),
                     WS_ENOTFOUND);
    /* A "%" whose digits lie past len is cut short. */
    assert_int_equal(ws_http_query_param("x=%41", 4, "x", out, 16), WS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_space),
        cmocka_unit_test(test_nul_and_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
