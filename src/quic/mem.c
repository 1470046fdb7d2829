#include "quic/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/pool.h"

/* Every allocation starts with this header; the caller's memory follows it, 16-aligned. */
struct mem_hdr {
    size_t size;  /* bytes asked for */
    size_t paged; /* mapped length, 0 for malloc */
};
_Static_assert(sizeof(struct mem_hdr) == 16, "keeps the caller's memory 16-aligned");

static struct mem_hdr *hdr_of(void *ptr)
{
    return (struct mem_hdr *)ptr - 1;
}

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE); /* read from the aux vector, no system call */
    return (n + page - 1) & ~(page - 1);
}

/* zero: the caller needs zeroed memory (fresh mappings are, malloc's are not). */
static void *mem_alloc(size_t size, int zero)
{
    if (size > SIZE_MAX - 2 * sizeof(struct mem_hdr) - 65536) return NULL;
    struct mem_hdr *h = NULL;
    if (MOQ_QUIC_MEM_PAGED && size >= MOQ_QUIC_MEM_PAGED_MIN) {
        size_t len = page_round(size + sizeof(*h));
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            h = p;
            h->paged = len;
        }
    }
    if (!h) { /* small, or out of mappings: the heap, through the per-thread pool */
        h = zero ? moq_pool_calloc(size + sizeof(*h)) : moq_pool_alloc(size + sizeof(*h));
        if (!h) return NULL;
        h->paged = 0;
    }
    h->size = size;
    return h + 1;
}

void *moq_quic_mem_malloc(size_t size)
{
    return mem_alloc(size, 0);
}

void *moq_quic_mem_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) return NULL;
    return mem_alloc(nmemb * size, 1);
}

void moq_quic_mem_free(void *ptr)
{
    if (!ptr) return;
    struct mem_hdr *h = hdr_of(ptr);
    if (h->paged)
        munmap(h, h->paged);
    else
        moq_pool_free(h, h->size + sizeof(*h));
}

void *moq_quic_mem_realloc(void *ptr, size_t size)
{
    if (!ptr) return moq_quic_mem_malloc(size);
    struct mem_hdr *h = hdr_of(ptr);
    if (!h->paged && size < MOQ_QUIC_MEM_PAGED_MIN) {
        h = moq_pool_realloc(h, h->size + sizeof(*h), size + sizeof(*h));
        if (!h) return NULL;
        h->size = size;
        return h + 1;
    }
    void *n = moq_quic_mem_malloc(size);
    if (!n) return NULL;
    memcpy(n, ptr, h->size < size ? h->size : size);
    moq_quic_mem_free(ptr);
    return n;
}

int moq_quic_mem_is_paged(const void *ptr)
{
    return ((const struct mem_hdr *)ptr - 1)->paged != 0;
}

static void *cb_malloc(size_t size, void *user_data)
{
    (void)user_data;
    return moq_quic_mem_malloc(size);
}

static void cb_free(void *ptr, void *user_data)
{
    (void)user_data;
    moq_quic_mem_free(ptr);
}

static void *cb_calloc(size_t nmemb, size_t size, void *user_data)
{
    (void)user_data;
    return moq_quic_mem_calloc(nmemb, size);
}

static void *cb_realloc(void *ptr, size_t size, void *user_data)
{
    (void)user_data;
    return moq_quic_mem_realloc(ptr, size);
}

static const ngtcp2_mem mem = {NULL, cb_malloc, cb_free, cb_calloc, cb_realloc};

const ngtcp2_mem *moq_quic_mem(void)
{
    return &mem;
}
