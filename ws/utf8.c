/*
 * utf8.c - incremental UTF-8 validation, a byte-range state machine that
 * follows the UTF8-octets table of RFC 3629 §4. It rejects a sequence at
 * the first byte that makes it invalid, even across calls. Pure: it must
 * never do I/O, allocate, or keep state outside struct ws_utf8.
 */
#include "ws/utf8.h"

#include <string.h>

#include "ws/ws.h"

/* The continuation byte range after the first one: RFC 3629 §4 UTF8-tail. */
#define TAIL_LO 0x80u
#define TAIL_HI 0xBFu

/*
 * One row of RFC 3629 §4: lead bytes lo..hi start a sequence of 1 + need
 * bytes whose second byte lies in second_lo..second_hi. Lead bytes in no
 * row (0x80-0xC1, 0xF5-0xFF) are invalid: 0x80-0xBF are stray
 * continuations, 0xC0/0xC1 can only start overlong forms, 0xF5-0xFF only
 * code points past U+10FFFF.
 */
struct lead_row {
    uint8_t lo, hi;
    uint8_t need;
    uint8_t second_lo, second_hi;
};

static const struct lead_row lead_rows[] = {
    {0xC2, 0xDF, 1, 0x80, 0xBF}, /* UTF8-2 */
    {0xE0, 0xE0, 2, 0xA0, 0xBF}, /* UTF8-3: %xE0 %xA0-BF, no overlong */
    {0xE1, 0xEC, 2, 0x80, 0xBF}, /* UTF8-3 */
    {0xED, 0xED, 2, 0x80, 0x9F}, /* UTF8-3: no surrogates D800-DFFF */
    {0xEE, 0xEF, 2, 0x80, 0xBF}, /* UTF8-3 */
    {0xF0, 0xF0, 3, 0x90, 0xBF}, /* UTF8-4: %xF0 %x90-BF, no overlong */
    {0xF1, 0xF3, 3, 0x80, 0xBF}, /* UTF8-4 */
    {0xF4, 0xF4, 3, 0x80, 0x8F}, /* UTF8-4: nothing past U+10FFFF */
};

void ws_utf8_reset(struct ws_utf8 *v)
{
    v->need = 0;
    v->lower = 0;
    v->upper = 0;
}

/* Return the index of the first non-ASCII byte in p[i..len), or len. */
static size_t skip_ascii(const uint8_t *p, size_t i, size_t len)
{
    /* Eight bytes at a time; memcpy keeps the load legal at any alignment
       and compiles to a plain load. */
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < len && p[i] < 0x80)
        i++;
    return i;
}

/* Start a multi-byte sequence at lead byte b; -1 if b can start none. */
static int start_sequence(struct ws_utf8 *v, uint8_t b)
{
    for (size_t r = 0; r < sizeof lead_rows / sizeof lead_rows[0]; r++) {
        const struct lead_row *row = &lead_rows[r];
        if (b >= row->lo && b <= row->hi) {
            v->need = row->need;
            v->lower = row->second_lo;
            v->upper = row->second_hi;
            return 0;
        }
    }
    return -1;
}

/* Accept continuation byte b if it lies in the expected range, else -1. */
static int continue_sequence(struct ws_utf8 *v, uint8_t b)
{
    if (b < v->lower || b > v->upper)
        return -1;
    v->need--;
    /* Only the second byte of a sequence has a narrowed range (RFC 3629
       §4); every later one is a plain UTF8-tail. */
    v->lower = TAIL_LO;
    v->upper = TAIL_HI;
    return 0;
}

/* Run the state machine over p[0..len), stopping at the first bad byte. */
int ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len) {
        int rc;
        if (v->need == 0) {
            i = skip_ascii(p, i, len);
            if (i == len)
                break;
            rc = start_sequence(v, p[i]);
        } else {
            rc = continue_sequence(v, p[i]);
        }
        if (rc != 0) {
            if (bad != NULL)
                *bad = i;
            return WS_EUTF8;
        }
        i++;
    }
    return 0;
}

bool ws_utf8_complete(const struct ws_utf8 *v)
{
    return v->need == 0;
}

/* Validate a whole buffer with a fresh state that must end on a boundary. */
bool ws_utf8_valid(const uint8_t *p, size_t len)
{
    struct ws_utf8 v = {0, 0, 0};
    return ws_utf8_feed(&v, p, len, NULL) == 0 && ws_utf8_complete(&v);
}
