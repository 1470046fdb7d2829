#include "util/varint.h"
#include "util/err.h"

size_t moq_varint_len(uint64_t v)
{
    if (v < 64) return 1;
    if (v < 16384) return 2;
    if (v < 1073741824) return 4;
    if (v <= MOQ_VARINT_MAX) return 8;
    return 0;
}

uint8_t *moq_varint_put(uint8_t *p, uint64_t v)
{
    switch (moq_varint_len(v)) {
    case 1: *p++ = (uint8_t)v; break;
    case 2:
        *p++ = (uint8_t)(0x40 | (v >> 8));
        *p++ = (uint8_t)v;
        break;
    case 4:
        *p++ = (uint8_t)(0x80 | (v >> 24));
        *p++ = (uint8_t)(v >> 16);
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
        break;
    default:
        *p++ = (uint8_t)(0xc0 | (v >> 56));
        for (int shift = 48; shift >= 0; shift -= 8) *p++ = (uint8_t)(v >> shift);
        break;
    }
    return p;
}

int moq_varint_get(const uint8_t *p, size_t len, uint64_t *out)
{
    if (len == 0) return MOQ_ERR_AGAIN;
    size_t n = (size_t)1 << (p[0] >> 6);
    if (len < n) return MOQ_ERR_AGAIN;
    uint64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; i++) v = (v << 8) | p[i];
    *out = v;
    return (int)n;
}
