/*
 * test_utf8.c - unit tests for ws/utf8.c: RFC 3629 vectors, Markus Kuhn's
 * UTF-8 stress test as transcribed in Autobahn's case 6, every way of
 * cutting each vector into pieces, every code point, a randomized
 * cross-check against a slow reference decoder written here, inputs
 * placed against unmapped pages, and the fused unmask-and-check path
 * checked against the two passes it replaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ws/utf8.h"
#include "ws/ws.h"

/* What feeding a whole vector must end with. */
enum verdict {
    VALID, /* every byte accepted, ends on a character boundary */
    TRUNC, /* every byte accepted, ends inside a sequence */
    BAD    /* WS_EUTF8 at byte row.bad */
};

struct row {
    const char *label;
    const uint8_t *in;
    size_t len;
    enum verdict verdict;
    size_t bad; /* absolute index of the first bad byte, for BAD */
};

#define ROW(label, s, verdict, bad)                                            \
    {                                                                          \
        label, (const uint8_t *)(s), sizeof(s) - 1, verdict, bad               \
    }

/* "κόσμε", the sample word of Kuhn's test (Autobahn 6.2.x). */
#define KOSME "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"

static const struct row rows[] = {
    /* RFC 3629 §4: one row of the UTF8-octets table per sequence form. */
    ROW("empty", "", VALID, 0),
    ROW("ascii", "Hello, world", VALID, 0),
    ROW("ascii NUL and DEL", "\x00\x7F", VALID, 0),
    ROW("2-byte U+00E9", "\xC3\xA9", VALID, 0),
    ROW("3-byte U+20AC", "\xE2\x82\xAC", VALID, 0),
    ROW("4-byte U+1F600", "\xF0\x9F\x98\x80", VALID, 0),
    ROW("U+FFFF", "\xEF\xBF\xBF", VALID, 0),
    ROW("BOM U+FEFF", "\xEF\xBB\xBF", VALID, 0),
    ROW("U+10FFFF", "\xF4\x8F\xBF\xBF", VALID, 0),
    ROW("ascii runs around 2- and 4-byte forms",
        "abcdefghijklmnop\xC3\xA9qrstuvwxyz0123456789\xF0\x9F\x98\x80xyz",
        VALID, 0),
    ROW("long ascii then 0xFF", "abcdefghijklmnopq\xFF", BAD, 17),
    /* RFC 3629 §7 examples. */
    ROW("RFC 3629 §7 A<NOT IDENTICAL TO><ALPHA>.", "\x41\xE2\x89\xA2\xCE\x91.",
        VALID, 0),
    ROW("RFC 3629 §7 Korean", "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", VALID, 0),
    ROW("RFC 3629 §7 Japanese", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", VALID,
        0),
    ROW("RFC 3629 §7 BOM + U+233B4", "\xEF\xBB\xBF\xF0\xA3\x8E\xB4", VALID, 0),
    /* RFC 3629 §3: overlong forms fail at the first byte that makes them
       overlong. */
    ROW("overlong C0 80", "\xC0\x80", BAD, 0),
    ROW("overlong C1 BF", "\xC1\xBF", BAD, 0),
    ROW("overlong E0 80 80", "\xE0\x80\x80", BAD, 1),
    ROW("overlong E0 9F BF", "\xE0\x9F\xBF", BAD, 1),
    ROW("overlong F0 80 80 80", "\xF0\x80\x80\x80", BAD, 1),
    ROW("overlong F0 8F BF BF", "\xF0\x8F\xBF\xBF", BAD, 1),
    ROW("overlong E0 80 cut", "\xE0\x80", BAD, 1),
    /* RFC 3629 §3: surrogates U+D800-DFFF are not characters. */
    ROW("surrogate ED A0 80", "\xED\xA0\x80", BAD, 1),
    ROW("surrogate ED BF BF", "\xED\xBF\xBF", BAD, 1),
    ROW("surrogate pair", "\xED\xA0\x80\xED\xB0\x80", BAD, 1),
    ROW("surrogate ED A0 cut", "\xED\xA0", BAD, 1),
    ROW("after surrogate ED 9F BF", "\xED\x9F\xBF", VALID, 0),
    ROW("ascii then surrogate", "ab\xED\xB0\x80", BAD, 3),
    /* RFC 3629 §3: nothing past U+10FFFF. */
    ROW("F4 90 80 80", "\xF4\x90\x80\x80", BAD, 1),
    ROW("F4 90 cut", "\xF4\x90", BAD, 1),
    ROW("F5 80 80 80", "\xF5\x80\x80\x80", BAD, 0),
    ROW("F7 BF BF BF", "\xF7\xBF\xBF\xBF", BAD, 0),
    ROW("F8 88 80 80 80", "\xF8\x88\x80\x80\x80", BAD, 0),
    ROW("FC 84 80 80 80 80", "\xFC\x84\x80\x80\x80\x80", BAD, 0),
    ROW("FE", "\xFE", BAD, 0),
    ROW("FF", "\xFF", BAD, 0),
    /* Stray continuation bytes. */
    ROW("lone 80", "\x80", BAD, 0),
    ROW("lone BF", "\xBF", BAD, 0),
    ROW("ascii then 80", "a\x80", BAD, 1),
    ROW("2-byte then 80", "\xC3\xA9\x80", BAD, 2),
    ROW("4-byte then BF", "\xF0\x9F\x98\x80\xBF", BAD, 4),
    /* Truncated at the end: accepted so far, but not complete. */
    ROW("cut 2-byte", "\xC3", TRUNC, 0),
    ROW("cut 3-byte", "\xE2\x82", TRUNC, 0),
    ROW("cut 4-byte", "\xF0\x9F\x98", TRUNC, 0),
    ROW("ascii then cut F4", "abc\xF4", TRUNC, 0),
    ROW("cut F4 8F", "\xF4\x8F", TRUNC, 0),
    ROW("cut ED 9F", "\xED\x9F", TRUNC, 0),
    /* A sequence interrupted by something that is not a continuation. */
    ROW("3-byte interrupted by ascii", "\xE2\x82\x41", BAD, 2),
    ROW("4-byte interrupted by ascii", "\xF0\x9F\x98\x41", BAD, 3),
    ROW("2-byte interrupted by lead", "\xC3\xC3\xA9", BAD, 1),

    /*
     * The rest are transcribed from Autobahn's case 6 table
     * (autobahntestsuite/case/case6_x_x.py), which follows Markus Kuhn's
     * UTF-8 decoder capability and stress test
     * (https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt). Its
     * section numbers are given. Where Autobahn calls a sequence invalid
     * only because the message ends inside it, the row says TRUNC.
     */
    ROW("Kuhn 1 hello$world", "hello\x24world", VALID, 0),
    ROW("Kuhn 1 U+00A2", "hello\xC2\xA2world", VALID, 0),
    ROW("Kuhn 1 U+20AC", "hello\xE2\x82\xACworld", VALID, 0),
    ROW("Kuhn 1 U+24B62", "hello\xF0\xA4\xAD\xA2world", VALID, 0),
    ROW("Kuhn 1 kosme", KOSME, VALID, 0),
    ROW("Autobahn 6.3.1 kosme + surrogate",
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
        "\x65\x64\x69\x74\x65\x64",
        BAD, 12),
    ROW("Autobahn 6.4.1 kosme + F4 90",
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80"
        "\x65\x64\x69\x74\x65\x64",
        BAD, 12),
    ROW("Autobahn incremental mu@ss...",
        "\xC2\xB5\x40\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1", VALID,
        0),
    ROW("Autobahn incremental F5", "\xF5", BAD, 0),
    ROW("Autobahn incremental edited + ED A0", "edited\xED\xA0\x80", BAD, 7),
    ROW("Kuhn 2.1 first 1-byte", "\x00", VALID, 0),
    ROW("Kuhn 2.1 first 2-byte", "\xC2\x80", VALID, 0),
    ROW("Kuhn 2.1 first 3-byte", "\xE0\xA0\x80", VALID, 0),
    ROW("Kuhn 2.1 first 4-byte", "\xF0\x90\x80\x80", VALID, 0),
    ROW("Kuhn 2.1 first 5-byte", "\xF8\x88\x80\x80\x80", BAD, 0),
    ROW("Kuhn 2.1 first 6-byte", "\xFC\x84\x80\x80\x80\x80", BAD, 0),
    ROW("Kuhn 2.2 last 1-byte", "\x7F", VALID, 0),
    ROW("Kuhn 2.2 last 2-byte", "\xDF\xBF", VALID, 0),
    ROW("Kuhn 2.2 last 3-byte", "\xEF\xBF\xBF", VALID, 0),
    ROW("Kuhn 2.2 last 4-byte", "\xF4\x8F\xBF\xBF", VALID, 0),
    ROW("Kuhn 2.2 last 4-byte form", "\xF7\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 2.2 last 5-byte form", "\xFB\xBF\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 2.2 last 6-byte form", "\xFD\xBF\xBF\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 2.3 U+D7FF", "\xED\x9F\xBF", VALID, 0),
    ROW("Kuhn 2.3 U+E000", "\xEE\x80\x80", VALID, 0),
    ROW("Kuhn 2.3 U+FFFD", "\xEF\xBF\xBD", VALID, 0),
    ROW("Kuhn 2.3 U+10FFFF", "\xF4\x8F\xBF\xBF", VALID, 0),
    ROW("Kuhn 2.3 U+110000", "\xF4\x90\x80\x80", BAD, 1),
    ROW("Kuhn 3.1 80", "\x80", BAD, 0),
    ROW("Kuhn 3.1 BF", "\xBF", BAD, 0),
    ROW("Kuhn 3.1 80 BF", "\x80\xBF", BAD, 0),
    ROW("Kuhn 3.1 80 BF 80", "\x80\xBF\x80", BAD, 0),
    ROW("Kuhn 3.1 80 BF 80 BF", "\x80\xBF\x80\xBF", BAD, 0),
    ROW("Kuhn 3.1 80 BF 80 BF 80", "\x80\xBF\x80\xBF\x80", BAD, 0),
    ROW("Kuhn 3.1 80 BF 80 BF 80 BF", "\x80\xBF\x80\xBF\x80\xBF", BAD, 0),
    ROW("Kuhn 3.1 all continuation bytes",
        "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8A\x8B\x8C\x8D"
        "\x8E\x8F\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9A\x9B"
        "\x9C\x9D\x9E\x9F\xA0\xA1\xA2\xA3\xA4\xA5\xA6\xA7\xA8\xA9"
        "\xAA\xAB\xAC\xAD\xAE\xAF\xB0\xB1\xB2\xB3\xB4\xB5\xB6\xB7"
        "\xB8\xB9\xBA\xBB\xBC\xBD\xBE",
        BAD, 0),
    ROW("Kuhn 3.2 lonely 2-byte starts",
        "\xC0 \xC1 \xC2 \xC3 \xC4 \xC5 \xC6 \xC7 \xC8 \xC9 "
        "\xCA \xCB \xCC \xCD \xCE \xCF \xD0 \xD1 \xD2 \xD3 "
        "\xD4 \xD5 \xD6 \xD7 \xD8 \xD9 \xDA \xDB \xDC \xDD "
        "\xDE ",
        BAD, 0),
    ROW("Kuhn 3.2 lonely 3-byte starts",
        "\xE0 \xE1 \xE2 \xE3 \xE4 \xE5 \xE6 \xE7 \xE8 \xE9 "
        "\xEA \xEB \xEC \xED \xEE ",
        BAD, 1),
    ROW("Kuhn 3.2 lonely 4-byte starts", "\xF0 \xF1 \xF2 \xF3 \xF4 \xF5 \xF6 ",
        BAD, 1),
    ROW("Kuhn 3.2 lonely 5-byte starts", "\xF8 \xF9 \xFA ", BAD, 0),
    ROW("Kuhn 3.2 lonely 6-byte starts", "\xFC ", BAD, 0),
    ROW("Kuhn 3.2 lonely C2", "\xC2 ", BAD, 1),
    ROW("Kuhn 3.3 C0", "\xC0", BAD, 0),
    ROW("Kuhn 3.3 E0 80", "\xE0\x80", BAD, 1),
    ROW("Kuhn 3.3 F0 80 80", "\xF0\x80\x80", BAD, 1),
    ROW("Kuhn 3.3 F8 80 80 80", "\xF8\x80\x80\x80", BAD, 0),
    ROW("Kuhn 3.3 FC 80 80 80 80", "\xFC\x80\x80\x80\x80", BAD, 0),
    ROW("Kuhn 3.3 DF", "\xDF", TRUNC, 0),
    ROW("Kuhn 3.3 EF BF", "\xEF\xBF", TRUNC, 0),
    ROW("Kuhn 3.3 F7 BF BF", "\xF7\xBF\xBF", BAD, 0),
    ROW("Kuhn 3.3 FB BF BF BF", "\xFB\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 3.3 FD BF BF BF BF", "\xFD\xBF\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 3.4 concatenated incomplete sequences",
        "\xC0\xE0\x80\xF0\x80\x80\xF8\x80\x80\x80\xFC\x80\x80\x80\x80"
        "\xDF\xEF\xBF\xF7\xBF\xBF\xFB\xBF\xBF\xBF\xFD\xBF\xBF\xBF\xBF",
        BAD, 0),
    ROW("Kuhn 3.4 from DF on", "\xDF\xEF\xBF", BAD, 1),
    ROW("Kuhn 3.5 FE", "\xFE", BAD, 0),
    ROW("Kuhn 3.5 FF", "\xFF", BAD, 0),
    ROW("Kuhn 3.5 FE FE FF FF", "\xFE\xFE\xFF\xFF", BAD, 0),
    ROW("Kuhn 4.1 C0 AF", "\xC0\xAF", BAD, 0),
    ROW("Kuhn 4.1 E0 80 AF", "\xE0\x80\xAF", BAD, 1),
    ROW("Kuhn 4.1 F0 80 80 AF", "\xF0\x80\x80\xAF", BAD, 1),
    ROW("Kuhn 4.1 F8 80 80 80 AF", "\xF8\x80\x80\x80\xAF", BAD, 0),
    ROW("Kuhn 4.1 FC 80 80 80 80 AF", "\xFC\x80\x80\x80\x80\xAF", BAD, 0),
    ROW("Kuhn 4.2 C1 BF", "\xC1\xBF", BAD, 0),
    ROW("Kuhn 4.2 E0 9F BF", "\xE0\x9F\xBF", BAD, 1),
    ROW("Kuhn 4.2 F0 8F BF BF", "\xF0\x8F\xBF\xBF", BAD, 1),
    ROW("Kuhn 4.2 F8 87 BF BF BF", "\xF8\x87\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 4.2 FC 83 BF BF BF BF", "\xFC\x83\xBF\xBF\xBF\xBF", BAD, 0),
    ROW("Kuhn 4.3 C0 80", "\xC0\x80", BAD, 0),
    ROW("Kuhn 4.3 E0 80 80", "\xE0\x80\x80", BAD, 1),
    ROW("Kuhn 4.3 F0 80 80 80", "\xF0\x80\x80\x80", BAD, 1),
    ROW("Kuhn 4.3 F8 80 80 80 80", "\xF8\x80\x80\x80\x80", BAD, 0),
    ROW("Kuhn 4.3 FC 80 80 80 80 80", "\xFC\x80\x80\x80\x80\x80", BAD, 0),
    ROW("Kuhn 5.1 U+D800", "\xED\xA0\x80", BAD, 1),
    ROW("Kuhn 5.1 U+DB7F", "\xED\xAD\xBF", BAD, 1),
    ROW("Kuhn 5.1 U+DB80", "\xED\xAE\x80", BAD, 1),
    ROW("Kuhn 5.1 U+DBFF", "\xED\xAF\xBF", BAD, 1),
    ROW("Kuhn 5.1 U+DC00", "\xED\xB0\x80", BAD, 1),
    ROW("Kuhn 5.1 U+DF80", "\xED\xBE\x80", BAD, 1),
    ROW("Kuhn 5.1 U+DFFF", "\xED\xBF\xBF", BAD, 1),
    ROW("Kuhn 5.2 U+D800 U+DC00", "\xED\xA0\x80\xED\xB0\x80", BAD, 1),
    ROW("Kuhn 5.2 U+D800 U+DFFF", "\xED\xA0\x80\xED\xBF\xBF", BAD, 1),
    ROW("Kuhn 5.2 U+DB7F U+DC00", "\xED\xAD\xBF\xED\xB0\x80", BAD, 1),
    ROW("Kuhn 5.2 U+DB7F U+DFFF", "\xED\xAD\xBF\xED\xBF\xBF", BAD, 1),
    ROW("Kuhn 5.2 U+DB80 U+DC00", "\xED\xAE\x80\xED\xB0\x80", BAD, 1),
    ROW("Kuhn 5.2 U+DB80 U+DFFF", "\xED\xAE\x80\xED\xBF\xBF", BAD, 1),
    ROW("Kuhn 5.2 U+DBFF U+DC00", "\xED\xAF\xBF\xED\xB0\x80", BAD, 1),
    ROW("Kuhn 5.2 U+DBFF U+DFFF", "\xED\xAF\xBF\xED\xBF\xBF", BAD, 1),
    ROW("Kuhn 5.3 U+FFFE", "\xEF\xBF\xBE", VALID, 0),
    ROW("Kuhn 5.3 U+FFFF", "\xEF\xBF\xBF", VALID, 0),
    ROW("Kuhn 5.3 U+1FFFE", "\xF0\x9F\xBF\xBE", VALID, 0),
    ROW("Kuhn 5.3 U+3FFFF", "\xF0\xBF\xBF\xBF", VALID, 0),
    ROW("Kuhn 5.3 U+4FFFE", "\xF1\x8F\xBF\xBE", VALID, 0),
    ROW("Kuhn 5.3 U+FFFFF", "\xF3\xBF\xBF\xBF", VALID, 0),
    ROW("Kuhn 5.3 U+10FFFE", "\xF4\x8F\xBF\xBE", VALID, 0),
    ROW("Kuhn 5.3 U+FDD0", "\xEF\xB7\x90", VALID, 0),
    ROW("Kuhn 5.3 U+FDEF", "\xEF\xB7\xAF", VALID, 0),
    ROW("Autobahn specials U+FFF9..U+FFFD",
        "\xEF\xBF\xB9\xEF\xBF\xBA\xEF\xBF\xBB\xEF\xBF\xBC\xEF\xBF\xBD", VALID,
        0),
};

