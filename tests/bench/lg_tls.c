/*
 * lg_tls.c - the load generator's TLS client: see lg_tls.h. OpenSSL owns
 * the socket's bytes here (SSL_set_fd); this file only turns its
 * WANT_READ/WANT_WRITE answers into errno EAGAIN and epoll interest, and
 * keeps what an SSL_write must be retried with. Never blocks.
 */
#include "lg_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define OUT_CAP 16384u /* one TLS record of plaintext (RFC 8446 §5.1) */
#define MAX_REPORTS 3  /* one line per failure would flood the pipe */

static int reported; /* failures described on stderr so far */

/* Print OpenSSL's reason for a failure (a few times), then forget it:
   the error queue is per thread and a stale entry would make the next
   connection's SSL_get_error() lie. */
static void report(const char *what)
{
    unsigned long e = ERR_peek_error();

    if (reported++ < MAX_REPORTS) {
        char msg[256];

        ERR_error_string_n(e, msg, sizeof(msg));
        fprintf(stderr, "loadgen: tls %s: %s\n", what,
                e ? msg : strerror(errno));
    }
    ERR_clear_error();
}

SSL_CTX *lg_tls_ctx_new(const char *ca, bool lean)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto fail;
    /* One cipher for every server: each would otherwise pick its own. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
        goto fail;
    if (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        goto fail;
    SSL_CTX_set_verify(ctx, ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    /* A server that closes without close_notify ends the stream, as a
       browser sees it, instead of failing the read. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Read whole socket buffers, not a record header and then its body:
       the client should cost little. lg_tls_read's callers read until
       EAGAIN, so nothing waits unseen in OpenSSL's buffer. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (lean)
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
fail:
    report("context");
    SSL_CTX_free(ctx);
    return NULL;
}

struct lg_tls *lg_tls_new(SSL_CTX *ctx, int fd)
{
    struct lg_tls *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || !SSL_set_fd(t->ssl, fd) ||
        !SSL_set_tlsext_host_name(t->ssl, "localhost") ||
        !SSL_set1_host(t->ssl, "localhost")) {
        report("session");
        lg_tls_free(t);
        return NULL;
    }
    SSL_set_connect_state(t->ssl);
    return t;
}

void lg_tls_free(struct lg_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t->out);
    free(t);
}

int lg_tls_handshake(struct lg_tls *t, uint32_t *want)
{
    int rc = SSL_do_handshake(t->ssl);

    if (rc == 1)
        return 1;
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = EPOLLIN;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        *want = EPOLLOUT;
        return 0;
    default:
        report("handshake");
        return -1;
    }
}

/* errno for an SSL_ERROR_* that ends the connection, the queue cleared. */
static ssize_t failed(int err, const char *what)
{
    if (err != SSL_ERROR_SYSCALL || errno == 0)
        errno = EPROTO;
    report(what);
    return -1;
}

ssize_t lg_tls_read(struct lg_tls *t, void *buf, size_t n)
{
    int want = n > INT32_MAX ? INT32_MAX : (int)n;
    int rc = SSL_read(t->ssl, buf, want);
    int err;

    t->read_wants_write = false;
    if (rc > 0)
        return rc;
    err = SSL_get_error(t->ssl, rc);
    switch (err) {
    case SSL_ERROR_WANT_WRITE:
        /* Say a key update or ticket answer is stuck: retry on EPOLLOUT. */
        t->read_wants_write = true;
        /* fall through */
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return failed(err, "read");
    }
}

/* Retry the pending SSL_write with the same bytes and length, as OpenSSL
   requires. 1 done, 0 still pending (errno EAGAIN), -1 failed. */
static int push(struct lg_tls *t)
{
    int rc = SSL_write(t->ssl, t->out, (int)t->out_len);
    int err;

    t->write_wants_read = false;
    if (rc > 0) {
        t->out_len = 0; /* without partial writes, all of it */
        return 1;
    }
    err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        t->write_wants_read = err == SSL_ERROR_WANT_READ;
        errno = EAGAIN;
        return 0;
    }
    return (int)failed(err, "write");
}

ssize_t lg_tls_write(struct lg_tls *t, const struct iovec *iov, int n)
{
    size_t took = 0;
    int rc;

    if (t->out_len > 0 && (rc = push(t)) <= 0)
        return -1;
    if (t->out == NULL && n > 0) {
        /* Only now: idle connections never write after the upgrade. */
        t->out = malloc(OUT_CAP);
        if (t->out == NULL)
            return -1;
    }
    /* Small frames gathered into one record, as the plain path gathers
       them into one sendmsg(). */
    for (int i = 0; i < n && took < OUT_CAP; i++) {
        size_t k =
            iov[i].iov_len < OUT_CAP - took ? iov[i].iov_len : OUT_CAP - took;

        memcpy(t->out + took, iov[i].iov_base, k);
        took += k;
    }
    if (took == 0)
        return 0;
    t->out_len = took;
    return push(t) < 0 ? -1 : (ssize_t)took;
}

bool lg_tls_pending(const struct lg_tls *t)
{
    return t != NULL && t->out_len > 0;
}

uint32_t lg_tls_events(const struct lg_tls *t)
{
    uint32_t ev = 0;

    if (t == NULL)
        return 0;
    if (t->read_wants_write || (t->out_len > 0 && !t->write_wants_read))
        ev |= EPOLLOUT;
    if (t->write_wants_read)
        ev |= EPOLLIN;
    return ev;
}

uint32_t lg_tls_remap(const struct lg_tls *t, uint32_t ev)
{
    if (t == NULL)
        return ev;
    if (t->read_wants_write && (ev & EPOLLOUT))
        ev |= EPOLLIN;
    if (t->write_wants_read && (ev & EPOLLIN))
        ev |= EPOLLOUT;
    return ev;
}

void lg_tls_close_notify(struct lg_tls *t)
{
    if (SSL_shutdown(t->ssl) < 0)
        ERR_clear_error(); /* the server closing first is no failure */
}

const char *lg_tls_describe(const struct lg_tls *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl));
    return buf;
}
