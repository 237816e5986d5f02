/*
 * request.c - drives http-parser (HTTP_REQUEST) over bytes as they arrive,
 * copies the request line and headers into storage that grows with them up
 * to a bound, keeps the body (http/body.c), and enforces the header,
 * header-count and body limits. It never touches a socket and never
 * consumes a byte past the end of one request (RFC 7230 §3).
 */
#include "http/request.h"

#include <stdlib.h>
#include <string.h>

#include "net/error.h"

#define WS_REQ_DEFAULT_HEADER_BYTES 16384
#define WS_REQ_DEFAULT_HEADERS 100
/* First allocations: a browser's upgrade request (about 500 bytes, 12 to
   16 headers) fits in them; larger requests double them as they arrive. */
#define WS_REQ_STORAGE_START 512
#define WS_REQ_HEADERS_START 16
/* RFC 7231 §6.6.4: out of memory is an overload, not the client's fault. */
#define WS_REQ_NOMEM_STATUS 503

/* Which data callback ran last: consecutive pieces of one kind are one
   element that a feed boundary cut in two. */
enum ws_req_cb { WS_CB_NONE, WS_CB_URL, WS_CB_FIELD, WS_CB_VALUE };

/* RFC 7230 §3.2.6: tchar, the characters of a token. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 7230 §3.2.3: OWS is spaces and horizontal tabs. */
static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* True when at[0..n) holds a control character (CTL, RFC 5234 B.1) or,
   unless ws_ok, a space or tab. */
static bool has_ctl(const char *at, size_t n, bool ws_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 || c == 0x7f) && !(ws_ok && c == '\t'))
            return true;
        if (c == ' ' && !ws_ok)
            return true;
    }
    return false;
}

/* ASCII-only case-insensitive equality of two NUL-terminated strings. */
static bool ascii_case_equal(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

/* Record the HTTP status to answer and make http-parser stop. */
static int req_fail(struct ws_http_request *r, int status)
{
    r->status = status;
    return -1;
}

/* The most storage one request may take: at most max_header_bytes + 1
   bytes reach the callbacks, the target is stored twice (as sent, and as
   path and query), and each element takes a NUL. */
static size_t store_limit(const struct ws_http_request *r)
{
    return 2 * r->max_header_bytes + 2 * r->max_headers + 8;
}

/*
 * Make the allocation hold storage_len + extra bytes, doubling it (at least
 * to WS_REQ_STORAGE_START) but never past store_limit(). Returns 0, 431
 * when the limit leaves no room, or WS_REQ_NOMEM_STATUS. Growing may move
 * storage: while parsing, elements are known by their offsets only.
 */
static int store_reserve(struct ws_http_request *r, size_t extra)
{
    size_t limit = store_limit(r), need, cap;
    char *p;

    if (extra > limit - r->storage_len)
        return 431;
    need = r->storage_len + extra;
    if (need <= r->storage_cap)
        return 0;
    if (r->storage_cap == 0)
        cap = WS_REQ_STORAGE_START;
    else if (r->storage_cap <= limit / 2)
        cap = 2 * r->storage_cap;
    else
        cap = limit;
    if (cap < need)
        cap = need;
    if (cap > limit)
        cap = limit;
    p = realloc(r->storage, cap);
    if (p == NULL)
        return WS_REQ_NOMEM_STATUS;
    r->storage = p;
    r->storage_cap = cap;
    return 0;
}

/*
 * Storage holds NUL-terminated elements back to back. The open element
 * ends at storage_len, where a NUL always sits (not yet counted); closing
 * it counts that NUL. Begin an element at *off; 0 or a status.
 */
static int store_begin(struct ws_http_request *r, size_t *off)
{
    int rc = store_reserve(r, 1); /* allocates only the first time */

    if (rc != 0)
        return rc;
    r->storage[r->storage_len] = '\0';
    *off = r->storage_len;
    return 0;
}

/* Append n bytes to the open element; 0, 431 when storage is full or
   WS_REQ_NOMEM_STATUS. */
static int store_append(struct ws_http_request *r, const char *at, size_t n)
{
    int rc = store_reserve(r, n + 1);

    if (rc != 0)
        return rc;
    memcpy(r->storage + r->storage_len, at, n);
    r->storage_len += n;
    r->storage[r->storage_len] = '\0';
    return 0;
}

/* Close the open element, keeping its NUL and room for the next one's;
   0 or a status as above. */
static int store_close(struct ws_http_request *r)
{
    int rc = store_reserve(r, 2);

    if (rc != 0)
        return rc;
    r->storage_len++;
    return 0;
}

/* Make room for one more header in the array, doubling it (at least to
   WS_REQ_HEADERS_START) up to max_headers; 0 or WS_REQ_NOMEM_STATUS. */
static int headers_reserve(struct ws_http_request *r)
{
    struct ws_http_header *h;
    size_t cap;

    if (r->nfields < r->headers_cap)
        return 0;
    cap = r->headers_cap > 0 ? 2 * r->headers_cap : WS_REQ_HEADERS_START;
    if (cap > r->max_headers)
        cap = r->max_headers;
    if (cap > SIZE_MAX / sizeof(*h))
        return WS_REQ_NOMEM_STATUS;
    h = realloc(r->headers, cap * sizeof(*h));
    if (h == NULL)
        return WS_REQ_NOMEM_STATUS;
    r->headers = h;
    r->headers_cap = cap;
    return 0;
}

/* Trim OWS around the last header's value (RFC 7230 §3.2.4). */
static void value_trim(struct ws_http_request *r)
{
    struct ws_http_header *h = &r->headers[r->nfields - 1];
    char *v = r->storage + h->value_off;
    size_t len = h->value_len;

    while (len > 0 && is_ows(v[len - 1]))
        len--;
    v[len] = '\0';
    while (len > 0 && is_ows(*v)) {
        v++;
        len--;
    }
    h->value_off = (size_t)(v - r->storage);
    h->value_len = len;
}

/* RFC 7230 §3.2.4: a field name is a token; whitespace before the colon
   must be rejected with 400 (http-parser lets it through). */
static bool name_is_token(const struct ws_http_request *r,
                          const struct ws_http_header *h)
{
    const char *name = r->storage + h->name_off;

    if (h->name_len == 0)
        return false;
    for (size_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)name[i]))
            return false;
    return true;
}