#define NROWS (sizeof rows / sizeof rows[0])

/* How a feed ended: the code, the absolute bad index, the boundary flag. */
struct result {
    int rc;
    size_t bad;
    bool complete;
};

/* Copy in[0..len) into an allocation of exactly len bytes. */
static uint8_t *exact_copy(const uint8_t *in, size_t len)
{
    uint8_t *p = malloc(len);

    if (len > 0) {
        assert_non_null(p);
        memcpy(p, in, len);
    }
    return p;
}

/*
 * Feed in[0..len) through impl in pieces that end at cuts[0..ncuts) and
 * then at len, each piece copied to offset align of an allocation that
 * ends where the piece ends (ASan then sees any read past it).
 */
static struct result feed_pieces_at(enum ws_utf8_impl impl, const uint8_t *in,
                                    size_t len, const size_t *cuts,
                                    size_t ncuts, size_t align)
{
    struct ws_utf8 v;
    struct result r = {0, 0, false};
    size_t start = 0;

    memset(&v, 0, sizeof v); /* the zero-filled state is the initial one */
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t n = end - start, bad = SIZE_MAX;
        uint8_t *buf = malloc(align + n + (align + n == 0));
        int rc;

        assert_non_null(buf);
        if (n > 0)
            memcpy(buf + align, in + start, n);
        /* WS_UTF8_AUTO goes through the public entry point itself. */
        rc = impl == WS_UTF8_AUTO
                 ? ws_utf8_feed(&v, buf + align, n, &bad)
                 : ws_utf8_feed_impl(impl, &v, buf + align, n, &bad);
        free(buf);
        if (rc != 0) {
            assert_int_equal(rc, WS_EUTF8);
            assert_true(bad < n);
            r.rc = rc;
            r.bad = start + bad;
            return r;
        }
        start = end;
    }
    r.complete = ws_utf8_complete(&v);
    return r;
}

