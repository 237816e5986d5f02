/*
 * body.h - the body of one HTTP request (RFC 7230 §3.3), kept while the
 * request is read: it grows with the bytes that arrive, never past a
 * limit, and is always NUL-terminated. No sockets.
 */
#ifndef WS_HTTP_BODY_H
#define WS_HTTP_BODY_H

#include <stddef.h>
#include <stdint.h>

struct ws_http_body {
    char *data; /* owned; NULL until the first byte, then data[len] is NUL */
    size_t len;
    size_t cap; /* bytes allocated */
};

/*
 * Append at[0..n) to b, which may hold at most limit bytes. declared is
 * the length the sender announced (Content-Length), or UINT64_MAX when it
 * is not known (chunked): the allocation never grows past it. Returns 0,
 * WS_ETOOBIG (past limit; b unchanged) or WS_ENOMEM (b unchanged).
 */
int ws_http_body_append(struct ws_http_body *b, const char *at, size_t n,
                        size_t limit, uint64_t declared);

/* Release the data; b is empty again. Safe twice. */
void ws_http_body_free(struct ws_http_body *b);

#endif
