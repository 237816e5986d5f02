/*
 * utf8_x86.c - the x86 vector passes of the UTF-8 validator: SSSE3, AVX2
 * and AVX-512 block checks that vouch for a valid prefix of the input
 * (the automaton in utf8.c then need not walk it), and the AVX-512 pass
 * that unmasks masked text (RFC 6455 §5.3) in the same walk. utf8.c picks
 * one at run time from what the CPU has (ws_utf8_x86_has). Pure, like
 * utf8.c. Compiles to nothing on other machines.
 */
#include "ws/utf8_x86.h"

#if WS_UTF8_X86

#include <immintrin.h>
#include <string.h>

/*
 * The vector validator, after Keiser and Lemire, "Validating UTF-8 In Less
 * Than One Instruction Per Byte" (2021), "lookup" variant. The whole of
 * RFC 3629 §4 reduces to two kinds of test at each byte b, given the three
 * bytes before it (p1 is the byte just before, p2 two before, p3 three):
 *
 *  1. The pair (p1, b) must be allowed. Every forbidden pair is a product
 *     "high nibble of p1 in H1, low nibble of p1 in L1, high nibble of b
 *     in H2", listed below with one bit each. Three 16-entry tables, one
 *     per nibble, hold for each nibble value the bits of the products it
 *     belongs to; looking all three up (pshufb) and ANDing them leaves the
 *     bits of the products the pair is in, so any bit left is an error.
 *  2. b must be a tail byte exactly when it is the 3rd or 4th byte of a
 *     character, that is when p2 >= E0 or p3 >= F0 (when the lead is bad,
 *     the pair test has rejected it already). The pair test cannot know
 *     this, so its TWO_TAILS product (a tail after a tail) is flagged for
 *     every such pair, and the flag is cancelled where the lead two or
 *     three bytes back asked for it: bit 7 of the result is "TWO_TAILS
 *     XOR required", an error either way it differs.
 *
 * A block of text is valid up to an incomplete last character when no
 * byte in it is flagged; the first flagged byte is the automaton's first
 * rejected byte or the one after it (C0, C1, F5-FF are caught by the byte
 * that follows them). So on a flag, or at the end, the automaton takes
 * over from the last character boundary before the flag, which gives the
 * exact index and the exact final state.
 *
 * The forbidden pairs (RFC 3629 §4), with H1 / L1 / H2 in hex nibbles:
 */
enum {
    TOO_SHORT = 1 << 0,  /* lead C-F / any / 0-7 or C-F: tail missing */
    TOO_LONG = 1 << 1,   /* ASCII 0-7 / any / 8-B: tail with no lead */
    OVERLONG_2 = 1 << 2, /* C / 0-1 / 8-B: C0, C1 lead a 2-byte form */
    OVERLONG_3 = 1 << 3, /* E / 0 / 8-9: E0 80-9F, below U+0800 */
    SURROGATE = 1 << 4,  /* E / D / A-B: ED A0-BF, U+D800-DFFF */
    F_LOW = 1 << 5,      /* F / 0, 5-F / 8: F0 80-8F is below U+10000,
                            F5-FF 80-8F past U+10FFFF */
    F_HIGH = 1 << 6,     /* F / 4-F / 9-B: F4-FF 90-BF, past U+10FFFF */
    TWO_TAILS = 1 << 7   /* tail 8-B / any / 8-B: see test 2 above */
};

/* Bits that hold for every low nibble of p1: the products with L1 "any". */
#define ANY_LOW (TOO_SHORT | TOO_LONG | TWO_TAILS)

/* By the high nibble of p1. */
static const uint8_t tab_p1_high[16] = {
    /* 0-7 ASCII */
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
    TOO_LONG,
    /* 8-B tails */
    TWO_TAILS, TWO_TAILS, TWO_TAILS, TWO_TAILS,
    /* C, D: 2-byte leads */
    TOO_SHORT | OVERLONG_2, TOO_SHORT,
    /* E: 3-byte leads */
    TOO_SHORT | OVERLONG_3 | SURROGATE,
    /* F: 4-byte leads */
    TOO_SHORT | F_LOW | F_HIGH};

