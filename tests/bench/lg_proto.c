/*
 * lg_proto.c - client handshake, server frame parsing, masked client
 * frames and payload patterns for the load generator. Pure except for
 * lg_random(); shares no code with the library under test.
 */
#include "lg_proto.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* RFC 6455 §1.3: the GUID appended to the key before hashing. */
static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int lg_random(void *out, size_t n)
{
    uint8_t *p = out;

    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);

        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int lg_handshake_key(char key[LG_KEY_LEN + 1], char accept[LG_ACCEPT_LEN + 1])
{
    uint8_t nonce[16], digest[SHA_DIGEST_LENGTH];
    char joined[LG_KEY_LEN + sizeof(guid)];

    if (lg_random(nonce, sizeof(nonce)) < 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    memcpy(joined, key, LG_KEY_LEN);
    memcpy(joined + LG_KEY_LEN, guid, sizeof(guid) - 1);
    SHA1((const unsigned char *)joined, LG_KEY_LEN + sizeof(guid) - 1, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, sizeof(digest));
    return 0;
}

/* Does the comma-separated list v[0..n) hold token, case-insensitively? */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;

    while (i < n) {
        size_t start, end;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
            return true;
    }
    return false;
}

/* The bits of the response that lg_handshake_check() looks for. */
struct hs_seen {
    bool upgrade, connection, accept, other, ext_ok;
};

/* Note what one header line name: value tells. */
static void header_line(const char *line, size_t n, const char *accept,
                        struct hs_seen *seen)
{
    const char *colon = memchr(line, ':', n);
    size_t nl, vl;
    const char *v;

    if (colon == NULL)
        return;
    nl = (size_t)(colon - line);
    v = colon + 1;
    vl = n - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (nl == 7 && strncasecmp(line, "upgrade", 7) == 0)
        seen->upgrade = has_token(v, vl, "websocket");
    else if (nl == 10 && strncasecmp(line, "connection", 10) == 0)
        seen->connection = has_token(v, vl, "upgrade");
    else if (nl == 20 && strncasecmp(line, "sec-websocket-accept", 20) == 0)
        seen->accept =
            vl == LG_ACCEPT_LEN && memcmp(v, accept, LG_ACCEPT_LEN) == 0;
    else if (nl == 22 && strncasecmp(line, "sec-websocket-protocol", 22) == 0)
        seen->other = true; /* §4.1: we asked for none */
    else if (nl == 24 &&
             strncasecmp(line, "sec-websocket-extensions", 24) == 0 &&
             !seen->ext_ok)
        seen->other = true; /* §4.1: nor for an extension */
}

int lg_handshake_check(const char *head, size_t len, const char *accept,
                       bool ext_ok, const char **why)
{
    struct hs_seen seen = {.ext_ok = ext_ok};
    const char *p = head, *end = head + len;

    if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
        *why = "status is not 101";
        return -1;
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n;

        if (eol == NULL)
            eol = end;
        n = (size_t)(eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (p != head)
            header_line(p, n, accept, &seen);
        p = eol + 1;
    }
    *why = !seen.upgrade      ? "no Upgrade: websocket"
           : !seen.connection ? "no Connection: upgrade"
           : !seen.accept     ? "wrong Sec-WebSocket-Accept"
           : seen.other       ? "unrequested protocol or extension"
                              : NULL;
    return *why ? -1 : 0;
}

int lg_frame_parse(const uint8_t *buf, size_t len, bool rsv1_ok,
                   struct lg_frame *f)
{
    size_t need = 2;
    uint8_t op;

