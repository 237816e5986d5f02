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

struct ws_response {
    int status;
    struct ws_buf headers; /* owned: "Name: value\r\n" lines */
    struct ws_buf body;    /* owned */
    size_t max_bytes;      /* limit for headers and for body */
    bool failed;           /* a builder call ran out of memory */
};

/* Start an empty 200 response whose parts may hold max_bytes each. */
void ws_response_init(struct ws_response *res, size_t max_bytes);

/* Release the response's buffers. */
void ws_response_free(struct ws_response *res);

/*
 * Serialise res into out (status line, the application's headers,
 * Content-Length, Connection, body unless head_only). Returns 0, WS_ETOOBIG
 * or WS_ENOMEM.
 */
int ws_response_write(const struct ws_response *res, struct ws_buf *out,
                      size_t max_out, bool keep_alive, bool head_only);

#endif