/* By the low nibble of p1. */
static const uint8_t tab_p1_low[16] = {
    ANY_LOW | OVERLONG_2 | OVERLONG_3 | F_LOW, /* C0, E0, F0 */
    ANY_LOW | OVERLONG_2,                      /* C1 */
    ANY_LOW,
    ANY_LOW,
    ANY_LOW | F_HIGH,                     /* F4 */
    ANY_LOW | F_LOW | F_HIGH,             /* F5 */
    ANY_LOW | F_LOW | F_HIGH,             /* F6 */
    ANY_LOW | F_LOW | F_HIGH,             /* F7 */
    ANY_LOW | F_LOW | F_HIGH,             /* F8 */
    ANY_LOW | F_LOW | F_HIGH,             /* F9 */
    ANY_LOW | F_LOW | F_HIGH,             /* FA */
    ANY_LOW | F_LOW | F_HIGH,             /* FB */
    ANY_LOW | F_LOW | F_HIGH,             /* FC */
    ANY_LOW | SURROGATE | F_LOW | F_HIGH, /* ED, FD */
    ANY_LOW | F_LOW | F_HIGH,             /* FE */
    ANY_LOW | F_LOW | F_HIGH};            /* FF */

/* By the high nibble of b. */
#define TAIL_ANY (TOO_LONG | TWO_TAILS | OVERLONG_2)
static const uint8_t tab_b_high[16] = {
    /* 0-7 ASCII */
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
    TOO_SHORT,
    /* 8-B tails */
    TAIL_ANY | OVERLONG_3 | F_LOW,  /* 80-8F */
    TAIL_ANY | OVERLONG_3 | F_HIGH, /* 90-9F */
    TAIL_ANY | SURROGATE | F_HIGH,  /* A0-AF */
    TAIL_ANY | SURROGATE | F_HIGH,  /* B0-BF */
    /* C-F leads */
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT};
#undef TAIL_ANY

/*
 * The last three bytes of a block need more tails when byte 13 >= F0,
 * byte 14 >= E0 or byte 15 >= C0: subtracting this (with saturation)
 * leaves a non-zero byte exactly then. Used when an all-ASCII block
 * follows, since then the pair test of its first bytes is skipped.
 */
static const uint8_t tab_incomplete[16] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,     0xFF,     0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0 - 1, 0xE0 - 1, 0xC0 - 1};

/*
 * The vector pass found no flagged byte before p[q] (see above). Return
 * the start of the last character that starts before q: every byte before
 * it is valid and complete, so the automaton may resume there in ACCEPT.
 * With the bytes before q clean, at most three tails are stepped over.
 */
static size_t boundary_before(const uint8_t *p, size_t q)
{
    if (q == 0)
        return 0;
    q--;
    while (q > 0 && (p[q] & 0xC0) == 0x80)
        q--;
    return q;
}

/* Index of the first non-zero byte of the n bytes at flags, or n. */
static size_t first_flag(const uint8_t *flags, size_t n)
{
    size_t k = 0;

    while (k < n && flags[k] == 0)
        k++;
    return k;
}

/*
 * The vector passes walk 64-byte blocks and return the length of a prefix
 * of p[0..len) that is valid and ends on a character boundary; the first
 * error, if any, lies after it, and the automaton finishes the rest. p[0]
 * starts a character. No load reads past the input. In the SSSE3 and AVX2
 * passes a partial last block is checked as the last 64 bytes of the
 * input, overlapping bytes already checked (cheaper than copying), and
 * only input shorter than a block is copied into a buffer padded with
 * spaces; the AVX-512 pass uses masked loads instead.
 */
#define BLOCK WS_UTF8_BLOCK

/*
 * The 64 bytes a pass over the rest of p[0..len) after the blocks before
 * i reads: with blocks before, the last 64 of p, at *j; else p copied into
 * buf and padded with spaces, and *j is 0.
 */
static const uint8_t *last_block(const uint8_t *p, size_t i, size_t len,
                                 uint8_t buf[BLOCK], size_t *j)
{
    if (i > 0) {
        *j = len - BLOCK;
        return p + *j;
    }
    *j = 0;
    memset(buf, ' ', BLOCK);
    memcpy(buf, p, len);
    return buf;
}

/*
 * What a pass over the last 64 bytes of the input returns: they start at
 * p[j], the bytes before p[i] were checked already, and flags are the
 * block's flags, or NULL when none was flagged.
 */
