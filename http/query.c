/*
 * query.c - the parameters of a request's query string, pure: no
 * allocation, no system call. The query is read as
 * application/x-www-form-urlencoded, as browsers write forms and
 * URLSearchParams (WHATWG URL, §5.1): pairs separated by "&", a name and
 * a value split at the first "=", "+" a space, "%XX" a byte (RFC 3986
 * §2.1). Names are compared after decoding, so "n%61me=1" is "name".
 */
#include <stdbool.h>
#include <string.h>

#include "http/query.h"
#include "http/hex.h"
#include "net/error.h"

/* Decode the byte at s[*i] (of end) and step past it; -1 for a "%" not
   followed by two hex digits. */
static int decode_byte(const char *s, size_t end, size_t *i)
{
    char ch = s[(*i)++];
    int hi, lo;

    if (ch == '+')
        return ' ';
    if (ch != '%')
        return (unsigned char)ch;
    hi = end - *i >= 2 ? ws_http_hex_digit(s[*i]) : -1;
    lo = hi >= 0 ? ws_http_hex_digit(s[*i + 1]) : -1;
    if (lo < 0)
        return -1;
    *i += 2;
    return hi * 16 + lo;
}

/* True when s[from..to) decodes to exactly name. */
static bool name_is(const char *s, size_t from, size_t to, const char *name)
{
    size_t i = from, j = 0;

    while (i < to) {
        int b = decode_byte(s, to, &i);

        if (b < 0 || name[j] == '\0' || (unsigned char)name[j] != b)
            return false;
        j++;
    }
    return name[j] == '\0';
}

/* Decode s[from..to) into out[0..size), NUL-terminated. */
static ssize_t decode_value(const char *s, size_t from, size_t to, char *out,
                            size_t size)
{
    size_t i = from, n = 0;

    while (i < to) {
        int b = decode_byte(s, to, &i);

        if (b < 0)
            return WS_EINVAL;
        if (n + 1 >= size)
            return WS_ENOSPC;
        out[n++] = (char)b;
    }
    out[n] = '\0';
    return (ssize_t)n;
}

ssize_t ws_http_query_param(const char *query, size_t len, const char *name,
                            char *out, size_t size)
{
    size_t start = 0;

    if (query == NULL || name == NULL || out == NULL || size == 0)
        return WS_EINVAL;
    out[0] = '\0';
    while (start <= len) {
        const char *amp = memchr(query + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - query) : len;
        const char *eq = memchr(query + start, '=', end - start);
        size_t name_end = eq ? (size_t)(eq - query) : end;

        /* An empty pair ("a=1&&b=2") names nothing. */
        if (end > start && name_is(query, start, name_end, name)) {
            ssize_t n =
                decode_value(query, eq ? name_end + 1 : end, end, out, size);

            if (n < 0)
                out[0] = '\0';
            return n;
        }
        start = end + 1;
    }
    return WS_ENOTFOUND;
}