/* Feed in[0..len) through ws_utf8_feed() in pieces, as above. */
static struct result feed_pieces(const uint8_t *in, size_t len,
                                 const size_t *cuts, size_t ncuts)
{
    return feed_pieces_at(WS_UTF8_AUTO, in, len, cuts, ncuts, 0);
}

/* Fail with the label unless r is what verdict and bad call for. */
static void expect(const char *label, const char *how, struct result r,
                   enum verdict verdict, size_t bad)
{
    bool ok;

    if (verdict == BAD)
        ok = r.rc == WS_EUTF8 && r.bad == bad;
    else
        ok = r.rc == 0 && r.complete == (verdict == VALID);
    if (!ok)
        fail_msg("%s (%s): rc %d, bad %zu, complete %d", label, how, r.rc,
                 r.bad, (int)r.complete);
}

/* Check one vector fed whole. */
static void check_whole(const struct row *w)
{
    expect(w->label, "whole", feed_pieces(w->in, w->len, NULL, 0), w->verdict,
           w->bad);
}

/* Check one vector fed one byte at a time. */
static void check_bytewise(const struct row *w)
{
    size_t *cuts = malloc((w->len + 1) * sizeof *cuts);

    assert_non_null(cuts);
    for (size_t i = 0; i < w->len; i++)
        cuts[i] = i + 1;
    expect(w->label, "bytewise", feed_pieces(w->in, w->len, cuts, w->len),
           w->verdict, w->bad);
    free(cuts);
}

/* Check one vector cut in two at every offset, empty pieces included. */
static void check_split2(const struct row *w)
{
    for (size_t i = 0; i <= w->len; i++) {
        char how[32];

        snprintf(how, sizeof how, "split at %zu", i);
        expect(w->label, how, feed_pieces(w->in, w->len, &i, 1), w->verdict,
               w->bad);
    }
}

/* Check one short vector cut in three at every pair of offsets. */
static void check_split3(const struct row *w)
{
    if (w->len > 24)
        return;
    for (size_t i = 0; i <= w->len; i++) {
        for (size_t j = i; j <= w->len; j++) {
            size_t cuts[2] = {i, j};
            char how[48];

            snprintf(how, sizeof how, "split at %zu and %zu", i, j);
            expect(w->label, how, feed_pieces(w->in, w->len, cuts, 2),
                   w->verdict, w->bad);
        }
    }
}

/* Check ws_utf8_valid() on one vector. */
static void check_valid(const struct row *w)
{
    uint8_t *p = exact_copy(w->in, w->len);
    bool got = ws_utf8_valid(p, w->len);

    free(p);
    if (got != (w->verdict == VALID))
        fail_msg("%s: ws_utf8_valid() says %d", w->label, (int)got);
}

/* Every vector, every way. */
static void check_all_ways(const struct row *w)
{
    check_whole(w);
    check_bytewise(w);
    check_split2(w);
    check_split3(w);
    check_valid(w);
}

/* Read the lead byte b by its RFC 3629 §3 bit pattern: the sequence
   length, the payload bits, the smallest value that length may carry. */
static bool ref_lead(uint8_t b, size_t *n, uint32_t *cp, uint32_t *min)
{
    static const struct {
        uint8_t mask, match;
        size_t n;
        uint32_t min;
    } forms[4] = {
        {0x80, 0x00, 1, 0},
        {0xE0, 0xC0, 2, 0x80},
        {0xF0, 0xE0, 3, 0x800},
        {0xF8, 0xF0, 4, 0x10000},
    };

    for (size_t i = 0; i < 4; i++) {
        if ((b & forms[i].mask) == forms[i].match) {
            *n = forms[i].n;
            *cp = b & (uint8_t)~forms[i].mask;
            *min = forms[i].min;
            return true;
        }
    }
    return false;
}

/*
 * The reference decoder: slow and plain on purpose. It decodes each code
 * point by the bit patterns of RFC 3629 §3, then rejects overlong forms,
 * surrogates and values past U+10FFFF, the rules that the fast validator
 * builds into its byte ranges.
 */
static bool ref_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t cp, min;
        size_t n;

        if (!ref_lead(p[i], &n, &cp, &min) || len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/*
 * True when p[0..n) can still become valid UTF-8. A valid ending needs at
 * most three more continuation bytes, and every range the rules use is a
 * union of 80-8F, 90-9F and A0-BF, so one byte from each stands for all.
 */
static bool ref_completable(const uint8_t *p, size_t n)
{
    static const uint8_t reps[3] = {0x80, 0x90, 0xA0};
    uint8_t buf[64];

    assert_true(n + 3 <= sizeof buf);
    memcpy(buf, p, n);
    for (size_t k = 0, combos = 1; k <= 3; k++, combos *= 3) {
        for (size_t combo = 0; combo < combos; combo++) {
            size_t c = combo;
            for (size_t j = 0; j < k; j++, c /= 3)
                buf[n + j] = reps[c % 3];
            if (ref_valid(buf, n + k))
                return true;
        }
    }
    return false;
}

/*
 * Check ws_utf8_feed() on p[0..len), split at cut, against the reference:
 * accepted bytes must be completable, and the byte reported bad must be
 * the first after which nothing can complete the text.
 */
static void check_against_ref(const uint8_t *p, size_t len, size_t cut)
{
    struct result r = feed_pieces(p, len, &cut, 1);

    if (r.rc == 0) {
        if (!ref_completable(p, len) || r.complete != ref_valid(p, len))
            fail_msg("accepted %zu bytes the reference rejects", len);
    } else if (!ref_completable(p, r.bad) || ref_completable(p, r.bad + 1)) {
        fail_msg("rejected byte %zu of %zu, not the first bad one", r.bad, len);
    }
}

/* A fixed-seed xorshift64* generator, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(0x2545F4914F6CDD1D);
}

/* Encode cp (up to 21 bits, surrogates allowed) in n bytes, n >= needed. */
static size_t encode_n(uint32_t cp, size_t n, uint8_t *out)
{
    static const uint8_t lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};

    for (size_t i = n - 1; i > 0; i--, cp >>= 6)
        out[i] = (uint8_t)(0x80 | (cp & 0x3F));
    out[0] = (uint8_t)(lead[n] | cp);
    return n;
}

/* The shortest UTF-8 length for cp. */
static size_t utf8_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Random bytes, mostly high: lead bytes and continuation bytes. */
static size_t gen_bytes(uint64_t *s, uint8_t *out)
{
    size_t len = (size_t)(rng_next(s) % 13);

    for (size_t i = 0; i < len; i++) {
        uint64_t r = rng_next(s);
        switch (r % 8) {
        case 0:
        case 1:
            out[i] = (uint8_t)((r >> 8) & 0x7F);
            break;
        case 2:
        case 3:
        case 4:
            out[i] = (uint8_t)(0x80 | ((r >> 8) & 0x3F));
            break;
        default:
            out[i] = (uint8_t)(0xC0 | ((r >> 8) & 0x3F));
            break;
        }
    }
    return len;
}

/* Encoded code points, sometimes overlong, mutated or truncated. */
static size_t gen_encoded(uint64_t *s, uint8_t *out)
{
    static const uint32_t span[5] = {0x80, 0x800, 0x10000, 0x110000, 0x200000};
    size_t len = 0, count = 1 + (size_t)(rng_next(s) % 4);

    for (size_t i = 0; i < count; i++) {
        uint32_t cp = (uint32_t)(rng_next(s) % span[rng_next(s) % 5]);
        size_t n = utf8_len(cp);

        if (n < 4 && rng_next(s) % 8 == 0)
            n++; /* overlong */
        len += encode_n(cp, n, out + len);
    }
    if (len > 0 && rng_next(s) % 2 == 0)
        out[rng_next(s) % len] = (uint8_t)(0x80 | rng_next(s));
    if (len > 0 && rng_next(s) % 4 == 0)
        len -= 1 + (size_t)(rng_next(s) % len) / 2;
    return len;
}

static void test_rows_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        check_whole(&rows[i]);
}

static void test_rows_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        check_bytewise(&rows[i]);
}

static void test_rows_split2(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        check_split2(&rows[i]);
}

static void test_rows_split3(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        check_split3(&rows[i]);
}

static void test_rows_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++)
        check_valid(&rows[i]);
}

/* Autobahn 6.6.x: every prefix of "κόσμε", which ends on a boundary only
   after 2, 5, 7, 9 and 11 bytes. */
static void test_kosme_prefixes(void **state)
{
    static const uint8_t k[] = KOSME;

    (void)state;
    for (size_t n = 1; n < sizeof k; n++) {
        bool whole = n == 2 || n == 5 || n == 7 || n == 9 || n == 11;
        char label[32];
        struct row w = {label, k, n, whole ? VALID : TRUNC, 0};

        snprintf(label, sizeof label, "kosme prefix %zu", n);
        check_all_ways(&w);
    }
}

/* The 8-byte ASCII skip: a bad byte or a 2-byte form at every position and
   alignment around the word boundaries. */
