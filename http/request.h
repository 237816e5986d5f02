/*
 * request.h - drives the nodejs http-parser over bytes as they arrive and
 * fills a bounded request struct. No sockets: the caller feeds bytes.
 */
#ifndef WS_HTTP_REQUEST_H
#define WS_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "http/body.h"

/*
 * One header. Storage may move while the header section arrives, so the
 * parser keeps offsets into it (name_off, value_off) and turns them into
 * the pointers once the section is complete; nheaders stays 0 until then,
 * so that no caller can meet an offset.
 */
struct ws_http_header {
    union {
        const char *name; /* NUL-terminated, in the request's own storage */
        size_t name_off;  /* request.c only, before the end of the headers */
    };
    union {
        const char *value; /* NUL-terminated, surrounding spaces trimmed */
        size_t value_off;  /* request.c only, before the end of the headers */
    };
    size_t name_len;
    size_t value_len;
};

enum ws_http_request_state {
    WS_HTTP_REQ_HEADERS, /* reading the request line and headers */
    WS_HTTP_REQ_BODY,    /* headers done, reading a body */
    WS_HTTP_REQ_DONE,    /* a whole request is here */
    WS_HTTP_REQ_ERROR    /* see status */
};

struct ws_http_request {
    http_parser parser; /* parser.data points back here */
    enum ws_http_request_state state;
    int status; /* on error: the HTTP status to answer (400, 413,
                   417, 431, 501, 503, 505) */
    size_t max_header_bytes;
    size_t max_headers;
    size_t max_body_bytes;

    /* Filled when state is DONE (the strings live in storage); url, path,
       query and nheaders are NULL or 0 until the headers are complete: */
    const char *method; /* "GET", from http_method_str */
    const char *url;    /* the request target as sent */
    size_t url_len;
    const char *path;  /* url up to '?' or '#' (NUL-terminated copy) */
    const char *query; /* after '?', up to '#'; "" if none */
    unsigned short http_major, http_minor;
    bool upgrade;    /* http-parser saw Upgrade (or CONNECT) */
    bool keep_alive; /* http_should_keep_alive() */
    bool url_seen;   /* the target (always at storage offset 0) began */
    /* From the end of the headers on: a body follows (Content-Length
       above 0, or the chunked transfer coding, RFC 7230 §3.3.3). */
    bool has_body;
    /* From the end of the headers on: the client waits for 100 Continue
       before it sends the body (RFC 7231 §5.1.1). The caller that sends
       the 100 clears it; reset clears it too. */
    bool expect_continue;
    struct ws_http_header *headers; /* owned; headers_cap entries */
    size_t nheaders;
    size_t nfields;     /* headers parsed so far, published as nheaders */
    size_t headers_cap; /* grows on demand up to max_headers */

    /* Owned storage for url, path, query and header text, allocated at the
       first byte and grown geometrically as text arrives, never beyond
       2 * max_header_bytes + 2 * max_headers + 8 bytes. Kept by reset. */
    char *storage;
    size_t storage_len;
    size_t storage_cap;  /* bytes allocated */
    size_t header_bytes; /* bytes of request line + headers seen */
    size_t body_bytes;   /* body and trailer bytes, against the limit */
    /* The body (without chunk framing or trailers), complete when state
       is DONE; allocated as it arrives and freed by reset and free. */
    struct ws_http_body body;
    int last_cb; /* which callback ran last, to join split data */
    /* A limit met by a piece that may not be a whole element (see
       request.c): the status to answer once the element is complete. */
    int pending_status;
    const char *feed_end; /* end of the bytes given to http-parser now */
};

/*
 * Set the limits for one request (zero means the default: 16384 header
 * bytes, 100 headers; but 0 body bytes means no body). Allocates nothing:
 * storage, the headers array and the body come with the bytes that need
 * them. Returns 0, or WS_ENOMEM for limits whose storage size would not
 * fit a size_t.
 */
int ws_http_request_init(struct ws_http_request *r, size_t max_header_bytes,
                         size_t max_headers, size_t max_body_bytes);

/* Release the storage, the headers array and the body; safe twice. */
void ws_http_request_free(struct ws_http_request *r);

/* Forget the current request and start parsing the next one (keep-alive),
   keeping the allocations of the headers but freeing the body. */
void ws_http_request_reset(struct ws_http_request *r);

/*
 * Feed len bytes. Returns the number of bytes consumed (>= 0). Parsing
 * stops right after the end of one request: then state is DONE and bytes
 * after the returned count belong to what follows (the first WebSocket
 * frames after an upgrade, or the next pipelined request). On a malformed
 * or over-limit request, state becomes ERROR, status tells the HTTP answer
 * (431 for too many header bytes or headers, 413 for a body over the
 * limit, as soon as a Content-Length or chunk size says so, 417 for an
 * Expect other than 100-continue, 505 for an HTTP major version other
 * than 1, 503 when growing the storage, the headers array or the body ran
 * out of memory, 400 otherwise), and WS_EHTTP is returned. After the
 * headers (state BODY or DONE) headers, has_body and expect_continue are
 * set; state BODY at the end of the input means the body is still to
 * come.
 */
int ws_http_request_feed(struct ws_http_request *r, const char *data,
                         size_t len, size_t *consumed);

/* The value of the n-th (from 0) header named name (case-insensitive), or
   NULL. */
const char *ws_http_request_header(const struct ws_http_request *r,
                                   const char *name, size_t n);

/* How many headers are named name. */
size_t ws_http_request_header_count(const struct ws_http_request *r,
                                    const char *name);

#endif
