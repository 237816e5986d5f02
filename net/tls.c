/*
 * tls.c - a server's TLS contexts: one SSL_CTX for the default certificate
 * and one per server name (SNI), all with the same settings, made from a
 * copied struct ws_tls_config and swapped as a set by a reload. Settings
 * that every context gets, and why:
 *  - renegotiation off (RFC 7540's reasons apply to a WebSocket too: a
 *    client could make the server redo the expensive half of a handshake
 *    at will);
 *  - SSL_OP_IGNORE_UNEXPECTED_EOF: browsers often close without
 *    close_notify; the WebSocket close handshake is what ends a session;
 *  - SSL_MODE_RELEASE_BUFFERS: an idle connection holds no record buffers;
 *  - partial writes and a moving write buffer: the output queue is written
 *    a record at a time and may be reallocated between retries;
 *  - read-ahead: one read() takes as many records as have arrived;
 *  - no session cache: resumption is by stateless tickets, so a server with
 *    many connections keeps no session per client; one ticket per TLS 1.3
 *    handshake, not OpenSSL's two (the second serves clients that open
 *    parallel connections; a WebSocket client reconnects one at a time,
 *    and each ticket costs an encryption and a record);
 *  - ALPN answers http/1.1 (RFC 7301) when offered.
 */
#include "net/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/error.h"

/* A context for one server name. */
struct ws_tls_named {
    char *name;
    SSL_CTX *ctx;
};

/* One set of contexts, made together from one configuration. */
struct ws_tls_set {
    SSL_CTX *ctx; /* the default certificate */
    struct ws_tls_named *names;
    size_t n_names;
};

struct ws_tls {
    struct ws_tls_set set;     /* the current set; new connections use it */
    struct ws_tls_config cfg;  /* owned copy, for a reload of the files */
    struct ws_tls_name *names; /* owned copy of cfg.names */
};

const char *ws_tls_reason(unsigned long e)
{
    const char *r;

    if (e == 0)
        return "no error reported";
    if (ERR_SYSTEM_ERROR(e))
        return strerror(ERR_GET_REASON(e));
    r = ERR_reason_error_string(e);
    return r ? r : "unknown OpenSSL error";
}

/* Write "what FILE: reason" to err, the reason being the first error
   OpenSSL queued (the cause; later ones only say where it surfaced). */
static int fail(char *err, size_t n, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();

    snprintf(err, n, "tls: %s%s%s: %s", what, file ? " " : "", file ? file : "",
             ws_tls_reason(e));
    ERR_clear_error();
    return WS_ETLS;
}

/* RFC 7301 §3.2: pick http/1.1 if offered; if not, go on without ALPN
   rather than fail a client that names only protocols we do not speak. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *pick;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&pick, outlen, ours, sizeof(ours) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = pick;
    return SSL_TLSEXT_ERR_OK;
}

/* Whether host matches pattern: equal, or "*.rest" and host is one label
   followed by ".rest" (RFC 6125 §6.4.3, the left-most label only). */
static bool name_matches(const char *pattern, const char *host)
{
    const char *dot;

    if (strcasecmp(pattern, host) == 0)
        return true;
    if (strncmp(pattern, "*.", 2) != 0)
        return false;
    dot = strchr(host, '.');
    return dot != NULL && dot != host && strcasecmp(dot, pattern + 1) == 0;
}

/* The ClientHello named a server (RFC 6066 §3): switch to its context. */
static int on_server_name(SSL *ssl, int *alert, void *arg)
{
    const struct ws_tls *t = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (host == NULL)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->set.n_names; i++) {
        if (name_matches(t->set.names[i].name, host)) {
            SSL_set_SSL_CTX(ssl, t->set.names[i].ctx);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* The protocol settings of every context (see the top of the file). */
static int set_protocol(SSL_CTX *ctx, const struct ws_tls_config *cfg,
                        char *err, size_t n)
{
    int min = cfg->min_version == WS_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;

    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                              SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (!SSL_CTX_set_min_proto_version(ctx, min))
        return fail(err, n, "min_version", NULL);
    if (cfg->ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->ciphers))
        return fail(err, n, "ciphers", cfg->ciphers);
    if (cfg->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites))
        return fail(err, n, "ciphersuites", cfg->ciphersuites);
    return 0;
}

/* Client certificates: ask for them (or insist), verified by ca_file. */
static int set_client_auth(SSL_CTX *ctx, const struct ws_tls_config *cfg,
                           char *err, size_t n)
{
    static const unsigned char sid_ctx[] = "ws";
    STACK_OF(X509_NAME) * cas;
    int mode = SSL_VERIFY_PEER;

    if (cfg->client_auth == WS_TLS_CLIENT_NONE)
        return 0;
    if (cfg->ca_file == NULL) {
        snprintf(err, n, "tls: client_auth needs a ca_file");
        return WS_EINVAL;
    }
    if (!SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL))
        return fail(err, n, "ca_file", cfg->ca_file);
    cas = SSL_load_client_CA_file(cfg->ca_file);
    if (cas == NULL)
        return fail(err, n, "ca_file", cfg->ca_file);
    SSL_CTX_set_client_CA_list(ctx, cas);
    if (cfg->client_auth == WS_TLS_CLIENT_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* A session resumed with a verified client must say whose it is. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    return 0;
}

/* Load a certificate chain and its key into ctx. */
static int set_certificate(SSL_CTX *ctx, const char *cert, const char *key,
                           char *err, size_t n)
{
    if (cert == NULL || key == NULL) {
        snprintf(err, n,
                 "tls: a certificate needs both cert_file and "
                 "key_file");
        return WS_EINVAL;
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx, cert))
        return fail(err, n, "cert_file", cert);
    if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM))
        return fail(err, n, "key_file", key);
    if (!SSL_CTX_check_private_key(ctx))
        return fail(err, n, "key_file", key);
    return 0;
}

