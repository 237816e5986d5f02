/*
 * request_api.c - the public accessors of a parsed request and the builder
 * of plain HTTP responses for on_http. No sockets: responses are written
 * into the connection's output buffer by the caller.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/handshake.h"
#include "http/query.h"
#include "http/static.h"
#include "ws/request_api.h"
#include "ws/ws.h"

const char *ws_request_method(const struct ws_request *r)
{
    return r->http->method ? r->http->method : "";
}

const char *ws_request_path(const struct ws_request *r)
{
    return r->http->path ? r->http->path : "";
}

const char *ws_request_query(const struct ws_request *r)
{
    return r->http->query ? r->http->query : "";
}

ssize_t ws_request_param(const struct ws_request *r, const char *name,
                         char *out, size_t size)
{
    const char *q;

    if (r == NULL)
        return WS_EINVAL;
    q = ws_request_query(r);
    return ws_http_query_param(q, strlen(q), name, out, size);
}

const char *ws_request_header(const struct ws_request *r, const char *name)
{
    return ws_http_request_header(r->http, name, 0);
}

size_t ws_request_header_count(const struct ws_request *r)
{
    return r->http->nheaders;
}

int ws_request_header_at(const struct ws_request *r, size_t i,
                         const char **name, const char **value)
{
    if (i >= r->http->nheaders)
        return WS_EINVAL;
    *name = r->http->headers[i].name;
    *value = r->http->headers[i].value;
    return 0;
}

const char *ws_request_peer(const struct ws_request *r)
{
    return r->peer;
}

const void *ws_request_body(const struct ws_request *r, size_t *len)
{
    const struct ws_http_body *b = r != NULL ? &r->http->body : NULL;

    if (len != NULL)
        *len = b != NULL ? b->len : 0;
    /* "" when there is none, so that a text body is always a string. */
    return b != NULL && b->data != NULL ? b->data : "";
}

void ws_response_init(struct ws_response *res, size_t max_bytes)
{
    memset(res, 0, sizeof(*res));
    res->status = 200;
    res->max_bytes = max_bytes;
}

void ws_response_init_upgrade(struct ws_response *res, size_t max_bytes,
                              const struct ws_http_request *r)
{
    ws_response_init(res, max_bytes);
    res->upgrade = r;
}

void ws_response_free(struct ws_response *res)
{
    ws_buf_free(&res->headers);
    ws_buf_free(&res->body);
}

int ws_response_status(struct ws_response *res, int status)
{
    if (res == NULL || status < 100 || status > 599)
        return WS_EINVAL;
    if (res->upgrade != NULL)
        return WS_ESTATE; /* on_upgrade's return value is the status */
    res->status = status;
    return 0;
}

/* True when s is a valid HTTP token (RFC 7230 §3.2.6 tchar). */
static bool is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (!(ch >= '0' && ch <= '9') && !(ch >= 'a' && ch <= 'z') &&
            !(ch >= 'A' && ch <= 'Z') && strchr(extra, ch) == NULL)
            return false;
    }
    return true;
}

/* The library writes these itself; the application may not. In a 101
   or a refusal of an upgrade, that includes the handshake's own (RFC 6455
   §4.2.2 step 5; Sec-WebSocket-Protocol through ws_response_protocol()). */
static bool is_reserved_header(const struct ws_response *res, const char *name)
{
    if (strcasecmp(name, "Content-Length") == 0 ||
        strcasecmp(name, "Connection") == 0 ||
        strcasecmp(name, "Transfer-Encoding") == 0)
        return true;
    return res->upgrade != NULL &&
           (strcasecmp(name, "Upgrade") == 0 ||
            strncasecmp(name, "Sec-WebSocket-", 14) == 0);
}

int ws_response_header(struct ws_response *res, const char *name,
                       const char *value)
{
    int rc;

    if (res == NULL || name == NULL || value == NULL || !is_token(name))
        return WS_EINVAL;
    /* Response splitting: no CR or LF may reach the wire from a value. */
    if (strpbrk(value, "\r\n") != NULL || is_reserved_header(res, name))
        return WS_EINVAL;
    rc = ws_buf_append(&res->headers, name, strlen(name), res->max_bytes);
    if (rc == 0)
        rc = ws_buf_append(&res->headers, ": ", 2, res->max_bytes);
    if (rc == 0)
        rc = ws_buf_append(&res->headers, value, strlen(value), res->max_bytes);
    if (rc == 0)
        rc = ws_buf_append(&res->headers, "\r\n", 2, res->max_bytes);
    if (rc < 0)
        res->failed = true;
    res->has_location |= rc == 0 && strcasecmp(name, "Location") == 0;
    res->has_type |= rc == 0 && strcasecmp(name, "Content-Type") == 0;
    return rc;
}

int ws_response_protocol(struct ws_response *res, const char *name)
{
    if (res == NULL)
        return WS_EINVAL;
    if (res->upgrade == NULL)
        return WS_ESTATE; /* on_http: there is no subprotocol */
    /* RFC 6455 §4.2.2 /subprotocol/: one of the client's, or none. */
    if (name != NULL && (strlen(name) > WS_RESPONSE_PROTOCOL_MAX ||
                         !ws_handshake_offers_protocol(res->upgrade, name)))
        return WS_EINVAL;
    snprintf(res->protocol, sizeof(res->protocol), "%s", name ? name : "");
    res->protocol_set = true;
    return 0;
}