static size_t last_block_prefix(const uint8_t *p, const uint8_t *flags,
                                size_t i, size_t j, size_t len)
{
    if (flags != NULL) {
        size_t q = i + first_flag(flags + (i - j), BLOCK - (i - j));

        if (q < len)
            return boundary_before(p, q);
    }
    return boundary_before(p, len);
}

/* SSSE3: 16 bytes per vector, four per block. */

#define SSE_TARGET __attribute__((target("ssse3")))

SSE_TARGET static inline __m128i sse_load(const uint8_t *p)
{
    /* loadu: no alignment is assumed; the cast through void * keeps
       -Wcast-align quiet, the access itself is unaligned-safe. */
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Tables and constants, loaded once per call. */
struct sse_consts {
    __m128i p1_high, p1_low, b_high, incomplete, nibble, third, fourth, bit7;
};

SSE_TARGET static inline void sse_consts_init(struct sse_consts *c)
{
    c->p1_high = sse_load(tab_p1_high);
    c->p1_low = sse_load(tab_p1_low);
    c->b_high = sse_load(tab_b_high);
    c->incomplete = sse_load(tab_incomplete);
    c->nibble = _mm_set1_epi8(0x0F);
    /* x -sat (E0 - 80) has bit 7 set exactly when x >= E0; likewise F0. */
    c->third = _mm_set1_epi8(0xE0 - 0x80);
    c->fourth = _mm_set1_epi8(0xF0 - 0x80);
    c->bit7 = _mm_set1_epi8((char)0x80);
}

/* The flags of the 16 bytes b, whose previous 16 bytes are prev. */
SSE_TARGET static inline __m128i sse_check(const struct sse_consts *c,
                                           __m128i b, __m128i prev)
{
    /* alignr joins prev:b and shifts, giving the bytes 1, 2, 3 back. */
    __m128i p1 = _mm_alignr_epi8(b, prev, 15);
    __m128i p2 = _mm_alignr_epi8(b, prev, 14);
    __m128i p3 = _mm_alignr_epi8(b, prev, 13);
    /* There is no byte shift; a 16-bit shift then the mask does it. */
    __m128i p1_hi = _mm_and_si128(_mm_srli_epi16(p1, 4), c->nibble);
    __m128i p1_lo = _mm_and_si128(p1, c->nibble);
    __m128i b_hi = _mm_and_si128(_mm_srli_epi16(b, 4), c->nibble);
    __m128i pair =
        _mm_and_si128(_mm_and_si128(_mm_shuffle_epi8(c->p1_high, p1_hi),
                                    _mm_shuffle_epi8(c->p1_low, p1_lo)),
                      _mm_shuffle_epi8(c->b_high, b_hi));
    __m128i need =
        _mm_or_si128(_mm_subs_epu8(p2, c->third), _mm_subs_epu8(p3, c->fourth));

    return _mm_xor_si128(pair, _mm_and_si128(need, c->bit7));
}

/* Check the block of four vectors v, after prev; store the flags in out
   (for first_flag) only when there are any. */
SSE_TARGET static inline bool sse_block(const struct sse_consts *c,
                                        const __m128i v[4], __m128i prev,
                                        uint8_t out[BLOCK])
{
    __m128i f0 = sse_check(c, v[0], prev), f1 = sse_check(c, v[1], v[0]);
    __m128i f2 = sse_check(c, v[2], v[1]), f3 = sse_check(c, v[3], v[2]);
    __m128i any = _mm_or_si128(_mm_or_si128(f0, f1), _mm_or_si128(f2, f3));

    /* No ptest before SSE4.1: compare with zero instead. */
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) == 0xFFFF)
        return false;
    _mm_storeu_si128((__m128i *)(void *)out, f0);
    _mm_storeu_si128((__m128i *)(void *)(out + 16), f1);
    _mm_storeu_si128((__m128i *)(void *)(out + 32), f2);
    _mm_storeu_si128((__m128i *)(void *)(out + 48), f3);
    return true;
}

/*
 * Check the rest of p[0..len) after the blocks before i, and return the
 * prefix length as sse_prefix() does. With at least one block before, the
 * last 64 bytes are checked and only flags from i on count: the ones
 * before were clear, except that when the 16 bytes before the block are
 * not all in p, the zeros put there may flag the block's first bytes.
 * Shorter input is copied into a block padded with spaces, and flags in
 * the padding are ignored. Either way a character cut at the end is not
 * flagged, so the automaton re-reads the last character.
 */
