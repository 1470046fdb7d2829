/*
 * chunk.h - refcounted immutable byte chunks: the unit of zero-copy fan-out.
 *
 * A chunk is allocated with its bytes inline, filled once by its creator, then shared:
 * every holder takes a reference with moq_chunk_ref() and drops it with moq_chunk_unref();
 * the last unref frees it (into the freeing thread's pool cache, util/pool.h). Refcounts are atomic so chunks may cross worker threads.
 * A moq_slice names a byte range of a chunk and does not own a reference by itself; the
 * code that stores a slice documents whether it holds one.
 */
#ifndef MOQ_UTIL_CHUNK_H
#define MOQ_UTIL_CHUNK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct moq_chunk {
    atomic_uint refs;
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated in data[] */
    uint8_t data[];
} moq_chunk;

typedef struct moq_slice {
    moq_chunk *chunk;
    size_t off;
    size_t len;
} moq_slice;

/* A chunk with cap bytes of room, len 0, one reference owned by the caller. NULL on OOM. */
moq_chunk *moq_chunk_new(size_t cap);
/* A chunk holding a copy of data[0..len), one reference owned by the caller. */
moq_chunk *moq_chunk_copy(const void *data, size_t len);

static inline moq_chunk *moq_chunk_ref(moq_chunk *c)
{
    if (c) atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void moq_chunk_unref(moq_chunk *c);

/* Process-wide count of live chunks and their allocated bytes (for metrics and leak tests). */
size_t moq_chunk_live_count(void);
size_t moq_chunk_live_bytes(void);

#endif
