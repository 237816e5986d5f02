/*
 * utf8_x86.h - the x86 vector passes of the UTF-8 validator (utf8_x86.c),
 * which utf8.c dispatches to. Internal to the library.
 *
 * Each *_prefix pass walks 64-byte blocks of p[0..len), p[0] starting a
 * character, and returns the length of a prefix that is valid and ends on
 * a character boundary: the first error, if any, lies after it, and the
 * automaton finishes the rest. No load reads past the input. Call a pass
 * only when ws_utf8_x86_has() says the CPU runs it.
 */
#ifndef WS_UTF8_X86_H
#define WS_UTF8_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ws/mask.h"
#include "ws/utf8.h"

#define WS_UTF8_X86 WS_MASK_X86

/* The block the vector passes walk; the fused pass needs one whole. */
#define WS_UTF8_BLOCK 64
_Static_assert(WS_UTF8_UNMASK_MIN >= WS_UTF8_BLOCK, "see avx512_unmask");

#if WS_UTF8_X86
/* Whether this CPU runs impl (ws_cpu_has). */
bool ws_utf8_x86_has(enum ws_utf8_impl impl);

size_t ws_utf8_sse_prefix(const uint8_t *p, size_t len);
size_t ws_utf8_avx2_prefix(const uint8_t *p, size_t len);
size_t ws_utf8_avx512_prefix(const uint8_t *p, size_t len);

/*
 * The fused AVX-512 pass over the whole blocks of p[0..len), kw being the
 * mask key word at p[0]: unmasks and checks them; returns the prefix,
 * unmasked, valid and ending on a boundary. p from there on is as it was.
 */
size_t ws_utf8_avx512_unmask_prefix(uint8_t *p, size_t len, uint32_t kw);
#endif

#endif