SSE_TARGET static size_t sse_last(const struct sse_consts *c, const uint8_t *p,
                                  size_t i, size_t len)
{
    uint8_t flags[BLOCK], buf[BLOCK];
    size_t j;
    const uint8_t *b = last_block(p, i, len, buf, &j);
    bool flagged;
    __m128i v[4], prev = _mm_setzero_si128();

    if (j >= 16)
        prev = sse_load(p + j - 16);
    for (size_t k = 0; k < 4; k++)
        v[k] = sse_load(b + 16 * k);
    flagged = sse_block(c, v, prev, flags);
    return last_block_prefix(p, flagged ? flags : NULL, i, j, len);
}

SSE_TARGET size_t ws_utf8_sse_prefix(const uint8_t *p, size_t len)
{
    struct sse_consts c;
    __m128i prev = _mm_setzero_si128(); /* p[0] starts a character */
    uint8_t flags[BLOCK];
    size_t i = 0;

    sse_consts_init(&c);
    for (; len - i >= BLOCK; i += BLOCK) {
        __m128i v[4] = {sse_load(p + i), sse_load(p + i + 16),
                        sse_load(p + i + 32), sse_load(p + i + 48)};
        __m128i all =
            _mm_or_si128(_mm_or_si128(v[0], v[1]), _mm_or_si128(v[2], v[3]));

        if (_mm_movemask_epi8(all) == 0) {
            /* All ASCII: valid, unless the last block left a character
               unfinished. Then one of this block's first three bytes is
               the bad one, so resume from before the block. */
            __m128i open = _mm_subs_epu8(prev, c.incomplete);

            if (_mm_movemask_epi8(_mm_cmpeq_epi8(open, _mm_setzero_si128())) !=
                0xFFFF)
                return boundary_before(p, i);
        } else if (sse_block(&c, v, prev, flags)) {
            return boundary_before(p, i + first_flag(flags, BLOCK));
        }
        prev = v[3];
    }
    return i < len ? sse_last(&c, p, i, len) : boundary_before(p, len);
}

/* AVX2: 32 bytes per vector, two per block; the same steps as SSSE3. */

#define AVX2_TARGET __attribute__((target("avx2")))

AVX2_TARGET static inline __m256i avx2_load(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* A 16-byte table in both 128-bit lanes: vpshufb looks up per lane. */
AVX2_TARGET static inline __m256i avx2_table(const uint8_t *t)
{
    return _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *)(const void *)t));
}

struct avx2_consts {
    __m256i p1_high, p1_low, b_high, incomplete, nibble, third, fourth, bit7;
};

AVX2_TARGET static inline void avx2_consts_init(struct avx2_consts *c)
{
    c->p1_high = avx2_table(tab_p1_high);
    c->p1_low = avx2_table(tab_p1_low);
    c->b_high = avx2_table(tab_b_high);
    /* Only the top lane's last bytes end the vector: the low lane gets
       all 0xFF, which never leaves anything. */
    c->incomplete = _mm256_inserti128_si256(
        _mm256_set1_epi8((char)0xFF),
        _mm_loadu_si128((const __m128i *)(const void *)tab_incomplete), 1);
    c->nibble = _mm256_set1_epi8(0x0F);
    c->third = _mm256_set1_epi8(0xE0 - 0x80);
    c->fourth = _mm256_set1_epi8(0xF0 - 0x80);
    c->bit7 = _mm256_set1_epi8((char)0x80);
}

AVX2_TARGET static inline __m256i avx2_check(const struct avx2_consts *c,
                                             __m256i b, __m256i prev)
{
    /* vpalignr shifts within each 128-bit lane, so first build the vector
       that precedes b lane by lane: prev's high lane, then b's low lane. */
    __m256i before = _mm256_permute2x128_si256(prev, b, 0x21);
    __m256i p1 = _mm256_alignr_epi8(b, before, 15);
    __m256i p2 = _mm256_alignr_epi8(b, before, 14);
    __m256i p3 = _mm256_alignr_epi8(b, before, 13);
    __m256i p1_hi = _mm256_and_si256(_mm256_srli_epi16(p1, 4), c->nibble);
    __m256i p1_lo = _mm256_and_si256(p1, c->nibble);
    __m256i b_hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), c->nibble);
    __m256i pair = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(c->p1_high, p1_hi),
                         _mm256_shuffle_epi8(c->p1_low, p1_lo)),
        _mm256_shuffle_epi8(c->b_high, b_hi));
    __m256i need = _mm256_or_si256(_mm256_subs_epu8(p2, c->third),
                                   _mm256_subs_epu8(p3, c->fourth));

    return _mm256_xor_si256(pair, _mm256_and_si256(need, c->bit7));
}