static void test_ascii_fast_path(void **state)
{
    (void)state;
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 1; n <= 40; n++) {
            for (size_t pos = 0; pos < n; pos++) {
                uint8_t *buf = malloc(off + n);
                size_t bad = SIZE_MAX;
                struct ws_utf8 v = {0};

                assert_non_null(buf);
                memset(buf + off, 'a', n);
                buf[off + pos] = 0x80;
                assert_int_equal(ws_utf8_feed(&v, buf + off, n, &bad),
                                 WS_EUTF8);
                assert_int_equal(bad, pos);
                if (pos + 1 < n) {
                    buf[off + pos] = 0xC3;
                    buf[off + pos + 1] = 0xA9;
                    assert_true(ws_utf8_valid(buf + off, n));
                }
                free(buf);
            }
        }
    }
}

/* RFC 3629 §3: every scalar value is valid in its shortest form, and no
   surrogate or overlong form is, at the byte the rules name. */
static void test_every_code_point(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint8_t buf[4];
        size_t n = encode_n(cp, utf8_len(cp), buf), bad = SIZE_MAX;
        struct ws_utf8 v = {0};
        int rc = ws_utf8_feed(&v, buf, n, &bad);

        if (cp >= 0xD800 && cp <= 0xDFFF) {
            assert_int_equal(rc, WS_EUTF8);
            assert_int_equal(bad, 1);
        } else if (rc != 0 || !ws_utf8_complete(&v)) {
            fail_msg("U+%04X rejected", (unsigned)cp);
        }
        if (n < 4) {
            /* One byte longer is overlong: 2-byte forms fail on C0/C1, the
               others on the second byte. */
            n = encode_n(cp, n + 1, buf);
            assert_false(ws_utf8_valid(buf, n));
        }
    }
}

/* Every string of up to two bytes against the reference. */
static void test_all_short_strings(void **state)
{
    (void)state;
    for (uint32_t x = 0; x < 0x10000; x++) {
        uint8_t p[2] = {(uint8_t)(x >> 8), (uint8_t)x};

        check_against_ref(p, 1, (size_t)(x & 1));
        check_against_ref(p, 2, (size_t)(x % 3));
    }
}

/* A few hundred thousand random strings: the verdict of ws_utf8_valid()
   must match the reference; every fourth gets the full byte-index check. */
static void test_random_vs_reference(void **state)
{
    uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);

    (void)state;
    for (unsigned i = 0; i < 300000; i++) {
        uint8_t tmp[64];
        size_t len = i % 2 ? gen_bytes(&seed, tmp) : gen_encoded(&seed, tmp);
        uint8_t *p = exact_copy(tmp, len);

        if (ws_utf8_valid(p, len) != ref_valid(p, len))
            fail_msg("string %u (%zu bytes): verdicts differ", i, len);
        if (i % 4 < 2)
            check_against_ref(p, len, (size_t)(rng_next(&seed) % (len + 1)));
        free(p);
    }
}

/* The zero-filled struct and ws_utf8_reset() give the initial state; *bad
   may be NULL; an empty feed changes nothing. */
static void test_reset_and_edges(void **state)
{
    struct ws_utf8 v = {0};
    const uint8_t bad_byte[1] = {0xFF}, lead[1] = {0xE2}, ok[1] = {'a'};
    size_t bad = 42;

    (void)state;
    assert_true(ws_utf8_complete(&v));
    assert_int_equal(ws_utf8_feed(&v, NULL, 0, &bad), 0);
    assert_int_equal(bad, 42);
    assert_int_equal(ws_utf8_feed(&v, bad_byte, 1, NULL), WS_EUTF8);
    ws_utf8_reset(&v);
    assert_int_equal(ws_utf8_feed(&v, lead, 1, NULL), 0);
    assert_false(ws_utf8_complete(&v));
    assert_int_equal(ws_utf8_feed(&v, NULL, 0, NULL), 0);
    assert_false(ws_utf8_complete(&v));
    ws_utf8_reset(&v);
    assert_true(ws_utf8_complete(&v));
    assert_int_equal(ws_utf8_feed(&v, ok, 1, &bad), 0);
    assert_true(ws_utf8_complete(&v));
    assert_true(ws_utf8_valid(NULL, 0));
}

/*
 * The vector paths. Inputs of SIMD_MIN (32) bytes or more go through the
 * SSSE3 or AVX2 pass in 64-byte blocks; the AVX-512 pass takes input of any
 * length, in groups of four blocks, then single blocks, then a masked last
 * block. So the tests below use long texts, put every character length and
 * every kind of bad byte at every offset of a block and of a group and
 * across their boundaries, cut the stream there, and run each
 * implementation this CPU has, all checked against the reference decoder.
 */

/* Every implementation; those this CPU lacks are skipped. */
static const struct {
    const char *name;
    enum ws_utf8_impl impl;
} impls[] = {
    {"auto", WS_UTF8_AUTO},     {"scalar", WS_UTF8_SCALAR},
    {"ssse3", WS_UTF8_SSSE3},   {"avx2", WS_UTF8_AVX2},
    {"avx512", WS_UTF8_AVX512},
};

#define NIMPLS (sizeof impls / sizeof impls[0])

/*
 * The reference verdict on a text of any length: whole characters are
 * decoded by ref_valid() while they are valid; the first bad byte is then
 * the first after which the failing character cannot be completed
 * (ref_completable() on at most four bytes), since all before it is valid.
 */
static struct result ref_result(const uint8_t *p, size_t len)
{
    struct result r = {0, 0, false};
    size_t i = 0, n = 0;
    uint32_t cp, min;

    while (i < len && ref_lead(p[i], &n, &cp, &min) && len - i >= n &&
           ref_valid(p + i, n))
        i += n;
    for (size_t k = i; k < len && k < i + 4; k++) {
        if (!ref_completable(p + i, k + 1 - i)) {
            r.rc = WS_EUTF8;
            r.bad = k;
            return r;
        }
    }
    r.complete = i == len;
    return r;
}

/* True when two results agree: same code, and same index or boundary. */
static bool same_result(struct result a, struct result b)
{
    if (a.rc != b.rc)
        return false;
    return a.rc != 0 ? a.bad == b.bad : a.complete == b.complete;
}

/* Feed p[0..len) through every implementation, cut at cuts[0..ncuts) and
   placed at align; each must give want. */
static void check_impls(const char *label, const uint8_t *p, size_t len,
                        const size_t *cuts, size_t ncuts, size_t align,
                        struct result want)
{
    for (size_t k = 0; k < NIMPLS; k++) {
        struct result got;

        if (!ws_utf8_impl_available(impls[k].impl))
            continue;
        got = feed_pieces_at(impls[k].impl, p, len, cuts, ncuts, align);
        if (!same_result(got, want))
            fail_msg("%s (%s, %zu bytes, %zu cuts, align %zu): rc %d, bad "
                     "%zu, complete %d; want rc %d, bad %zu, complete %d",
                     label, impls[k].name, len, ncuts, align, got.rc, got.bad,
                     (int)got.complete, want.rc, want.bad, (int)want.complete);
    }
}

/* As check_impls(), with the reference's verdict. */
static void check_impls_ref(const char *label, const uint8_t *p, size_t len,
                            const size_t *cuts, size_t ncuts, size_t align)
{
    check_impls(label, p, len, cuts, ncuts, align, ref_result(p, len));
}

/* Code points of each UTF-8 length, the range ends among them. */
static const uint32_t samples[5][6] = {
    [1] = {'a', 0x00, 0x7F, 'Z', ' ', '~'},
    [2] = {0x80, 0x7FF, 0xE9, 0x3B1, 0x100, 0x7FE},
    [3] = {0x800, 0xFFFF, 0xD7FF, 0xE000, 0x20AC, 0xFEFF},
    [4] = {0x10000, 0x10FFFF, 0x1F600, 0x233B4, 0x3FFFF, 0x40000},
};

/*
 * Fill out[0..len) with valid, complete text: characters of kind bytes
 * each (1-4), or of all lengths in turn (kind 0), then ASCII where the
 * next character would not fit.
 */
static void fill_kind(uint8_t *out, size_t len, int kind)
{
    static const size_t mixed[6] = {1, 2, 1, 3, 1, 4};
    size_t i = 0;

    for (size_t c = 0;; c++) {
        size_t n = kind == 0 ? mixed[c % 6] : (size_t)kind;

        if (len - i < n)
            break;
        i += encode_n(samples[n][c % 6], n, out + i);
    }
    memset(out + i, 'x', len - i);
}

/* Long valid texts of each character length, behind 0-64 ASCII bytes (so
   the characters sit at every offset of a block), at two alignments each,
   and the same texts cut one, two and three bytes short. */
static void test_vector_valid_texts(void **state)
{
    uint8_t buf[320];

    (void)state;
    for (int kind = 0; kind <= 4; kind++) {
        for (size_t k = 0; k <= 64; k++) {
            size_t len = k + 200 + k % 5;
            size_t aligns[2] = {0, (k * 7 + (size_t)kind) % 64};

            memset(buf, 'a', k);
            fill_kind(buf + k, len - k, kind);
            assert_true(ref_valid(buf, len));
            for (size_t a = 0; a < 2; a++)
                for (size_t cut = 0; cut < 4; cut++)
                    check_impls_ref("valid text", buf, len - cut, NULL, 0,
                                    aligns[a]);
        }
    }
}

/* Every prefix of long texts: the text ends at every offset of a block,
   inside characters too, where the padded last block is used. */
static void test_vector_every_length(void **state)
{
    uint8_t buf[300];

    (void)state;
    for (int kind = 0; kind <= 4; kind++) {
        fill_kind(buf, sizeof buf, kind);
        for (size_t len = 0; len <= sizeof buf; len++)
            check_impls_ref("prefix", buf, len, NULL, 0, len % 64);
    }
}

/* A bad sequence and the index of its first bad byte. */
struct bad_seq {
    const char *label;
    const char *bytes;
    size_t bad;
};

