/*
 * test_static.c - http/static.c: path canonicalisation rows (RFC 3986
 * §5.2.4 and §5.4 examples, every traversal trick, truncation), the MIME
 * table, and reading files from a temporary document root (symbolic links,
 * directories, FIFOs, the size limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/static.h"
#include "net/buf.h"
#include "ws/ws.h"

/* A row whose input is a string literal; its length counts inner NULs. */
#define CANON(label, in, rc, out)                                              \
    {                                                                          \
        label, in, sizeof(in) - 1, rc, out                                     \
    }

struct canon_row {
    const char *label;
    const char *in;
    size_t len;
    int rc;
    const char *out; /* when rc is 0 */
};

/* The canonical form of each path, or the error it must get. */
static const struct canon_row canon_rows[] = {
    CANON("root", "/", 0, "/"),
    CANON("plain file", "/index.html", 0, "/index.html"),
    CANON("nested file", "/css/site.css", 0, "/css/site.css"),
    CANON("RFC 3986 §5.2.4 example 1", "/a/b/c/./../../g", 0, "/a/g"),
    CANON("RFC 3986 §5.2.4 example 2, made absolute", "/mid/content=5/../6", 0,
          "/mid/6"),
    CANON("RFC 3986 §5.2.4 2B: trailing \".\" keeps the slash", "/a/b/c/.", 0,
          "/a/b/c/"),
    CANON("RFC 3986 §5.2.4 2C: trailing \"..\" keeps the slash", "/a/b/..", 0,
          "/a/"),
    CANON("RFC 3986 §5.4.1 \"./g\" from /b/c/", "/b/c/./g", 0, "/b/c/g"),
    CANON("RFC 3986 §5.4.1 \"../g\" from /b/c/", "/b/c/../g", 0, "/b/g"),
    CANON("RFC 3986 §5.4.1 \"../..\" from /b/c/", "/b/c/../..", 0, "/"),
    CANON("RFC 3986 §5.4.1 \"../../g\" from /b/c/", "/b/c/../../g", 0, "/g"),
    CANON("RFC 3986 §5.4.2 \"g.\" is a name", "/b/c/g.", 0, "/b/c/g."),
    CANON("RFC 3986 §5.4.2 \".g\" is a name", "/b/c/.g", 0, "/b/c/.g"),
    CANON("RFC 3986 §5.4.2 \"g..\" is a name", "/b/c/g..", 0, "/b/c/g.."),
    CANON("RFC 3986 §5.4.2 \"..g\" is a name", "/b/c/..g", 0, "/b/c/..g"),
    CANON("RFC 3986 §5.4.2 \"./../g\"", "/b/c/./../g", 0, "/b/g"),
    CANON("RFC 3986 §5.4.2 \"./g/.\"", "/b/c/./g/.", 0, "/b/c/g/"),
    CANON("RFC 3986 §5.4.2 \"g/./h\"", "/b/c/g/./h", 0, "/b/c/g/h"),
    CANON("RFC 3986 §5.4.2 \"g/../h\"", "/b/c/g/../h", 0, "/b/c/h"),
    CANON("three dots is a name", "/...", 0, "/..."),
    CANON("dot directory name", "/a/.b/../c", 0, "/a/c"),
    CANON("\"..\" back to the root", "/a/..", 0, "/"),
    CANON("\"//\" collapses", "//", 0, "/"),
    CANON("\"//\" collapses everywhere", "//a//b///c", 0, "/a/b/c"),
    CANON("\"//\" at the end", "/a/b//", 0, "/a/b/"),
    CANON("\"/./\"", "/./", 0, "/"),
    CANON("\"/./\" in the middle", "/a/./b/./", 0, "/a/b/"),
    CANON("trailing slash kept", "/docs/", 0, "/docs/"),
    CANON("decoded letters", "/%41%62c", 0, "/Abc"),
    CANON("decoded space", "/hello%20world.txt", 0, "/hello world.txt"),
    CANON("decoded tilde", "/%7euser", 0, "/~user"),
    CANON("plus is literal in a path", "/a+b", 0, "/a+b"),
    CANON("decoded UTF-8 bytes", "/caf%C3%A9", 0, "/caf\xc3\xa9"),
    CANON("%2e is a dot segment", "/%2e/x", 0, "/x"),
    CANON("%2e%2e inside the root", "/a/%2E%2e/b", 0, "/b"),
    CANON("%2E%2e/ inside the root", "/a/b/%2E%2e/", 0, "/a/"),
    CANON("\"..\" above the root", "/..", WS_EINVAL, NULL),
    CANON("\"../etc/passwd\"", "/../etc/passwd", WS_EINVAL, NULL),
    CANON("\"..\" twice above the root", "/a/../../b", WS_EINVAL, NULL),
    CANON("\"..\" deep above the root", "/a/b/../../../etc/passwd", WS_EINVAL,
          NULL),
    CANON("%2e%2e above the root", "/%2e%2e", WS_EINVAL, NULL),
    CANON("%2e%2e twice", "/%2e%2e/%2e%2e/etc/passwd", WS_EINVAL, NULL),
    CANON("%2E%2e/ mixed case", "/%2E%2e/", WS_EINVAL, NULL),
    CANON(".%2e half encoded", "/.%2e/etc", WS_EINVAL, NULL),
    CANON("..%2f encoded slash", "/..%2f..%2fetc/passwd", WS_EINVAL, NULL),
    CANON("%2F encoded slash, upper case", "/a%2Fb", WS_EINVAL, NULL),
    CANON("%00", "/%00", WS_EINVAL, NULL),
    CANON("%00 before an extension", "/index.html%00.js", WS_EINVAL, NULL),
    CANON("raw NUL", "/index.html\0.js", WS_EINVAL, NULL),
    CANON("raw NUL alone", "/\0", WS_EINVAL, NULL),
    CANON("backslash", "/a\\b", WS_EINVAL, NULL),
    CANON("backslash traversal", "/..\\..\\etc\\passwd", WS_EINVAL, NULL),
    CANON("%5c encoded backslash", "/..%5c..%5cetc", WS_EINVAL, NULL),
    CANON("lone %", "/%", WS_EINVAL, NULL),
    CANON("% at the end", "/a%", WS_EINVAL, NULL),
    CANON("% with one digit", "/%4", WS_EINVAL, NULL),
    CANON("% with non-hex digits", "/%zz", WS_EINVAL, NULL),
    CANON("% with one bad digit", "/%4g", WS_EINVAL, NULL),
    CANON("%% is not an escape", "/%%41", WS_EINVAL, NULL),
    CANON("empty path", "", WS_EINVAL, NULL),
    CANON("relative path", "index.html", WS_EINVAL, NULL),
    CANON("relative dot path", "../etc/passwd", WS_EINVAL, NULL),
    CANON("absolute-form URL", "http://example.com/", WS_EINVAL, NULL),
    CANON("asterisk-form", "*", WS_EINVAL, NULL),
    CANON("leading %2f", "%2fetc/passwd", WS_EINVAL, NULL),
};

