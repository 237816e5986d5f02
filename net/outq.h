/*
 * outq.h - an output queue's shared part: blocks of bytes made once and
 * queued by reference on many connections (a published frame), in order
 * among the bytes each connection's own buffer (net/buf.h) holds. A block
 * is freed by its last release; a connection whose socket takes only part
 * of one keeps an offset into it, not a copy. The queue of references is
 * made by the first push and freed when it empties, so a connection with
 * none holds nothing but a NULL pointer.
 */
#ifndef WS_NET_OUTQ_H
#define WS_NET_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/buf.h"

/* Bytes shared by reference; single-threaded (the loop's) counts. */
struct ws_shared {
    size_t refs;
    size_t len;
    uint8_t data[];
};

/* A block for len bytes (to fill in data) with one reference, or NULL. */
struct ws_shared *ws_shared_new(size_t len);

static inline struct ws_shared *ws_shared_ref(struct ws_shared *b)
{
    b->refs++;
    return b;
}

/* Drop a reference; the last one frees the block. NULL is ignored. */
void ws_shared_release(struct ws_shared *b);

struct ws_outq; /* the references one connection has queued */

/* Queue a reference to b (taken: the queue now holds one) after every
   byte own holds now. 0 or WS_ENOMEM (nothing taken). */
int ws_outq_push(struct ws_outq **q, const struct ws_buf *own,
                 struct ws_shared *b);

/* Shared bytes queued and not yet written; 0 for no queue. */
size_t ws_outq_bytes(const struct ws_outq *q);

/* Fill at most max entries of iov with the next bytes to write, own and
   shared in their order, at most budget of them; returns the entries. */
int ws_outq_iov(const struct ws_outq *q, const struct ws_buf *own,
                struct iovec *iov, int max, size_t budget);

/* n bytes of what ws_outq_iov() gave were written: drop them from own and
   from the references, releasing each block written out; the queue is
   freed once no reference is left. */
void ws_outq_consume(struct ws_outq **q, struct ws_buf *own, size_t n);

/* Release every reference and free the queue. */
void ws_outq_free(struct ws_outq **q);

#endif
