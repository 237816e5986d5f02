/*
 * utf8.c - incremental UTF-8 validation: a table-driven automaton over the
 * UTF8-octets table of RFC 3629 §4, and on x86 an SSSE3, AVX2 or AVX-512
 * block validator (utf8_x86.c, chosen once per process) that vouches for
 * a prefix the automaton then need not walk; the AVX-512 one can also
 * unmask masked text (RFC 6455 §5.3) in the same walk. It rejects a
 * sequence at the first byte that makes it invalid, even across calls.
 * Pure: it must never do I/O, allocate, or keep state outside struct
 * ws_utf8 except the CPU choice.
 */
#include "ws/utf8.h"

#include <stdatomic.h>
#include <string.h>

#include "ws/mask.h"
#include "ws/utf8_x86.h"
#include "net/error.h"

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

/*
 * Below SIMD_MIN bytes the automaton alone is as fast as setting up the
 * vector tables and the padded last block. Below SIMD_PAD bytes the vector
 * pass must pad (copy) its input, which costs more than skipping leading
 * ASCII a word at a time, so that is done first. The AVX-512 pass reads
 * short input with one masked load and no copy: on Sapphire Rapids it beat
 * the automaton at every length measured (2 bytes on), ASCII included, so
 * AVX512_MIN only keeps empty input out.
 */
#define SIMD_MIN 32
#define SIMD_PAD 64
#define AVX512_MIN 1

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
 * Run the automaton from v->state over p[i..len), stopping at the first
 * bad byte. ASCII at a character boundary is skipped a word at a time;
 * elsewhere whole blocks go through the table with no branch per byte
 * (REJECT is final, so one check after each block is enough), which keeps
 * text with many multi-byte characters fast.
 */
