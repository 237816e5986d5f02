/*
 * utf8.c - incremental UTF-8 validation: a table-driven automaton over the
 * UTF8-octets table of RFC 3629 §4, with ASCII skipped eight bytes at a
 * time. It rejects a sequence at the first byte that makes it invalid,
 * even across calls. Pure: it must never do I/O, allocate, or keep state
 * outside struct ws_utf8.
 */
#include "ws/utf8.h"

#include <string.h>

#include "ws/ws.h"

/*
 * Byte classes. Each RFC 3629 §4 row is a lead byte followed by tails
 * whose first one may have a narrower range, so the tails split into
 * 80-8F, 90-9F and A0-BF, and the leads into the rows:
 *   0 00-7F ASCII          5 C2-DF two bytes       9  F0 (second 90-BF)
 *   1 80-8F tail           6 E0 (second A0-BF)     10 F1-F3
 *   2 90-9F tail           7 E1-EC, EE-EF          11 F4 (second 80-8F)
 *   3 A0-BF tail           8 ED (second 80-9F: no surrogates)
 *   4 C0-C1, F5-FF: can start only overlong forms or code points past
 *     U+10FFFF, so never valid.
 */
static const uint8_t byte_class[256] = {
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00-0F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10-1F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 20-2F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 30-3F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 40-4F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 50-5F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 60-6F */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 70-7F */
    1, 1,  1,  1,  1,  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 80-8F */
    2, 2,  2,  2,  2,  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 90-9F */
    3, 3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* A0-AF */
    3, 3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* B0-BF */
    4, 4,  5,  5,  5,  5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* C0-CF */
    5, 5,  5,  5,  5,  5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* D0-DF */
    6, 7,  7,  7,  7,  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, /* E0-EF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* F0-FF */
};

/*
 * States: how much of a character is still expected. ACCEPT (0) is a
 * character boundary, so a zero-filled struct ws_utf8 is the initial
 * state; REJECT is final.
 */
enum {
    ACCEPT,
    TAIL1,  /* one tail 80-BF */
    TAIL2,  /* two tails */
    TAIL3,  /* three tails */
    E0_SEC, /* A0-BF, then one tail */
    ED_SEC, /* 80-9F, then one tail */
    F0_SEC, /* 90-BF, then two tails */
    F4_SEC, /* 80-8F, then two tails */
    REJECT,
    NSTATES
};

#define R REJECT
static const uint8_t next_state[NSTATES][12] = {
    /*  asc  80  90  A0  bad C2  E0      E1      ED      F0      F1     F4 */
    [ACCEPT] = {ACCEPT, R, R, R, R, TAIL1, E0_SEC, TAIL2, ED_SEC, F0_SEC, TAIL3,
                F4_SEC},
    [TAIL1] = {R, ACCEPT, ACCEPT, ACCEPT, R, R, R, R, R, R, R, R},
    [TAIL2] = {R, TAIL1, TAIL1, TAIL1, R, R, R, R, R, R, R, R},
    [TAIL3] = {R, TAIL2, TAIL2, TAIL2, R, R, R, R, R, R, R, R},
    [E0_SEC] = {R, R, R, TAIL1, R, R, R, R, R, R, R, R},
    [ED_SEC] = {R, TAIL1, TAIL1, R, R, R, R, R, R, R, R, R},
    [F0_SEC] = {R, R, TAIL2, TAIL2, R, R, R, R, R, R, R, R},
    [F4_SEC] = {R, TAIL2, R, R, R, R, R, R, R, R, R, R},
    [REJECT] = {R, R, R, R, R, R, R, R, R, R, R, R},
};
#undef R

void ws_utf8_reset(struct ws_utf8 *v)
{
    v->state = ACCEPT;
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

/* Find the byte that rejects, from state over p[i..end); a block that is
   known to reject is run again byte by byte. */
static size_t find_reject(uint8_t state, const uint8_t *p, size_t i, size_t end)
{
    for (; i < end; i++) {
        state = next_state[state][byte_class[p[i]]];
        if (state == REJECT)
            break;
    }
    return i;
}

/*
 * Run the automaton over p[0..len), stopping at the first bad byte. ASCII
 * at a character boundary is skipped a word at a time; elsewhere whole
 * blocks go through the table with no branch per byte (REJECT is final,
 * so one check after each block is enough), which keeps text with many
 * multi-byte characters fast.
 */
int ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t len, size_t *bad)
{
    uint8_t state = v->state;
    size_t i = 0;

    while (i < len) {
        size_t end = len - i > 16 ? i + 16 : len;
        uint8_t s = state;

        if (state == ACCEPT) {
            i = skip_ascii(p, i, len);
            if (i == len)
                break;
            end = len - i > 16 ? i + 16 : len;
        }
        for (size_t k = i; k < end; k++)
            s = next_state[s][byte_class[p[k]]];
        if (s == REJECT) {
            v->state = REJECT;
            if (bad != NULL)
                *bad = find_reject(state, p, i, end);
            return WS_EUTF8;
        }
        state = s;
        i = end;
    }
    v->state = state;
    return 0;
}

bool ws_utf8_complete(const struct ws_utf8 *v)
{
    return v->state == ACCEPT;
}

/* Validate a whole buffer with a fresh state that must end on a boundary. */
bool ws_utf8_valid(const uint8_t *p, size_t len)
{
    struct ws_utf8 v = {ACCEPT};

    return ws_utf8_feed(&v, p, len, NULL) == 0 && ws_utf8_complete(&v);
}
