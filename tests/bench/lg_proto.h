/*
 * lg_proto.h - the client side of RFC 6455 that the load generator needs:
 * the opening handshake, server frame headers, masked client frames and
 * payload patterns. Written apart from the library on purpose, so that the
 * benchmark checks our server against an independent implementation.
 */
#ifndef WS_BENCH_LG_PROTO_H
#define WS_BENCH_LG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_KEY_LEN 24    /* base64 of the 16-byte Sec-WebSocket-Key */
#define LG_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */
#define LG_MAX_HEADER 14 /* RFC 6455 §5.2: 2 + 8 length + 4 mask bytes */

/* A header of a frame the server sent (RFC 6455 §5.2). */
struct lg_frame {
    bool fin, rsv1;
    uint8_t opcode;
    uint64_t len;
    size_t header_len;
};

/* Fill out with n bytes from the kernel's random source; 0 or -1. */
int lg_random(void *out, size_t n);

/*
 * Write a fresh random Sec-WebSocket-Key (24 characters and a NUL) into
 * key and the Sec-WebSocket-Accept the server must answer (28 characters
 * and a NUL) into accept (RFC 6455 §4.1, §4.2.2). Returns 0 or -1.
 */
int lg_handshake_key(char key[LG_KEY_LEN + 1], char accept[LG_ACCEPT_LEN + 1]);

/*
 * Check a complete response head (status line and headers up to the empty
 * line): status 101, Upgrade: websocket, Connection: upgrade and the
 * expected accept value (RFC 6455 §4.1, client steps 1-4), and no
 * extension unless ext_ok (one was offered). Returns 0, or -1 and points
 * *why at a static reason.
 */
int lg_handshake_check(const char *head, size_t len, const char *accept,
                       bool ext_ok, const char **why);

/*
 * Parse the header of a frame from the server at buf[0..len): unmasked,
 * RSV bits clear (but RSV1 when rsv1_ok, into f->rsv1), a known opcode,
 * control frames FIN and at most 125 bytes. Returns the header length, 0
 * when more bytes are needed, or -1 for a protocol violation.
 */
int lg_frame_parse(const uint8_t *buf, size_t len, bool rsv1_ok,
                   struct lg_frame *f);

/*
 * Write a whole masked client frame (FIN set) with opcode and payload
 * into out, which must hold len + LG_MAX_HEADER bytes. Returns the frame
 * length.
 */
size_t lg_frame_write(uint8_t *out, uint8_t opcode, const uint8_t *payload,
                      size_t len, const uint8_t mask[4]);

/* The header alone of such a frame, for a payload of len; its length. */
size_t lg_frame_header(uint8_t *out, uint8_t opcode, size_t len,
                       const uint8_t mask[4]);

/*
 * Fill out[0..len) from the generator state *seed: random bytes when
 * text is false, otherwise valid UTF-8 in which non_ascii percent of the
 * characters take 2 to 4 bytes, padded with ASCII so that it ends on a
 * character boundary.
 */
void lg_payload_fill(uint8_t *out, size_t len, bool text, int non_ascii,
                     uint64_t *seed);

/* Fill out[0..len) with a chat-like JSON object of exactly len bytes
   (len >= 2; shorter ones are not JSON), as a chat server relays. */
void lg_payload_json(uint8_t *out, size_t len, uint64_t *seed);

#endif