static const struct bad_seq bad_seqs[] = {
    {"stray 80", "\x80", 0},
    {"stray BF", "\xBF", 0},
    {"C0 80 overlong", "\xC0\x80", 0},
    {"C1 BF overlong", "\xC1\xBF", 0},
    {"C0 then ASCII", "\xC0z", 0},
    {"F5 80 80 80", "\xF5\x80\x80\x80", 0},
    {"F8 5-byte form", "\xF8\x88\x80\x80\x80", 0},
    {"FE", "\xFE", 0},
    {"FF then ASCII", "\xFFz", 0},
    {"E0 80 80 overlong", "\xE0\x80\x80", 1},
    {"E0 9F BF overlong", "\xE0\x9F\xBF", 1},
    {"F0 8F BF BF overlong", "\xF0\x8F\xBF\xBF", 1},
    {"ED A0 80 surrogate", "\xED\xA0\x80", 1},
    {"ED BF BF surrogate", "\xED\xBF\xBF", 1},
    {"F4 90 80 80 past U+10FFFF", "\xF4\x90\x80\x80", 1},
    {"F4 BF past U+10FFFF", "\xF4\xBF\xBF\xBF", 1},
    {"C3 cut by ASCII", "\xC3z", 1},
    {"E2 82 cut by ASCII", "\xE2\x82z", 2},
    {"F0 9F 98 cut by ASCII", "\xF0\x9F\x98z", 3},
    {"C3 cut by lead", "\xC3\xC3\xA9", 1},
    {"F0 9F cut by 3-byte lead", "\xF0\x9F\xE2\x82\xAC", 2},
    {"tail after 2-byte", "\xC3\xA9\x80", 2},
    {"tail after 3-byte", "\xE2\x82\xAC\xBF", 3},
    {"tail after 4-byte", "\xF0\x9F\x98\x80\x80", 4},
};

#define NBAD_SEQS (sizeof bad_seqs / sizeof bad_seqs[0])

/* Check bad sequence b at byte pos of valid text of the given kind, with
   after bytes of such text behind it; whole, and when cut is set also cut
   just before the bad byte and one byte into the sequence. */
static void check_bad_at(const struct bad_seq *b, int kind, size_t pos,
                         size_t after, bool cut)
{
    uint8_t buf[800];
    size_t n = strlen(b->bytes), len = pos + n + after;
    struct result want = {WS_EUTF8, pos + b->bad, false};
    size_t cuts[2] = {pos + b->bad, pos + 1};

    assert_true(len <= sizeof buf);
    fill_kind(buf, pos, kind);
    memcpy(buf + pos, b->bytes, n);
    fill_kind(buf + pos + n, after, kind);
    if (!same_result(ref_result(buf, len), want))
        fail_msg("%s: the reference disagrees", b->label);
    check_impls(b->label, buf, len, NULL, 0, pos % 64, want);
    if (cut) {
        check_impls(b->label, buf, len, &cuts[0], 1, 0, want);
        check_impls(b->label, buf, len, &cuts[1], 1, 0, want);
    }
}

/*
 * Each bad sequence at every offset 0-150 of valid text of each kind,
 * across the first two block boundaries; fed whole, cut just before the
 * bad byte, and cut one byte into the sequence. Then with the bad byte 62
 * and 63 bytes before the end, where the last (overlapping) block starts
 * one or two bytes before it and the bytes it looks back at lie before
 * that block.
 */
static void test_vector_bad_bytes(void **state)
{
    (void)state;
    for (int kind = 0; kind <= 4; kind++) {
        for (size_t s = 0; s < NBAD_SEQS; s++) {
            const struct bad_seq *b = &bad_seqs[s];
            size_t tail = strlen(b->bytes) - b->bad; /* bad byte to end */

            for (size_t pos = 0; pos <= 150; pos++) {
                check_bad_at(b, kind, pos, 100, true);
                check_bad_at(b, kind, pos, 62 - tail, false);
                check_bad_at(b, kind, pos, 63 - tail, false);
            }
        }
    }
}

/* A long mixed text cut in two at every offset and in three around block
   boundaries, valid and with a surrogate at byte 301. */
static void test_vector_cuts(void **state)
{
    uint8_t buf[400];

    (void)state;
    for (int bad = 0; bad < 2; bad++) {
        struct result want = {0, 0, true};

        fill_kind(buf, sizeof buf, 0);
        if (bad) {
            fill_kind(buf, 301, 0);
            memcpy(buf + 301, "\xED\xA0\x80", 3);
            want.rc = WS_EUTF8;
            want.bad = 302;
        }
        for (size_t c = 0; c <= sizeof buf; c++) {
            static const size_t gaps[4] = {1, 3, 33, 64};

            check_impls("cut", buf, sizeof buf, &c, 1, c % 64, want);
            for (size_t g = 0; g < 4; g++) {
                size_t cuts[2] = {c, c + gaps[g]};

                if (cuts[1] <= sizeof buf)
                    check_impls("cut in three", buf, sizeof buf, cuts, 2, 0,
                                want);
            }
        }
    }
}

/* Every row of the table above behind 1-127 ASCII bytes and before 0-64,
   so it is checked by the vector pass at many offsets. */
static void test_vector_rows_embedded(void **state)
{
    static const size_t before[] = {1, 31, 32, 33, 62, 63, 64, 65, 127};
    static const size_t after[] = {0, 1, 40, 64};
    uint8_t buf[512];

    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *w = &rows[i];

        for (size_t b = 0; b < sizeof before / sizeof before[0]; b++) {
            for (size_t a = 0; a < sizeof after / sizeof after[0]; a++) {
                size_t k = before[b], len = k + w->len + after[a];

                assert_true(len <= sizeof buf);
                memset(buf, 'a', k);
                memcpy(buf + k, w->in, w->len);
                memset(buf + k + w->len, 'b', after[a]);
                if (after[a] == 0) {
                    /* The row's own verdict, shifted. */
                    struct result want = {w->verdict == BAD ? WS_EUTF8 : 0,
                                          k + w->bad, w->verdict == VALID};

                    check_impls(w->label, buf, len, NULL, 0, k % 64, want);
                } else {
                    check_impls_ref(w->label, buf, len, NULL, 0, k % 64);
                }
            }
        }
    }
}

/* Random valid text: ASCII runs and characters of 2-4 bytes, some at the
   ends of their ranges. Returns its length, at most max. */
static size_t gen_text(uint64_t *s, uint8_t *out, size_t max)
{
    static const uint32_t lo[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t hi[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    size_t len = (size_t)(rng_next(s) % (max + 1)), i = 0;

    while (i < len) {
        uint64_t r = rng_next(s);
        size_t n = 1 + (size_t)(r % 4);
        uint32_t cp;

        if (n == 1) {
            size_t run = (size_t)((r >> 8) % 80);

            for (size_t k = 0; k < run && i < len; k++)
                out[i++] = (uint8_t)(0x20 + rng_next(s) % 0x5F);
            continue;
        }
        if (len - i < n)
            break;
        switch ((r >> 8) % 4) {
        case 0:
            cp = lo[n];
            break;
        case 1:
            cp = hi[n];
            break;
        default:
            cp = lo[n] + (uint32_t)((r >> 16) % (hi[n] - lo[n] + 1));
            break;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp -= 0x800; /* not a surrogate */
        i += encode_n(cp, n, out + i);
    }
    memset(out + i, 'y', len - i);
    return len;
}

/* Corrupt p[0..len) with one to three random edits: a random byte, a byte
   that is often wrong (tails, bad leads, leads with narrow second bytes),
   a deleted byte, or the end cut off. Returns the new length. */
static size_t corrupt(uint64_t *s, uint8_t *p, size_t len)
{
    static const uint8_t hot[] = {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                  0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED,
                                  0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 'A'};
    size_t edits = 1 + (size_t)(rng_next(s) % 3);

    for (size_t e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)(rng_next(s) % len);

        switch (rng_next(s) % 4) {
        case 0:
            p[at] = (uint8_t)rng_next(s);
            break;
        case 1:
            p[at] = hot[rng_next(s) % sizeof hot];
            break;
        case 2:
            memmove(p + at, p + at + 1, len - at - 1);
            len--;
            break;
        default:
            len = at;
            break;
        }
    }
    return len;
}

/* Many random texts (fixed seed), a quarter left valid, the rest with
   random damage: every implementation, whole at a random alignment and in
   random pieces, must match the reference. */
static void test_vector_random_vs_reference(void **state)
{
    uint64_t seed = UINT64_C(0xD1B54A32D192ED03);
    uint8_t buf[700];

    (void)state;
    for (unsigned i = 0; i < 12000; i++) {
        size_t len = gen_text(&seed, buf, sizeof buf), cuts[3];
        size_t ncuts = (size_t)(rng_next(&seed) % 4);
        struct result want;
        char label[32];

        if (i % 4 != 0)
            len = corrupt(&seed, buf, len);
        want = ref_result(buf, len);
        for (size_t k = 0; k < ncuts; k++)
            cuts[k] = (size_t)(rng_next(&seed) % (len + 1));
        for (size_t k = 1; k < ncuts; k++) /* sort the cuts */
            for (size_t j = k; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        snprintf(label, sizeof label, "random text %u", i);
        check_impls(label, buf, len, NULL, 0, (size_t)(rng_next(&seed) % 64),
                    want);
        check_impls(label, buf, len, cuts, ncuts, 0, want);
        if (ws_utf8_valid(buf, len) != (want.rc == 0 && want.complete))
            fail_msg("%s: ws_utf8_valid() disagrees", label);
    }
}

/* A bad byte at every position of every text of 1-200 bytes, ASCII and
   mixed, so at every offset of the masked last block and of the single
   blocks before it; the reference says where the error is. */
static void test_vector_bad_every_length(void **state)
{
    static const uint8_t bytes[] = {0x80, 0xC0, 0xE0, 0xF5, 0xFF};
    uint8_t buf[200];

    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t len = 1; len <= sizeof buf; len++)
            for (size_t pos = 0; pos < len; pos++)
                for (size_t k = 0; k < sizeof bytes; k++) {
                    fill_kind(buf, len, kind);
                    buf[pos] = bytes[k];
                    check_impls_ref("bad byte", buf, len, NULL, 0,
                                    (len + pos) % 64);
                }
}

/*
 * Each bad sequence with its bad byte in the first four and the last four
 * bytes of every block up to byte 640: in each block of a group of four,
 * in the single blocks and in the masked last block, with nothing or 70
 * bytes after it.
 */
static void test_vector_block_edges(void **state)
{
    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t s = 0; s < NBAD_SEQS; s++)
            for (size_t at = 0; at < 640; at++) {
                const struct bad_seq *b = &bad_seqs[s];
                size_t tail = strlen(b->bytes) - b->bad;

                if ((at % 64 > 3 && at % 64 < 60) || at < b->bad)
                    continue;
                check_bad_at(b, kind, at - b->bad, 70, true);
                check_bad_at(b, kind, at - b->bad, 0, false);
                if (tail > 1) /* the sequence then ends further on */
                    check_bad_at(b, kind, at - b->bad, 1, false);
            }
}

/* A character cut short, and the bytes that finish it. */
static const struct {
    const char *cut, *rest;
} open_chars[] = {
    {"\xC3", "\xA9"},         {"\xE2", "\x82\xAC"},
    {"\xE2\x82", "\xAC"},     {"\xE0\xA0", "\x80"},
    {"\xED\x9F", "\xBF"},     {"\xF0", "\x9F\x98\x80"},
    {"\xF0\x9F", "\x98\x80"}, {"\xF0\x9F\x98", "\x80"},
    {"\xF4\x8F\xBF", "\xBF"},
};

#define NOPEN_CHARS (sizeof open_chars / sizeof open_chars[0])

/*
 * Texts of every length up to 300 that end inside a character: accepted,
 * not complete. Fed on in a second call, the character's missing bytes
 * complete the text, and ASCII instead of them is the bad byte, which
 * checks the state a vector pass leaves behind at every offset.
 */
static void test_vector_cut_at_end(void **state)
{
    static const struct result trunc = {0, 0, false}, valid = {0, 0, true};
    uint8_t buf[320];

    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t c = 0; c < NOPEN_CHARS; c++) {
            size_t n = strlen(open_chars[c].cut);
            size_t r = strlen(open_chars[c].rest);

            for (size_t len = n; len <= 300; len++) {
                struct result broken = {WS_EUTF8, len, false};

                fill_kind(buf, len - n, kind);
                memcpy(buf + len - n, open_chars[c].cut, n);
                check_impls("cut at end", buf, len, NULL, 0, len % 64, trunc);
                memcpy(buf + len, open_chars[c].rest, r);
                buf[len + r] = 'z';
                check_impls("finished next", buf, len + r + 1, &len, 1,
                            len % 64, valid);
                buf[len] = 'z';
                check_impls("broken next", buf, len + 1, &len, 1, len % 64,
                            broken);
            }
        }
}

