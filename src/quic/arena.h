/*
 * arena.h - the allocator libngtcp2 uses for one connection: every block it takes is on the
 * connection's list, so the connection knows how much ngtcp2 holds for it and can free what
 * ngtcp2 leaves behind.
 *
 * libngtcp2 0.12 (Debian 12) loses blocks: a STREAM frame chain that it allocated from the
 * heap (many iovecs, after a loss) and later trimmed to few iovecs goes back to its object
 * pool instead of the heap, and the pool never frees it. Under packet loss a long-lived relay
 * would leak this way; after ngtcp2_conn_del nothing of the connection is in use, so
 * moq_quic_arena_release() frees every block still listed.
 *
 * Blocks come from quic/mem.h (large ones on pages of their own), behind a header of ours.
 *
 * Ownership: the arena is embedded in its connection and is not thread-safe (one connection
 * lives on one event loop). Blocks are freed by ngtcp2 through the arena's ngtcp2_mem, or by
 * moq_quic_arena_release().
 */
#ifndef MOQ_QUIC_ARENA_H
#define MOQ_QUIC_ARENA_H

#include <stddef.h>

#include <ngtcp2/ngtcp2.h>

struct moq_quic_arena_blk;

typedef struct moq_quic_arena {
    ngtcp2_mem mem;                  /* hand &mem to ngtcp2_conn_*_new */
    struct moq_quic_arena_blk *head; /* newest first */
    size_t blocks;                   /* blocks held now */
    size_t bytes;                    /* bytes asked for by the blocks held now */
} moq_quic_arena;

void moq_quic_arena_init(moq_quic_arena *a);

/* Frees every block still held; returns how many there were. The arena is empty after. */
size_t moq_quic_arena_release(moq_quic_arena *a);

#endif
