/*
 * deflate_offer.c - permessage-deflate negotiation (RFC 7692 §5, §7.1)
 * over the Sec-WebSocket-Extensions grammar of RFC 6455 §9.1:
 *   extension-list = 1#extension
 *   extension      = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" ( token | quoted-string ) ]
 * Pure: no I/O, no allocation; it never fails a handshake, it only
 * declines (RFC 7692 §5).
 */
#include "ws/deflate_offer.h"

#include <stdio.h>
#include <string.h>

#include "net/error.h"

/* A read position in one header value. */
struct cursor {
    const char *p;
    size_t i, n;
};

/* RFC 7230 §3.2.6 tchar. */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct cursor *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t'))
        c->i++;
}

static bool at(const struct cursor *c, char ch)
{
    return c->i < c->n && c->p[c->i] == ch;
}

/* Take a token; its length (0 when none is there). */
static size_t take_token(struct cursor *c, const char **tok)
{
    size_t start = c->i;

    while (c->i < c->n && is_tchar(c->p[c->i]))
        c->i++;
    *tok = c->p + start;
    return c->i - start;
}

/*
 * Take a parameter value: a token, or a quoted-string (RFC 7230 §3.2.6)
 * unescaped into buf[0..cap). Returns its length (only the first cap
 * bytes are kept: a longer value is never a valid one of ours, but may be
 * another extension's), or -1 for a syntax error.
 */
static int take_value(struct cursor *c, char *buf, size_t cap)
{
    size_t len = 0;

    if (!at(c, '"')) {
        const char *tok;
        size_t n = take_token(c, &tok);

        if (n == 0 || n > INT32_MAX)
            return -1;
        memcpy(buf, tok, n < cap ? n : cap);
        return (int)n;
    }
    for (c->i++; c->i < c->n && c->p[c->i] != '"'; c->i++) {
        if (c->p[c->i] == '\\' && ++c->i == c->n)
            return -1;
        if (len < cap)
            buf[len] = c->p[c->i];
        if (++len > INT32_MAX)
            return -1;
    }
    if (c->i == c->n)
        return -1; /* no closing quote */
    c->i++;
    return (int)len;
}

static bool name_is(const char *s, size_t n, const char *want)
{
    size_t k = strlen(want);

    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];

        if (a != want[i])
            return false;
    }
    return true;
}

/* RFC 7692 §7.1.2.1-2: 1*DIGIT without leading zeros, 8..15; 0 if not. */
static uint8_t window_bits(const char *v, int n)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return (uint8_t)(v[0] - '0');
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return (uint8_t)(10 + v[1] - '0');
    return 0;
}

/* Apply one parameter to o; false when the offer must be declined. */
static bool apply_param(struct ws_deflate_offer *o, const char *name,
                        size_t nlen, const char *val, int vlen)
{
    uint8_t bits = vlen > 0 ? window_bits(val, vlen) : 0;

    if (name_is(name, nlen, "server_no_context_takeover")) {
        if (o->server_no_takeover || vlen >= 0)
            return false; /* §7.1.1.1: no value, at most once */
        o->server_no_takeover = true;
        return true;
    }
    if (name_is(name, nlen, "client_no_context_takeover")) {
        if (o->client_no_takeover || vlen >= 0)
            return false; /* §7.1.1.2 */
        o->client_no_takeover = true;
        return true;
    }
    if (name_is(name, nlen, "server_max_window_bits")) {
        if (o->server_bits != 0 || bits == 0)
            return false; /* §7.1.2.1: a value is required */
        o->server_bits = bits;
        return true;
    }
    if (name_is(name, nlen, "client_max_window_bits")) {
        if (o->client_bits != 0 || (vlen >= 0 && bits == 0))
            return false; /* §7.1.2.2: the value is optional */
        o->client_bits = vlen >= 0 ? bits : 16;
        return true;
    }
    return false; /* §7.1: an unknown parameter declines the offer */
}

enum { PARSE_OK = 0, PARSE_DECLINE = 1, PARSE_SYNTAX = -1 };

/* Parse ";" params up to the end of the element (a comma or the end);
   a valid element that cannot be accepted still parses to its end. */
static int parse_params(struct cursor *c, struct ws_deflate_offer *o)
{
    bool ok = true;

    memset(o, 0, sizeof(*o));
    for (skip_ows(c); at(c, ';'); skip_ows(c)) {
        const char *name;
        char val[64];
        size_t nlen;
        int vlen = -1;

        c->i++;
        skip_ows(c);
        nlen = take_token(c, &name);
        if (nlen == 0)
            return PARSE_SYNTAX;
        skip_ows(c);
        if (at(c, '=')) {
            c->i++;
            skip_ows(c);
            vlen = take_value(c, val, sizeof(val));
            if (vlen < 0)
                return PARSE_SYNTAX;
        }
        if (ok && !apply_param(o, name, nlen, val, vlen))
            ok = false;
    }
    if (c->i < c->n && !at(c, ','))
        return PARSE_SYNTAX;
    return ok ? PARSE_OK : PARSE_DECLINE;
}