AVX2_TARGET static inline bool avx2_block(const struct avx2_consts *c,
                                          __m256i v0, __m256i v1, __m256i prev,
                                          uint8_t out[BLOCK])
{
    __m256i f0 = avx2_check(c, v0, prev), f1 = avx2_check(c, v1, v0);
    __m256i any = _mm256_or_si256(f0, f1);

    if (_mm256_testz_si256(any, any))
        return false;
    _mm256_storeu_si256((__m256i *)(void *)out, f0);
    _mm256_storeu_si256((__m256i *)(void *)(out + 32), f1);
    return true;
}

/* The rest of p[0..len) after the blocks before i: see sse_last(). */
AVX2_TARGET static size_t avx2_last(const struct avx2_consts *c,
                                    const uint8_t *p, size_t i, size_t len)
{
    uint8_t flags[BLOCK], buf[BLOCK];
    size_t j;
    const uint8_t *b = last_block(p, i, len, buf, &j);
    bool flagged;
    __m256i prev = _mm256_setzero_si256();

    if (j >= 32)
        prev = avx2_load(p + j - 32);
    flagged = avx2_block(c, avx2_load(b), avx2_load(b + 32), prev, flags);
    return last_block_prefix(p, flagged ? flags : NULL, i, j, len);
}

AVX2_TARGET size_t ws_utf8_avx2_prefix(const uint8_t *p, size_t len)
{
    struct avx2_consts c;
    __m256i prev = _mm256_setzero_si256(); /* p[0] starts a character */
    uint8_t flags[BLOCK];
    size_t i = 0;

    avx2_consts_init(&c);
    for (; len - i >= BLOCK; i += BLOCK) {
        __m256i v0 = avx2_load(p + i), v1 = avx2_load(p + i + 32);

        if (_mm256_movemask_epi8(_mm256_or_si256(v0, v1)) == 0) {
            /* All ASCII: see sse_prefix(). */
            __m256i open = _mm256_subs_epu8(prev, c.incomplete);

            if (!_mm256_testz_si256(open, open))
                return boundary_before(p, i);
        } else if (avx2_block(&c, v0, v1, prev, flags)) {
            return boundary_before(p, i + first_flag(flags, BLOCK));
        }
        prev = v1;
    }
    return i < len ? avx2_last(&c, p, i, len) : boundary_before(p, len);
}

/*
 * AVX-512 (F, BW and VBMI): one 64-byte vector per block, the same steps
 * and tables. Mask registers replace the flag stores: the ASCII test and
 * the first flagged byte come straight from 64-bit masks. The bytes after
 * the last whole block, and input shorter than a block, are read with a
 * masked load: masked-off lanes are not read, cannot fault and read as
 * zero, so there is no copy, no overlapping block and no read past the
 * input, and short messages can take this path too (avx512_load_last()
 * keeps such a load inside the pages that the input occupies).
 *
 * On Sapphire Rapids 512-bit work issues to two ports only, so the cost is
 * the count of vector operations; the choices below each remove some.
 */

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi")))

/* A 16-byte table in all four 128-bit lanes. */
AVX512_TARGET static inline __m512i avx512_table(const uint8_t *t)
{
    return _mm512_broadcast_i32x4(
        _mm_loadu_si128((const __m128i *)(const void *)t));
}

struct avx512_consts {
    __m512i p1_high, p1_low, b_high, incomplete, third, fourth, bit7;
};

AVX512_TARGET static inline void avx512_consts_init(struct avx512_consts *c)
{
    c->p1_high = avx512_table(tab_p1_high);
    c->p1_low = avx512_table(tab_p1_low);
    c->b_high = avx512_table(tab_b_high);
    /* As in avx2_consts_init(): only the top lane ends the vector. */
    c->incomplete = _mm512_inserti32x4(
        _mm512_set1_epi8((char)0xFF),
        _mm_loadu_si128((const __m128i *)(const void *)tab_incomplete), 3);
    c->third = _mm512_set1_epi8(0xE0 - 0x80);
    c->fourth = _mm512_set1_epi8(0xF0 - 0x80);
    c->bit7 = _mm512_set1_epi8((char)0x80);
}

