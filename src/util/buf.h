/*
 * buf.h - byte buffers: a growable owned writer (moq_buf) and a bounds-checked reader
 * over borrowed bytes (moq_rd).
 *
 * moq_buf owns its heap memory; moq_buf_free releases it. moq_rd borrows: the bytes it
 * reads must outlive it. Reader functions return MOQ_ERR_AGAIN when the input ends early,
 * leaving the reader unchanged, so incremental parsers can wait for more bytes.
 */
#ifndef MOQ_UTIL_BUF_H
#define MOQ_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/chunk.h"

typedef struct moq_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} moq_buf;

void moq_buf_init(moq_buf *b);
void moq_buf_free(moq_buf *b);
/* Ensure room for extra more bytes. */
int moq_buf_reserve(moq_buf *b, size_t extra);
int moq_buf_append(moq_buf *b, const void *data, size_t len);
int moq_buf_put_u8(moq_buf *b, uint8_t v);
int moq_buf_put_u16be(moq_buf *b, uint16_t v);
int moq_buf_put_u32be(moq_buf *b, uint32_t v);
int moq_buf_put_varint(moq_buf *b, uint64_t v);
/* varint length followed by the bytes (moq-lite `bytes`/`str`). */
int moq_buf_put_lenbytes(moq_buf *b, const void *data, size_t len);
/* Drop n bytes from the front. */
void moq_buf_consume(moq_buf *b, size_t n);
void moq_buf_reset(moq_buf *b);
/* A new chunk holding a copy of the buffer's bytes (one reference to the caller). */
moq_chunk *moq_buf_to_chunk(const moq_buf *b);

typedef struct moq_rd {
    const uint8_t *p;
    const uint8_t *end;
} moq_rd;

/* data may be NULL when len is 0 (an empty message): the reader then points at a static
 * empty string, so no reader ever offsets a null pointer. */
static inline void moq_rd_init(moq_rd *r, const void *data, size_t len)
{
    r->p = data ? (const uint8_t *)data : (const uint8_t *)"";
    r->end = data ? r->p + len : r->p;
}

static inline size_t moq_rd_left(const moq_rd *r)
{
    return (size_t)(r->end - r->p);
}

int moq_rd_u8(moq_rd *r, uint8_t *out);
int moq_rd_u16be(moq_rd *r, uint16_t *out);
int moq_rd_u32be(moq_rd *r, uint32_t *out);
int moq_rd_varint(moq_rd *r, uint64_t *out);
/* n raw bytes; *out points into the input. */
int moq_rd_bytes(moq_rd *r, size_t n, const uint8_t **out);
/* varint length then bytes. Returns MOQ_ERR_TOO_LARGE when the length exceeds max. */
int moq_rd_lenbytes(moq_rd *r, size_t max, const uint8_t **out, size_t *len);

#endif
