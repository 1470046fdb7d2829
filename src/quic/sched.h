/*
 * sched.h - which stream feeds the next packet: a priority queue of streams with data.
 *
 * Higher priority first; among equal priorities, round-robin: a node pushed (or requeued)
 * goes behind every queued node of its priority. Nodes are embedded in the caller's stream
 * objects; the scheduler stores pointers only and owns just its heap array. A node must be
 * removed before its owner is freed.
 */
#ifndef MOQ_QUIC_SCHED_H
#define MOQ_QUIC_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct moq_quic_sched_node {
    uint64_t priority;
    uint64_t seq; /* arrival order within the queue */
    size_t idx;   /* heap index, SIZE_MAX when not queued */
} moq_quic_sched_node;

typedef struct moq_quic_sched {
    moq_quic_sched_node **heap;
    size_t len, cap;
    uint64_t next_seq;
} moq_quic_sched;

void moq_quic_sched_init(moq_quic_sched *s);
void moq_quic_sched_free(moq_quic_sched *s);

void moq_quic_sched_node_init(moq_quic_sched_node *n, uint64_t priority);

static inline bool moq_quic_sched_queued(const moq_quic_sched_node *n)
{
    return n->idx != SIZE_MAX;
}

static inline size_t moq_quic_sched_len(const moq_quic_sched *s)
{
    return s->len;
}

/* Queue n behind its equals. No-op if already queued. Returns 0 or MOQ_ERR_NOMEM. */
int moq_quic_sched_push(moq_quic_sched *s, moq_quic_sched_node *n);
/* The node to serve next, or NULL. It stays queued. */
moq_quic_sched_node *moq_quic_sched_peek(const moq_quic_sched *s);
/* Unqueue n (no-op if not queued). */
void moq_quic_sched_remove(moq_quic_sched *s, moq_quic_sched_node *n);
/* Move a queued node behind its equals (after it was served). No-op if not queued. */
void moq_quic_sched_requeue(moq_quic_sched *s, moq_quic_sched_node *n);
/* Change n's priority; a queued node is repositioned behind its new equals. */
void moq_quic_sched_set_priority(moq_quic_sched *s, moq_quic_sched_node *n, uint64_t priority);

#endif