int ws_response_body(struct ws_response *res, const void *data, size_t len)
{
    int rc;

    if (res == NULL || (data == NULL && len > 0))
        return WS_EINVAL;
    ws_buf_clear(&res->body);
    rc = ws_buf_append(&res->body, data, len, res->max_bytes);
    if (rc < 0)
        res->failed = true;
    return rc;
}

int ws_response_write(const struct ws_response *res, struct ws_buf *out,
                      size_t max_out, bool keep_alive, bool head_only)
{
    char head[256];
    size_t body = ws_buf_size(&res->body);
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n", res->status,
                     ws_http_reason(res->status));
    int rc = ws_buf_append(out, head, (size_t)n, max_out);

    if (rc == 0)
        rc = ws_buf_append(out, ws_buf_head(&res->headers),
                           ws_buf_size(&res->headers), max_out);
    if (rc < 0)
        return rc;
    n = snprintf(head, sizeof(head),
                 "Content-Length: %zu\r\nConnection: %s\r\n\r\n", body,
                 keep_alive ? "keep-alive" : "close");
    rc = ws_buf_append(out, head, (size_t)n, max_out);
    if (rc == 0 && !head_only)
        rc = ws_buf_append(out, ws_buf_head(&res->body), body, max_out);
    return rc;
}

/* Append the parts of a refusal of an upgrade that the library owns:
   Content-Length and Connection, and for a 426 what RFC 7231 §6.5.15 and
   RFC 6455 §4.4 ask (Upgrade, listed in Connection, RFC 7230 §6.7). */
static int refusal_tail(const struct ws_response *res, struct ws_buf *out,
                        size_t max_out)
{
    char tail[160];
    int n = snprintf(tail, sizeof(tail), "%sContent-Length: %zu\r\n%s\r\n",
                     res->status == 426 ? "Upgrade: websocket\r\n"
                                          "Sec-WebSocket-Version: 13\r\n"
                                        : "",
                     ws_buf_size(&res->body),
                     res->status == 426 ? "Connection: Upgrade, close\r\n"
                                        : "Connection: close\r\n");

    return ws_buf_append(out, tail, (size_t)n, max_out);
}

int ws_response_write_refusal(struct ws_response *res, int status,
                              struct ws_buf *out, size_t max_out)
{
    char text[64];
    int n, rc = 0;

    res->status = status;
    if (ws_buf_size(&res->body) == 0) {
        n = snprintf(text, sizeof(text), "%d %s\n", status,
                     ws_http_reason(status));
        if (!res->has_type)
            rc = ws_response_header(res, "Content-Type",
                                    "text/plain; charset=utf-8");
        if (rc == 0)
            rc = ws_response_body(res, text, (size_t)n);
    }
    n = snprintf(text, sizeof(text), "HTTP/1.1 %d %s\r\n", status,
                 ws_http_reason(status));
    if (rc == 0)
        rc = ws_buf_append(out, text, (size_t)n, max_out);
    if (rc == 0)
        rc = ws_buf_append(out, ws_buf_head(&res->headers),
                           ws_buf_size(&res->headers), max_out);
    if (rc == 0)
        rc = refusal_tail(res, out, max_out);
    if (rc == 0)
        rc = ws_buf_append(out, ws_buf_head(&res->body),
                           ws_buf_size(&res->body), max_out);
    return rc;
}

/* Answer status with a short text body ("404 Not Found"). */
static int file_status(struct ws_response *res, int status)
{
    char text[64];
    int n =
        snprintf(text, sizeof(text), "%d %s\n", status, ws_http_reason(status));
    int rc;

    res->status = status;
    rc = ws_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    if (rc == 0)
        rc = ws_response_body(res, text, (size_t)n);
    return rc;
}

/* Read the file at the canonical path into the body; set the headers. */
static int file_body(struct ws_response *res, const char *root,
                     const char *path)
{
    int rc;

    ws_buf_clear(&res->body);
    rc = ws_http_file_read(root, path, &res->body, res->max_bytes);
    if (rc == WS_ENOTFOUND)
        return file_status(res, 404);
    if (rc == WS_ESYS)
        return file_status(res, 500);
    if (rc < 0) {
        /* WS_ETOOBIG, WS_ENOMEM: answer 500 if the caller goes on. */
        int st = file_status(res, 500);

        return st == WS_ENOMEM ? st : rc;
    }
    res->status = 200;
    if (path[strlen(path) - 1] == '/')
        path = "index.html"; /* what ws_http_file_read() served */
    /* The path decides the type, so a browser must not sniff another. */
    rc = ws_response_header(res, "Content-Type", ws_http_mime_type(path));
    if (rc == 0)
        rc = ws_response_header(res, "X-Content-Type-Options", "nosniff");
    return rc;
}

int ws_response_file(struct ws_response *res, const struct ws_request *req,
                     const char *root)
{
    char path[WS_HTTP_PATH_MAX];
    const char *method, *raw;
    int rc;

    if (res == NULL || req == NULL || root == NULL)
        return WS_EINVAL;
    if (res->upgrade != NULL)
        return WS_ESTATE;
    method = ws_request_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        /* RFC 7231 §6.5.5: a 405 lists the methods that would work. */
        rc = file_status(res, 405);
        return rc == 0 ? ws_response_header(res, "Allow", "GET, HEAD") : rc;
    }
    /* Decode and canonicalise before anything touches the file system. */
    raw = ws_request_path(req);
    rc = ws_http_path_canonical(raw, strlen(raw), path, sizeof(path));
    if (rc == WS_ENOSPC)
        return file_status(res, 414); /* RFC 7231 §6.5.12 */
    if (rc < 0)
        return file_status(res, 400);
    return file_body(res, root, path);
}
