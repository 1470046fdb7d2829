#include "quic/arena.h"
#include "quic/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every block starts with this header; the caller's memory follows it, 16-aligned. */
struct moq_quic_arena_blk {
    struct moq_quic_arena_blk *prev, *next;
    size_t size;
    size_t reserved;
};
_Static_assert(sizeof(struct moq_quic_arena_blk) % 16 == 0, "keeps the caller's memory 16-aligned");

static struct moq_quic_arena_blk *blk_of(void *ptr)
{
    return (struct moq_quic_arena_blk *)ptr - 1;
}

static void link_blk(moq_quic_arena *a, struct moq_quic_arena_blk *b, size_t size)
{
    b->size = size;
    b->prev = NULL;
    b->next = a->head;
    if (a->head) a->head->prev = b;
    a->head = b;
    a->blocks++;
    a->bytes += size;
}

static void unlink_blk(moq_quic_arena *a, struct moq_quic_arena_blk *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        a->head = b->next;
    if (b->next) b->next->prev = b->prev;
    a->blocks--;
    a->bytes -= b->size;
}

static void *arena_alloc(moq_quic_arena *a, size_t size, int zero)
{
    if (size > SIZE_MAX - sizeof(struct moq_quic_arena_blk)) return NULL;
    size_t total = size + sizeof(struct moq_quic_arena_blk);
    struct moq_quic_arena_blk *b =
        zero ? moq_quic_mem_calloc(1, total) : moq_quic_mem_malloc(total);
    if (!b) return NULL;
    link_blk(a, b, size);
    return b + 1;
}

static void *cb_malloc(size_t size, void *user_data)
{
    return arena_alloc(user_data, size, 0);
}

static void *cb_calloc(size_t nmemb, size_t size, void *user_data)
{
    if (size && nmemb > SIZE_MAX / size) return NULL;
    return arena_alloc(user_data, nmemb * size, 1);
}

static void cb_free(void *ptr, void *user_data)
{
    if (!ptr) return;
    struct moq_quic_arena_blk *b = blk_of(ptr);
    unlink_blk(user_data, b);
    moq_quic_mem_free(b);
}

static void *cb_realloc(void *ptr, size_t size, void *user_data)
{
    moq_quic_arena *a = user_data;
    if (!ptr) return arena_alloc(a, size, 0);
    if (size > SIZE_MAX - sizeof(struct moq_quic_arena_blk)) return NULL;
    struct moq_quic_arena_blk *b = blk_of(ptr);
    unlink_blk(a, b);
    struct moq_quic_arena_blk *n = moq_quic_mem_realloc(b, size + sizeof(*b));
    if (!n) {
        link_blk(a, b, b->size); /* the old block stays valid and listed */
        return NULL;
    }
    link_blk(a, n, size);
    return n + 1;
}

void moq_quic_arena_init(moq_quic_arena *a)
{
    *a = (moq_quic_arena){.mem = {a, cb_malloc, cb_free, cb_calloc, cb_realloc}};
}

size_t moq_quic_arena_release(moq_quic_arena *a)
{
    size_t n = 0;
    while (a->head) {
        struct moq_quic_arena_blk *b = a->head;
        unlink_blk(a, b);
        moq_quic_mem_free(b);
        n++;
    }
    return n;
}
