/*
 * body.c - storage for one request body: grown geometrically as bytes
 * arrive (never to a length the peer only announced, so a client that
 * declares a large body and sends none costs nothing), capped by the
 * caller's limit. No sockets; allocates only with realloc.
 */
#include "http/body.h"

#include <stdlib.h>
#include <string.h>

#include "net/error.h"

/* The first allocation: a small form or JSON document fits in it. */
#define WS_BODY_START 1024

/* The capacity to grow b to for need bytes (NUL included), at most max. */
static size_t body_next_cap(const struct ws_http_body *b, size_t need,
                            size_t max)
{
    size_t cap = b->cap > 0 ? b->cap : WS_BODY_START;

    while (cap < need && cap <= max / 2)
        cap *= 2;
    if (cap < need || cap > max)
        cap = max;
    return cap;
}

int ws_http_body_append(struct ws_http_body *b, const char *at, size_t n,
                        size_t limit, uint64_t declared)
{
    size_t need, max;
    char *p;

    if (n > limit - b->len || limit == SIZE_MAX)
        return WS_ETOOBIG;
    need = b->len + n + 1; /* and the NUL */
    if (need > b->cap) {
        /* Never more than the limit, or than what the sender declared. */
        max = limit + 1;
        if (declared < (uint64_t)max)
            max = (size_t)declared + 1;
        if (max < need)
            max = need;
        max = body_next_cap(b, need, max);
        p = realloc(b->data, max);
        if (p == NULL)
            return WS_ENOMEM;
        b->data = p;
        b->cap = max;
    }
    if (n > 0)
        memcpy(b->data + b->len, at, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void ws_http_body_free(struct ws_http_body *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
