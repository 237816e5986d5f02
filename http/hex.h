/*
 * hex.h - the value of a hexadecimal digit, for the percent-decoding of
 * paths (static.c) and of query parameters (query.c), RFC 3986 §2.1.
 */
#ifndef WS_HTTP_HEX_H
#define WS_HTTP_HEX_H

/* The value of one hexadecimal digit (either case), or -1. */
static inline int ws_http_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

#endif