/* One context with every setting and the given certificate. */
static int make_ctx(SSL_CTX **out, struct ws_tls *t,
                    const struct ws_tls_config *cfg, const char *cert,
                    const char *key, char *err, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc;

    *out = NULL;
    if (ctx == NULL)
        return fail(err, n, "context", NULL);
    rc = set_protocol(ctx, cfg, err, n);
    if (rc == 0)
        rc = set_client_auth(ctx, cfg, err, n);
    if (rc == 0)
        rc = set_certificate(ctx, cert, key, err, n);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    *out = ctx;
    return 0;
}

static void free_set(struct ws_tls_set *set)
{
    for (size_t i = 0; i < set->n_names; i++) {
        free(set->names[i].name);
        SSL_CTX_free(set->names[i].ctx);
    }
    free(set->names);
    SSL_CTX_free(set->ctx); /* connections hold their own references */
    *set = (struct ws_tls_set){0};
}

/* Make every context cfg asks for into set. */
static int make_set(struct ws_tls_set *set, struct ws_tls *t,
                    const struct ws_tls_config *cfg, char *err, size_t n)
{
    size_t count = 0;
    int rc;

    *set = (struct ws_tls_set){0};
    rc = make_ctx(&set->ctx, t, cfg, cfg->cert_file, cfg->key_file, err, n);
    while (rc == 0 && cfg->names && cfg->names[count].name)
        count++;
    if (rc == 0 && count > 0 &&
        (set->names = calloc(count, sizeof(*set->names))) == NULL)
        rc = WS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const struct ws_tls_name *nm = &cfg->names[i];

        set->names[i].name = strdup(nm->name);
        set->n_names = i + 1;
        rc = set->names[i].name ? make_ctx(&set->names[i].ctx, t, cfg,
                                           nm->cert_file, nm->key_file, err, n)
                                : WS_ENOMEM;
    }
    if (rc == WS_ENOMEM)
        snprintf(err, n, "tls: out of memory");
    if (rc < 0)
        free_set(set);
    return rc;
}

/* strdup that keeps NULL, reporting failure through *ok. */
static char *dup_or_null(const char *s, bool *ok)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

static void free_config(struct ws_tls *t)
{
    struct ws_tls_config *c = &t->cfg;

    free((char *)c->cert_file);
    free((char *)c->key_file);
    free((char *)c->ca_file);
    free((char *)c->ciphers);
    free((char *)c->ciphersuites);
    /* Up to the all-NULL terminator: an entry whose name failed to copy
       may still hold its file names. */
    for (size_t i = 0; t->names && (t->names[i].name || t->names[i].cert_file ||
                                    t->names[i].key_file);
         i++) {
        free((char *)t->names[i].name);
        free((char *)t->names[i].cert_file);
        free((char *)t->names[i].key_file);
    }
    free(t->names);
    t->names = NULL;
    *c = (struct ws_tls_config){0};
}

/* Copy cfg and every string it points to into t (which holds none). */
static int copy_config(struct ws_tls *t, const struct ws_tls_config *cfg)
{
    size_t count = 0;
    bool ok = true;

    t->cfg = (struct ws_tls_config){
        .cert_file = dup_or_null(cfg->cert_file, &ok),
        .key_file = dup_or_null(cfg->key_file, &ok),
        .ca_file = dup_or_null(cfg->ca_file, &ok),
        .client_auth = cfg->client_auth,
        .min_version = cfg->min_version,
        .ciphers = dup_or_null(cfg->ciphers, &ok),
        .ciphersuites = dup_or_null(cfg->ciphersuites, &ok),
    };
    while (cfg->names && cfg->names[count].name)
        count++;
    if (count > 0) {
        t->names = calloc(count + 1, sizeof(*t->names));
        ok = ok && t->names != NULL;
        for (size_t i = 0; ok && i < count; i++) {
            t->names[i].name = dup_or_null(cfg->names[i].name, &ok);
            t->names[i].cert_file = dup_or_null(cfg->names[i].cert_file, &ok);
            t->names[i].key_file = dup_or_null(cfg->names[i].key_file, &ok);
        }
        t->cfg.names = t->names;
    }
    if (!ok) {
        free_config(t);
        return WS_ENOMEM;
    }
    return 0;
}

int ws_tls_create(struct ws_tls **out, const struct ws_tls_config *cfg)
{
    struct ws_tls *t;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return WS_ENOMEM;
    if (copy_config(t, cfg) < 0) {
        free(t);
        return WS_ENOMEM;
    }
    *out = t;
    return 0;
}

bool ws_tls_loaded(const struct ws_tls *t)
{
    return t->set.ctx != NULL;
}

int ws_tls_reload(struct ws_tls *t, const struct ws_tls_config *cfg, char *err,
                  size_t n)
{
    struct ws_tls_set fresh;
    struct ws_tls kept = *t;
    int rc;

    if (cfg != NULL) {
        rc = copy_config(t, cfg);
        if (rc < 0) {
            *t = kept;
            return rc;
        }
    }
    rc = make_set(&fresh, t, &t->cfg, err, n);
    if (rc < 0) {
        if (cfg != NULL)
            free_config(t);
        *t = kept; /* the old files and contexts stay */
        return rc;
    }
    if (cfg != NULL)
        free_config(&kept);
    free_set(&t->set);
    t->set = fresh;
    return 0;
}

void ws_tls_free(struct ws_tls *t)
{
    if (t == NULL)
        return;
    free_set(&t->set);
    free_config(t);
    free(t);
}

SSL *ws_tls_new_ssl(struct ws_tls *t)
{
    return SSL_new(t->set.ctx);
}