/*
 * Answering limits the same way however the input was split. http-parser
 * hands a name, value or target to its callback whole when the element
 * ends inside the bytes it was given, and in pieces when the input is
 * split inside it; a piece that reaches the end of those bytes may be
 * followed by more, in which http-parser may still find a syntax error
 * (400) that a whole feed would have met before any callback. So:
 *   1. a limit met by a piece that ends before the end of the bytes (a
 *      whole element, or its last piece) is answered at once, as a whole
 *      feed would;
 *   2. a limit met by a piece that reaches the end of the bytes waits in
 *      pending_status, and the element's later pieces are not stored;
 *   3. the first later piece that ends before the end of the bytes, or
 *      the end of the headers or message, answers it.
 */
static bool piece_may_continue(const struct ws_http_request *r, const char *at,
                               size_t n)
{
    return at + n >= r->feed_end;
}

/* Step 1 or 2 above for a limit met by the piece at[0..n). */
static int limit_fail(struct ws_http_request *r, const char *at, size_t n,
                      int status)
{
    if (!piece_may_continue(r, at, n))
        return req_fail(r, status);
    if (r->pending_status == 0)
        r->pending_status = status;
    return 0;
}

/*
 * Step 3 at the start of each callback (at NULL for the end of the headers
 * or message). Returns -1 to stop, 1 to skip a further piece of the
 * over-limit element, 0 to go on.
 */
static int pending_check(struct ws_http_request *r, const char *at, size_t n)
{
    if (r->pending_status == 0)
        return 0;
    if (at != NULL && piece_may_continue(r, at, n))
        return 1;
    return req_fail(r, r->pending_status);
}

/* A piece that did not fit: a limit waits as in step 2 above; running
   out of memory ends the request at once. */
