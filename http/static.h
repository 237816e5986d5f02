/*
 * static.h - the file-system side of serving static files, with no
 * sockets: pure percent-decoding and canonicalisation of a request path,
 * a pure MIME type lookup, and reading one regular file under a document
 * root into a growable buffer.
 */
#ifndef WS_HTTP_STATIC_H
#define WS_HTTP_STATIC_H

#include <stddef.h>

#include "net/buf.h"

/* The size of a canonical path buffer; a longer path is refused (414). */
#define WS_HTTP_PATH_MAX 2048

/*
 * Percent-decode path[0..len) (RFC 3986 §2.1) and canonicalise it into
 * out[0..out_size) as a NUL-terminated absolute path: no "." or ".."
 * segments, no "//", a trailing "/" kept. Pure: never allocates and never
 * touches the file system. Returns 0, or:
 *   WS_EINVAL  malformed: not starting with "/", a raw or encoded NUL, a
 *              backslash, an encoded "/" (%2f), a bad %-escape, or a ".."
 *              that would climb above the root (answer 400);
 *   WS_ENOSPC  the decoded path does not fit in out (answer 414).
 * out holds an empty string after an error.
 */
int ws_http_path_canonical(const char *path, size_t len, char *out,
                           size_t out_size);

/*
 * The Content-Type for the extension of path's last segment, compared
 * case-insensitively ("text/html; charset=utf-8" for ".html");
 * "application/octet-stream" when unknown. Pure; static storage.
 */
const char *ws_http_mime_type(const char *path);

/*
 * Open root + canonical (a result of ws_http_path_canonical()) one
 * component at a time with O_NOFOLLOW, so no symbolic link is followed
 * below root, and append the whole file to out, whose readable size may
 * not pass max. A canonical path ending in "/" names its index.html.
 * Returns 0, or:
 *   WS_ENOTFOUND  nothing there, a symbolic link, a directory or another
 *                 non-regular file, or no permission (answer 404);
 *   WS_ETOOBIG    the file would take out past max (out is unchanged);
 *   WS_EINVAL     a NULL argument, or a path that is not canonical;
 *   WS_ESYS       a read error (answer 500);
 *   WS_ENOMEM.
 * On error, out keeps its previous contents.
 */
int ws_http_file_read(const char *root, const char *canonical,
                      struct ws_buf *out, size_t max);

#endif