static int scalar_feed(struct ws_utf8 *v, const uint8_t *p, size_t i,
                       size_t len, size_t *bad)
{
    uint8_t state = v->state;

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

#if WS_UTF8_X86

/*
 * Finish the character that v has open (at most three bytes), unmasking
 * those bytes with kw, the key word at p[0]. Returns their count, with
 * them XORed and v at a boundary; 0, with nothing changed, when p[0..len)
 * does not finish it: a bad byte, which the caller's feed then reports.
 */
static size_t finish_open(struct ws_utf8 *v, uint8_t *p, size_t len,
                          uint32_t kw)
{
    uint8_t k[4], s = v->state;
    size_t n = 0;

    memcpy(k, &kw, sizeof k);
    for (; s != ACCEPT; n++) {
        if (n == len || s == REJECT)
            return 0;
        s = next_state[s][byte_class[(uint8_t)(p[n] ^ k[n & 3u])]];
    }
    ws_mask_bytes(p, 0, n, kw);
    v->state = ACCEPT;
    return n;
}

/* ws_utf8_unmask_prefix() for the AVX-512 implementation. */
static size_t avx512_unmask(struct ws_utf8 *v, uint8_t *p, size_t len,
                            const uint8_t key[4], uint64_t offset)
{
    size_t n;

    /* A state past REJECT is not one ws_utf8_feed() leaves; never index
       the tables with it. */
    if (len < WS_UTF8_UNMASK_MIN || v->state >= REJECT)
        return 0;
    n = finish_open(v, p, len, ws_mask_key_word(key, offset));
    if (v->state != ACCEPT)
        return 0;
    return n + ws_utf8_avx512_unmask_prefix(p + n, len - n,
                                            ws_mask_key_word(key, offset + n));
}
#endif

bool ws_utf8_impl_available(enum ws_utf8_impl impl)
{
    if (impl == WS_UTF8_AUTO || impl == WS_UTF8_SCALAR)
        return true;
#if WS_UTF8_X86
    return ws_utf8_x86_has(impl);
#else
    return false;
#endif
}

/*
 * The implementation ws_utf8_feed() uses, resolved on first use. Threads
 * that race here all compute the same answer from CPUID and store the
 * same value, so a relaxed atomic is enough: nothing else is published
 * through it. 0 (WS_UTF8_AUTO) means "not resolved yet".
 */
static atomic_int best_impl;

enum ws_utf8_impl ws_utf8_impl_chosen(void)
{
    int b = atomic_load_explicit(&best_impl, memory_order_relaxed);

    if (b == WS_UTF8_AUTO) {
        if (ws_utf8_impl_available(WS_UTF8_AVX512))
            b = WS_UTF8_AVX512;
        else if (ws_utf8_impl_available(WS_UTF8_AVX2))
            b = WS_UTF8_AVX2;
        else if (ws_utf8_impl_available(WS_UTF8_SSSE3))
            b = WS_UTF8_SSSE3;
        else
            b = WS_UTF8_SCALAR;
        atomic_store_explicit(&best_impl, b, memory_order_relaxed);
    }
    return (enum ws_utf8_impl)b;
}

/* The length of a valid prefix of p[0..len) that ends on a boundary, by
   impl's vector pass; 0 when impl has none. */
static size_t vector_prefix(enum ws_utf8_impl impl, const uint8_t *p,
                            size_t len)
{
#if WS_UTF8_X86
    if (impl == WS_UTF8_AVX512)
        return ws_utf8_avx512_prefix(p, len);
    if (impl == WS_UTF8_AVX2)
        return ws_utf8_avx2_prefix(p, len);
    if (impl == WS_UTF8_SSSE3)
        return ws_utf8_sse_prefix(p, len);
#else
    (void)impl;
    (void)p;
    (void)len;
#endif
    return 0;
}

/* Where the automaton resumes after impl's vector pass over p[i..len),
   which starts on a character boundary. */
static size_t vector_pass(enum ws_utf8_impl impl, const uint8_t *p, size_t i,
                          size_t len)
{
    if (impl == WS_UTF8_AVX512)
        return len - i >= AVX512_MIN ? i + vector_prefix(impl, p + i, len - i)
                                     : i;
    if (impl == WS_UTF8_SCALAR || len - i < SIMD_MIN)
        return i;
    if (len - i < SIMD_PAD)
        i = skip_ascii(p, i, len); /* still in ACCEPT */
    if (len - i >= SIMD_MIN)
        i += vector_prefix(impl, p + i, len - i);
    return i;
}

/*
 * Three steps: the automaton finishes a character cut by the previous call
 * (at most three bytes), the vector pass vouches for a prefix that ends on
 * a boundary, and the automaton runs from there to the end, so the index
 * of a bad byte and the final state are the automaton's own.
 */
int ws_utf8_feed_impl(enum ws_utf8_impl impl, struct ws_utf8 *v,
                      const uint8_t *p, size_t len, size_t *bad)
{
    size_t i = 0;

    if (impl == WS_UTF8_AUTO)
        impl = ws_utf8_impl_chosen();
    else if (!ws_utf8_impl_available(impl))
        impl = WS_UTF8_SCALAR;
    for (; i < len && v->state != ACCEPT; i++) {
        v->state = next_state[v->state][byte_class[p[i]]];
        if (v->state == REJECT) {
            if (bad != NULL)
                *bad = i;
            return WS_EUTF8;
        }
    }
    return scalar_feed(v, p, vector_pass(impl, p, i, len), len, bad);
}

int ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t len, size_t *bad)
{
    return ws_utf8_feed_impl(WS_UTF8_AUTO, v, p, len, bad);
}

/* The fused pass where impl has one; see avx512_unmask(). */
size_t ws_utf8_unmask_prefix_impl(enum ws_utf8_impl impl, struct ws_utf8 *v,
                                  uint8_t *p, size_t len, const uint8_t key[4],
                                  uint64_t offset)
{
    if (impl == WS_UTF8_AUTO)
        impl = ws_utf8_impl_chosen();
    else if (!ws_utf8_impl_available(impl))
        return 0;
#if WS_UTF8_X86
    if (impl == WS_UTF8_AVX512)
        return avx512_unmask(v, p, len, key, offset);
#else
    (void)v;
    (void)p;
    (void)len;
    (void)key;
    (void)offset;
#endif
    return 0;
}

size_t ws_utf8_unmask_prefix(struct ws_utf8 *v, uint8_t *p, size_t len,
                             const uint8_t key[4], uint64_t offset)
{
    return ws_utf8_unmask_prefix_impl(WS_UTF8_AUTO, v, p, len, key, offset);
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
