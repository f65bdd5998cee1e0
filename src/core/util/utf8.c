#include "utf8.h"

/* Table 3-7: the length of the sequence a lead byte starts and the range of its second byte
 * (later bytes are 80..BF); 0 for a byte that starts no multi-byte sequence (C0, C1, F5..FF and
 * continuation bytes). */
static size_t lead_byte(unsigned c, unsigned *lo, unsigned *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0)
            *lo = 0xA0; /* below: overlong */
        else if (c == 0xED)
            *hi = 0x9F; /* above: surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0)
            *lo = 0x90; /* below: overlong */
        else if (c == 0xF4)
            *hi = 0x8F; /* above: beyond U+10FFFF */
        return 4;
    }
    return 0;
}

/* How many bytes of s[0..n) follow the sequence that s[0] starts, up to its length. */
static size_t matched_prefix(const unsigned char *s, size_t n, size_t need, unsigned lo, unsigned hi)
{
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < need && i < n && (s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

size_t sl_utf8_char_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    unsigned lo, hi;
    size_t need = lead_byte(s[0], &lo, &hi);
    if (need == 0 || n < need)
        return 0;
    return matched_prefix(s, n, need, lo, hi) == need ? need : 0;
}

size_t sl_utf8_invalid_len(const unsigned char *s, size_t n)
{
    unsigned lo, hi;
    size_t need = lead_byte(s[0], &lo, &hi);
    return need == 0 ? 1 : matched_prefix(s, n, need, lo, hi);
}

size_t sl_utf8_valid_run_end(const unsigned char *u, size_t a, size_t n)
{
    size_t b = a;
    while (b < n) {
        size_t cl = sl_utf8_char_len(u + b, n - b);
        if (!cl)
            break;
        b += cl;
    }
    return b;
}

int32_t sl_utf8_decode(const unsigned char *s, size_t clen)
{
    switch (clen) {
    case 1: return s[0];
    case 2: return ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((int32_t)(s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

size_t sl_utf8_encode(int32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