    if (len < 2)
        return 0;
    op = buf[0] & 0x0F;
    f->fin = (buf[0] & 0x80) != 0;
    f->rsv1 = (buf[0] & 0x40) != 0;
    f->opcode = op;
    if ((buf[0] & (rsv1_ok ? 0x30 : 0x70)) != 0 || (buf[1] & 0x80) != 0)
        return -1; /* §5.2 RSV without extension; §5.1 server never masks */
    if ((op > 0x2 && op < 0x8) || op > 0xA)
        return -1;
    f->len = buf[1] & 0x7F;
    if (f->len == 126)
        need = 4;
    else if (f->len == 127)
        need = 10;
    if (len < need)
        return 0;
    if (need > 2) {
        f->len = 0;
        for (size_t i = 2; i < need; i++)
            f->len = (f->len << 8) | buf[i];
    }
    if (op >= 0x8 && (!f->fin || f->len > 125))
        return -1; /* §5.5 */
    f->header_len = need;
    return (int)need;
}

size_t lg_frame_write(uint8_t *out, uint8_t opcode, const uint8_t *payload,
                      size_t len, const uint8_t mask[4])
{
    size_t h = lg_frame_header(out, opcode, len, mask);

    for (size_t i = 0; i < len; i++)
        out[h + i] = payload[i] ^ mask[i & 3];
    return h + len;
}

size_t lg_frame_header(uint8_t *out, uint8_t opcode, size_t len,
                       const uint8_t mask[4])
{
    size_t h = 2;

    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        h = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + h, mask, 4);
    return h + 4;
}

/* xorshift64*: a fast generator for payload bytes; not for keys. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Encode code point cp as UTF-8 at out; returns its length. */
static size_t put_utf8(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* A random scalar value: ASCII, or (non_ascii percent of the time) one
   of 2 bytes (half of those), 3 bytes (3/8) or 4 bytes (1/8). */
static uint32_t random_char(uint64_t *seed, int non_ascii)
{
    uint64_t r = next_rand(seed);
    uint32_t v = (uint32_t)(r >> 32);
    int pick = (int)(r % 800);

    if (pick >= non_ascii * 8)
        return 0x20 + v % 0x5F;
    pick %= 8;
    if (pick < 4)
        return 0x80 + v % (0x800 - 0x80);
    if (pick < 7) {
        uint32_t cp = 0x800 + v % (0x10000 - 0x800 - 0x800);

        return cp >= 0xD800 ? cp + 0x800 : cp; /* skip the surrogates */
    }
    return 0x10000 + v % (0x110000 - 0x10000);
}

void lg_payload_fill(uint8_t *out, size_t len, bool text, int non_ascii,
                     uint64_t *seed)
{
    size_t i = 0;

    if (!text) {
        for (; i < len; i++)
            out[i] = (uint8_t)(next_rand(seed) >> 56);
        return;
    }
    while (len - i >= 4)
        i += put_utf8(out + i, random_char(seed, non_ascii));
    for (; i < len; i++)
        out[i] = (uint8_t)('a' + next_rand(seed) % 26);
}

void lg_payload_json(uint8_t *out, size_t len, uint64_t *seed)
{
    static const char *const words[] = {
        "the",    "build", "is",     "green",  "again", "ship", "it",   "today",
        "coffee", "later", "review", "merged", "café",  "ok",   "lgtm", "😀"};
    char buf[4096];
    size_t n, i;

    n = (size_t)snprintf(buf, sizeof(buf),
                         "{\"type\":\"message\",\"room\":\"lobby\","
                         "\"nick\":\"user%04u\",\"ts\":%llu,\"text\":\"",
                         (unsigned)(next_rand(seed) % 10000),
                         1764000000000ull + next_rand(seed) % 100000000);
    /* Words until the closing "} fits exactly; pad with spaces. */
    while (n < sizeof(buf) - 64) {
        const char *w = words[next_rand(seed) % 16];
        size_t k = strlen(w);

        if (n + k + 1 + 2 > len)
            break;
        memcpy(buf + n, w, k);
        buf[n + k] = ' ';
        n += k + 1;
    }
    for (i = 0; i < len; i++)
        out[i] = i < n ? (uint8_t)buf[i] : (uint8_t)' ';
    if (len >= 2) {
        out[len - 2] = '"';
        out[len - 1] = '}';
    }
}
