/*
 * buf.c - the growable byte buffer behind connection input and output
 * queues: geometric growth capped by the caller's maximum, compaction
 * before growth, overflow-checked sizes. No I/O; never grows past max.
 */
#include "net/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/error.h"

/* The smallest allocation; avoids many tiny reallocs for small messages. */
#define WS_BUF_MIN_CAP 4096

/* Release the allocation and return to the zero-filled state. */
void ws_buf_free(struct ws_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Move the unread bytes to the front so that all free space is at the
   tail. */
static void buf_compact(struct ws_buf *b)
{
    size_t size = b->len - b->off;

    if (b->off == 0)
        return;
    if (size > 0)
        memmove(b->data, b->data + b->off, size);
    b->off = 0;
    b->len = size;
}

/* The capacity to grow to: at least need, doubling the current capacity
   (at least WS_BUF_MIN_CAP), but never above max once need fits. */
static size_t buf_next_cap(size_t cap, size_t need, size_t max)
{
    size_t next = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;

    if (next < WS_BUF_MIN_CAP)
        next = WS_BUF_MIN_CAP;
    if (next > max)
        next = max;
    return next < need ? need : next;
}

/* Ensure n bytes of tail space: use it, compact, or grow within max. */
int ws_buf_reserve(struct ws_buf *b, size_t n, size_t max)
{
    size_t size = b->len - b->off;
    size_t cap;
    uint8_t *p;

    /* size + n <= max, written so that it cannot wrap. */
    if (n > max || size > max - n)
        return WS_ETOOBIG;
    if (b->cap - b->len >= n)
        return 0;
    if (b->cap >= size + n) {
        buf_compact(b);
        return 0;
    }
    cap = buf_next_cap(b->cap, size + n, max);
    /* No object may exceed PTRDIFF_MAX (pointer differences would
       overflow); refuse instead of asking malloc. */
    if (cap > PTRDIFF_MAX)
        return WS_ENOMEM;
    /* A fresh block rather than realloc: only the unread bytes are copied
       (realloc would copy the consumed prefix too), and on failure the
       buffer is left exactly as it was. */
    p = malloc(cap);
    if (p == NULL)
        return WS_ENOMEM;
    if (size > 0)
        memcpy(p, b->data + b->off, size);
    free(b->data);
    b->data = p;
    b->off = 0;
    b->len = size;
    b->cap = cap;
    return 0;
}

/* Copy n bytes to the tail, growing within max. */
int ws_buf_append(struct ws_buf *b, const void *p, size_t n, size_t max)
{
    int rc;

    rc = ws_buf_reserve(b, n, max);
    if (rc < 0)
        return rc;
    /* memcpy from or to NULL is undefined even for zero bytes. */
    if (n == 0)
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Drop n bytes from the front; an emptied buffer restarts at 0. */
/* Free an empty buffer whose allocation is larger than keep. */
void ws_buf_shrink(struct ws_buf *b, size_t keep)
{
    if (b->len != b->off || b->cap <= keep)
        return;
    ws_buf_free(b);
}