/* One row, its input in an allocation of exactly its length. */
static void test_canon_row(void **state)
{
    const struct canon_row *row = *state;
    char *in = malloc(row->len ? row->len : 1);
    char *out = malloc(WS_HTTP_PATH_MAX);
    int rc;

    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, row->in, row->len);
    rc = ws_http_path_canonical(in, row->len, out, WS_HTTP_PATH_MAX);
    if (rc != row->rc)
        fail_msg("%s: rc %s, want %s", row->label, ws_errname(rc),
                 ws_errname(row->rc));
    if (rc == 0 && strcmp(out, row->out) != 0)
        fail_msg("%s: \"%s\", want \"%s\"", row->label, out, row->out);
    if (rc < 0 && out[0] != '\0')
        fail_msg("%s: out not emptied after an error", row->label);
    /* Decoding never grows a path: its own length + 1 is always room. */
    free(out);
    out = malloc(row->len + 1);
    assert_non_null(out);
    rc = ws_http_path_canonical(in, row->len, out, row->len + 1);
    if (rc != row->rc || (rc == 0 && strcmp(out, row->out) != 0))
        fail_msg("%s: differs with an exact-size output", row->label);
    free(out);
    free(in);
}

/* A path of n bytes: "/" then letters. */
static char *long_path(size_t n)
{
    char *p = malloc(n);

    assert_non_null(p);
    p[0] = '/';
    for (size_t i = 1; i < n; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

/* Truncation is refused, never silently shortened. */
static void test_canon_truncation(void **state)
{
    char out[WS_HTTP_PATH_MAX];
    char small[6];
    char *p = long_path(WS_HTTP_PATH_MAX);

    (void)state;
    /* WS_HTTP_PATH_MAX - 1 bytes and the NUL fit exactly. */
    assert_int_equal(
        ws_http_path_canonical(p, WS_HTTP_PATH_MAX - 1, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), WS_HTTP_PATH_MAX - 1);
    assert_int_equal(
        ws_http_path_canonical(p, WS_HTTP_PATH_MAX, out, sizeof(out)),
        WS_ENOSPC);
    assert_string_equal(out, "");
    free(p);
    assert_int_equal(ws_http_path_canonical("/abcd", 5, small, 6), 0);
    assert_string_equal(small, "/abcd");
    assert_int_equal(ws_http_path_canonical("/abcde", 6, small, 6), WS_ENOSPC);
    /* Checked on the decoded path, before dot segments shrink it. */
    assert_int_equal(ws_http_path_canonical("/a/../b", 7, small, 6), WS_ENOSPC);
    /* Encoded bytes count once decoded: 15 bytes become 5. */
    assert_int_equal(ws_http_path_canonical("/%61%62%63%64", 13, small, 6), 0);
    assert_string_equal(small, "/abcd");
    assert_int_equal(ws_http_path_canonical("/", 1, small, 1), WS_ENOSPC);
    assert_int_equal(ws_http_path_canonical("/", 1, small, 0), WS_ENOSPC);
    assert_int_equal(ws_http_path_canonical("/", 1, NULL, 8), WS_ENOSPC);
    assert_int_equal(ws_http_path_canonical(NULL, 0, small, 6), WS_EINVAL);
}

struct mime_row {
    const char *label;
    const char *path;
    const char *type;
};

static const struct mime_row mime_rows[] = {
    {"html", "/index.html", "text/html; charset=utf-8"},
    {"htm", "/old.htm", "text/html; charset=utf-8"},
    {"upper case", "/INDEX.HTML", "text/html; charset=utf-8"},
    {"css", "/style.css", "text/css; charset=utf-8"},
    {"js (RFC 9239)", "/app.js", "text/javascript; charset=utf-8"},
    {"mjs", "/mod.mjs", "text/javascript; charset=utf-8"},
    {"json", "/data.json", "application/json"},
    {"txt", "/robots.txt", "text/plain; charset=utf-8"},
    {"svg", "/img/logo.svg", "image/svg+xml"},
    {"png", "/screenshot.png", "image/png"},
    {"jpg", "/photo.jpg", "image/jpeg"},
    {"ico", "/favicon.ico", "image/x-icon"},
    {"woff2", "/fonts/inter.woff2", "font/woff2"},
    {"wasm", "/a.wasm", "application/wasm"},
    {"last extension counts", "/a.tar.gz", "application/octet-stream"},
    {"no extension", "/LICENSE", "application/octet-stream"},
    {"dot in a directory only", "/v1.2/README", "application/octet-stream"},
    {"empty extension", "/file.", "application/octet-stream"},
    {"directory", "/docs/", "application/octet-stream"},
    {"unknown", "/x.exe", "application/octet-stream"},
    {"html as a prefix only", "/x.htmlx", "application/octet-stream"},
    {"NULL", NULL, "application/octet-stream"},
};

/* One MIME row. */
static void test_mime_row(void **state)
{
    const struct mime_row *row = *state;
    const char *got = ws_http_mime_type(row->path);

    if (strcmp(got, row->type) != 0)
        fail_msg("%s: \"%s\", want \"%s\"", row->label, got, row->type);
}

/* The temporary tree of the file rows: dir/www is the root; dir holds a
   secret outside it. */
static char tmp_dir[64];
static char www[96];

#define BIG_SIZE 200000 /* several read chunks */

/* Write n bytes of text (or a pattern when text is NULL) to dir/name. */
static void put_file(const char *name, const char *text, size_t n)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc(text ? text[i] : (int)(i * 7 % 251), f);
    assert_int_equal(fclose(f), 0);
}

/* Make the directory dir/name. */
static void put_dir(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
}

/* Make the symbolic link dir/name pointing at target. */
static void put_link(const char *target, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    assert_int_equal(symlink(target, path), 0);
}

/* Build the tree once for every file row. */
static int tree_setup(void **state)
{
    char path[256];

    (void)state;
    strcpy(tmp_dir, "/tmp/test_static.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    snprintf(www, sizeof(www), "%s/www", tmp_dir);
    put_dir("www");
    put_dir("www/sub");
    put_dir("www/sub/deeper");
    put_dir("outside");
    put_file("secret.txt", "secret\n", 7);
    put_file("outside/index.html", "outside\n", 8);
    put_file("www/index.html", "<!doctype html><title>root</title>\n", 35);
    put_file("www/sub/index.html", "<p>sub</p>\n", 11);
    put_file("www/sub/deeper/a.txt", "deep\n", 5);
    put_file("www/empty.txt", "", 0);
    put_file("www/big.bin", NULL, BIG_SIZE);
    put_link("../secret.txt", "www/escape");
    put_link(tmp_dir, "www/dirlink-up");
    put_link("../outside", "www/dirlink");
    put_link("index.html", "www/inside-link");
    snprintf(path, sizeof(path), "%s/fifo", www);
    assert_int_equal(mkfifo(path, 0600), 0);
    return 0;
}

/* Remove the tree. */
static int tree_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct file_row {
    const char *label;
    const char *path;
    size_t max;
    int rc;
    const char *body; /* when rc is 0; NULL: the big pattern */
};

#define MAXB ((size_t)1 << 20)

static const struct file_row file_rows[] = {
    {"regular file", "/index.html", MAXB, 0,
     "<!doctype html><title>root</title>\n"},
    {"root maps to index.html", "/", MAXB, 0,
     "<!doctype html><title>root</title>\n"},
    {"directory with slash maps to its index.html", "/sub/", MAXB, 0,
     "<p>sub</p>\n"},
    {"nested file", "/sub/deeper/a.txt", MAXB, 0, "deep\n"},
    {"empty file", "/empty.txt", MAXB, 0, ""},
    {"big file in several reads", "/big.bin", MAXB, 0, NULL},
    {"big file exactly at the limit", "/big.bin", BIG_SIZE, 0, NULL},
    {"big file one byte over the limit", "/big.bin", BIG_SIZE - 1, WS_ETOOBIG,
     NULL},
    {"missing file", "/missing.html", MAXB, WS_ENOTFOUND, NULL},
    {"missing directory", "/nope/", MAXB, WS_ENOTFOUND, NULL},
    {"directory without index.html", "/sub/deeper/", MAXB, WS_ENOTFOUND, NULL},
    {"directory without slash", "/sub", MAXB, WS_ENOTFOUND, NULL},
    {"file used as a directory", "/index.html/", MAXB, WS_ENOTFOUND, NULL},
    {"symlink pointing outside", "/escape", MAXB, WS_ENOTFOUND, NULL},
    {"symlinked directory outside", "/dirlink/index.html", MAXB, WS_ENOTFOUND,
     NULL},
    {"symlinked directory's index", "/dirlink/", MAXB, WS_ENOTFOUND, NULL},
    {"symlink to the parent", "/dirlink-up/secret.txt", MAXB, WS_ENOTFOUND,
     NULL},
    {"symlink inside the root", "/inside-link", MAXB, WS_ENOTFOUND, NULL},
    {"FIFO (must not block)", "/fifo", MAXB, WS_ENOTFOUND, NULL},
    {"not canonical: ..", "/../secret.txt", MAXB, WS_EINVAL, NULL},
    {"not canonical: .", "/./index.html", MAXB, WS_EINVAL, NULL},
    {"not canonical: //", "//index.html", MAXB, WS_EINVAL, NULL},
    {"not absolute", "index.html", MAXB, WS_EINVAL, NULL},
};

/* Compare the buffer after the prefix with the row's body. */
static void check_body(const struct file_row *row, const struct ws_buf *b,
                       size_t prefix)
{
    const uint8_t *got = ws_buf_head(b) + prefix;
    size_t n = ws_buf_size(b) - prefix;

    if (row->body != NULL) {
        if (n != strlen(row->body) || memcmp(got, row->body, n) != 0)
            fail_msg("%s: %zu bytes differ", row->label, n);
        return;
    }
    if (n != BIG_SIZE)
        fail_msg("%s: %zu bytes, want %d", row->label, n, BIG_SIZE);
    for (size_t i = 0; i < n; i++)
        if (got[i] != (uint8_t)(i * 7 % 251))
            fail_msg("%s: byte %zu differs", row->label, i);
}

/* One file row, into an empty buffer and after existing bytes. */
static void test_file_row(void **state)
{
    const struct file_row *row = *state;
    struct ws_buf b = {0};
    int rc = ws_http_file_read(www, row->path, &b, row->max);

    if (rc != row->rc)
        fail_msg("%s: rc %s, want %s", row->label, ws_errname(rc),
                 ws_errname(row->rc));
    if (rc == 0)
        check_body(row, &b, 0);
    else
        assert_int_equal(ws_buf_size(&b), 0);
    /* Appending keeps what was there; an error leaves it unchanged. */
    ws_buf_clear(&b);
    assert_int_equal(ws_buf_append(&b, "xyz", 3, 3), 0);
    rc = ws_http_file_read(www, row->path, &b, row->max + 3);
    assert_int_equal(rc, row->rc);
    assert_memory_equal(ws_buf_head(&b), "xyz", 3);
    if (rc == 0)
        check_body(row, &b, 3);
    else
        assert_int_equal(ws_buf_size(&b), 3);
    ws_buf_free(&b);
}

/* Argument errors and a missing root. */
static void test_file_args(void **state)
{
    struct ws_buf b = {0};

    (void)state;
    assert_int_equal(ws_http_file_read(NULL, "/", &b, 10), WS_EINVAL);
    assert_int_equal(ws_http_file_read(www, NULL, &b, 10), WS_EINVAL);
    assert_int_equal(ws_http_file_read(www, "/", NULL, 10), WS_EINVAL);
    assert_int_equal(ws_http_file_read("/nonexistent-root-dir", "/", &b, 10),
                     WS_ENOTFOUND);
    /* A buffer already past max cannot take even an empty file. */
    assert_int_equal(ws_buf_append(&b, "abcd", 4, 4), 0);
    assert_int_equal(ws_http_file_read(www, "/empty.txt", &b, 3), WS_ETOOBIG);
    assert_int_equal(ws_http_file_read(www, "/empty.txt", &b, 4), 0);
    assert_int_equal(ws_buf_size(&b), 4);
    ws_buf_free(&b);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NCANON NELEM(canon_rows)
#define NMIME NELEM(mime_rows)
#define NFILE NELEM(file_rows)

int main(void)
{
    struct CMUnitTest tests[NCANON + NMIME + NFILE + 2] = {
        cmocka_unit_test(test_canon_truncation),
        cmocka_unit_test(test_file_args),
    };
    size_t n = 2;

    /* One named entry per row; the row is the initial state. */
    for (size_t i = 0; i < NCANON; i++) {
        struct CMUnitTest t = {canon_rows[i].label, test_canon_row, NULL, NULL,
                               (void *)&canon_rows[i]};
        tests[n++] = t;
    }
    for (size_t i = 0; i < NMIME; i++) {
        struct CMUnitTest t = {mime_rows[i].label, test_mime_row, NULL, NULL,
                               (void *)&mime_rows[i]};
        tests[n++] = t;
    }
    for (size_t i = 0; i < NFILE; i++) {
        struct CMUnitTest t = {file_rows[i].label, test_file_row, NULL, NULL,
                               (void *)&file_rows[i]};
        tests[n++] = t;
    }
    return cmocka_run_group_tests(tests, tree_setup, tree_teardown);
}
