/*
 * handshake.c - the server side of the RFC 6455 §4.2 opening handshake:
 * checks a parsed request, computes Sec-WebSocket-Accept and writes the 101
 * and error responses into the caller's buffer. Pure: no I/O, no malloc, no
 * clock; SHA-1 and base64 come from libcrypto.
 */
#include "http/handshake.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "net/error.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WS_GUID_LEN (sizeof(WS_GUID) - 1)
#define WS_KEY_MAX 128

/* RFC 7230 §3.2.3: OWS is spaces and horizontal tabs. */
static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* An ASCII letter folded to lower case; other bytes unchanged. */
static unsigned char ascii_lower(char c)
{
    unsigned char u = (unsigned char)c;

    return (u >= 'A' && u <= 'Z') ? (unsigned char)(u - 'A' + 'a') : u;
}

/* ASCII-only case-insensitive equality of a[0..n) and b[0..n). */
static bool ascii_case_equal_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/* RFC 7230 §3.2.6: a token is one or more tchar. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z');
        if (!alnum && strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return false;
    }
    return true;
}

/* Walk the elements of a #rule list and compare each with token, with
   ASCII case folded or (fold false) exactly. */
static bool list_find(const char *value, size_t len, const char *token,
                      bool fold)
{
    size_t tlen, i = 0;

    if (value == NULL || token == NULL || (tlen = strlen(token)) == 0)
        return false;
    /* RFC 7230 §7: #element => [ element ] *( OWS "," OWS [ element ] ). */
    while (i <= len) {
        size_t start, end;

        while (i < len && is_ows(value[i]))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && is_ows(value[end - 1]))
            end--;
        if (end - start == tlen &&
            (fold ? ascii_case_equal_n(value + start, token, tlen)
                  : memcmp(value + start, token, tlen) == 0))
            return true;
        i++; /* past the comma, or past the end */
    }
    return false;
}

bool ws_http_list_has_token(const char *value, size_t len, const char *token)
{
    return list_find(value, len, token, true);
}

/* True when name is the header h's name, compared case-insensitively. */
static bool header_is(const struct ws_http_header *h, const char *name)
{
    size_t n = strlen(name);

    return h->name_len == n && ascii_case_equal_n(h->name, name, n);
}

/* True when any header called name lists token. */
static bool headers_have_token(const struct ws_http_request *r,
                               const char *name, const char *token)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];
        if (header_is(h, name) &&
            ws_http_list_has_token(h->value, h->value_len, token))
            return true;
    }
    return false;
}

/* The only header called name, or NULL when there is none or several. */
static const struct ws_http_header *
header_single(const struct ws_http_request *r, const char *name)
{
    const struct ws_http_header *found = NULL;

    for (size_t i = 0; i < r->nheaders; i++) {
        if (!header_is(&r->headers[i], name))
            continue;
        if (found != NULL)
            return NULL;
        found = &r->headers[i];
    }
    return found;
}

/* RFC 6455 §4.2.1 item 3: does any Upgrade header name websocket? */
bool ws_handshake_is_upgrade(const struct ws_http_request *r)
{
    return r != NULL && headers_have_token(r, "Upgrade", "websocket");
}

/* RFC 4648 §4: a character of the base64 alphabet (padding excluded). */
static bool is_base64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * RFC 6455 §4.2.1 item 5: the key is the base64 of 16 bytes. Checked
 * strictly, because EVP_DecodeBlock accepts '=' anywhere and ignores
 * padding:
 *   1. exactly 24 characters: 22 of the alphabet and "==" (RFC 4648 §4);
 *   2. EVP_DecodeBlock yields 18 bytes, the last two from the padding;
 *   3. the 4 bits the padding hides are zero (RFC 4648 §3.5, canonical).
 */
static bool key_is_valid(const char *key, size_t len)
{
    unsigned char raw[18];

    if (len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64(key[i]))
            return false;
    if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return false;
    return raw[16] == 0 && raw[17] == 0;
}

