/* base64url (RFC 4648 section 5) for JWS segments and JWK members. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "util/err.h"

static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *moq_b64url_encode(const uint8_t *data, size_t len)
{
    size_t out_len = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = url_alphabet[v >> 18];
        *o++ = url_alphabet[(v >> 12) & 63];
        *o++ = url_alphabet[(v >> 6) & 63];
        *o++ = url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = url_alphabet[v >> 18];
        *o++ = url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = url_alphabet[v >> 18];
        *o++ = url_alphabet[(v >> 12) & 63];
        *o++ = url_alphabet[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

/* Value of one base64 character, or -1. url: '-' '_'; std: '+' '/'. */
static int b64_value(unsigned char c, bool accept_url, bool accept_std)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (accept_url && c == '-') return 62;
    if (accept_url && c == '_') return 63;
    if (accept_std && c == '+') return 62;
    if (accept_std && c == '/') return 63;
    return -1;
}

static int b64_decode(const char *s, size_t len, bool url, bool std, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4 == 1) return MOQ_ERR_INVALID;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf) return MOQ_ERR_NOMEM;
    size_t n = 0;
    uint32_t acc = 0;
    size_t i = 0;
    for (; i < len; i++) {
        int v = b64_value((unsigned char)s[i], url, std);
        if (v < 0) goto bad;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            buf[n++] = (uint8_t)(acc >> 16);
            buf[n++] = (uint8_t)(acc >> 8);
            buf[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* A final group of 2 or 3 characters carries 1 or 2 bytes; its spare bits must be 0
     * so every byte string has exactly one encoding. */
    if (len % 4 == 2) {
        if (acc & 0xf) goto bad;
        buf[n++] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        if (acc & 0x3) goto bad;
        buf[n++] = (uint8_t)(acc >> 10);
        buf[n++] = (uint8_t)(acc >> 2);
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
bad:
    free(buf);
    return MOQ_ERR_INVALID;
}

int moq_b64url_decode_strict(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    return b64_decode(s, len, true, false, out, out_len);
}

int moq_b64_decode_lenient(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    /* Padding is optional but, when present, must complete the last group. */
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad && (len + pad) % 4 != 0) return MOQ_ERR_INVALID;
    bool has_url = false, has_std = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-' || s[i] == '_') has_url = true;
        if (s[i] == '+' || s[i] == '/') has_std = true;
    }
    if (has_url && has_std) return MOQ_ERR_INVALID;
    return b64_decode(s, len, !has_std, has_std, out, out_len);
}