/*
 * A character left open at the end of a block, then only ASCII: the
 * all-ASCII fast paths must not wave the next block (or group, or masked
 * last block) through. At every block boundary up to 512; then the same
 * character finished at the start of the next block. Fed whole and cut at
 * the boundary.
 */
static void test_vector_open_before_ascii(void **state)
{
    static const size_t ascii[] = {0,  1,   2,   3,   63,  64,
                                   65, 127, 128, 200, 256, 300};
    uint8_t buf[900];

    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t c = 0; c < NOPEN_CHARS; c++)
            for (size_t at = 64; at <= 512; at += 64)
                for (size_t a = 0; a < sizeof ascii / sizeof ascii[0]; a++) {
                    size_t n = strlen(open_chars[c].cut);
                    size_t r = strlen(open_chars[c].rest), k = ascii[a];
                    struct result want = {k > 0 ? WS_EUTF8 : 0, at, false};
                    struct result valid = {0, 0, true};

                    fill_kind(buf, at - n, kind);
                    memcpy(buf + at - n, open_chars[c].cut, n);
                    memset(buf + at, 'q', k);
                    check_impls("open, then ASCII", buf, at + k, NULL, 0, 0,
                                want);
                    check_impls("open, then ASCII", buf, at + k, &at, 1, 0,
                                want);
                    memcpy(buf + at, open_chars[c].rest, r);
                    memset(buf + at + r, 'q', k);
                    check_impls("finished, then ASCII", buf, at + r + k, NULL,
                                0, 0, valid);
                    check_impls("finished, then ASCII", buf, at + r + k, &at, 1,
                                0, valid);
                }
}

/* Feed p[0..len) through impl once, in place. */
static struct result feed_direct(enum ws_utf8_impl impl, const uint8_t *p,
                                 size_t len)
{
    struct ws_utf8 v = {0};
    struct result r = {0, 0, false};
    size_t bad = SIZE_MAX;

    r.rc = ws_utf8_feed_impl(impl, &v, p, len, &bad);
    if (r.rc != 0)
        r.bad = bad;
    else
        r.complete = ws_utf8_complete(&v);
    return r;
}

/* Check every implementation on p[0..len) in place against the
   reference. */
static void check_in_place(const char *label, const uint8_t *p, size_t len)
{
    struct result want = ref_result(p, len);

    for (size_t k = 0; k < NIMPLS; k++) {
        struct result got;

        if (!ws_utf8_impl_available(impls[k].impl))
            continue;
        got = feed_direct(impls[k].impl, p, len);
        if (!same_result(got, want))
            fail_msg("%s (%s, %zu bytes): rc %d, bad %zu, complete %d", label,
                     impls[k].name, len, got.rc, got.bad, (int)got.complete);
    }
}

/*
 * Text of len bytes that ends gap bytes before the unmapped page at
 * guard, and the same text at the start of the page before guard, which
 * follows another unmapped page: valid, then with a bad or open last or
 * first character.
 */
static void check_near_guards(uint8_t *guard, size_t pg, size_t gap, size_t len,
                              int kind)
{
    uint8_t *end = guard - gap - len, *start = guard - pg;

    fill_kind(end, len, kind);
    check_in_place("before a guard page", end, len);
    fill_kind(start, len, kind);
    check_in_place("after a guard page", start, len);
    if (len == 0)
        return;
    end[len - 1] = 0xC3;
    check_in_place("open before a guard page", end, len);
    end[len - 1] = 0xFF;
    check_in_place("bad before a guard page", end, len);
    start[0] = 0x80;
    check_in_place("bad after a guard page", start, len);
}

/*
 * Texts of 0-300 bytes that end at or up to 64 bytes before an unmapped
 * page, or start just after one: a read outside the input is a crash
 * here. (ASan sees the copies of the other tests, but not every vector
 * load: GCC does not instrument masked loads.) Near the end of a page the
 * AVX-512 pass reads its last block from further back and moves it into
 * place, so this also checks that path.
 */
static void test_vector_guard_pages(void **state)
{
    static const size_t gaps[] = {0, 1, 2, 3, 31, 61, 62, 63, 64};
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    (void)state;
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map, pg, PROT_NONE), 0);
    assert_int_equal(mprotect(map + 2 * pg, pg, PROT_NONE), 0);
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++)
        for (int kind = 0; kind <= 1; kind++)
            for (size_t len = 0; len <= 300; len++)
                check_near_guards(map + 2 * pg, pg, gaps[g], len, kind);
    assert_int_equal(munmap(map, 3 * pg), 0);
}

/*
 * The fused path, ws_utf8_unmask_prefix(): a differential check against
 * the two passes it replaces. A text is masked with a random key at a
 * random key phase; v is first brought to where a first part of the text
 * leaves it (mid-character too); then the fused call, the caller's two
 * passes over the rest, and the plain two passes over the whole must
 * agree on the code, the bad index, the final state and the bytes.
 */

/* The reference unmask (RFC 6455 §5.3): p[i] ^= key[(offset + i) % 4]. */
static void ref_mask(uint8_t *p, size_t n, const uint8_t key[4],
                     uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(p[i] ^ key[(offset + i) % 4]);
}

/* A random key and key phase; sometimes a key that flips no high bit or
   every one, and an offset past 32 bits. */
static void random_key(uint64_t *s, uint8_t key[4], uint64_t *offset)
{
    uint64_t r = rng_next(s);

    memcpy(key, &r, 4);
    if ((r >> 32) % 8 == 0)
        memset(key, 0, 4); /* an all-zero key: the text goes as it is */
    else if ((r >> 32) % 8 == 1)
        memset(key, 0x80, 4);
    *offset = rng_next(s) % 8 == 0 ? (UINT64_C(1) << 40) + (r >> 60)
                                   : (r >> 40) % 4096;
}

/* One fused call's inputs: text[0..len) fed plainly up to pre, then
   masked from pre on and placed at align of its own allocation. */
struct fused_case {
    const uint8_t *text;
    size_t len, pre, align;
    uint8_t key[4];
    uint64_t offset; /* key phase of text[pre] */
};

/* How many fused calls returned a non-empty prefix: the tests below check
   that the vector path ran at all where the CPU has it. */
static size_t fused_hits;

/*
 * Check impl's fused call on one case against the plain two passes, as
 * the block comment above says; label names the case on failure. Also:
 * right after the call, bytes from r on are still masked and v is where
 * feeding the r unmasked bytes leaves it.
 */
