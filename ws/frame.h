/*
 * frame.h - the RFC 6455 §5 frame codec: pure functions over memory.
 * No I/O, no allocation, no clock, no random source.
 */
#ifndef WS_FRAME_H
#define WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* RFC 6455 §5.2 opcodes. */
enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA
};

/* Who sent the bytes being parsed: RFC 6455 §5.1 says client frames are
   masked and server frames are not. */
enum ws_frame_role { WS_FRAME_FROM_CLIENT, WS_FRAME_FROM_SERVER };

#define WS_FRAME_MAX_HEADER 14u   /* 2 + 8 length bytes + 4 mask bytes */
#define WS_FRAME_MAX_CONTROL 125u /* RFC 6455 §5.5 */

struct ws_frame_header {
    uint64_t payload_len;
    uint8_t mask[4];    /* valid when masked */
    uint8_t opcode;     /* enum ws_opcode */
    uint8_t rsv;        /* the three RSV bits, as 0..7 (bit 2 = RSV1) */
    uint8_t header_len; /* 2..14 */
    bool fin : 1;       /* (bit-fields: every connection holds one) */
    bool masked : 1;
};

/* True for close, ping and pong (RFC 6455 §5.5: opcodes 0x8-0xF). Inline,
   like ws_frame_header_size(): both run for every frame. */
static inline bool ws_frame_is_control(uint8_t opcode)
{
    return opcode >= WS_OP_CLOSE && opcode <= 0xF;
}

/*
 * Parse the frame header at buf[0..len). Returns the header length (2..14)
 * and fills *h, WS_EAGAIN when more bytes are needed (nothing is kept
 * between calls: call again with the longer buffer), or WS_EPROTO for a
 * header that violates RFC 6455 §5.2/§5.5 on its own:
 *   RSV bits set (see ws_frame_header_parse_ext for an extension's),
 *   reserved opcodes 0x3-0x7 and 0xB-0xF,
 *   control frame not FIN or longer than 125 bytes,
 *   length not in the shortest form (§5.2 "the minimal number of bytes"),
 *   64-bit length with the top bit set,
 *   mask bit wrong for role.
 * Continuation order and close payloads are checked by the caller.
 */
int ws_frame_header_parse(const uint8_t *buf, size_t len,
                          enum ws_frame_role role, struct ws_frame_header *h);

/* The RSV bit permessage-deflate defines (RFC 7692 §6), as in h->rsv. */
#define WS_FRAME_RSV1 0x4u

/* ws_frame_header_parse() where a negotiated extension defines the RSV
   bits in rsv_ok (0..7, as h->rsv): only the others are an error. */
int ws_frame_header_parse_ext(const uint8_t *buf, size_t len,
                              enum ws_frame_role role, uint8_t rsv_ok,
                              struct ws_frame_header *h);

/* The header length needed for payload_len bytes, masked or not: 2, then
   a 16-bit length from 126 bytes, a 64-bit one above 65535 (§5.2), then
   the 4-byte mask. */
static inline size_t ws_frame_header_size(uint64_t payload_len, bool masked)
{
    size_t n = 2;

    if (payload_len > 0xFFFFu)
        n += 8;
    else if (payload_len >= 126u)
        n += 2;
    return n + (masked ? 4u : 0u);
}

/*
 * Write a frame header into out[0..cap). mask may be NULL (server frames)
 * or point at the 4-byte key (client frames). Returns the bytes written, or
 * WS_ENOSPC when cap is too small (nothing written), or WS_EINVAL for an
 * opcode above 0xF, a control frame that breaks §5.5, or a length of 2^63
 * or more. Reserved opcodes are written as asked, so that tests can make
 * the frames a hostile peer would send.
 */
ssize_t ws_frame_header_write(uint8_t *out, size_t cap, bool fin,
                              uint8_t opcode, uint64_t payload_len,
                              const uint8_t *mask);

/* ws_frame_header_write() with the RSV bits rsv (0..7, RSV1 = 4) set:
   WS_EINVAL above 7. */
ssize_t ws_frame_header_write_ext(uint8_t *out, size_t cap, bool fin,
                                  uint8_t rsv, uint8_t opcode,
                                  uint64_t payload_len, const uint8_t *mask);

/* The payload mask (RFC 6455 §5.3) is ws/mask.h. */

/* RFC 6455 §7.4 and the IANA registry: may code appear in a close frame? */
bool ws_close_code_valid(uint16_t code);

/*
 * Check a close frame payload (already unmasked), RFC 6455 §5.5.1. Returns
 * 0 and sets *code (1005 when the payload is empty), *reason and
 * *reason_len (pointing into payload); WS_EPROTO for a 1-byte payload, a
 * payload over 125 bytes or an invalid code; WS_EUTF8 for a reason that is
 * not valid UTF-8.
 */
int ws_frame_close_parse(const uint8_t *payload, size_t len, uint16_t *code,
                         const uint8_t **reason, size_t *reason_len);

/*
 * Write a close payload (2-byte code + reason) into out[0..cap). Returns
 * the bytes written, WS_ENOSPC, or WS_EINVAL (invalid code, reason longer
 * than 123 bytes or not UTF-8).
 */
ssize_t ws_frame_close_payload(uint8_t *out, size_t cap, uint16_t code,
                               const uint8_t *reason, size_t reason_len);

#endif
