/*
 * utf8.h - incremental UTF-8 validation (RFC 3629) for text messages
 * (RFC 6455 §5.6, §8.1). Pure: no I/O, no allocation.
 */
#ifndef WS_UTF8_H
#define WS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Validator state. A zero-filled struct is the valid initial state. It
 * fails fast: the first byte that can no longer start or continue a valid
 * sequence (overlong forms, surrogates U+D800-DFFF, code points past
 * U+10FFFF, stray continuation bytes, 0xC0, 0xC1, 0xF5-0xFF) is rejected at
 * once, even when the sequence is cut across calls.
 */
struct ws_utf8 {
    uint8_t state; /* how much of a character is still expected; internal */
};

/* Reset v to the initial state. */
void ws_utf8_reset(struct ws_utf8 *v);

/*
 * Validate the next len bytes of a stream. Returns 0 when every byte so far
 * can still be part of valid UTF-8, or WS_EUTF8 at the first invalid byte
 * (v is then undefined until reset). When non-NULL, *bad receives the index
 * of that byte in p.
 */
int ws_utf8_feed(struct ws_utf8 *v, const uint8_t *p, size_t len, size_t *bad);

/* True when the stream so far ends on a character boundary. */
bool ws_utf8_complete(const struct ws_utf8 *v);

/* Validate a whole buffer: true when p[0..len) is valid UTF-8. */
bool ws_utf8_valid(const uint8_t *p, size_t len);

/*
 * For tests and benchmarks only: the implementations ws_utf8_feed() picks
 * from. It uses the fastest one this CPU supports (WS_UTF8_AUTO); all of
 * them give the same results.
 */
enum ws_utf8_impl {
    WS_UTF8_AUTO,   /* the one ws_utf8_feed() uses */
    WS_UTF8_SCALAR, /* the byte automaton alone */
    WS_UTF8_SSSE3,  /* x86: 16-byte vectors */
    WS_UTF8_AVX2,   /* x86: 32-byte vectors */
    WS_UTF8_AVX512  /* x86: 64-byte vectors (AVX-512 F, BW, VBMI) */
};

/* True when impl can run here (built in, and supported by this CPU). */
bool ws_utf8_impl_available(enum ws_utf8_impl impl);

/* The implementation WS_UTF8_AUTO resolves to on this CPU: the widest
   available one. */
enum ws_utf8_impl ws_utf8_impl_chosen(void);

/* ws_utf8_feed() through impl; one that is not available runs as
   WS_UTF8_SCALAR. */
int ws_utf8_feed_impl(enum ws_utf8_impl impl, struct ws_utf8 *v,
                      const uint8_t *p, size_t len, size_t *bad);

/*
 * The fused fast path for masked text (RFC 6455 §5.3): XOR a prefix of
 * p[0..len) in place with the key, as ws_mask() does (p[i] ^=
 * key[(offset + i) % 4]), and validate it, in one pass, where this CPU has
 * a vector implementation that supports it (AVX-512 only, for now).
 * Returns the length r of that prefix: p[0..r) is XORed and fed, and v is
 * left as ws_utf8_feed() would leave it after those bytes (at a character
 * boundary); p[r..len) is as it was (it may have been written and
 * restored). r may be any length up to len; it is 0 when there is no
 * fused path here, when len is under 64 bytes, when v has rejected, or
 * when a character that v has open cannot be finished by the first bytes.
 * The prefix never reaches the first bad byte or the character it
 * breaks, and usually stops before the last partial 64-byte block and a
 * character cut at the end.
 *
 * The caller then finishes with the two passes, the key phase moved on by
 * r: ws_mask(p + r, len - r, key, offset + r) and ws_utf8_feed(v,
 * p + r, len - r, ...), which reports a bad byte (its index relative to
 * p + r) and gives the final state. Never fails by itself.
 */
size_t ws_utf8_unmask_prefix(struct ws_utf8 *v, uint8_t *p, size_t len,
                             const uint8_t key[4], uint64_t offset);

/* Below this many bytes ws_utf8_unmask_prefix() always returns 0: callers
   on a hot path may skip the call. */
#define WS_UTF8_UNMASK_MIN 64

/* ws_utf8_unmask_prefix() through impl: 0 for an implementation without a
   fused path (all but WS_UTF8_AVX512) or one not available here. */
size_t ws_utf8_unmask_prefix_impl(enum ws_utf8_impl impl, struct ws_utf8 *v,
                                  uint8_t *p, size_t len, const uint8_t key[4],
                                  uint64_t offset);

#endif