static void check_fused_impl(const char *label, enum ws_utf8_impl impl,
                             const char *name, const struct fused_case *fc)
{
    size_t n = fc->len - fc->pre, r, bad1 = SIZE_MAX, bad2 = SIZE_MAX;
    const uint8_t *plain = fc->text + fc->pre;
    uint8_t *buf = malloc(fc->align + n + 1), *m = buf + 1 + fc->align;
    uint8_t *masked = malloc(n + 1);
    struct ws_utf8 v1 = {0}, v2 = {0}, v3;
    int rc1, rc2, rc3;

    assert_non_null(buf);
    assert_non_null(masked);
    if (n > 0)
        memcpy(masked, plain, n);
    ref_mask(masked, n, fc->key, fc->offset);
    /* The first part, plain, into both states (no error may be in it). */
    assert_int_equal(ws_utf8_feed(&v1, fc->text, fc->pre, NULL), 0);
    v2 = v1;
    if (n > 0)
        memcpy(m, masked, n);
    r = ws_utf8_unmask_prefix_impl(impl, &v1, m, n, fc->key, fc->offset);
    if (r > n || (n > 0 && memcmp(m + r, masked + r, n - r) != 0) ||
        (r > 0 && memcmp(m, plain, r) != 0))
        fail_msg("%s (%s, pre %zu, %zu bytes, align %zu): prefix %zu, bytes "
                 "wrong",
                 label, name, fc->pre, n, fc->align, r);
    /* v1 must be where feeding the r bytes leaves v. */
    v3 = v2;
    rc3 = ws_utf8_feed(&v3, plain, r, NULL);
    if (rc3 != 0 || memcmp(&v1, &v3, sizeof v1) != 0)
        fail_msg("%s (%s, pre %zu, %zu bytes): prefix %zu, state %d, fed %d",
                 label, name, fc->pre, n, r, (int)v1.state, (int)v3.state);
    if (r > 0)
        fused_hits++;
    /* The caller's second step, and the plain two passes. */
    ref_mask(m + r, n - r, fc->key, fc->offset + r);
    rc1 = ws_utf8_feed(&v1, m + r, n - r, &bad1);
    rc2 = ws_utf8_feed(&v2, plain, n, &bad2);
    if (rc1 != rc2 || (rc1 != 0 && r + bad1 != bad2) ||
        (rc1 == 0 && memcmp(&v1, &v2, sizeof v1) != 0) ||
        (n > 0 && memcmp(m, plain, n) != 0))
        fail_msg("%s (%s, pre %zu, %zu bytes, align %zu): prefix %zu, rc %d "
                 "bad %zu; want rc %d bad %zu",
                 label, name, fc->pre, n, fc->align, r, rc1, r + bad1, rc2,
                 bad2);
    free(masked);
    free(buf);
}

/* check_fused_impl() for every implementation this CPU has. */
static void check_fused(const char *label, const struct fused_case *fc)
{
    for (size_t k = 0; k < NIMPLS; k++)
        if (ws_utf8_impl_available(impls[k].impl))
            check_fused_impl(label, impls[k].impl, impls[k].name, fc);
    /* The public entry point too. */
    {
        struct ws_utf8 v = {0};
        size_t n = fc->len - fc->pre, r;
        uint8_t *m = malloc(n + 1);

        assert_non_null(m);
        if (n > 0)
            memcpy(m, fc->text + fc->pre, n);
        ref_mask(m, n, fc->key, fc->offset);
        assert_int_equal(ws_utf8_feed(&v, fc->text, fc->pre, NULL), 0);
        r = ws_utf8_unmask_prefix(&v, m, n, fc->key, fc->offset);
        ref_mask(m + r, n - r, fc->key, fc->offset + r);
        if (n > 0 && memcmp(m, fc->text + fc->pre, n) != 0)
            fail_msg("%s: ws_utf8_unmask_prefix() unmasked wrongly", label);
        free(m);
    }
}

/* The fused check for text[0..len) with random keys: fed from the start,
   and after a first part that ends inside a character when there is one
   in the first 200 bytes, otherwise a few bytes in. */
static void check_fused_text(const char *label, const uint8_t *text, size_t len,
                             uint64_t *seed)
{
    struct fused_case fc = {text, len, 0, 0, {0}, 0};
    size_t pre = 0;

    random_key(seed, fc.key, &fc.offset);
    fc.align = (size_t)(rng_next(seed) % 64);
    check_fused(label, &fc);
    while (pre < len && pre < 200 && (text[pre] & 0xC0) != 0x80)
        pre++;
    if (pre == len || pre == 200)
        pre = len < 5 ? len : 5;
    /* The first part must hold no bad byte: stop it before one. */
    {
        struct ws_utf8 v = {0};
        size_t bad = SIZE_MAX;

        if (ws_utf8_feed(&v, text, pre, &bad) != 0)
            pre = bad;
    }
    fc.pre = pre;
    random_key(seed, fc.key, &fc.offset);
    fc.align = (size_t)(rng_next(seed) % 64);
    check_fused(label, &fc);
}

/* Valid texts of every length 0-700 and each character kind, and the same
   cut one to three bytes short (which may end inside a character). */
static void test_fused_every_length(void **state)
{
    uint64_t seed = UINT64_C(0x6A09E667F3BCC908);
    uint8_t buf[700];

    (void)state;
    fused_hits = 0;
    for (int kind = 0; kind <= 4; kind++) {
        fill_kind(buf, sizeof buf, kind);
        for (size_t len = 0; len <= sizeof buf; len++)
            for (size_t cut = 0; cut < 4 && cut <= len; cut++)
                check_fused_text("every length", buf, len - cut, &seed);
    }
    if (ws_utf8_impl_available(WS_UTF8_AVX512))
        assert_true(fused_hits > 1000);
}

/*
 * A bad byte (or bad sequence) with its bad byte at every position up to
 * 700, in valid text of each kind, with nothing, one byte, 70 bytes or
 * enough to reach 700 after it: in every block of a group of four, in the
 * single blocks, just before and after the end of the walk.
 */
static void test_fused_bad_bytes(void **state)
{
    static const size_t afters[] = {0, 1, 70, 700};
    uint64_t seed = UINT64_C(0xBB67AE8584CAA73B);
    uint8_t buf[1500];

    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t s = 0; s < NBAD_SEQS; s++)
            for (size_t at = 0; at < 700; at++) {
                const struct bad_seq *b = &bad_seqs[s];
                size_t nb = strlen(b->bytes);

                if (at < b->bad)
                    continue;
                /* Away from block edges, a sample of the positions. */
                if (at % 64 > 4 && at % 64 < 59 && rng_next(&seed) % 8 != 0)
                    continue;
                for (size_t a = 0; a < 4; a++) {
                    size_t pos = at - b->bad;
                    size_t after = afters[a] == 700 ? 700 - at : afters[a];
                    size_t len = pos + nb + after;

                    fill_kind(buf, pos, kind);
                    memcpy(buf + pos, b->bytes, nb);
                    fill_kind(buf + pos + nb, after, kind);
                    check_fused_text(b->label, buf, len, &seed);
                }
            }
}

/*
 * v entering mid-character: each cut character fed plainly, then its rest
 * (or a bad byte in place of each byte of it) and text, masked. Also
 * characters left open at the end of the walk and at every block
 * boundary, then ASCII.
 */
static void test_fused_open_characters(void **state)
{
    uint64_t seed = UINT64_C(0x3C6EF372FE94F82B);
    uint8_t buf[800];

    (void)state;
    for (int kind = 0; kind <= 1; kind++)
        for (size_t c = 0; c < NOPEN_CHARS; c++) {
            size_t n = strlen(open_chars[c].cut);
            size_t r = strlen(open_chars[c].rest);

            for (size_t len = 64; len <= 400; len += 1 + len / 64) {
                struct fused_case fc = {buf, 0, n, 0, {0}, 0};

                memcpy(buf, open_chars[c].cut, n);
                memcpy(buf + n, open_chars[c].rest, r);
                fill_kind(buf + n + r, len, kind);
                fc.len = n + r + len;
                for (size_t bad = 0; bad <= r; bad++) {
                    uint8_t keep = buf[n + (bad < r ? bad : 0)];

                    if (bad < r) /* ASCII where a tail must be */
                        buf[n + bad] = 'z';
                    random_key(&seed, fc.key, &fc.offset);
                    fc.align = (size_t)(rng_next(&seed) % 64);
                    check_fused("open character", &fc);
                    buf[n + (bad < r ? bad : 0)] = keep;
                }
            }
            /* Open at each block boundary and at the end, then ASCII. */
            for (size_t at = 64; at <= 640; at += 64)
                for (size_t k = 0; k <= 130; k += 1 + k / 2) {
                    fill_kind(buf, at - n, kind);
                    memcpy(buf + at - n, open_chars[c].cut, n);
                    memset(buf + at, 'q', k);
                    check_fused_text("open, then ASCII", buf, at + k, &seed);
                    memcpy(buf + at, open_chars[c].rest, r);
                    memset(buf + at + r, 'q', k);
                    check_fused_text("finished, then ASCII", buf, at + r + k,
                                     &seed);
                }
        }
}

/* Random texts of up to 700 bytes, three quarters damaged, with random
   keys, phases, alignments and first parts. */
static void test_fused_random(void **state)
{
    uint64_t seed = UINT64_C(0xA54FF53A5F1D36F1);
    uint8_t buf[700];

    (void)state;
    for (unsigned i = 0; i < 20000; i++) {
        size_t len = gen_text(&seed, buf, sizeof buf);
        struct fused_case fc = {buf, 0, 0, 0, {0}, 0};
        struct ws_utf8 v = {0};
        size_t bad = SIZE_MAX;

        if (i % 4 != 0)
            len = corrupt(&seed, buf, len);
        fc.len = len;
        fc.pre = (size_t)(rng_next(&seed) % (len + 1));
        if (ws_utf8_feed(&v, buf, fc.pre, &bad) != 0)
            fc.pre = bad;
        random_key(&seed, fc.key, &fc.offset);
        fc.align = (size_t)(rng_next(&seed) % 64);
        check_fused("random text", &fc);
    }
}

