/*
 * outq.c - references to shared blocks, queued among a connection's own
 * bytes. Each reference records where it stands in the stream of own
 * bytes as an absolute position (own bytes consumed while the queue
 * exists, plus those waiting then), so own bytes can keep being appended
 * to their buffer and the references never split it. The references are
 * a ring that doubles when full.
 */
#include "net/outq.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/error.h"

struct ws_outq_ref {
    struct ws_shared *b;
    uint64_t at; /* own bytes that go before it, counted from the start */
};

struct ws_outq {
    struct ws_outq_ref *ring;
    uint32_t head, count, cap;
    size_t head_off; /* bytes of the first reference already written */
    size_t bytes;    /* shared bytes not yet written */
    uint64_t taken;  /* own bytes consumed since the queue was made */
};

#define RING_START 8u

struct ws_shared *ws_shared_new(size_t len)
{
    struct ws_shared *b;

    if (len > SIZE_MAX - sizeof(*b))
        return NULL;
    b = malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = len;
    return b;
}

void ws_shared_release(struct ws_shared *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

static struct ws_outq_ref *nth(const struct ws_outq *q, uint32_t i)
{
    return &q->ring[(q->head + i) % q->cap];
}

/* Double the ring, its references moved to the front in order. */
static int grow(struct ws_outq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : RING_START;
    struct ws_outq_ref *ring;

    if (cap < q->cap)
        return WS_ENOMEM;
    ring = malloc(cap * sizeof(*ring));
    if (ring == NULL)
        return WS_ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        ring[i] = *nth(q, i);
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int ws_outq_push(struct ws_outq **qp, const struct ws_buf *own,
                 struct ws_shared *b)
{
    struct ws_outq *q = *qp;

    if (q == NULL) {
        q = calloc(1, sizeof(*q));
        if (q == NULL)
            return WS_ENOMEM;
        *qp = q;
    }
    if (q->count == q->cap && grow(q) < 0) {
        if (q->count == 0)
            ws_outq_free(qp);
        return WS_ENOMEM;
    }
    *nth(q, q->count) = (struct ws_outq_ref){b, q->taken + ws_buf_size(own)};
    q->count++;
    q->bytes += b->len;
    return 0;
}

size_t ws_outq_bytes(const struct ws_outq *q)
{
    return q ? q->bytes : 0;
}

/* Add base[0..len) to iov (if anything), within budget. */
static bool add(struct iovec *iov, int *n, int max, size_t *budget,
                const uint8_t *base, size_t len)
{
    if (len > *budget)
        len = *budget;
    if (len == 0)
        return *budget > 0;
    if (*n == max)
        return false;
    iov[*n] = (struct iovec){(void *)(uintptr_t)base, len};
    (*n)++;
    *budget -= len;
    return *budget > 0;
}

int ws_outq_iov(const struct ws_outq *q, const struct ws_buf *own,
                struct iovec *iov, int max, size_t budget)
{
    const uint8_t *head = ws_buf_head(own);
    size_t own_left = ws_buf_size(own), own_pos = 0;
    int n = 0;

    for (uint32_t i = 0; q && i < q->count; i++) {
        const struct ws_outq_ref *r = nth(q, i);
        size_t before = (size_t)(r->at - q->taken) - own_pos;
        size_t skip = i == 0 ? q->head_off : 0;

        if (!add(iov, &n, max, &budget, head + own_pos, before))
            return n;
        own_pos += before;
        own_left -= before;
        if (!add(iov, &n, max, &budget, r->b->data + skip, r->b->len - skip))
            return n;
    }
    add(iov, &n, max, &budget, head + own_pos, own_left);
    return n;
}

void ws_outq_consume(struct ws_outq **qp, struct ws_buf *own, size_t n)
{
    struct ws_outq *q = *qp;

    while (q && n > 0 && q->count > 0) {
        struct ws_outq_ref *r = nth(q, 0);
        size_t before = (size_t)(r->at - q->taken);
        size_t k;

        if (before > 0) {
            k = n < before ? n : before;
            ws_buf_consume(own, k);
            q->taken += k;
        } else {
            k = r->b->len - q->head_off;
            k = n < k ? n : k;
            q->head_off += k;
            q->bytes -= k;
            if (q->head_off == r->b->len) {
                ws_shared_release(r->b);
                q->head = (q->head + 1) % q->cap;
                q->count--;
                q->head_off = 0;
            }
        }
        n -= k;
    }
    if (q && q->count == 0)
        ws_outq_free(qp);
    if (n > 0)
        ws_buf_consume(own, n);
}

void ws_outq_free(struct ws_outq **qp)
{
    struct ws_outq *q = *qp;

    if (q == NULL)
        return;
    for (uint32_t i = 0; i < q->count; i++)
        ws_shared_release(nth(q, i)->b);
    free(q->ring);
    free(q);
    *qp = NULL;
}
