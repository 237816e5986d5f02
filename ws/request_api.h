/*
 * request_api.h - what stands behind the opaque struct ws_request and
 * struct ws_response of the public API. Internal to the library.
 */
#ifndef WS_REQUEST_API_H
#define WS_REQUEST_API_H

#include <stdbool.h>

#include "http/request.h"
#include "net/buf.h"

struct ws_request {
    const struct ws_http_request *http; /* not owned */
    const char *peer;                   /* not owned */
};

/* The longest subprotocol name ws_response_protocol() takes; as for
   cfg.protocols, it fits the 101's buffer. */
#define WS_RESPONSE_PROTOCOL_MAX 128

struct ws_response {
    int status;
    struct ws_buf headers; /* owned: "Name: value\r\n" lines */
    struct ws_buf body;    /* owned */
    size_t max_bytes;      /* limit for headers and for body */
    bool failed;           /* a builder call ran out of memory */
    /* For on_upgrade (else NULL): the request, whose offered
       subprotocols ws_response_protocol() checks. Not owned. */
    const struct ws_http_request *upgrade;
    bool has_location; /* a Location header was added (a redirect) */
    bool has_type;     /* a Content-Type header was added */
    bool protocol_set; /* ws_response_protocol() was called */
    char protocol[WS_RESPONSE_PROTOCOL_MAX + 1]; /* its pick; "" none */
};

/* Start an empty 200 response whose parts may hold max_bytes each. */
void ws_response_init(struct ws_response *res, size_t max_bytes);

/* Start an empty response for on_upgrade to fill, for the request r. */
void ws_response_init_upgrade(struct ws_response *res, size_t max_bytes,
                              const struct ws_http_request *r);

/* Release the response's buffers. */
void ws_response_free(struct ws_response *res);

/*
 * Serialise res into out (status line, the application's headers,
 * Content-Length, Connection, body unless head_only). Returns 0, WS_ETOOBIG
 * or WS_ENOMEM.
 */
int ws_response_write(const struct ws_response *res, struct ws_buf *out,
                      size_t max_out, bool keep_alive, bool head_only);

/*
 * Serialise res, filled by on_upgrade, as the refusal with status (300 to
 * 599): the application's headers and body, or a short text body when it
 * set none ("401 Unauthorized\n"), and "Connection: close". Returns 0,
 * WS_ETOOBIG or WS_ENOMEM (out may then hold part of it: truncate).
 */
int ws_response_write_refusal(struct ws_response *res, int status,
                              struct ws_buf *out, size_t max_out);

#endif