/* Large texts (64 KiB to 1 MiB, odd lengths too): valid, and with a bad
   byte in the first group, in the middle and near the end. */
static void test_fused_large(void **state)
{
    static const size_t lens[] = {65536, 65536 + 200, 262144 + 63, 1 << 20};
    uint64_t seed = UINT64_C(0x510E527FADE682D1);
    uint8_t *buf = malloc((size_t)1 << 20);

    (void)state;
    assert_non_null(buf);
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        size_t len = lens[l];
        size_t ats[4] = {SIZE_MAX, 200, len / 2 + 1, len - 70};

        for (size_t a = 0; a < 4; a++) {
            size_t i = 0;

            /* Mixed text with 3- and 4-byte characters across blocks. */
            while (i < len)
                i += gen_text(&seed, buf + i, len - i < 700 ? len - i : 700);
            if (ats[a] != SIZE_MAX)
                buf[ats[a]] = 0xFF;
            check_fused_text("large text", buf, len, &seed);
        }
    }
    free(buf);
}

/* Text that ends at or just before an unmapped page, or starts right
   after one: the fused walk loads and stores only inside it. */
static void test_fused_guard_pages(void **state)
{
    static const size_t gaps[] = {0, 1, 3, 63, 64};
    uint64_t seed = UINT64_C(0x1F83D9ABFB41BD6B);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t text[600];

    (void)state;
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map, pg, PROT_NONE), 0);
    assert_int_equal(mprotect(map + 2 * pg, pg, PROT_NONE), 0);
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++)
        for (size_t len = 0; len <= sizeof text; len += 1 + len / 32) {
            uint8_t *at[2] = {map + 2 * pg - gaps[g] - len, map + pg};
            uint8_t key[4];
            uint64_t offset;

            fill_kind(text, len, (int)(len % 5));
            if (len > 0 && g % 2)
                text[len - 1] = 0xC3; /* open at the end */
            for (size_t k = 0; k < 2; k++) {
                struct ws_utf8 v = {0}, w = {0};
                size_t r;

                random_key(&seed, key, &offset);
                memcpy(at[k], text, len);
                ref_mask(at[k], len, key, offset);
                r = ws_utf8_unmask_prefix_impl(WS_UTF8_AVX512, &v, at[k], len,
                                               key, offset);
                ref_mask(at[k] + r, len - r, key, offset + r);
                assert_int_equal(ws_utf8_feed(&v, at[k] + r, len - r, NULL),
                                 ws_utf8_feed(&w, text, len, NULL));
                assert_int_equal(v.state, w.state);
                assert_memory_equal(at[k], text, len);
            }
        }
    assert_int_equal(munmap(map, 3 * pg), 0);
}

/* The cases with no fused prefix: other implementations, short input, a
   rejected state, an open character that the bytes do not finish. */
static void test_fused_edges(void **state)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    struct ws_utf8 v = {0};
    uint8_t buf[128], want[128];
    bool avx512 = ws_utf8_impl_available(WS_UTF8_AVX512);

    (void)state;
    memset(buf, 'a', sizeof buf);
    ref_mask(buf, sizeof buf, key, 0);
    memcpy(want, buf, sizeof buf);
    assert_int_equal(ws_utf8_unmask_prefix(&v, NULL, 0, key, 0), 0);
    assert_int_equal(ws_utf8_unmask_prefix(&v, buf, 63, key, 0), 0);
    for (size_t k = 0; k < NIMPLS; k++) {
        bool fused = avx512 && (impls[k].impl == WS_UTF8_AVX512 ||
                                impls[k].impl == WS_UTF8_AUTO);

        if (fused)
            continue;
        assert_int_equal(ws_utf8_unmask_prefix_impl(impls[k].impl, &v, buf,
                                                    sizeof buf, key, 0),
                         0);
    }
    assert_memory_equal(buf, want, sizeof buf);
    /* A rejected state stays so; the caller's feed reports it. */
    v.state = 0;
    assert_int_equal(ws_utf8_feed(&v, (const uint8_t *)"\xFF", 1, NULL),
                     WS_EUTF8);
    assert_int_equal(ws_utf8_unmask_prefix(&v, buf, sizeof buf, key, 0), 0);
    assert_memory_equal(buf, want, sizeof buf);
    /* An open E2 that ASCII does not finish: nothing is taken. */
    ws_utf8_reset(&v);
    assert_int_equal(ws_utf8_feed(&v, (const uint8_t *)"\xE2", 1, NULL), 0);
    assert_int_equal(ws_utf8_unmask_prefix(&v, buf, sizeof buf, key, 0), 0);
    assert_memory_equal(buf, want, sizeof buf);
    assert_false(ws_utf8_complete(&v));
    /* ASCII from a boundary: all whole blocks, here all of it. */
    ws_utf8_reset(&v);
    assert_int_equal(ws_utf8_unmask_prefix(&v, buf, sizeof buf, key, 0),
                     avx512 ? sizeof buf : 0);
}

/* Whether /proc/cpuinfo lists flag for this machine's CPUs (Linux drops
   the AVX-512 flags too when the kernel does not save their registers):
   1 or 0, or -1 when there is no such file (not Linux, not x86). */
static int cpuinfo_has(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = -1;

    if (f == NULL)
        return -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char *p;

        if (strncmp(line, "flags", 5) != 0)
            continue;
        found = 0;
        for (p = strtok(strchr(line, ':') + 1, " \n"); p;
             p = strtok(NULL, " \n"))
            if (strcmp(p, flag) == 0)
                found = 1;
    }
    fclose(f);
    return found;
}

/* The widest implementation ws_utf8_impl_available() reports. */
static enum ws_utf8_impl widest_available(void)
{
    if (ws_utf8_impl_available(WS_UTF8_AVX512))
        return WS_UTF8_AVX512;
    if (ws_utf8_impl_available(WS_UTF8_AVX2))
        return WS_UTF8_AVX2;
    return ws_utf8_impl_available(WS_UTF8_SSSE3) ? WS_UTF8_SSSE3
                                                 : WS_UTF8_SCALAR;
}

/*
 * The dispatch chose the widest implementation the CPU runs, by the
 * kernel's own account of the CPU (not by the library's CPUID check), and
 * every implementation the kernel says runs is available. Under valgrind
 * the CPU it emulates lacks extensions the kernel lists (AVX-512): there
 * each available one must still be listed, and the widest chosen.
 */
static void test_vector_impls(void **state)
{
    int avx512 = cpuinfo_has("avx512f") > 0 && cpuinfo_has("avx512bw") > 0 &&
                 cpuinfo_has("avx512vbmi") > 0;
    int avx2 = cpuinfo_has("avx2") > 0, ssse3 = cpuinfo_has("ssse3") > 0;
    const char *vg = getenv("WS_TEST_VALGRIND");
    enum ws_utf8_impl want = avx512  ? WS_UTF8_AVX512
                             : avx2  ? WS_UTF8_AVX2
                             : ssse3 ? WS_UTF8_SSSE3
                                     : WS_UTF8_SCALAR;

    (void)state;
#if !(defined(__x86_64__) || defined(__i386__))
    want = WS_UTF8_SCALAR; /* no vector passes are built */
    avx512 = avx2 = ssse3 = 0;
#endif
    if (cpuinfo_has("fpu") < 0)
        skip(); /* no flags in /proc/cpuinfo to compare with */
    assert_true(ws_utf8_impl_available(WS_UTF8_SCALAR));
    if (vg != NULL && strcmp(vg, "1") == 0) {
        assert_true(!ws_utf8_impl_available(WS_UTF8_AVX512) || avx512);
        assert_true(!ws_utf8_impl_available(WS_UTF8_AVX2) || avx2);
        assert_true(!ws_utf8_impl_available(WS_UTF8_SSSE3) || ssse3);
        want = widest_available();
    } else {
        assert_int_equal(ws_utf8_impl_available(WS_UTF8_AVX512), avx512);
        assert_int_equal(ws_utf8_impl_available(WS_UTF8_AVX2), avx2);
        assert_int_equal(ws_utf8_impl_available(WS_UTF8_SSSE3), ssse3);
    }
    assert_int_equal(ws_utf8_impl_chosen(), want);
    print_message("utf8 implementation chosen: %s\n",
                  want == WS_UTF8_AVX512  ? "avx512"
                  : want == WS_UTF8_AVX2  ? "avx2"
                  : want == WS_UTF8_SSSE3 ? "ssse3"
                                          : "scalar");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_whole),
        cmocka_unit_test(test_rows_bytewise),
        cmocka_unit_test(test_rows_split2),
        cmocka_unit_test(test_rows_split3),
        cmocka_unit_test(test_rows_valid),
        cmocka_unit_test(test_kosme_prefixes),
        cmocka_unit_test(test_ascii_fast_path),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_all_short_strings),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_reset_and_edges),
        cmocka_unit_test(test_vector_impls),
        cmocka_unit_test(test_vector_valid_texts),
        cmocka_unit_test(test_vector_every_length),
        cmocka_unit_test(test_vector_bad_bytes),
        cmocka_unit_test(test_vector_cuts),
        cmocka_unit_test(test_vector_rows_embedded),
        cmocka_unit_test(test_vector_random_vs_reference),
        cmocka_unit_test(test_vector_bad_every_length),
        cmocka_unit_test(test_vector_block_edges),
        cmocka_unit_test(test_vector_cut_at_end),
        cmocka_unit_test(test_vector_open_before_ascii),
        cmocka_unit_test(test_vector_guard_pages),
        cmocka_unit_test(test_fused_every_length),
        cmocka_unit_test(test_fused_bad_bytes),
        cmocka_unit_test(test_fused_open_characters),
        cmocka_unit_test(test_fused_random),
        cmocka_unit_test(test_fused_large),
        cmocka_unit_test(test_fused_guard_pages),
        cmocka_unit_test(test_fused_edges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