static int store_fail(struct ws_http_request *r, const char *at, size_t n,
                      int status)
{
    if (status == 431)
        return limit_fail(r, at, n, 431);
    return req_fail(r, status);
}

/* Finish whatever element the last data callback was filling. */
static int element_close(struct ws_http_request *r)
{
    int rc;

    if (r->last_cb == WS_CB_NONE)
        return 0;
    if (r->last_cb == WS_CB_VALUE)
        value_trim(r);
    if (r->last_cb == WS_CB_FIELD &&
        !name_is_token(r, &r->headers[r->nfields - 1]))
        return req_fail(r, 400);
    rc = store_close(r);
    if (rc != 0)
        return req_fail(r, rc);
    r->last_cb = WS_CB_NONE;
    return 0;
}

/* Keep n body bytes (RFC 7231 §6.5.11: 413 past the limit). declared:
   the whole body's length when Content-Length gave it, or UINT64_MAX. */
static int body_keep(struct ws_http_request *r, const char *at, size_t n,
                     uint64_t declared)
{
    int rc;

    if (n > r->max_body_bytes - r->body_bytes)
        return req_fail(r, 413);
    rc = ws_http_body_append(&r->body, at, n, r->max_body_bytes, declared);
    if (rc != 0)
        return req_fail(r, rc == WS_ENOMEM ? WS_REQ_NOMEM_STATUS : 413);
    r->body_bytes += n;
    return 0;
}

/* Count a piece of a trailer name or value like body bytes (RFC 7230
   §4.1.2: trailers may be discarded, but stay bounded). */
static int trailer_count(struct ws_http_request *r, const char *at, size_t n)
{
    int rc = pending_check(r, at, n);

    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (n > r->max_body_bytes - r->body_bytes)
        return limit_fail(r, at, n, 413);
    r->body_bytes += n;
    return 0;
}

/* http-parser: a piece of the request target. */
static int on_url(http_parser *p, const char *at, size_t n)
{
    struct ws_http_request *r = p->data;
    size_t off;
    int rc = pending_check(r, at, n);

    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (r->last_cb != WS_CB_URL) {
        /* RFC 7230 §3.1.1: the request line comes first, so the target
           is the first element, at offset 0, and there is one. */
        if (r->url_seen || r->storage_len != 0)
            return req_fail(r, 400);
        rc = store_begin(r, &off);
        if (rc != 0)
            return req_fail(r, rc);
        r->url_seen = true;
        r->url_len = 0;
        r->last_cb = WS_CB_URL;
    }
    /* RFC 7230 §3.1.1: no white space or controls in the target;
       http-parser lets tabs and form feeds through. */
    if (has_ctl(at, n, false))
        return req_fail(r, 400);
    rc = store_append(r, at, n);
    if (rc != 0)
        return store_fail(r, at, n, rc);
    r->url_len += n;
    return 0;
}

/* Start a header at a new name; -1 to stop, 1 when a limit waits. */
static int header_begin(struct ws_http_request *r, const char *at, size_t n)
{
    struct ws_http_header *h;
    size_t off;
    int rc;

    if (element_close(r) != 0)
        return -1;
    if (r->nfields >= r->max_headers)
        return limit_fail(r, at, n, 431) < 0 ? -1 : 1; /* RFC 6585 §5 */
    rc = headers_reserve(r);
    if (rc == 0)
        rc = store_begin(r, &off);
    if (rc != 0)
        return req_fail(r, rc);
    h = &r->headers[r->nfields++];
    h->name_off = off;
    h->name_len = 0;
    h->value_off = 0;
    h->value_len = 0;
    r->last_cb = WS_CB_FIELD;
    return 0;
}

/* http-parser: a piece of a header name; a new name starts a header. */
static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct ws_http_request *r = p->data;
    int rc;

    if (r->state == WS_HTTP_REQ_BODY)
        return trailer_count(r, at, n);
    rc = pending_check(r, at, n);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (r->last_cb != WS_CB_FIELD) {
        rc = header_begin(r, at, n);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    rc = store_append(r, at, n);
    if (rc != 0)
        return store_fail(r, at, n, rc);
    r->headers[r->nfields - 1].name_len += n;
    return 0;
}

