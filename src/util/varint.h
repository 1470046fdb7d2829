/*
 * varint.h - QUIC variable-length integers (RFC 9000 section 16), used by QUIC, HTTP/3,
 * qmux and every moq-lite version. Pure functions; no allocation.
 */
#ifndef MOQ_UTIL_VARINT_H
#define MOQ_UTIL_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define MOQ_VARINT_MAX ((1ull << 62) - 1)
#define MOQ_VARINT_MAXLEN 8

/* Bytes needed to encode v in the shortest form (1, 2, 4 or 8); 0 if v > MOQ_VARINT_MAX. */
size_t moq_varint_len(uint64_t v);

/* Write v in the shortest form at p (which must have moq_varint_len(v) bytes).
 * Returns the pointer past the written bytes. v must be <= MOQ_VARINT_MAX. */
uint8_t *moq_varint_put(uint8_t *p, uint64_t v);

/* Decode one varint from p[0..len). Any length form is accepted. Returns the number of
 * bytes consumed, or MOQ_ERR_AGAIN when len is too short. */
int moq_varint_get(const uint8_t *p, size_t len, uint64_t *out);

/* zigzag mapping of signed deltas (moq-lite 05 frame timestamps). */
static inline uint64_t moq_zigzag_encode(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t moq_zigzag_decode(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

#endif
