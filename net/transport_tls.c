/*
 * transport_tls.c - a connection's bytes through OpenSSL: the handshake
 * runs inside the first reads (a server in accept state), records are
 * read and written through a small BIO over net/sock.c (EINTR retried, no
 * SIGPIPE), and the two ways non-blocking TLS can wait are kept apart: a
 * read that needs the socket writable (its handshake reply did not fit)
 * and a write that needs it readable. While one waits, the loop watches
 * the event it needs instead of the one the owner asked for, so a socket
 * that stays readable cannot spin the loop on a read that cannot progress.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/error.h"
#include "net/loop.h"
#include "net/sock.h"
#include "net/tls.h"

enum {
    READ_WANTS_WRITE = 1, /* SSL_read said WANT_WRITE */
    WRITE_WANTS_READ = 2, /* SSL_write said WANT_READ */
    BROKEN = 4,           /* a fatal TLS error: no close_notify */
    ESTABLISHED = 8,      /* the handshake was seen finished */
    SAW_INPUT = 16,       /* the first byte from the peer has come */
    LOOKS_HTTP = 32       /* and it was a letter: an HTTP method, no TLS */
};

/* What a TLS connection keeps besides OpenSSL's object. */
struct ws_tls_conn {
    SSL *ssl;
    int fd;
    uint32_t err;  /* OpenSSL's packed code of the failure, for why() */
    uint8_t flags; /* the enum above */
};

/* The gather buffer of writev: one record's worth (RFC 8446 §5.1). */
#define RECORD_MAX 16384