/* RFC 6455 §4.2.1 items 1-4: method, version, Host, Upgrade, Connection. */
static int check_request_line(const struct ws_http_request *r)
{
    if (strcmp(r->method, "GET") != 0)
        return 405; /* item 1: "an HTTP/1.1 or higher GET request" */
    if (r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1))
        return 400; /* item 1 */
    /* RFC 7231 §4.3.1: a GET's body has no meaning, and after this
       request the bytes are frames (RFC 6455 §4.1): a body is refused,
       not read as the first frame or skipped. */
    if (r->has_body)
        return 400;
    if (header_single(r, "Host") == NULL)
        return 400; /* item 2; RFC 7230 §5.4: exactly one Host */
    if (!headers_have_token(r, "Upgrade", "websocket"))
        return 400; /* item 3 */
    if (!headers_have_token(r, "Connection", "Upgrade"))
        return 400; /* item 4; RFC 7230 §6.1: any Connection header */
    return 0;
}

/* RFC 6455 §4.2.1: the checks in the order the status depends on. */
int ws_handshake_check(const struct ws_http_request *r, const char **key,
                       size_t *key_len)
{
    const struct ws_http_header *k, *v;
    int status;

    if (r == NULL || key == NULL || key_len == NULL ||
        (r->state != WS_HTTP_REQ_DONE && r->state != WS_HTTP_REQ_BODY) ||
        r->method == NULL)
        return WS_EINVAL;
    status = check_request_line(r);
    if (status != 0)
        return status;
    k = header_single(r, "Sec-WebSocket-Key");
    if (k == NULL || !key_is_valid(k->value, k->value_len))
        return 400; /* item 5 */
    v = header_single(r, "Sec-WebSocket-Version");
    if (v == NULL || strcmp(v->value, "13") != 0)
        return 426; /* item 6 and §4.4 */
    *key = k->value;
    *key_len = k->value_len;
    return 0;
}

/* Hash the key with the GUID and base64 the digest. */
int ws_handshake_accept_key(const char *key, size_t key_len,
                            char out[WS_ACCEPT_KEY_LEN + 1])
{
    unsigned char buf[WS_KEY_MAX + WS_GUID_LEN];
    unsigned char digest[SHA_DIGEST_LENGTH];

    if ((key == NULL && key_len > 0) || out == NULL || key_len > WS_KEY_MAX)
        return WS_EINVAL;
    /* RFC 6455 §4.2.2 step 5.4: base64(SHA-1(key + GUID)). */
    if (key_len > 0)
        memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, WS_GUID_LEN);
    SHA1(buf, key_len + WS_GUID_LEN, digest);
    /* EVP_EncodeBlock writes 28 characters and a NUL. */
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    return 0;
}

/* The first of ours that the client offers in any header. */
int ws_handshake_pick_protocol(const struct ws_http_request *r,
                               const char *const *ours)
{
    if (r == NULL || ours == NULL)
        return -1;
    /* RFC 6455 §4.2.2 /subprotocol/: the server's choice, one value. */
    for (int i = 0; ours[i] != NULL; i++)
        if (headers_have_token(r, "Sec-WebSocket-Protocol", ours[i]))
            return i;
    return -1;
}

/* Any Sec-WebSocket-Protocol header lists name, spelt as given. */
bool ws_handshake_offers_protocol(const struct ws_http_request *r,
                                  const char *name)
{
    if (r == NULL || name == NULL || !is_token(name))
        return false;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct ws_http_header *h = &r->headers[i];

        if (header_is(h, "Sec-WebSocket-Protocol") &&
            list_find(h->value, h->value_len, name, false))
            return true;
    }
    return false;
}

/* Output being built; writes past cap are counted but not made. */
struct ws_out {
    char *buf;
    size_t cap;
    size_t len;
};

