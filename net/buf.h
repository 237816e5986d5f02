/*
 * buf.h - a growable byte buffer, used for connection input and the output
 * queue. The readable bytes are data[off..len); space after len is free.
 * Every growth is checked against a caller-given maximum.
 */
#ifndef WS_NET_BUF_H
#define WS_NET_BUF_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

struct ws_buf {
    uint8_t *data; /* owned; NULL until the first reserve */
    size_t off;    /* first unread byte */
    size_t len;    /* end of the stored bytes */
    size_t cap;    /* allocated size */
};

/* Zero-filled struct ws_buf is an empty buffer; free releases it. */
void ws_buf_free(struct ws_buf *b);

/* The accessors below run several times per message: inline. */

/* Readable bytes: len - off. */
static inline size_t ws_buf_size(const struct ws_buf *b)
{
    return b->len - b->off;
}

/* Pointer to the first readable byte (may be NULL when empty). */
static inline uint8_t *ws_buf_head(const struct ws_buf *b)
{
    return b->data ? b->data + b->off : NULL;
}

/*
 * Make room for at least n more bytes after len, moving the unread bytes to
 * the front or growing (geometrically) as needed. The readable size plus n
 * must not exceed max. Returns 0, WS_ETOOBIG (nothing changes) or
 * WS_ENOMEM.
 */
int ws_buf_reserve(struct ws_buf *b, size_t n, size_t max);

/* Free space after len (valid after a successful reserve). */
static inline uint8_t *ws_buf_tail(const struct ws_buf *b)
{
    return b->data ? b->data + b->len : NULL;
}

static inline size_t ws_buf_space(const struct ws_buf *b)
{
    return b->cap - b->len;
}

/* Mark n bytes written at the tail as stored. n <= space. */
static inline void ws_buf_commit(struct ws_buf *b, size_t n)
{
    assert(n <= b->cap - b->len);
    b->len += n;
}

/* reserve + copy + commit. Returns 0, WS_ETOOBIG or WS_ENOMEM. */
int ws_buf_append(struct ws_buf *b, const void *p, size_t n, size_t max);

/* Drop n readable bytes from the front (n <= size); an emptied buffer
   resets off and len to 0. */
static inline void ws_buf_consume(struct ws_buf *b, size_t n)
{
    assert(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len) {
        b->off = 0;
        b->len = 0;
    }
}

/* Keep only the first n readable bytes (n <= size): drop from the end. */
static inline void ws_buf_truncate(struct ws_buf *b, size_t n)
{
    assert(n <= b->len - b->off);
    b->len = b->off + n;
}

/* Drop all bytes; keep the allocation. */
static inline void ws_buf_clear(struct ws_buf *b)
{
    b->off = 0;
    b->len = 0;
}

/* Release the allocation if the buffer is empty and bigger than keep
   bytes (idle connections should not hold large buffers). */
void ws_buf_shrink(struct ws_buf *b, size_t keep);

#endif
