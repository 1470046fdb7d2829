#include "util/chunk.h"

#include <string.h>

#include "util/pool.h"

static atomic_size_t live_count;
static atomic_size_t live_bytes;

moq_chunk *moq_chunk_new(size_t cap)
{
    moq_chunk *c = moq_pool_alloc(sizeof(*c) + cap);
    if (!c) return NULL;
    atomic_init(&c->refs, 1);
    c->len = 0;
    c->cap = cap;
    atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, cap, memory_order_relaxed);
    return c;
}

moq_chunk *moq_chunk_copy(const void *data, size_t len)
{
    moq_chunk *c = moq_chunk_new(len);
    if (!c) return NULL;
    if (len) memcpy(c->data, data, len);
    c->len = len;
    return c;
}

void moq_chunk_unref(moq_chunk *c)
{
    if (!c) return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) return;
    atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&live_bytes, c->cap, memory_order_relaxed);
    moq_pool_free(c, sizeof(*c) + c->cap);
}

size_t moq_chunk_live_count(void)
{
    return atomic_load_explicit(&live_count, memory_order_relaxed);
}

size_t moq_chunk_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}
