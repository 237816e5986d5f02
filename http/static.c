/*
 * static.c - static files without sockets: percent-decoding and
 * canonicalisation of request paths and the MIME table (pure: no
 * allocation, no system call), and reading one regular file under a
 * document root. Nothing may reach the file system before a path has been
 * canonicalised, and no symbolic link below the root is ever followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/static.h"
#include "http/hex.h"
#include "net/error.h"

#define READ_CHUNK 65536

/*
 * Steps 1-4 of ws_http_path_canonical(): decode path into out.
 *   1. The path must be absolute: origin-form (RFC 7230 §5.3.1) starts
 *      with "/".
 *   2. "%" must be followed by two hex digits (RFC 3986 §2.1); decode it.
 *      An encoded "/" (%2f) is refused: it would turn one segment into two
 *      after decoding, which is how "..%2f" escapes naive servers.
 *   3. NUL (raw or %00) ends a C string early ("/index.html%00.js"), and
 *      backslash is a separator on other systems: both are refused.
 *   4. The decoded path plus its NUL must fit in out: never truncate.
 * Decoding never makes the text longer, so step 5 works in place.
 */
static int decode_path(const char *path, size_t len, char *out, size_t out_size,
                       size_t *out_len)
{
    size_t i = 0, n = 0;

    if (len == 0 || path[0] != '/')
        return WS_EINVAL;
    while (i < len) {
        char ch = path[i++];

        if (ch == '%') {
            int hi = len - i >= 2 ? ws_http_hex_digit(path[i]) : -1;
            int lo = hi >= 0 ? ws_http_hex_digit(path[i + 1]) : -1;

            if (lo < 0)
                return WS_EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
            if (ch == '/')
                return WS_EINVAL;
        }
        if (ch == '\0' || ch == '\\')
            return WS_EINVAL;
        if (n + 1 >= out_size)
            return WS_ENOSPC;
        out[n++] = ch;
    }
    out[n] = '\0';
    *out_len = n;
    return 0;
}

/*
 * Step 5 of ws_http_path_canonical(): resolve the segments of the decoded
 * absolute path buf[0..len) in place (RFC 3986 §5.2.4 remove_dot_segments,
 * except that ".." above the root is an error, as in OpenBSD httpd).
 *   a. An empty segment ("//") is dropped.
 *   b. A "." segment is dropped.
 *   c. A ".." segment drops the last segment written; with none, refuse.
 *   d. Any other segment is copied, with its "/" when one follows.
 * buf[0..w) is the result so far and ends in "/" unless the path does;
 * w never passes r, so the copy never overwrites unread input.
 */
static int resolve_segments(char *buf, size_t len)
{
    size_t r = 1, w = 1;

    while (r < len) {
        size_t end = r;

        while (end < len && buf[end] != '/')
            end++;
        if (end - r == 2 && buf[r] == '.' && buf[r + 1] == '.') {
            if (w == 1)
                return WS_EINVAL;
            w--;
            while (buf[w - 1] != '/')
                w--;
        } else if (end > r && !(end - r == 1 && buf[r] == '.')) {
            memmove(buf + w, buf + r, end - r);
            w += end - r;
            if (end < len)
                buf[w++] = '/';
        }
        r = end + 1;
    }
    buf[w] = '\0';
    return 0;
}

int ws_http_path_canonical(const char *path, size_t len, char *out,
                           size_t out_size)
{
    size_t n = 0;
    int rc;

    if (out == NULL || out_size == 0)
        return WS_ENOSPC;
    if (path == NULL)
        rc = WS_EINVAL;
    else
        rc = decode_path(path, len, out, out_size, &n);
    if (rc == 0)
        rc = resolve_segments(out, n);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, /* RFC 9239 §6 */
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"webmanifest", "application/manifest+json"},
    {"pdf", "application/pdf"},
};

const char *ws_http_mime_type(const char *path)
{
    const char *slash, *dot;

    if (path == NULL)
        return "application/octet-stream";
    slash = strrchr(path, '/');
    dot = strrchr(slash ? slash : path, '.');
    if (dot == NULL)
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
        if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
            return mime_types[i].type;
    return "application/octet-stream";
}

