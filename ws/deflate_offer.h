/*
 * deflate_offer.h - the permessage-deflate negotiation (RFC 7692 §5, §7.1)
 * over the Sec-WebSocket-Extensions header grammar (RFC 6455 §9.1): parse
 * the client's offers, accept the first one the server supports, write
 * the response. Pure: no I/O, no allocation, no zlib.
 */
#ifndef WS_DEFLATE_OFFER_H
#define WS_DEFLATE_OFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What the server is willing to do (from struct ws_config). */
struct ws_deflate_policy {
    bool server_takeover;    /* false: we reply server_no_context_takeover */
    bool client_takeover;    /* false: we reply client_no_context_takeover */
    uint8_t server_max_bits; /* 9..15: the largest window we compress with */
    uint8_t client_max_bits; /* 8..15: the largest we accept from the client */
};

/* What one accepted offer settles, for both directions. */
struct ws_deflate_params {
    uint8_t server_bits;     /* 8..15: the window the server compresses with */
    uint8_t client_bits;     /* 8..15: the window the client compresses with */
    bool server_no_takeover; /* the server resets its compressor each time */
    bool client_no_takeover; /* the client resets its compressor each time */
    bool reply_server_bits;  /* the response names server_max_window_bits */
    bool reply_client_bits;  /* ... and client_max_window_bits */
};

/*
 * The outcome of ws_deflate_offer_parse() for one offer, before the
 * policy is applied (RFC 7692 §7.1: every parameter at most once, the
 * no_context_takeover ones without a value, window bits 8..15 written as
 * a decimal without leading zeros, server_max_window_bits with a value).
 */
struct ws_deflate_offer {
    bool server_no_takeover;
    bool client_no_takeover;
    uint8_t server_bits; /* 0: not in the offer */
    uint8_t client_bits; /* 0: not in the offer; 16: offered, no value */
};

/*
 * Negotiate over the values of every Sec-WebSocket-Extensions header of a
 * request, in order (values[0..n)): the first permessage-deflate offer
 * that is valid and that the policy can serve is accepted, the others
 * (and other extensions) are declined. Returns 1 with *out set and the
 * response's extension value written NUL-terminated into resp[0..cap)
 * ("permessage-deflate; server_no_context_takeover"), 0 when no offer is
 * accepted (the connection opens without compression: RFC 7692 §5
 * declines, it never fails the handshake), or WS_ENOSPC when resp is too
 * small. A header that breaks the grammar is declined from the broken
 * element to its end.
 */
int ws_deflate_negotiate(const char *const *values, const size_t *lens,
                         size_t n, const struct ws_deflate_policy *policy,
                         struct ws_deflate_params *out, char *resp, size_t cap);

/*
 * Parse the parameters of one permessage-deflate element, p[0..len) being
 * what follows the extension token (";" params ...). Returns 0 with *o
 * filled, or WS_EINVAL for an offer to decline (unknown or repeated
 * parameter, a value where none is allowed, a window outside 8..15).
 */
int ws_deflate_offer_parse(const char *p, size_t len,
                           struct ws_deflate_offer *o);

/* The response text for params, NUL-terminated: its length, or
   WS_ENOSPC. */
ssize_t ws_deflate_response(const struct ws_deflate_params *params, char *out,
                            size_t cap);

#endif