/* http-parser: a piece of a header value (possibly empty). */
static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct ws_http_request *r = p->data;
    struct ws_http_header *h;
    size_t off;
    int rc;

    if (r->state == WS_HTTP_REQ_BODY)
        return trailer_count(r, at, n);
    rc = pending_check(r, at, n);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (r->nfields == 0)
        return req_fail(r, 400);
    if (r->last_cb != WS_CB_VALUE) {
        if (element_close(r) != 0)
            return -1;
        rc = store_begin(r, &off);
        if (rc != 0)
            return req_fail(r, rc);
        h = &r->headers[r->nfields - 1];
        h->value_off = off;
        h->value_len = 0;
        r->last_cb = WS_CB_VALUE;
    }
    /* RFC 7230 §3.2: field-value is VCHAR, obs-text, SP and HTAB;
       http-parser does not check the first octet of a value. */
    if (has_ctl(at, n, true))
        return req_fail(r, 400);
    rc = store_append(r, at, n);
    if (rc != 0)
        return store_fail(r, at, n, rc);
    r->headers[r->nfields - 1].value_len += n;
    return 0;
}

/* Copy storage[from..from+n) into storage as a new NUL-terminated element
   at *off; 0 or a status. */
static int store_copy(struct ws_http_request *r, size_t from, size_t n,
                      size_t *off)
{
    /* The text, its NUL and the next element's NUL. Reserve before taking
       a pointer: growing may move the source. */
    int rc = store_reserve(r, n + 2);

    if (rc != 0)
        return rc;
    *off = r->storage_len;
    memmove(r->storage + r->storage_len, r->storage + from, n);
    r->storage_len += n;
    r->storage[r->storage_len++] = '\0';
    return 0;
}

/*
 * The storage no longer moves (no element is added after the header
 * section): turn the offsets into the public pointers, url at 0, and
 * publish the headers.
 */
static void publish(struct ws_http_request *r, size_t path_off,
                    size_t query_off)
{
    r->url = r->storage;
    r->path = r->storage + path_off;
    r->query = r->storage + query_off;
    for (size_t i = 0; i < r->nfields; i++) {
        struct ws_http_header *h = &r->headers[i];
        size_t name_off = h->name_off, value_off = h->value_off;

        h->name = r->storage + name_off;
        h->value = h->value_len > 0 ? r->storage + value_off : "";
    }
    r->nheaders = r->nfields;
}

/* Split the target into path (up to '?' or '#') and query (RFC 3986 §3),
   then publish. */
static int url_split(struct ws_http_request *r)
{
    size_t path_len = strcspn(r->storage, "?#");
    size_t q = path_len, q_len = 0, path_off, query_off;
    int rc;

    if (r->storage[q] == '?') {
        q++;
        q_len = strcspn(r->storage + q, "#");
    }
    rc = store_copy(r, 0, path_len, &path_off);
    if (rc == 0)
        rc = store_copy(r, q, q_len, &query_off);
    if (rc != 0)
        return req_fail(r, rc);
    publish(r, path_off, query_off);
    return 0;
}

/* RFC 7231 §5.1.1: 100-continue is the one expectation there is; any
   other is 417, and an HTTP/1.0 client's is ignored. */
static int expect_check(struct ws_http_request *r)
{
    const char *v = ws_http_request_header(r, "Expect", 0);

    if (v == NULL || r->http_minor == 0)
        return 0;
    if (!ascii_case_equal(v, "100-continue") ||
        ws_http_request_header(r, "Expect", 1) != NULL)
        return req_fail(r, 417);
    r->expect_continue = r->has_body;
    return 0;
}