static const char plain_to_tls_reply[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
    "Content-Length: 35\r\nConnection: close\r\n\r\n"
    "This port speaks TLS: use https://\n";

/* --- the BIO: OpenSSL's bytes through net/sock.c --- */

static int bio_write(BIO *b, const char *data, size_t len, size_t *done)
{
    const struct ws_tls_conn *tc = BIO_get_data(b);
    ssize_t n = ws_net_write(tc->fd, data, len);

    BIO_clear_retry_flags(b);
    if (n >= 0) {
        *done = (size_t)n;
        return 1;
    }
    if (n == WS_EAGAIN)
        BIO_set_retry_write(b);
    else
        errno = (int)-n; /* SSL_ERROR_SYSCALL reads errno */
    return 0;
}

static int bio_read(BIO *b, char *data, size_t len, size_t *done)
{
    struct ws_tls_conn *tc = BIO_get_data(b);
    ssize_t n = ws_net_read(tc->fd, data, len);

    BIO_clear_retry_flags(b);
    if (n > 0) {
        /* A TLS record starts with its type (20-24, RFC 8446 §5.1), an
           HTTP request with a method's capital letter: remember which,
           for the answer when OpenSSL gives up (it names only some
           methods itself). */
        if (!(tc->flags & SAW_INPUT) && data[0] >= 'A' && data[0] <= 'Z')
            tc->flags |= LOOKS_HTTP;
        tc->flags |= SAW_INPUT;
        *done = (size_t)n;
        return 1;
    }
    if (n == WS_EAGAIN)
        BIO_set_retry_read(b);
    else if (n < 0)
        errno = (int)-n;
    return 0; /* 0 with no retry flag: the end of the stream */
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;

/* The BIO method, made once for the process (OpenSSL's own once). */
static void make_bio_method(void)
{
    bio_method =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ws socket");
    if (bio_method == NULL)
        return;
    BIO_meth_set_write_ex(bio_method, bio_write);
    BIO_meth_set_read_ex(bio_method, bio_read);
    BIO_meth_set_ctrl(bio_method, bio_ctrl);
    BIO_meth_set_create(bio_method, bio_create);
}

static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

/* --- the transport --- */

static int tls_open(struct ws_transport *t, int fd, void *ctx)
{
    struct ws_tls_conn *tc;
    BIO *bio;

    if (!CRYPTO_THREAD_run_once(&bio_once, make_bio_method) ||
        bio_method == NULL)
        return WS_ENOMEM;
    tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return WS_ENOMEM;
    tc->ssl = ws_tls_new_ssl(ctx);
    bio = tc->ssl ? BIO_new(bio_method) : NULL;
    if (bio == NULL) {
        SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        return WS_ENOMEM;
    }
    tc->fd = fd;
    BIO_set_data(bio, tc);
    SSL_set_bio(tc->ssl, bio, bio);
    SSL_set_accept_state(tc->ssl);
    t->fd = fd;
    t->state = tc;
    return 0;
}

/* A plain HTTP request where a ClientHello belongs (any method): say so
   in HTTP, which is what the sender speaks (a TLS alert would reach
   nobody). */
static void answer_plain_request(const struct ws_transport *t)
{
    ws_net_write(t->fd, plain_to_tls_reply, sizeof(plain_to_tls_reply) - 1);
}

/*
 * What a call that returned ret <= 0 means: WS_EAGAIN (with the flag of
 * the event it waits for set or cleared), 0 for the peer's close_notify
 * or end of stream, -errno for a socket error, or WS_ETLS (the reason kept
 * for why()).
 */
static ssize_t outcome(struct ws_transport *t, int ret, int wants_other)
{
    struct ws_tls_conn *tc = t->state;
    int e = SSL_get_error(tc->ssl, ret);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (SSL_is_init_finished(tc->ssl))
            tc->flags |= ESTABLISHED;
        /* The other event is needed exactly when a read wants a write or
           a write wants a read. */
        if ((e == SSL_ERROR_WANT_WRITE) == (wants_other == READ_WANTS_WRITE))
            tc->flags |= (uint8_t)wants_other;
        else
            tc->flags &= (uint8_t)~wants_other;
        return WS_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        tc->flags |= BROKEN;
        ERR_clear_error();
        return errno != 0 ? -errno : 0;
    default:
        tc->flags |= BROKEN;
        tc->err = (uint32_t)ERR_peek_error();
        if ((tc->flags & LOOKS_HTTP) && !(tc->flags & ESTABLISHED))
            answer_plain_request(t);
        ERR_clear_error();
        return WS_ETLS;
    }
}

static ssize_t tls_read(struct ws_transport *t, void *buf, size_t len)
{
    struct ws_tls_conn *tc = t->state;
    int n;

    /* SSL_get_error() reads this thread's error queue: an error left
       there by anyone (the application's own use of libcrypto, say)
       would make a mere WANT_READ look fatal. */
    ERR_clear_error();
    errno = 0;
    n = SSL_read(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) {
        tc->flags &= (uint8_t)~READ_WANTS_WRITE;
        tc->flags |= ESTABLISHED;
        return n;
    }
    return outcome(t, n, READ_WANTS_WRITE);
}

/* Several pieces go out as one record: up to RECORD_MAX bytes of them are
   gathered, unless the first alone fills a record. A retry after
   WS_EAGAIN brings the same bytes at their new place (moving buffer). */
static ssize_t tls_writev(struct ws_transport *t, const struct iovec *iov,
                          int n)
{
    struct ws_tls_conn *tc = t->state;
    unsigned char gather[RECORD_MAX];
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    int w;

    if (n > 1 && len < RECORD_MAX) {
        len = 0;
        for (int i = 0; i < n && len < RECORD_MAX; i++) {
            size_t take = iov[i].iov_len < RECORD_MAX - len ? iov[i].iov_len
                                                            : RECORD_MAX - len;

            memcpy(gather + len, iov[i].iov_base, take);
            len += take;
        }
        p = gather;
    }
    if (len == 0)
        return 0;
    ERR_clear_error(); /* as for SSL_read */
    errno = 0;
    w = SSL_write(tc->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
    if (w > 0) {
        tc->flags &= (uint8_t)~WRITE_WANTS_READ;
        return w;
    }
    return outcome(t, w, WRITE_WANTS_READ);
}

/* close_notify (RFC 8446 §6.1), best effort, then our FIN. */
static int tls_shutdown(struct ws_transport *t)
{
    struct ws_tls_conn *tc = t->state;

    ERR_clear_error();
    if (!(tc->flags & BROKEN) && SSL_is_init_finished(tc->ssl))
        SSL_shutdown(tc->ssl);
    ERR_clear_error();
    return ws_net_shutdown(t->fd, SHUT_WR);
}

/* Decrypted bytes not yet read, or a record's bytes read from the socket
   but not yet decrypted (read-ahead): either way readiness is over. */
static size_t tls_pending(const struct ws_transport *t)
{
    const struct ws_tls_conn *tc = t->state;
    int n = SSL_pending(tc->ssl);

    if (n > 0)
        return (size_t)n;
    return SSL_has_pending(tc->ssl) ? 1 : 0;
}

/* A record at a time (SSL_read returns at most one), on into the next
   piece while OpenSSL holds more: a short count means it holds nothing
   more (its read-ahead took what the socket had). A failure after some bytes is
   left for the next call, which meets it again; the bytes so far go first. */
static ssize_t tls_readv(struct ws_transport *t, const struct iovec *iov, int n)
{
    size_t got = 0;

    for (int i = 0; i < n; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t off = 0;

        while (off < iov[i].iov_len) {
            ssize_t r;

            if (got > 0 && tls_pending(t) == 0)
                return (ssize_t)got;
            r = tls_read(t, p + off, iov[i].iov_len - off);
            if (r <= 0)
                return got > 0 ? (ssize_t)got : r;
            off += (size_t)r;
            got += (size_t)r;
        }
    }
    return (ssize_t)got;
}

static int tls_events(const struct ws_transport *t, int want)
{
    const struct ws_tls_conn *tc = t->state;
    int ev = 0;

    if (want & WS_IO_READ)
        ev |= (tc->flags & READ_WANTS_WRITE) ? WS_IO_WRITE : WS_IO_READ;
    if (want & WS_IO_WRITE)
        ev |= (tc->flags & WRITE_WANTS_READ) ? WS_IO_READ : WS_IO_WRITE;
    return ev;
}

/* Socket readiness as the owner's: writable lets a waiting read go on,
   readable a waiting write. */
static int tls_ready(const struct ws_transport *t, int events)
{
    const struct ws_tls_conn *tc = t->state;
    int ev = 0;

    if (events & WS_IO_READ)
        ev |= (tc->flags & WRITE_WANTS_READ) ? WS_IO_WRITE | WS_IO_READ
                                             : WS_IO_READ;
    if (events & WS_IO_WRITE)
        ev |= (tc->flags & READ_WANTS_WRITE) ? WS_IO_READ | WS_IO_WRITE
                                             : WS_IO_WRITE;
    return ev;
}

static void tls_why(const struct ws_transport *t, char *buf, size_t n)
{
    const struct ws_tls_conn *tc = t->state;
    long verify = SSL_get_verify_result(tc->ssl);
    /* Not SSL_is_init_finished(): a fatal error puts OpenSSL's state
       machine back in its initial state. */
    const char *stage = (tc->flags & ESTABLISHED) ? "" : "handshake: ";

    if (verify != X509_V_OK)
        snprintf(buf, n, "%s%s (%s)", stage, ws_tls_reason(tc->err),
                 X509_verify_cert_error_string(verify));
    else
        snprintf(buf, n, "%s%s", stage, ws_tls_reason(tc->err));
}

static void tls_close(struct ws_transport *t)
{
    struct ws_tls_conn *tc = t->state;

    if (tc) {
        SSL_free(tc->ssl); /* and its BIO */
        free(tc);
    }
    t->state = NULL;
    if (t->fd >= 0)
        ws_net_close(t->fd);
    t->fd = -1;
}

const struct ws_transport_ops ws_transport_tls = {
    .name = "tls",
    .open = tls_open,
    .readv = tls_readv,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .pending = tls_pending,
    .events = tls_events,
    .ready = tls_ready,
    .why = tls_why,
    .close = tls_close,
};

/* The subject of the verified client certificate, one line (RFC 2253). */
static void peer_subject(SSL *ssl, char *buf, size_t n)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    BIO *mem;
    int len;

    buf[0] = '\0';
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return;
    if (X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0,
                           XN_FLAG_RFC2253) >= 0) {
        len = BIO_read(mem, buf, (int)n - 1);
        buf[len > 0 ? len : 0] = '\0';
    }
    BIO_free(mem);
}

void ws_tls_conn_info(const struct ws_transport *t, struct ws_tls_info *info)
{
    SSL *ssl = ((const struct ws_tls_conn *)t->state)->ssl;

    info->version = SSL_get_version(ssl);
    info->cipher = SSL_get_cipher_name(ssl);
    info->server_name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    peer_subject(ssl, info->peer_subject, sizeof(info->peer_subject));
    info->peer_verified = info->peer_subject[0] != '\0';
    ERR_clear_error();
}
