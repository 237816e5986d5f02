/*
 * mask.c - the payload mask of RFC 6455 §5.3: XOR with the 4-byte key, a
 * vector at a time (AVX-512 where the CPU has it, 16-byte vectors
 * elsewhere), and the one place that asks the CPU what it runs. Pure: no
 * I/O, no allocation; its only state is the cached CPU answer.
 */
#include "ws/mask.h"

void ws_mask_bytes(uint8_t *p, size_t i, size_t end, uint32_t kw)
{
    uint8_t k[4];

    memcpy(k, &kw, sizeof k);
    for (; i < end; i++)
        p[i] = (uint8_t)(p[i] ^ k[i & 3u]);
}

/*
 * The features this CPU runs, as enum ws_cpu_feature bits, with bit 31
 * set once known; 0 before the first call. Relaxed atomics: racing
 * threads store the same answer.
 */
static unsigned cpu_features;

#define CPU_KNOWN (1u << 31)

/* Ask the CPU (x86: cpuid and xgetbv through the builtins). */
static unsigned cpu_probe(void)
{
    unsigned f = CPU_KNOWN;

#if WS_MASK_X86
    __builtin_cpu_init(); /* we may run before constructors */
    if (__builtin_cpu_supports("ssse3"))
        f |= WS_CPU_SSSE3;
    if (__builtin_cpu_supports("avx2"))
        f |= WS_CPU_AVX2;
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw")) {
        f |= WS_CPU_AVX512;
        if (__builtin_cpu_supports("avx512vbmi"))
            f |= WS_CPU_AVX512VBMI;
    }
#endif
    return f;
}

bool ws_cpu_has(unsigned features)
{
    unsigned f = __atomic_load_n(&cpu_features, __ATOMIC_RELAXED);

    if (f == 0) {
        f = cpu_probe();
        __atomic_store_n(&cpu_features, f, __ATOMIC_RELAXED);
    }
    return (f & features) == features;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset)
{
    ws_mask_copy(data, data, len, key, offset);
}

/* Two 64-bit lanes: XORed with the key pattern as one 16-byte vector. */
typedef uint64_t ws_mask_vec __attribute__((vector_size(16)));

/* XOR src into dst with the key word, a vector at a time; dst may be
   src. Portable: SSE2 on every x86-64, GCC's generic vectors elsewhere. */
void ws_mask_copy_portable(uint8_t *dst, const uint8_t *src, size_t len,
                           const uint8_t key[4], uint64_t offset)
{
    uint32_t k32 = ws_mask_key_word(key, offset);
    uint64_t kw = (uint64_t)k32 << 32 | k32, w;
    ws_mask_vec kv = {kw, kw}, a, b, c, d;
    size_t i;

    /* memcpy rather than a pointer cast: the buffers may sit at any
       alignment, and the copies compile to plain (vector) loads and
       stores. Each block is read before it is written, so dst == src
       works. 64 bytes a round, then words, then bytes; every step is a
       multiple of 4, so the key phase stays put. */
    for (i = 0; len - i >= 4 * sizeof a; i += 4 * sizeof a) {
        memcpy(&a, src + i, sizeof a);
        memcpy(&b, src + i + 16, sizeof b);
        memcpy(&c, src + i + 32, sizeof c);
        memcpy(&d, src + i + 48, sizeof d);
        a ^= kv;
        b ^= kv;
        c ^= kv;
        d ^= kv;
        memcpy(dst + i, &a, sizeof a);
        memcpy(dst + i + 16, &b, sizeof b);
        memcpy(dst + i + 32, &c, sizeof c);
        memcpy(dst + i + 48, &d, sizeof d);
    }
    for (; len - i >= sizeof w; i += sizeof w) {
        memcpy(&w, src + i, sizeof w);
        w ^= kw;
        memcpy(dst + i, &w, sizeof w);
    }
    for (; i < len; i++)
        dst[i] = (uint8_t)(src[i] ^ key[(offset + i) & 3u]);
}

#if WS_MASK_X86
#define AVX512_TARGET WS_MASK_AVX512_TARGET

/* Whether the 64 bytes from p reach into the next 4 KiB page. */
static inline bool crosses_page(const uint8_t *p)
{
    return ((uintptr_t)p & 4095u) > 4096u - 64u;
}

/*
 * The tail of fewer than 64 bytes with a masked load and store: lanes
 * past n are neither read (no fault, no ASan report) nor written. A
 * masked-off lane in a page that is not mapped in (never touched, or a
 * guard page) still costs a microcode assist of some 250 ns on current
 * Intel cores, so a tail that would reach into the next page is done a
 * word at a time instead: every step there is a multiple of 4, so the
 * key phase stays put.
 */
AVX512_TARGET static inline void avx512_tail(uint8_t *dst, const uint8_t *src,
                                             size_t n, __m512i kv, uint32_t k32)
{
    __mmask64 m = (__mmask64)((UINT64_C(1) << n) - 1u);
    uint8_t key[4];
    uint32_t w;
    size_t i = 0;

    if (!crosses_page(src) && !crosses_page(dst)) {
        _mm512_mask_storeu_epi8(
            dst, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src), kv));
        return;
    }
    for (; n - i >= sizeof w; i += sizeof w) {
        memcpy(&w, src + i, sizeof w);
        w ^= k32;
        memcpy(dst + i, &w, sizeof w);
    }
    memcpy(key, &k32, sizeof key);
    for (; i < n; i++)
        dst[i] = (uint8_t)(src[i] ^ key[i & 3u]);
}

/* AVX-512: 256 bytes a round, then 64, then one masked tail. */
AVX512_TARGET static void avx512_mask_copy(uint8_t *dst, const uint8_t *src,
                                           size_t len, uint32_t k32)
{
    __m512i kv = _mm512_set1_epi32((int)k32);
    size_t i = 0;

    for (; len - i >= 256; i += 256)
        for (size_t j = 0; j < 256; j += 64)
            _mm512_storeu_si512(
                dst + i + j,
                _mm512_xor_si512(_mm512_loadu_si512(src + i + j), kv));
    for (; len - i >= 64; i += 64)
        _mm512_storeu_si512(dst + i,
                            _mm512_xor_si512(_mm512_loadu_si512(src + i), kv));
    if (i < len)
        avx512_tail(dst + i, src + i, len - i, kv, k32);
}

#endif

void ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len,
                  const uint8_t key[4], uint64_t offset)
{
#if WS_MASK_X86
    if (ws_cpu_has(WS_CPU_AVX512)) {
        avx512_mask_copy(dst, src, len, ws_mask_key_word(key, offset));
        return;
    }
#endif
    ws_mask_copy_portable(dst, src, len, key, offset);
}