/* The WS_E* code for a failed open() or openat(). */
static int open_error(int err)
{
    if (err == ENOMEM)
        return WS_ENOMEM;
    if (err == EMFILE || err == ENFILE)
        return WS_ESYS;
    return WS_ENOTFOUND; /* ENOENT, ENOTDIR, ELOOP (a symlink), EACCES... */
}

/*
 * Copy the next segment of a canonical path at *p into name and advance
 * *p past it; a final empty segment (a trailing "/") names index.html.
 * Returns 1 when more segments follow, 0 for the last one, or WS_EINVAL.
 */
static int next_segment(const char **p, char *name, size_t size)
{
    const char *slash = strchr(*p, '/');
    size_t n = slash ? (size_t)(slash - *p) : strlen(*p);

    if (slash == NULL && n == 0) {
        strcpy(name, "index.html");
        return 0;
    }
    /* Only canonical paths: no empty, "." or ".." segment. */
    if (n == 0 || n >= size || (n == 1 && **p == '.') ||
        (n == 2 && (*p)[0] == '.' && (*p)[1] == '.'))
        return WS_EINVAL;
    memcpy(name, *p, n);
    name[n] = '\0';
    *p += slash ? n + 1 : n;
    return slash != NULL;
}

/*
 * Open canonical below root, one component at a time, so that O_NOFOLLOW
 * covers every component and not only the last. The file itself is opened
 * with O_NONBLOCK: a FIFO would otherwise block the loop in open() before
 * fstat() could refuse it. Returns a descriptor or a WS_E* code.
 */
static int open_beneath(const char *root, const char *canonical)
{
    char name[NAME_MAX + 1];
    const char *p = canonical + 1;
    int dir = open(root, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    int more = 1;

    if (dir < 0)
        return open_error(errno);
    while (more == 1) {
        int fd, flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;

        more = next_segment(&p, name, sizeof(name));
        if (more < 0) {
            close(dir);
            return more;
        }
        flags |= more ? O_DIRECTORY : O_NONBLOCK;
        fd = openat(dir, name, flags);
        if (fd < 0)
            fd = open_error(errno);
        close(dir);
        dir = fd;
        if (fd < 0)
            break;
    }
    return dir;
}

/* Append everything left in fd to out, keeping its size within max. */
static int read_all(int fd, struct ws_buf *out, size_t max)
{
    for (;;) {
        size_t room = max - ws_buf_size(out);
        size_t chunk = room < READ_CHUNK ? room : READ_CHUNK;
        char probe;
        ssize_t n;
        int rc;

        /* Full: only an end of file now keeps the file within max. */
        if (chunk == 0) {
            do
                n = read(fd, &probe, 1);
            while (n < 0 && errno == EINTR);
            return n < 0 ? WS_ESYS : n == 0 ? 0 : WS_ETOOBIG;
        }
        rc = ws_buf_reserve(out, chunk, max);
        if (rc < 0)
            return rc;
        n = read(fd, ws_buf_tail(out), chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? WS_ESYS : 0;
        ws_buf_commit(out, (size_t)n);
    }
}

/* Check that fd is a regular file that fits, then read it into out. */
static int read_regular(int fd, struct ws_buf *out, size_t max)
{
    struct stat st;
    size_t before = ws_buf_size(out);
    int rc;

    if (fstat(fd, &st) < 0)
        return WS_ESYS;
    if (!S_ISREG(st.st_mode))
        return WS_ENOTFOUND;
    /* Refuse before reading anything when the size already says so. */
    if (before > max || (uintmax_t)st.st_size > max - before)
        return WS_ETOOBIG;
    rc = ws_buf_reserve(out, (size_t)st.st_size, max);
    if (rc == 0)
        rc = read_all(fd, out, max);
    if (rc < 0)
        out->len = out->off + before; /* drop a partial file */
    return rc;
}

int ws_http_file_read(const char *root, const char *canonical,
                      struct ws_buf *out, size_t max)
{
    int fd, rc;

    if (root == NULL || canonical == NULL || out == NULL || canonical[0] != '/')
        return WS_EINVAL;
    fd = open_beneath(root, canonical);
    if (fd < 0)
        return fd;
    rc = read_regular(fd, out, max);
    close(fd);
    return rc;
}
