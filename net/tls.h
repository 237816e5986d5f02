/*
 * tls.h - TLS (OpenSSL libssl) for a server's connections: the contexts
 * made from a struct ws_tls_config (net/tls_config.h), reloadable while
 * connections run, and the transport that encrypts a connection's bytes
 * behind net/transport.h (transport_tls.c). Knows nothing of HTTP or
 * WebSocket. Internal to the library.
 */
#ifndef WS_NET_TLS_H
#define WS_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/tls_config.h"
#include "net/transport.h"

struct ws_tls; /* a server's contexts: the default and one per name */

/* Keep a copy of cfg; the files are read by the first ws_tls_reload().
   0 or WS_ENOMEM. */
int ws_tls_create(struct ws_tls **out, const struct ws_tls_config *cfg);

/* Make the contexts from cfg (NULL: the files of the configuration kept,
   read again), for the connections accepted from now on; open ones keep
   theirs. 0, WS_ENOMEM, WS_EINVAL (settings that cannot work) or WS_ETLS,
   with "tls: FIELD FILE: OpenSSL's reason" in err[0..n); on failure
   nothing changes. */
int ws_tls_reload(struct ws_tls *t, const struct ws_tls_config *cfg, char *err,
                  size_t n);

/* Whether a reload has made the contexts. */
bool ws_tls_loaded(const struct ws_tls *t);

void ws_tls_free(struct ws_tls *t);

/* tls.c, for transport_tls.c: a new server-side SSL object on the current
   default context, or NULL. */
SSL *ws_tls_new_ssl(struct ws_tls *t);

/* tls.c: OpenSSL's reason for packed error code e ("tlsv1 alert unknown
   ca"; for a system error, the C library's text). */
const char *ws_tls_reason(unsigned long e);

/* The TLS transport; the server's ctx is its struct ws_tls. */
extern const struct ws_transport_ops ws_transport_tls;

/* What the TLS session of t (a connection on ws_transport_tls) is. */
void ws_tls_conn_info(const struct ws_transport *t, struct ws_tls_info *info);

#endif
