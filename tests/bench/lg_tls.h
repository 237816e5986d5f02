/*
 * lg_tls.h - the load generator's TLS client (OpenSSL libssl 3): one
 * SSL_CTX per process, one non-blocking SSL per connection on its own
 * socket, with reads and writes shaped like recv() and sendmsg() so that
 * lg_conn.c drives plain and TLS connections alike.
 */
#ifndef WS_BENCH_LG_TLS_H
#define WS_BENCH_LG_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One connection's TLS state. */
struct lg_tls {
    SSL *ssl;              /* owned */
    uint8_t *out;          /* owned; plaintext handed to SSL_write */
    size_t out_len;        /* > 0: that SSL_write must be retried */
    bool read_wants_write; /* the last SSL_read said WANT_WRITE */
    bool write_wants_read; /* the last SSL_write said WANT_READ */
};

/*
 * The client context: TLS 1.3 with TLS_AES_128_GCM_SHA256 only (the same
 * cipher against every server), ALPN http/1.1, the server's certificate
 * checked against ca when ca is not NULL and not checked at all
 * otherwise. lean releases idle buffers (many idle connections). NULL,
 * after printing why, when OpenSSL refuses.
 */
SSL_CTX *lg_tls_ctx_new(const char *ca, bool lean);

/* Start a client session on the connected socket fd (SNI "localhost");
   NULL when out of memory. */
struct lg_tls *lg_tls_new(SSL_CTX *ctx, int fd);

/* Free t (NULL is fine); the socket is the caller's. */
void lg_tls_free(struct lg_tls *t);

/* Drive the handshake: 1 done, 0 to be called again when *want (EPOLLIN
   or EPOLLOUT) is ready, -1 failed (the reason printed, at most 3 times
   per process). */
int lg_tls_handshake(struct lg_tls *t, uint32_t *want);

/* Like recv(): bytes read, 0 at the end of the stream, or -1 with errno
   EAGAIN (call again after readiness, see lg_tls_events()) or another
   error. */
ssize_t lg_tls_read(struct lg_tls *t, void *buf, size_t n);

/*
 * Like sendmsg(): first retry the write still pending, then take up to
 * one record (16 KiB) of iov[0..n) and write it. Returns the bytes taken
 * (they are the connection's now, written or pending), or -1 with errno
 * EAGAIN (the pending write is still waiting) or another error.
 */
ssize_t lg_tls_write(struct lg_tls *t, const struct iovec *iov, int n);

/* Whether a write is pending. */
bool lg_tls_pending(const struct lg_tls *t);

/* The epoll interest TLS itself needs beyond the caller's. */
uint32_t lg_tls_events(const struct lg_tls *t);

/* The events ev as the connection should see them: writability counts as
   readability for a read that waits on a write, and the other way
   round. */
uint32_t lg_tls_remap(const struct lg_tls *t, uint32_t ev);

/* Send close_notify (RFC 8446 §6.1) without waiting for the answer. */
void lg_tls_close_notify(struct lg_tls *t);

/* "TLSv1.3 TLS_AES_128_GCM_SHA256", for the results line. */
const char *lg_tls_describe(const struct lg_tls *t, char *buf, size_t cap);

#endif