/* All 64 lanes of a mask. */
#define ALL_LANES (~UINT64_C(0))

/* What avx512_bad1() and avx512_bad4() return when no byte is flagged. */
#define NO_FLAG (4 * BLOCK)

/* The lanes of a mask that hold the first n < 64 bytes. */
static inline uint64_t lanes(size_t n)
{
    return (UINT64_C(1) << n) - 1;
}

/* The smallest x86 page. */
#define PAGE 4096

/* Lane numbers, for moving bytes between lanes with vpermb. */
static const uint8_t tab_lane[BLOCK] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/*
 * The n < 64 bytes at q in lanes 0 to n-1, zeros above. Masked-off lanes
 * cannot fault, but one in a page that is not mapped in (never touched,
 * or a guard page) still costs a microcode assist: about 250 ns on SPR,
 * on every call. So a load that would reach into the next page reads the
 * 64 bytes that end at q + n instead, which lie in pages that the input
 * occupies (q is in the last 63 bytes of its page), and moves them down.
 */
AVX512_TARGET static inline __m512i avx512_load_last(const uint8_t *q, size_t n)
{
    uintptr_t end = (uintptr_t)q + n; /* q + n - 64 may precede p */
    __m512i v, from;

    if (n == 0)
        return _mm512_setzero_si512();
    if (((uintptr_t)q & (PAGE - 1)) <= PAGE - BLOCK)
        return _mm512_maskz_loadu_epi8(_cvtu64_mask64(lanes(n)), q);
    v = _mm512_maskz_loadu_epi8(_cvtu64_mask64(~lanes(BLOCK - n)),
                                (const void *)(end - BLOCK));
    from = _mm512_add_epi8(_mm512_loadu_si512((const void *)tab_lane),
                           _mm512_set1_epi8((char)(BLOCK - n)));
    return _mm512_maskz_permutexvar_epi8(_cvtu64_mask64(lanes(n)), from, v);
}

/*
 * The lanes among ok whose byte of b passes both tests, b's previous 64
 * bytes being prev. Passing one call's result as the next one's ok ANDs
 * the blocks' results, so one test covers several blocks.
 */
AVX512_TARGET static inline uint64_t
avx512_ok(const struct avx512_consts *c, __m512i b, __m512i prev, uint64_t ok)
{
    /* valignq by six quadwords: prev's top 128-bit lane, then b's lanes
       0-2, so each lane of before is the lane that precedes the same lane
       of b in the stream, and vpalignr (which shifts within lanes, as in
       avx2_check()) gives the bytes 1, 2, 3 back. vpermt2b could give
       each in one step, but it overwrites a source, and the copies cost
       more than they save. */
    __m512i before = _mm512_alignr_epi64(b, prev, 6);
    __m512i p1 = _mm512_alignr_epi8(b, before, 15);
    __m512i p2 = _mm512_alignr_epi8(b, before, 14);
    __m512i p3 = _mm512_alignr_epi8(b, before, 13);
    /* vpermb (VBMI) reads only the low six bits of each index, and the
       tables repeat every 16 bytes, so unlike vpshufb it needs no AND to
       take a nibble: the bits a 16-bit shift brings in do not matter. */
    __m512i pair = _mm512_ternarylogic_epi32(
        _mm512_permutexvar_epi8(_mm512_srli_epi16(p1, 4), c->p1_high),
        _mm512_permutexvar_epi8(p1, c->p1_low),
        _mm512_permutexvar_epi8(_mm512_srli_epi16(b, 4), c->b_high), 0x80);
    /* vpternlogd 0x80 above is a AND b AND c; 0xA8 is (a OR b) AND c. */
    __m512i need = _mm512_ternarylogic_epi32(_mm512_subs_epu8(p2, c->third),
                                             _mm512_subs_epu8(p3, c->fourth),
                                             c->bit7, 0xA8);

    /* pair XOR need is zero, that is pair equals need, exactly when no
       error bit is left (test 2). */
    return _cvtmask64_u64(
        _mm512_mask_cmpeq_epi8_mask(_cvtu64_mask64(ok), pair, need));
}

