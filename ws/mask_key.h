/*
 * mask_key.h - the masking key of RFC 6455 §5.3 as a word, shared by the
 * frame codec's unmask (frame.c) and the UTF-8 validator's fused unmask
 * and check (utf8.c). Internal to the library.
 */
#ifndef WS_MASK_KEY_H
#define WS_MASK_KEY_H

#include <stdint.h>
#include <string.h>

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

#endif
