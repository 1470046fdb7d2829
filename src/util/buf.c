#include "util/buf.h"
#include "util/err.h"
#include "util/varint.h"

#include <stdlib.h>
#include <string.h>

void moq_buf_init(moq_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void moq_buf_free(moq_buf *b)
{
    free(b->data);
    moq_buf_init(b);
}

int moq_buf_reserve(moq_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) return MOQ_ERR_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return MOQ_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int moq_buf_append(moq_buf *b, const void *data, size_t len)
{
    if (len == 0) return 0;
    int rv = moq_buf_reserve(b, len);
    if (rv < 0) return rv;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int moq_buf_put_u8(moq_buf *b, uint8_t v)
{
    return moq_buf_append(b, &v, 1);
}

int moq_buf_put_u16be(moq_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return moq_buf_append(b, x, 2);
}

int moq_buf_put_u32be(moq_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return moq_buf_append(b, x, 4);
}

int moq_buf_put_varint(moq_buf *b, uint64_t v)
{
    if (v > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    int rv = moq_buf_reserve(b, MOQ_VARINT_MAXLEN);
    if (rv < 0) return rv;
    uint8_t *end = moq_varint_put(b->data + b->len, v);
    b->len = (size_t)(end - b->data);
    return 0;
}

int moq_buf_put_lenbytes(moq_buf *b, const void *data, size_t len)
{
    int rv = moq_buf_put_varint(b, len);
    if (rv < 0) return rv;
    return moq_buf_append(b, data, len);
}

void moq_buf_consume(moq_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void moq_buf_reset(moq_buf *b)
{
    b->len = 0;
}

moq_chunk *moq_buf_to_chunk(const moq_buf *b)
{
    return moq_chunk_copy(b->data, b->len);
}

int moq_rd_u8(moq_rd *r, uint8_t *out)
{
    if (r->p >= r->end) return MOQ_ERR_AGAIN;
    *out = *r->p++;
    return 0;
}

int moq_rd_u16be(moq_rd *r, uint16_t *out)
{
    if (moq_rd_left(r) < 2) return MOQ_ERR_AGAIN;
    *out = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    return 0;
}

int moq_rd_u32be(moq_rd *r, uint32_t *out)
{
    if (moq_rd_left(r) < 4) return MOQ_ERR_AGAIN;
    *out = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
           r->p[3];
    r->p += 4;
    return 0;
}

int moq_rd_varint(moq_rd *r, uint64_t *out)
{
    int n = moq_varint_get(r->p, moq_rd_left(r), out);
    if (n < 0) return n;
    r->p += n;
    return 0;
}

int moq_rd_bytes(moq_rd *r, size_t n, const uint8_t **out)
{
    if (moq_rd_left(r) < n) return MOQ_ERR_AGAIN;
    *out = r->p;
    r->p += n;
    return 0;
}

int moq_rd_lenbytes(moq_rd *r, size_t max, const uint8_t **out, size_t *len)
{
    moq_rd save = *r;
    uint64_t n;
    int rv = moq_rd_varint(r, &n);
    if (rv < 0) return rv;
    if (n > max) {
        *r = save;
        return MOQ_ERR_TOO_LARGE;
    }
    rv = moq_rd_bytes(r, (size_t)n, out);
    if (rv < 0) {
        *r = save;
        return rv;
    }
    *len = (size_t)n;
    return 0;
}