/* True when the block prev ends inside a character. */
AVX512_TARGET static inline bool avx512_open(const struct avx512_consts *c,
                                             __m512i prev)
{
    __m512i open = _mm512_subs_epu8(prev, c->incomplete);

    return _cvtmask64_u64(_mm512_test_epi8_mask(open, open)) != 0;
}

/*
 * The first flagged byte of the block b, whose previous 64 bytes are
 * prev, or NO_FLAG. An all-ASCII b is valid unless prev left a character
 * unfinished; then one of b's first three bytes is the bad one, and
 * flagging byte 0 makes the automaton resume before b.
 */
AVX512_TARGET static inline size_t avx512_bad1(const struct avx512_consts *c,
                                               __m512i b, __m512i prev)
{
    uint64_t ok;

    if (_cvtmask64_u64(_mm512_movepi8_mask(b)) == 0)
        return avx512_open(c, prev) ? 0 : NO_FLAG;
    ok = avx512_ok(c, b, prev, ALL_LANES);
    return ok == ALL_LANES ? NO_FLAG : (size_t)__builtin_ctzll(~ok);
}

/*
 * As avx512_bad1() for the four consecutive blocks b0-b3 (bytes 0-255),
 * with one ASCII test and one error test for all four: per block, those
 * two tests would be a sixth of the vector work.
 */
AVX512_TARGET static inline size_t avx512_bad4(const struct avx512_consts *c,
                                               __m512i b0, __m512i b1,
                                               __m512i b2, __m512i b3,
                                               __m512i prev)
{
    /* vpternlogd 0xFE is a OR b OR c. */
    __m512i any =
        _mm512_or_si512(_mm512_ternarylogic_epi32(b0, b1, b2, 0xFE), b3);
    uint64_t ok[4];
    size_t k = 0;

    if (_cvtmask64_u64(_mm512_movepi8_mask(any)) == 0)
        return avx512_open(c, prev) ? 0 : NO_FLAG;
    ok[0] = avx512_ok(c, b0, prev, ALL_LANES);
    ok[1] = avx512_ok(c, b1, b0, ok[0]);
    ok[2] = avx512_ok(c, b2, b1, ok[1]);
    ok[3] = avx512_ok(c, b3, b2, ok[2]);
    if (ok[3] == ALL_LANES)
        return NO_FLAG;
    while (ok[k] == ALL_LANES) /* the first block with a flag */
        k++;
    return k * BLOCK + (size_t)__builtin_ctzll(~ok[k]);
}

/*
 * The prefix length, as sse_prefix() defines it. Groups of four blocks,
 * then single blocks, then the last n < 64 bytes (maybe none) by a masked
 * load, which leaves at least one zero lane after them. That lane is
 * ASCII, which RFC 3629 §4 allows only on a character boundary, so it is
 * flagged exactly when the input ends inside a character (or on C0, C1,
 * F5-FF, which the byte after catches): a flag at or past n sends the
 * automaton back to the last character, and no flag at all means that the
 * whole input is valid and complete.
 */
AVX512_TARGET size_t ws_utf8_avx512_prefix(const uint8_t *p, size_t len)
{
    struct avx512_consts c;
    __m512i b, prev = _mm512_setzero_si512(); /* p[0] starts a character */
    size_t i = 0, q;

    if (len < BLOCK) {
        /* Most chat messages: ASCII in one load, before any set-up. */
        b = avx512_load_last(p, len);
        if (_cvtmask64_u64(_mm512_movepi8_mask(b)) == 0)
            return len;
    }
    avx512_consts_init(&c);
    for (; len - i >= 4 * BLOCK; i += 4 * BLOCK) {
        q = avx512_bad4(&c, _mm512_loadu_si512((const void *)(p + i)),
                        _mm512_loadu_si512((const void *)(p + i + BLOCK)),
                        _mm512_loadu_si512((const void *)(p + i + 2 * BLOCK)),
                        _mm512_loadu_si512((const void *)(p + i + 3 * BLOCK)),
                        prev);
        if (q != NO_FLAG)
            return boundary_before(p, i + q);
        prev = _mm512_loadu_si512((const void *)(p + i + 3 * BLOCK));
    }
    for (; len - i >= BLOCK; i += BLOCK) {
        b = _mm512_loadu_si512((const void *)(p + i));
        q = avx512_bad1(&c, b, prev);
        if (q != NO_FLAG)
            return boundary_before(p, i + q);
        prev = b;
    }
    b = avx512_load_last(p + i, len - i);
    q = avx512_bad1(&c, b, prev);
    if (q == NO_FLAG)
        return len;
    return boundary_before(p, i + (q < len - i ? q : len - i));
}