/* http-parser: the request line and headers are complete. */
static int on_headers_complete(http_parser *p)
{
    struct ws_http_request *r = p->data;

    if (pending_check(r, NULL, 0) < 0 || element_close(r) != 0)
        return -1;
    if (!r->url_seen)
        return req_fail(r, 400);
    if (url_split(r) != 0)
        return -1;
    r->method = http_method_str((enum http_method)p->method);
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->upgrade = p->upgrade != 0;
    /* RFC 7230 §2.6: HTTP/0.9 and 2.x and later are not ours to speak. */
    if (p->http_major != 1)
        return req_fail(r, 505);
    /* RFC 7230 §3.3.2: refuse a declared length over the limit before
       reading it (and before a 100 Continue would ask for it). A request
       with neither Content-Length nor chunked has content_length
       ULLONG_MAX here, and no body (§3.3.3 rule 6). */
    if ((p->flags & F_CHUNKED) == 0 && p->content_length != UINT64_MAX &&
        p->content_length > r->max_body_bytes)
        return req_fail(r, 413);
    r->has_body = (p->flags & F_CHUNKED) != 0 ||
                  (p->content_length != UINT64_MAX && p->content_length > 0);
    if (expect_check(r) != 0)
        return -1;
    r->state = WS_HTTP_REQ_BODY;
    /* Stop here so that the feed loop can count the header bytes exactly;
       it resumes the parser at once. */
    http_parser_pause(p, 1);
    return 0;
}

/* http-parser: a chunk size line (RFC 7230 §4.1); refuse early. */
static int on_chunk_header(http_parser *p)
{
    struct ws_http_request *r = p->data;

    if (pending_check(r, NULL, 0) < 0)
        return -1;
    if (p->content_length > r->max_body_bytes - r->body_bytes)
        return req_fail(r, 413);
    return 0;
}

/* http-parser: body bytes, kept. Without chunks, content_length counts
   down what is still to come after them. */
static int on_body(http_parser *p, const char *at, size_t n)
{
    struct ws_http_request *r = p->data;
    uint64_t declared = UINT64_MAX;

    if ((p->flags & F_CHUNKED) == 0)
        declared = (uint64_t)r->body.len + n + p->content_length;
    return body_keep(r, at, n, declared);
}

/* http-parser: one whole request is here; pause so nothing after it is
   consumed (the next request, or WebSocket frames after an upgrade). */
static int on_message_complete(http_parser *p)
{
    struct ws_http_request *r = p->data;

    if (pending_check(r, NULL, 0) < 0)
        return -1;
    r->keep_alive = http_should_keep_alive(p) != 0;
    r->upgrade = p->upgrade != 0;
    r->state = WS_HTTP_REQ_DONE;
    http_parser_pause(p, 1);
    return 0;
}

/* One table for every request: the callbacks find theirs through the
   parser's data field. */
static const http_parser_settings req_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Set the limits and get ready to parse; storage comes with the bytes. */
int ws_http_request_init(struct ws_http_request *r, size_t max_header_bytes,
                         size_t max_headers, size_t max_body_bytes)
{
    memset(r, 0, sizeof(*r));
    r->max_header_bytes =
        max_header_bytes ? max_header_bytes : WS_REQ_DEFAULT_HEADER_BYTES;
    r->max_headers = max_headers ? max_headers : WS_REQ_DEFAULT_HEADERS;
    r->max_body_bytes = max_body_bytes;
    /* store_limit() must not wrap, nor the body and its NUL. */
    if (r->max_header_bytes > SIZE_MAX / 8 || r->max_headers > SIZE_MAX / 8 ||
        r->max_body_bytes == SIZE_MAX)
        return WS_ENOMEM;
    ws_http_request_reset(r);
    return 0;
}

/* Release the allocations; safe twice and after a failed init. */
void ws_http_request_free(struct ws_http_request *r)
{
    free(r->headers);
    free(r->storage);
    ws_http_body_free(&r->body);
    r->headers = NULL;
    r->storage = NULL;
    r->headers_cap = 0;
    r->storage_cap = 0;
    r->storage_len = 0;
    r->nheaders = 0;
    r->nfields = 0;
}

