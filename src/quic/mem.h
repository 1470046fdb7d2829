/*
 * mem.h - the allocator ngtcp2 uses for our connections. libngtcp2 0.12 carves its
 * per-connection structures out of blocks of fixed size (a block of 64 streams, of 64
 * packet records, of 31 skip-list nodes for every ordered set: 4 to 12 kB each, about
 * 70 kB per connection) of which an idle connection uses a few hundred bytes. Blocks above
 * MOQ_QUIC_MEM_PAGED_MIN get pages of their own, mapped on demand by the kernel, so only
 * the part ngtcp2 writes is resident; smaller allocations come from util/pool.h (the
 * ones ngtcp2 makes per packet and per frame are then reused, not malloc'd). Memory from it
 * is freed through it. Thread-safe.
 */
#ifndef MOQ_QUIC_MEM_H
#define MOQ_QUIC_MEM_H

#include <stddef.h>

#include <ngtcp2/ngtcp2.h>

#define MOQ_QUIC_MEM_PAGED_MIN 4096

/* Under AddressSanitizer every block comes from malloc: LeakSanitizer does not look for
 * pointers inside mappings of our own, so the heap objects they point to would look leaked,
 * and a block that is never freed would go unnoticed. */
#if defined(__SANITIZE_ADDRESS__)
#define MOQ_QUIC_MEM_PAGED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOQ_QUIC_MEM_PAGED 0
#endif
#endif
#ifndef MOQ_QUIC_MEM_PAGED
#define MOQ_QUIC_MEM_PAGED 1
#endif

const ngtcp2_mem *moq_quic_mem(void);

/* The same functions, for tests. */
void *moq_quic_mem_malloc(size_t size);
void *moq_quic_mem_calloc(size_t nmemb, size_t size);
void *moq_quic_mem_realloc(void *ptr, size_t size);
void moq_quic_mem_free(void *ptr);
/* Whether ptr came from pages of its own. */
int moq_quic_mem_is_paged(const void *ptr);

#endif
