/*
 * tls_echo.c - the benchmark's TLS ceiling: raw_echo's loop (peer_loop.c)
 * with OpenSSL on each connection and no WebSocket, so what a wss server
 * costs beyond this is the protocol's and its own, not TLS's.
 *   tls_echo --tls-cert FILE --tls-key FILE [--host H] [--port P]
 * It reads every record that has arrived (read-ahead: whole socket
 * buffers, and no read only to hear EAGAIN) and echoes them with one
 * SSL_write; it keeps no buffer for an idle connection
 * (SSL_MODE_RELEASE_BUFFERS), no session cache, and sends one session
 * ticket per handshake. A handshake or read that needs to write first (a
 * full socket buffer, which a loopback peer's first flight never meets)
 * ends the connection: the loop waits for writability only with bytes of
 * its own.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/peers/peer_loop.h"

#define BUF_SIZE (256u << 10)
#define RECORD 16384u /* the most one SSL_read returns (RFC 8446 §5.1) */

static SSL_CTX *ctx;
static SSL **ssls; /* owned; indexed by fd, NULL when none */
static size_t nssls;
static unsigned char *shared_buf; /* owned: every connection reads here */

/* fd's session, made on first use; NULL when out of memory. */
static SSL *ssl_of(int fd)
{
    if ((size_t)fd >= nssls) {
        size_t n = (size_t)fd * 2 + 16;
        SSL **t = realloc(ssls, n * sizeof(*t));

        if (t == NULL)
            return NULL;
        memset(t + nssls, 0, (n - nssls) * sizeof(*t));
        ssls = t;
        nssls = n;
    }
    if (ssls[fd] == NULL) {
        ssls[fd] = SSL_new(ctx);
        if (ssls[fd] == NULL || !SSL_set_fd(ssls[fd], fd)) {
            SSL_free(ssls[fd]);
            ssls[fd] = NULL;
            return NULL;
        }
        SSL_set_accept_state(ssls[fd]);
    }
    return ssls[fd];
}

static void on_drop(int fd)
{
    if ((size_t)fd >= nssls)
        return;
    SSL_free(ssls[fd]);
    ssls[fd] = NULL;
    ERR_clear_error(); /* a failed session must not confuse the next */
}

/* SSL_write for peer_loop: partial writes, and a retry may come from a
   moved buffer (peer_loop keeps the rest in its own). */
static ssize_t tls_write(int fd, const void *buf, size_t n)
{
    SSL *ssl = ssls[fd];
    int rc = SSL_write(ssl, buf, n > RECORD * 64 ? (int)(RECORD * 64) : (int)n);

    if (rc > 0)
        return rc;
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_WANT_READ: /* TLS 1.3 has no renegotiation: not seen */
        errno = EAGAIN;
        return -1;
    default:
        errno = EPIPE;
        return -1;
    }
}

/* Echo the n bytes gathered in shared_buf. */
static int echo(struct ws_peer *p, int fd, size_t n)
{
    struct iovec iov = {shared_buf, n};

    return n == 0 ? 0 : ws_peer_send(p, fd, &iov, 1);
}

/* fd is readable: finish the handshake, then echo every record that came.
   Reading on past a blocked write is bounded by what the load generator
   keeps in flight, and it stops only with nothing left in OpenSSL that
   epoll cannot see. */
static int on_read(struct ws_peer *p, int fd)
{
    SSL *ssl = ssl_of(fd);
    size_t have = 0;

    if (ssl == NULL)
        return -1;
    if (!SSL_is_init_finished(ssl)) {
        int rc = SSL_do_handshake(ssl);

        if (rc != 1)
            return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    for (;;) {
        int n = SSL_read(ssl, shared_buf + have, (int)(BUF_SIZE - have));

        if (n <= 0) {
            int err = SSL_get_error(ssl, n);

            if (err != SSL_ERROR_WANT_READ)
                return -1; /* close_notify, EOF or a failure */
            return echo(p, fd, have);
        }
        have += (size_t)n;
        if (BUF_SIZE - have < RECORD) {
            if (echo(p, fd, have) < 0)
                return -1;
            have = 0;
        }
        /* Nothing left in OpenSSL's buffer: what the socket still holds
           wakes epoll (level-triggered) again, and a read that would only
           say EAGAIN is saved. */
        if (!SSL_has_pending(ssl))
            return echo(p, fd, have);
    }
}

/* The server context from the PEM files; NULL after printing why. */
static SSL_CTX *make_ctx(const char *cert, const char *key)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());

    if (c == NULL || SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(c, 1);
    /* What a server that offers resumption and keeps no state does: one
       ticket per handshake (OpenSSL sends two unasked), no cache. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 1);
    return c;
}

int main(int argc, char **argv)
{
    struct ws_peer_ops ops = {
        .read = on_read, .drop = on_drop, .write = tls_write};
    const char *cert = NULL, *key = NULL;
    int rc;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tls-cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--tls-key") == 0)
            key = argv[i + 1];
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "usage: tls_echo --tls-cert FILE --tls-key FILE "
                        "[--host H] [--port P]\n");
        return 2;
    }
    ctx = make_ctx(cert, key);
    shared_buf = malloc(BUF_SIZE);
    if (ctx == NULL || shared_buf == NULL)
        return 1;
    rc = ws_peer_run(argc, argv, "tls_echo", &ops);
    SSL_CTX_free(ctx);
    return rc;
}
