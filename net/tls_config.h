/*
 * tls_config.h - what a TLS (wss://) server is configured with: the public
 * types of net/tls.c, included by ws/ws.h (and installed beside it, as
 * ws/net/tls_config.h). Files are PEM; every pointer is copied at create
 * time. A zero-filled struct with cert_file and key_file set is a complete
 * configuration: TLS 1.2 or later, OpenSSL's default ciphers, no client
 * certificates.
 */
#ifndef WS_NET_TLS_CONFIG_H
#define WS_NET_TLS_CONFIG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Whether clients present a certificate (verified against ca_file). */
enum ws_tls_client_auth {
    WS_TLS_CLIENT_NONE = 0, /* not asked for */
    WS_TLS_CLIENT_OPTIONAL, /* asked for; one that fails verification is
                               refused, none at all is admitted */
    WS_TLS_CLIENT_REQUIRED  /* a handshake without a valid one fails */
};

/* The oldest protocol version accepted. */
enum ws_tls_version {
    WS_TLS_DEFAULT = 0, /* TLS 1.2 */
    WS_TLS_1_2,
    WS_TLS_1_3
};

/* One certificate picked by the name a client asks for (SNI, RFC 6066
   §3): an exact host name, or "*.example.com" for one label below it,
   compared without regard to case. */
struct ws_tls_name {
    const char *name;
    const char *cert_file; /* the chain, the server's certificate first */
    const char *key_file;
};

struct ws_tls_config {
    const char *cert_file; /* the chain, the server's certificate first */
    const char *key_file;  /* its private key (unencrypted PEM) */
    const char *ca_file;   /* CAs that sign client certificates; needed
                              unless client_auth is WS_TLS_CLIENT_NONE */
    enum ws_tls_client_auth client_auth;
    enum ws_tls_version min_version;
    const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL's syntax);
                                 NULL: OpenSSL's defaults */
    const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's defaults */
    /* Certificates by server name, ended by an entry whose name is NULL;
       a client that names none of them, or no name, gets cert_file. */
    const struct ws_tls_name *names;
};

/* What a connection's TLS session is, for ws_conn_tls_info(). */
struct ws_tls_info {
    const char *version;     /* "TLSv1.3" */
    const char *cipher;      /* "TLS_AES_128_GCM_SHA256" */
    const char *server_name; /* the name the client asked for, or NULL */
    int peer_verified;       /* 1: a client certificate verified by ca_file */
    char peer_subject[256];  /* its subject in RFC 2253 form
                                ("CN=test-client,O=ws tests"); "" without */
};

#ifdef __cplusplus
}
#endif

#endif
