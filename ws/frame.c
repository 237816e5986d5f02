/*
 * frame.c - the RFC 6455 §5 frame codec: parse and write frame headers,
 * apply the payload mask, check and write close payloads. Pure functions
 * over caller memory: it must never do I/O, allocate, read a clock or a
 * random source, or keep state between calls.
 */
#include "ws/frame.h"

#include <string.h>

#include "ws/utf8.h"
#include "net/error.h"

/* RFC 6455 §5.2 bit layout of the first two header bytes. */
#define B0_FIN 0x80u
#define B0_RSV 0x70u
#define B0_OPCODE 0x0Fu
#define B1_MASK 0x80u
#define B1_LEN 0x7Fu
#define LEN7_16BIT 126u /* a 16-bit extended length follows */
#define LEN7_64BIT 127u /* a 64-bit extended length follows */

/* RFC 6455 §5.5.1: the close body is a 2-byte code then the reason. */
#define CLOSE_CODE_BYTES 2u
#define CLOSE_REASON_MAX (WS_FRAME_MAX_CONTROL - CLOSE_CODE_BYTES)
#define CLOSE_NO_STATUS 1005u /* RFC 6455 §7.1.5: no code was present */

/* True for the opcodes RFC 6455 §5.2 reserves: 0x3-0x7 and 0xB-0xF. */
static bool opcode_reserved(uint8_t opcode)
{
    return (opcode > WS_OP_BINARY && opcode < WS_OP_CLOSE) ||
           opcode > WS_OP_PONG;
}

/* Check what the first header byte alone can show to be wrong; rsv_ok:
   the RSV bits (as 0..7) that a negotiated extension defines. */
static int check_byte0(uint8_t b0, uint8_t rsv_ok)
{
    uint8_t opcode = (uint8_t)(b0 & B0_OPCODE);

    /* RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them. */
    if (((b0 & B0_RSV) >> 4) & ~rsv_ok)
        return WS_EPROTO;
    /* RFC 6455 §5.2: a reserved opcode MUST fail the connection. */
    if (opcode_reserved(opcode))
        return WS_EPROTO;
    /* RFC 6455 §5.5: control frames MUST NOT be fragmented. */
    if (ws_frame_is_control(opcode) && !(b0 & B0_FIN))
        return WS_EPROTO;
    return 0;
}

/* Check what the second header byte shows, given the first. */
static int check_byte1(uint8_t b0, uint8_t b1, enum ws_frame_role role)
{
    bool masked = (b1 & B1_MASK) != 0;

    /* RFC 6455 §5.1: a client masks every frame, a server never does. */
    if (masked != (role == WS_FRAME_FROM_CLIENT))
        return WS_EPROTO;
    /* RFC 6455 §5.5: control payloads are at most 125 bytes, so the 7-bit
       field alone must hold the length. */
    if (ws_frame_is_control((uint8_t)(b0 & B0_OPCODE)) &&
        (b1 & B1_LEN) > WS_FRAME_MAX_CONTROL)
        return WS_EPROTO;
    return 0;
}

/* Read the big-endian unsigned integer in p[0..n), n <= 8. */
static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Write v as a big-endian integer into p[0..n), n <= 8. */
static void write_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

/*
 * Decode the payload length of the header in buf[0..len) (len >= 2) into
 * *payload_len and the size of its extended field into *ext.
 */
static int parse_length(const uint8_t *buf, size_t len, size_t *ext,
                        uint64_t *payload_len)
{
    uint8_t len7 = (uint8_t)(buf[1] & B1_LEN);
    uint64_t v;

    if (len7 < LEN7_16BIT) {
        *ext = 0;
        *payload_len = len7;
        return 0;
    }
    *ext = len7 == LEN7_16BIT ? 2 : 8;
    /* RFC 6455 §5.2: the top bit of a 64-bit length MUST be 0. It sits in
       the first extended byte, so fail before the rest arrives. */
    if (*ext == 8 && len > 2 && (buf[2] & 0x80u))
        return WS_EPROTO;
    if (len - 2 < *ext)
        return WS_EAGAIN;
    v = read_be(buf + 2, *ext);
    /* RFC 6455 §5.2: "the minimal number of bytes MUST be used". */
    if (*ext == 2 && v < LEN7_16BIT)
        return WS_EPROTO;
    if (*ext == 8 && v <= 0xFFFFu)
        return WS_EPROTO;
    *payload_len = v;
    return 0;
}

int ws_frame_header_parse(const uint8_t *buf, size_t len,
                          enum ws_frame_role role, struct ws_frame_header *h)
{
    return ws_frame_header_parse_ext(buf, len, role, 0, h);
}

/* Parse one header, failing as soon as the bytes seen so far are bad. */
int ws_frame_header_parse_ext(const uint8_t *buf, size_t len,
                              enum ws_frame_role role, uint8_t rsv_ok,
                              struct ws_frame_header *h)
{
    size_t ext, need;
    uint64_t payload_len;
    bool masked;
    int rc;

    if (len < 1)
        return WS_EAGAIN;
    if ((rc = check_byte0(buf[0], rsv_ok)) != 0)
        return rc;
    if (len < 2)
        return WS_EAGAIN;
    if ((rc = check_byte1(buf[0], buf[1], role)) != 0)
        return rc;
    if ((rc = parse_length(buf, len, &ext, &payload_len)) != 0)
        return rc;
    masked = (buf[1] & B1_MASK) != 0;
    need = 2 + ext + (masked ? 4u : 0u);
    if (len < need)
        return WS_EAGAIN;