/* Append s, or only count it when it does not fit. */
static void out_put(struct ws_out *o, const char *s)
{
    size_t n = strlen(s);

    if (o->buf != NULL && o->len <= o->cap && n <= o->cap - o->len)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* Write the 101 text (RFC 6455 §4.2.2 step 5) into o. */
static void build_101(struct ws_out *o, const char *accept,
                      const char *protocol, const char *extensions)
{
    out_put(o, "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: ");
    out_put(o, accept);
    out_put(o, "\r\n");
    if (protocol != NULL) {
        out_put(o, "Sec-WebSocket-Protocol: ");
        out_put(o, protocol);
        out_put(o, "\r\n");
    }
    if (extensions != NULL) {
        out_put(o, "Sec-WebSocket-Extensions: ");
        out_put(o, extensions);
        out_put(o, "\r\n");
    }
    out_put(o, "\r\n");
}

/* Header text a response may carry: visible ASCII and spaces, no CR or
   LF that could end the header early. */
static bool is_header_text(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

ssize_t ws_handshake_write_101(char *out, size_t cap, const char *accept,
                               const char *protocol)
{
    return ws_handshake_write_101_ext(out, cap, accept, protocol, NULL);
}

/* Write the 101 response, or nothing when it does not fit. */
ssize_t ws_handshake_write_101_ext(char *out, size_t cap, const char *accept,
                                   const char *protocol, const char *extensions)
{
    struct ws_out count = {NULL, 0, 0}, o = {out, cap, 0};

    if (accept == NULL || strlen(accept) != WS_ACCEPT_KEY_LEN ||
        (protocol != NULL && !is_token(protocol)) ||
        (extensions != NULL && !is_header_text(extensions)) ||
        (out == NULL && cap))
        return WS_EINVAL;
    /* Measure first so that a buffer too small is left untouched. */
    build_101(&count, accept, protocol, extensions);
    if (count.len > cap)
        return WS_ENOSPC;
    build_101(&o, accept, protocol, extensions);
    return (ssize_t)o.len;
}

/* Reason phrases (RFC 7231 §6.1, RFC 6585 §5). */
static const struct {
    int status;
    const char *reason;
} ws_reasons[] = {
    {101, "Switching Protocols"},
    {200, "OK"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"}, /* RFC 7538 */
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

/* Look the reason phrase up in ws_reasons. */
const char *ws_http_reason(int status)
{
    for (size_t i = 0; i < sizeof(ws_reasons) / sizeof(ws_reasons[0]); i++)
        if (ws_reasons[i].status == status)
            return ws_reasons[i].reason;
    return "Unknown";
}

/* Write the error response for status with body (its length as text). */
static void build_error(struct ws_out *o, int status, const char *body,
                        const char *body_len)
{
    char code[8];

    snprintf(code, sizeof(code), "%d", status);
    out_put(o, "HTTP/1.1 ");
    out_put(o, code);
    out_put(o, " ");
    out_put(o, ws_http_reason(status));
    out_put(o, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    out_put(o, body_len);
    if (status == 405)
        out_put(o, "\r\nAllow: GET"); /* RFC 7231 §6.5.5 */
    if (status == 426) {
        /* RFC 7231 §6.5.15 and RFC 6455 §4.4; RFC 7230 §6.7: Upgrade
           must be listed in Connection. */
        out_put(o, "\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13"
                   "\r\nConnection: Upgrade, close\r\n\r\n");
    } else {
        out_put(o, "\r\nConnection: close\r\n\r\n");
    }
    out_put(o, body);
}

/* Write a whole error response, or nothing when it does not fit. */
ssize_t ws_http_write_error(char *out, size_t cap, int status)
{
    struct ws_out count = {NULL, 0, 0}, o = {out, cap, 0};
    char body[64], body_len[24];
    int n;

    if (status < 400 || status > 599 || (out == NULL && cap))
        return WS_EINVAL;
    n = snprintf(body, sizeof(body), "%d %s\n", status, ws_http_reason(status));
    if (n < 0 || (size_t)n >= sizeof(body))
        return WS_EINVAL;
    snprintf(body_len, sizeof(body_len), "%d", n);
    build_error(&count, status, body, body_len);
    if (count.len > cap)
        return WS_ENOSPC;
    build_error(&o, status, body, body_len);
    return (ssize_t)o.len;
}