int ws_deflate_offer_parse(const char *p, size_t len,
                           struct ws_deflate_offer *o)
{
    struct cursor c = {p, 0, len};

    if (p == NULL || o == NULL)
        return WS_EINVAL;
    return parse_params(&c, o) == PARSE_OK && c.i == len ? 0 : WS_EINVAL;
}

/* The parameters the server uses for an accepted offer (RFC 7692 §7.1). */
static void settle(const struct ws_deflate_offer *o,
                   const struct ws_deflate_policy *pol,
                   struct ws_deflate_params *out)
{
    uint8_t sbits = pol->server_max_bits, cbits = 15;

    /* §7.1.2.1: the response may lower what the client allowed us; a
       request for 8 is granted (those messages then go uncompressed). */
    if (o->server_bits != 0 && o->server_bits < sbits)
        sbits = o->server_bits;
    /* §7.1.2.2: only an offer with client_max_window_bits may be limited;
       without it the client may use 15, which the inflater must take. */
    if (o->client_bits != 0) {
        cbits = o->client_bits == 16 ? 15 : o->client_bits;
        if (pol->client_max_bits < cbits)
            cbits = pol->client_max_bits;
    }
    out->server_bits = sbits;
    out->client_bits = cbits;
    /* §7.1.1.1: the server may always choose not to keep its context.
       §7.1.1.2: a client that offered not to keep its own is held to it,
       and the server may ask it of any client. */
    out->server_no_takeover = o->server_no_takeover || !pol->server_takeover;
    out->client_no_takeover = o->client_no_takeover || !pol->client_takeover;
    /* §7.1.2.1: an offered server window is answered; §7.1.2.2: a client
       window never when the offer did not have it, and here only when it
       limits the client below the 15 it may otherwise use. */
    out->reply_server_bits = o->server_bits != 0;
    out->reply_client_bits = o->client_bits != 0 && cbits < 15;
}

/* Append s to out[*len..cap) if it fits; false when it does not. */
static bool put(char *out, size_t cap, size_t *len, const char *s)
{
    size_t k = strlen(s);

    if (k >= cap - *len)
        return false;
    memcpy(out + *len, s, k + 1);
    *len += k;
    return true;
}

ssize_t ws_deflate_response(const struct ws_deflate_params *params, char *out,
                            size_t cap)
{
    char num[40];
    size_t len = 0;
    bool ok;

    if (out == NULL || cap == 0)
        return WS_ENOSPC;
    ok = put(out, cap, &len, "permessage-deflate");
    if (ok && params->server_no_takeover)
        ok = put(out, cap, &len, "; server_no_context_takeover");
    if (ok && params->client_no_takeover)
        ok = put(out, cap, &len, "; client_no_context_takeover");
    if (ok && params->reply_server_bits) {
        snprintf(num, sizeof(num), "; server_max_window_bits=%u",
                 (unsigned)params->server_bits);
        ok = put(out, cap, &len, num);
    }
    if (ok && params->reply_client_bits) {
        snprintf(num, sizeof(num), "; client_max_window_bits=%u",
                 (unsigned)params->client_bits);
        ok = put(out, cap, &len, num);
    }
    return ok ? (ssize_t)len : WS_ENOSPC;
}

/*
 * Walk the elements of one header value; accept the first valid
 * permessage-deflate offer. Returns 1 (accepted, *o filled), 0 (none in
 * this value) or -1 when the grammar broke (the rest is declined).
 */
static int scan_value(struct cursor *c, struct ws_deflate_offer *o)
{
    for (;;) {
        const char *tok;
        size_t tlen;
        int rc;

        skip_ows(c);
        if (at(c, ',')) { /* RFC 7230 §7: empty list elements are allowed */
            c->i++;
            continue;
        }
        if (c->i >= c->n)
            return 0;
        tlen = take_token(c, &tok);
        if (tlen == 0)
            return -1;
        rc = parse_params(c, o);
        if (rc == PARSE_SYNTAX)
            return -1;
        if (rc == PARSE_OK && name_is(tok, tlen, "permessage-deflate"))
            return 1;
        if (at(c, ','))
            c->i++;
    }
}

int ws_deflate_negotiate(const char *const *values, const size_t *lens,
                         size_t n, const struct ws_deflate_policy *policy,
                         struct ws_deflate_params *out, char *resp, size_t cap)
{
    for (size_t v = 0; v < n; v++) {
        struct cursor c = {values[v], 0, lens[v]};
        struct ws_deflate_offer o;

        if (scan_value(&c, &o) != 1)
            continue;
        settle(&o, policy, out);
        if (ws_deflate_response(out, resp, cap) < 0)
            return WS_ENOSPC;
        return 1;
    }
    return 0;
}
