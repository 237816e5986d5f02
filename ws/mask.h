/*
 * mask.h - the payload mask of RFC 6455 §5.3 and the CPU dispatch behind
 * it, in one unit: the frame codec's unmask (and unmask-copy) and the
 * UTF-8 validator's fused unmask-and-check use the same key word, the
 * same byte loop, the same AVX-512 block XOR and the same answer to
 * "what does this CPU run". Pure: no I/O, no allocation. Internal.
 */
#ifndef WS_MASK_H
#define WS_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) &&                              \
    (defined(__GNUC__) || defined(__clang__))
#define WS_MASK_X86 1
#include <immintrin.h>
#else
#define WS_MASK_X86 0
#endif

/*
 * Byte i of a payload is XORed with key[i % 4]. The key as it falls on a
 * buffer whose first byte is payload byte offset: rotated by offset % 4,
 * as a native 32-bit word, so that the word's byte j (in memory order)
 * falls on bytes j, j + 4, ... of the buffer.
 */
static inline uint32_t ws_mask_key_word(const uint8_t key[4], uint64_t offset)
{
    uint8_t twice[8];
    uint32_t kw;

    memcpy(twice, key, 4);
    memcpy(twice + 4, key, 4);
    memcpy(&kw, twice + (offset & 3u), sizeof kw);
    return kw;
}

/* XOR p[i..end) a byte at a time with the key word kw, whose byte 0 falls
   on p[0], p[4], ...: for the few bytes around the vector passes. */
void ws_mask_bytes(uint8_t *p, size_t i, size_t end, uint32_t kw);

/*
 * XOR data[0..len) in place with key. offset is the position of data[0]
 * within the frame payload, so a payload handled in chunks stays aligned
 * with the 4-byte key. Uses the widest vectors the CPU runs.
 */
void ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset);

/* ws_mask() from src into dst (dst may equal src, not otherwise overlap):
   one pass that unmasks and copies. */
void ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len,
                  const uint8_t key[4], uint64_t offset);

/* ws_mask_copy() without the AVX-512 path (16-byte vectors, which every
   x86-64 and GCC's generic vectors elsewhere have): for tests. */
void ws_mask_copy_portable(uint8_t *dst, const uint8_t *src, size_t len,
                           const uint8_t key[4], uint64_t offset);

/* Vector extensions the dispatch asks about. */
enum ws_cpu_feature {
    WS_CPU_SSSE3 = 1u << 0,
    WS_CPU_AVX2 = 1u << 1,
    WS_CPU_AVX512 = 1u << 2,     /* AVX-512 F and BW */
    WS_CPU_AVX512VBMI = 1u << 3, /* with F and BW */
};

/*
 * Whether this CPU, and the OS (which must save the vector registers: the
 * builtins check XGETBV too), runs every extension in features. Asked of
 * the CPU once; racing threads store the same answer.
 */
bool ws_cpu_has(unsigned features);

#if WS_MASK_X86
#define WS_MASK_AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

/* Load the 64 bytes at q, XOR them with the key vector kv (the key word
   in every lane), store them back, and return them. */
WS_MASK_AVX512_TARGET static inline __m512i ws_mask_block64(uint8_t *q,
                                                            __m512i kv)
{
    __m512i b = _mm512_xor_si512(_mm512_loadu_si512((const void *)q), kv);

    _mm512_storeu_si512((void *)q, b);
    return b;
}
#endif

#endif