/* Forget the request, keep the allocations, expect the next one. */
void ws_http_request_reset(struct ws_http_request *r)
{
    /* A fresh parser: the old one is paused, or dead after a request
       that asked to close. */
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->state = WS_HTTP_REQ_HEADERS;
    r->status = 0;
    r->method = NULL;
    r->url = NULL;
    r->url_len = 0;
    r->url_seen = false;
    r->path = NULL;
    r->query = NULL;
    r->http_major = 0;
    r->http_minor = 0;
    r->upgrade = false;
    r->keep_alive = false;
    r->has_body = false;
    r->expect_continue = false;
    /* A body may be large and is seldom followed by another: keep
       nothing of it while the connection waits. */
    ws_http_body_free(&r->body);
    r->nheaders = 0;
    r->nfields = 0;
    r->storage_len = 0;
    r->header_bytes = 0;
    r->body_bytes = 0;
    r->last_cb = WS_CB_NONE;
    r->pending_status = 0;
}

/* Turn a stopped parser into state ERROR with the status to answer. */
static int feed_error(struct ws_http_request *r, enum http_errno e)
{
    r->state = WS_HTTP_REQ_ERROR;
    /* What was parsed before the error depends on where the input was
       split; none of it may be used, so none of it is kept. */
    r->nheaders = 0;
    r->nfields = 0;
    ws_http_body_free(&r->body);
    if (r->status != 0)
        return WS_EHTTP; /* a callback chose it */
    /* RFC 6585 §5: http-parser's own header size cap (80 KiB) is 431. */
    r->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    return WS_EHTTP;
}

/*
 * Run http-parser once over data[0..len) and report in *n what it took.
 * While in the headers at most max_header_bytes + 1 bytes are given, so an
 * endless header is refused without reading it all (RFC 6585 §5).
 */
static int feed_step(struct ws_http_request *r, const char *data, size_t len,
                     size_t *n)
{
    bool in_headers = r->state == WS_HTTP_REQ_HEADERS;
    size_t chunk = len;
    enum http_errno e;

    if (in_headers) {
        size_t room = r->max_header_bytes - r->header_bytes;
        if (room < SIZE_MAX)
            room++;
        if (chunk > room)
            chunk = room;
    }
    r->feed_end = data + chunk;
    *n = http_parser_execute(&r->parser, &req_settings, data, chunk);
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (e != HPE_OK && e != HPE_PAUSED)
        return feed_error(r, e);
    if (in_headers) {
        /* Paused in on_headers_complete before the final LF, which the
           next step parses again: count it now. */
        r->header_bytes += *n + (r->state != WS_HTTP_REQ_HEADERS);
        if (r->header_bytes > r->max_header_bytes) {
            r->status = 431; /* RFC 6585 §5 */
            return feed_error(r, e);
        }
    }
    if (e == HPE_PAUSED && r->state == WS_HTTP_REQ_BODY)
        http_parser_pause(&r->parser, 0);
    else if (r->state != WS_HTTP_REQ_DONE && *n < chunk)
        return feed_error(r, HPE_UNKNOWN); /* never expected */
    return 0;
}

/* Parse data until one request ends, the input ends or an error. */
int ws_http_request_feed(struct ws_http_request *r, const char *data,
                         size_t len, size_t *consumed)
{
    size_t off = 0, n;
    int rc;

    *consumed = 0;
    if (r->state == WS_HTTP_REQ_ERROR)
        return WS_EHTTP;
    /* len 0 would tell http-parser the stream ended: never pass it. */
    while (off < len &&
           (r->state == WS_HTTP_REQ_HEADERS || r->state == WS_HTTP_REQ_BODY)) {
        rc = feed_step(r, data + off, len - off, &n);
        off += n;
        if (rc != 0) {
            *consumed = off;
            return rc;
        }
    }
    *consumed = off;
    return 0;
}

/* The value of the n-th header called name, or NULL. */
const char *ws_http_request_header(const struct ws_http_request *r,
                                   const char *name, size_t n)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!ascii_case_equal(r->headers[i].name, name))
            continue;
        if (n == 0)
            return r->headers[i].value;
        n--;
    }
    return NULL;
}

/* The number of headers called name. */
size_t ws_http_request_header_count(const struct ws_http_request *r,
                                    const char *name)
{
    size_t count = 0;

    for (size_t i = 0; i < r->nheaders; i++)
        if (ascii_case_equal(r->headers[i].name, name))
            count++;
    return count;
}
