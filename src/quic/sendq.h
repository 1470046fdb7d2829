/*
 * sendq.h - a stream's send queue of refcounted chunk slices (the zero-copy data path).
 *
 * write() appends slices and takes one chunk reference per slice. The bytes are handed to
 * ngtcp2 straight from the chunks as iovecs (peek/advance); ngtcp2 keeps pointing at them for
 * retransmission, so a slice's reference is dropped only when the peer acknowledged all of
 * its bytes (ack), when its bytes were never handed out (drop_unsent), or when the stream is
 * gone for good (clear). Offsets are stream offsets: the first byte ever queued is offset 0.
 */
#ifndef MOQ_QUIC_SENDQ_H
#define MOQ_QUIC_SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2.h>

#include "util/chunk.h"

struct moq_quic_sendq_ent {
    moq_chunk *chunk; /* one reference held */
    const uint8_t *base;
    size_t len;
};

typedef struct moq_quic_sendq {
    struct moq_quic_sendq_ent *ents;
    size_t cap;       /* ring capacity, power of two or 0 */
    size_t head;      /* ring index of the oldest entry */
    size_t count;     /* entries in the ring */
    uint64_t base;    /* stream offset of the oldest entry's first byte */
    uint64_t acked;   /* bytes acknowledged contiguously from offset 0 */
    uint64_t sent;    /* bytes handed to the network */
    uint64_t end;     /* stream offset after the last queued byte */
    size_t send_idx;  /* entry (0 = oldest) holding offset `sent` */
    size_t send_skip; /* bytes of that entry already handed out */
} moq_quic_sendq;

void moq_quic_sendq_init(moq_quic_sendq *q);
/* Drop every reference and reset to empty (offsets keep counting from `end`). */
void moq_quic_sendq_clear(moq_quic_sendq *q);

/* Append n slices (zero-length ones are skipped), taking a reference on each chunk.
 * All or nothing: MOQ_ERR_NOMEM leaves the queue unchanged. */
int moq_quic_sendq_push(moq_quic_sendq *q, const moq_slice *v, size_t n);

static inline uint64_t moq_quic_sendq_unsent(const moq_quic_sendq *q)
{
    return q->end - q->sent;
}

/* Bytes handed out but not acknowledged yet. */
static inline uint64_t moq_quic_sendq_inflight(const moq_quic_sendq *q)
{
    return q->sent - q->acked;
}

/* Fill up to max iovecs with unsent bytes, starting at `sent`. Returns the count. */
size_t moq_quic_sendq_peek(const moq_quic_sendq *q, ngtcp2_vec *v, size_t max);
/* n more bytes were handed to the network (n <= unsent). */
void moq_quic_sendq_advance(moq_quic_sendq *q, uint64_t n);
/* The peer acknowledged [offset, offset + len); ngtcp2 reports ranges in order. Releases
 * every slice whose bytes are all acknowledged. */
void moq_quic_sendq_ack(moq_quic_sendq *q, uint64_t offset, uint64_t len);
/* Release the slices no byte of which was handed out; `end` becomes `sent`. */
void moq_quic_sendq_drop_unsent(moq_quic_sendq *q);

#endif
