/*
 * handshake.h - the server side of the RFC 6455 §4.2 opening handshake:
 * pure checks over a parsed request, the Sec-WebSocket-Accept key (SHA-1
 * and base64 from libcrypto) and the response texts. No I/O, no
 * allocation.
 */
#ifndef WS_HTTP_HANDSHAKE_H
#define WS_HTTP_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/request.h"

#define WS_ACCEPT_KEY_LEN 28 /* base64 of a 20-byte SHA-1 */

/*
 * True when the comma-separated header list value[0..len) holds token,
 * compared case-insensitively, with optional white space around elements
 * (RFC 7230 §7 #rule).
 */
bool ws_http_list_has_token(const char *value, size_t len, const char *token);

/* True when the request asks for a WebSocket upgrade at all: an Upgrade
   header with the token "websocket". Such requests go through
   ws_handshake_check(); others are plain HTTP. */
bool ws_handshake_is_upgrade(const struct ws_http_request *r);

/*
 * Check an upgrade request against RFC 6455 §4.2.1. Returns 0 when it is
 * acceptable and fills key/key_len with the Sec-WebSocket-Key (pointing
 * into r), or the HTTP status to answer:
 *   405 the method is not GET;
 *   400 HTTP older than 1.1, a body (has_body), no or several Host, no
 *       Upgrade "websocket",
 *       Connection without "Upgrade", no or several Sec-WebSocket-Key, a
 *       key that is not the canonical base64 of exactly 16 bytes;
 *   426 Sec-WebSocket-Version missing, repeated or not 13 (answer with
 *       Sec-WebSocket-Version: 13).
 * Returns WS_EINVAL for a NULL argument or a request before the end of
 * its headers (state DONE, or BODY: a body is still to come, so the
 * answer is not 0).
 */
int ws_handshake_check(const struct ws_http_request *r, const char **key,
                       size_t *key_len);

/*
 * Compute Sec-WebSocket-Accept for key (RFC 6455 §4.2.2 step 5.4):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). out gets
 * 28 characters and a NUL. Returns 0, or WS_EINVAL for a key longer than
 * 128 bytes.
 */
int ws_handshake_accept_key(const char *key, size_t key_len,
                            char out[WS_ACCEPT_KEY_LEN + 1]);

/*
 * Pick the subprotocol: the first entry of the server's NULL-terminated
 * list ours (in its order of preference) that appears as a token in any
 * Sec-WebSocket-Protocol header of r. Returns its index, or -1 for none.
 */
int ws_handshake_pick_protocol(const struct ws_http_request *r,
                               const char *const *ours);

/*
 * True when name, a token, is one of the subprotocols r offers in any
 * Sec-WebSocket-Protocol header, spelt exactly so: the server's pick is
 * echoed to a client that checks it against its own list (RFC 6455 §4.1,
 * the client's step 6 of reading the response).
 */
bool ws_handshake_offers_protocol(const struct ws_http_request *r,
                                  const char *name);

/*
 * Write the 101 response with accept and protocol (may be NULL) into
 * out[0..cap); no NUL is added. Returns the length, WS_ENOSPC (nothing
 * written), or WS_EINVAL when accept is not 28 characters or protocol is
 * not an RFC 7230 token.
 */
ssize_t ws_handshake_write_101(char *out, size_t cap, const char *accept,
                               const char *protocol);

/* ws_handshake_write_101() with a Sec-WebSocket-Extensions header carrying
   extensions (RFC 6455 §9.1; NULL: none), which must be non-empty visible
   ASCII (WS_EINVAL otherwise). */
ssize_t ws_handshake_write_101_ext(char *out, size_t cap, const char *accept,
                                   const char *protocol,
                                   const char *extensions);

/* The reason phrase for an HTTP status ("Not Found"), "Unknown" if none. */
const char *ws_http_reason(int status);

/*
 * Write a complete error response for status with a short text/plain body
 * ("404 Not Found\n") and "Connection: close"; no NUL is added. For 405 it
 * adds "Allow: GET"; for 426 "Upgrade: websocket",
 * "Sec-WebSocket-Version: 13" and "Connection: Upgrade, close" (RFC 7230
 * §6.7). Returns the length, WS_ENOSPC (nothing written), or WS_EINVAL for
 * a status outside 400-599.
 */
ssize_t ws_http_write_error(char *out, size_t cap, int status);

#endif