/*
 * The fused pass of ws_utf8_unmask_prefix(): unmasking (RFC 6455 §5.3)
 * and checking in one walk, so that the stores of the unmasked bytes
 * overlap with the check instead of making a pass of their own. Each
 * block is loaded, XORed with the key and stored back, then checked from
 * the register as avx512_prefix() checks it; every step is a multiple of
 * 64 bytes, so one key vector serves the whole walk.
 *
 * The stores run ahead of the check: a group of four blocks is stored
 * before its flags are known, and the prefix then ends at the character
 * boundary before the first flag, up to three bytes before the group. So
 * the pass stops in three steps:
 *   1. find the first flagged byte q, as avx512_prefix() does;
 *   2. take the start of the last character before q (boundary_before()
 *      reads bytes already unmasked, as the automaton needs them);
 *   3. XOR the bytes from there to the end of what was stored once more,
 *      which gives them back their masked values, so that the caller's
 *      ws_mask() over the rest XORs each byte exactly once.
 * Step 3 runs only on bad text, or on a character cut by the end of the
 * walk (at most three bytes). Only whole blocks are walked: the partial
 * last block, which would need a masked store kept inside the input's
 * pages (see avx512_load_last()), is left to the caller's two passes.
 */

/*
 * End the fused pass at the first flagged byte q (or at q where a cut
 * character meets the end of the walk), with p[0..stored) XORed: steps 2
 * and 3 above. Returns the prefix, which ends on a character boundary.
 */
static size_t unmask_stop(uint8_t *p, size_t q, size_t stored, uint32_t kw)
{
    size_t r = boundary_before(p, q);

    ws_mask_bytes(p, r, stored, kw);
    return r;
}

/*
 * Unmask and check the whole blocks of p[0..len), p[0] starting a
 * character, with kw the key word at p[0]. Returns the prefix: unmasked,
 * valid and ending on a boundary; p from there on is as it was.
 */
AVX512_TARGET size_t ws_utf8_avx512_unmask_prefix(uint8_t *p, size_t len,
                                                  uint32_t kw)
{
    struct avx512_consts c;
    __m512i kv = _mm512_set1_epi32((int)kw);
    __m512i b0, b1, b2, b3, prev = _mm512_setzero_si512();
    size_t i = 0, q;

    avx512_consts_init(&c);
    for (; len - i >= 4 * BLOCK; i += 4 * BLOCK) {
        b0 = ws_mask_block64(p + i, kv);
        b1 = ws_mask_block64(p + i + BLOCK, kv);
        b2 = ws_mask_block64(p + i + 2 * BLOCK, kv);
        b3 = ws_mask_block64(p + i + 3 * BLOCK, kv);
        q = avx512_bad4(&c, b0, b1, b2, b3, prev);
        if (q != NO_FLAG)
            return unmask_stop(p, i + q, i + 4 * BLOCK, kw);
        prev = b3;
    }
    for (; len - i >= BLOCK; i += BLOCK) {
        b0 = ws_mask_block64(p + i, kv);
        q = avx512_bad1(&c, b0, prev);
        if (q != NO_FLAG)
            return unmask_stop(p, i + q, i + BLOCK, kw);
        prev = b0;
    }
    /* The walk ends inside a character (or on C0, C1 or F5-FF): the
       caller's automaton re-reads it, with the bytes after the walk. */
    return avx512_open(&c, prev) ? unmask_stop(p, i, i, kw) : i;
}

/* What this CPU supports. __builtin_cpu_supports("avx2") also checks that
   the OS saves the YMM registers (XGETBV), not only the CPUID bit, and the
   AVX-512 features that it saves the ZMM and mask registers. */
bool ws_utf8_x86_has(enum ws_utf8_impl impl)
{
    if (impl == WS_UTF8_AVX512)
        return ws_cpu_has(WS_CPU_AVX512 | WS_CPU_AVX512VBMI);
    if (impl == WS_UTF8_AVX2)
        return ws_cpu_has(WS_CPU_AVX2);
    if (impl == WS_UTF8_SSSE3)
        return ws_cpu_has(WS_CPU_SSSE3);
    return impl == WS_UTF8_SCALAR;
}

#endif /* WS_UTF8_X86 */