    h->fin = (buf[0] & B0_FIN) != 0;
    h->rsv = (uint8_t)((buf[0] & B0_RSV) >> 4);
    h->opcode = (uint8_t)(buf[0] & B0_OPCODE);
    h->masked = masked;
    memset(h->mask, 0, sizeof h->mask);
    if (masked)
        memcpy(h->mask, buf + 2 + ext, sizeof h->mask);
    h->payload_len = payload_len;
    h->header_len = (uint8_t)need; /* at most WS_FRAME_MAX_HEADER */
    return (int)need;
}

ssize_t ws_frame_header_write(uint8_t *out, size_t cap, bool fin,
                              uint8_t opcode, uint64_t payload_len,
                              const uint8_t *mask)
{
    return ws_frame_header_write_ext(out, cap, fin, 0, opcode, payload_len,
                                     mask);
}

/* Write a header in the shortest length form, or nothing at all. */
ssize_t ws_frame_header_write_ext(uint8_t *out, size_t cap, bool fin,
                                  uint8_t rsv, uint8_t opcode,
                                  uint64_t payload_len, const uint8_t *mask)
{
    uint8_t mask_bit = mask != NULL ? B1_MASK : 0u;
    size_t size, n = 2;

    if (opcode > B0_OPCODE || rsv > 7u)
        return WS_EINVAL;
    /* RFC 6455 §5.5: control frames are final and at most 125 bytes. */
    if (ws_frame_is_control(opcode) &&
        (!fin || payload_len > WS_FRAME_MAX_CONTROL))
        return WS_EINVAL;
    /* RFC 6455 §5.2: the top bit of a 64-bit length MUST be 0. */
    if (payload_len > (uint64_t)INT64_MAX)
        return WS_EINVAL;
    size = ws_frame_header_size(payload_len, mask != NULL);
    if (cap < size)
        return WS_ENOSPC;

    out[0] = (uint8_t)((fin ? B0_FIN : 0u) | (unsigned)rsv << 4 | opcode);
    if (payload_len < LEN7_16BIT) {
        out[1] = (uint8_t)(mask_bit | payload_len);
    } else if (payload_len <= 0xFFFFu) {
        out[1] = (uint8_t)(mask_bit | LEN7_16BIT);
        write_be(out + 2, 2, payload_len);
        n += 2;
    } else {
        out[1] = (uint8_t)(mask_bit | LEN7_64BIT);
        write_be(out + 2, 8, payload_len);
        n += 8;
    }
    if (mask != NULL)
        memcpy(out + n, mask, 4);
    return (ssize_t)size;
}

/* The close codes that may appear on the wire. */
bool ws_close_code_valid(uint16_t code)
{
    /* RFC 6455 §7.4.1: 1000-1003 and 1007-1011 are defined; 1004 is
       reserved; 1005, 1006 and 1015 MUST NOT be sent. The IANA registry
       adds 1012-1014. §7.4.2: below 1000 is unused, the rest of 1000-2999
       is reserved, 3000-4999 is for libraries and applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Split a close payload into its code and UTF-8 reason, checking both. */
int ws_frame_close_parse(const uint8_t *payload, size_t len, uint16_t *code,
                         const uint8_t **reason, size_t *reason_len)
{
    uint16_t c;

    if (len == 0) {
        *code = CLOSE_NO_STATUS;
        *reason = payload;
        *reason_len = 0;
        return 0;
    }
    /* RFC 6455 §5.5.1: a body starts with a 2-byte code; §5.5: control
       payloads are at most 125 bytes. */
    if (len < CLOSE_CODE_BYTES || len > WS_FRAME_MAX_CONTROL)
        return WS_EPROTO;
    c = (uint16_t)((unsigned)payload[0] << 8 | payload[1]);
    if (!ws_close_code_valid(c))
        return WS_EPROTO;
    /* RFC 6455 §5.5.1: the reason is UTF-8 (a 1007 failure, §8.1). */
    if (!ws_utf8_valid(payload + CLOSE_CODE_BYTES, len - CLOSE_CODE_BYTES))
        return WS_EUTF8;
    *code = c;
    *reason = payload + CLOSE_CODE_BYTES;
    *reason_len = len - CLOSE_CODE_BYTES;
    return 0;
}

/* Write a close body (code, then reason) or nothing at all. */
ssize_t ws_frame_close_payload(uint8_t *out, size_t cap, uint16_t code,
                               const uint8_t *reason, size_t reason_len)
{
    if (!ws_close_code_valid(code))
        return WS_EINVAL;
    /* RFC 6455 §5.5: the whole body fits in 125 bytes. */
    if (reason_len > CLOSE_REASON_MAX)
        return WS_EINVAL;
    if (reason == NULL && reason_len > 0)
        return WS_EINVAL;
    /* RFC 6455 §5.5.1: the reason is UTF-8. */
    if (!ws_utf8_valid(reason, reason_len))
        return WS_EINVAL;
    if (cap < CLOSE_CODE_BYTES + reason_len)
        return WS_ENOSPC;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)(code & 0xFFu);
    if (reason_len > 0)
        memcpy(out + CLOSE_CODE_BYTES, reason, reason_len);
    return (ssize_t)(CLOSE_CODE_BYTES + reason_len);
}
