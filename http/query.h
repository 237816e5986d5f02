/*
 * query.h - a request's query parameters, pure (no sockets, no
 * allocation): the value of one name, percent-decoded.
 */
#ifndef WS_HTTP_QUERY_H
#define WS_HTTP_QUERY_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The value of the first parameter called name in query[0..len) (the
 * part of the request target after "?", without it), read as
 * application/x-www-form-urlencoded: "&" between pairs, "=" between name
 * and value, "+" a space, "%XX" a byte; a name without "=" has the empty
 * value. The value, decoded, goes to out[0..size) with a NUL after it (a
 * decoded %00 is kept: the length says where the value ends). Returns
 * its length, or WS_ENOTFOUND (no such name), WS_EINVAL (a bad "%"
 * escape in the value, or a NULL argument or size 0), WS_ENOSPC (the
 * value and its NUL do not fit); out holds "" after an error.
 */
ssize_t ws_http_query_param(const char *query, size_t len, const char *name,
                            char *out, size_t size);

#endif
