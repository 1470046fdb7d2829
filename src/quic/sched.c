#include "quic/sched.h"
#include "util/err.h"

#include <stdlib.h>

void moq_quic_sched_init(moq_quic_sched *s)
{
    s->heap = NULL;
    s->len = s->cap = 0;
    s->next_seq = 0;
}

void moq_quic_sched_free(moq_quic_sched *s)
{
    for (size_t i = 0; i < s->len; i++)
        s->heap[i]->idx = SIZE_MAX;
    free(s->heap);
    moq_quic_sched_init(s);
}

void moq_quic_sched_node_init(moq_quic_sched_node *n, uint64_t priority)
{
    n->priority = priority;
    n->seq = 0;
    n->idx = SIZE_MAX;
}

/* True when a must be served before b. */
static inline bool before(const moq_quic_sched_node *a, const moq_quic_sched_node *b)
{
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->seq < b->seq;
}

static inline void place(moq_quic_sched *s, size_t i, moq_quic_sched_node *n)
{
    s->heap[i] = n;
    n->idx = i;
}

static void sift_up(moq_quic_sched *s, size_t i)
{
    moq_quic_sched_node *n = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(n, s->heap[parent])) break;
        place(s, i, s->heap[parent]);
        i = parent;
    }
    place(s, i, n);
}

static void sift_down(moq_quic_sched *s, size_t i)
{
    moq_quic_sched_node *n = s->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= s->len) break;
        if (child + 1 < s->len && before(s->heap[child + 1], s->heap[child])) child++;
        if (!before(s->heap[child], n)) break;
        place(s, i, s->heap[child]);
        i = child;
    }
    place(s, i, n);
}

int moq_quic_sched_push(moq_quic_sched *s, moq_quic_sched_node *n)
{
    if (moq_quic_sched_queued(n)) return MOQ_OK;
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        moq_quic_sched_node **heap = realloc(s->heap, cap * sizeof(*heap));
        if (!heap) return MOQ_ERR_NOMEM;
        s->heap = heap;
        s->cap = cap;
    }
    n->seq = s->next_seq++;
    place(s, s->len++, n);
    sift_up(s, n->idx);
    return MOQ_OK;
}

moq_quic_sched_node *moq_quic_sched_peek(const moq_quic_sched *s)
{
    return s->len ? s->heap[0] : NULL;
}

void moq_quic_sched_remove(moq_quic_sched *s, moq_quic_sched_node *n)
{
    if (!moq_quic_sched_queued(n)) return;
    size_t i = n->idx;
    n->idx = SIZE_MAX;
    moq_quic_sched_node *last = s->heap[--s->len];
    if (i == s->len) return;
    place(s, i, last);
    if (i > 0 && before(last, s->heap[(i - 1) / 2]))
        sift_up(s, i);
    else
        sift_down(s, i);
}

void moq_quic_sched_requeue(moq_quic_sched *s, moq_quic_sched_node *n)
{
    if (!moq_quic_sched_queued(n)) return;
    /* A new, larger sequence number only ever moves the node down. */
    n->seq = s->next_seq++;
    sift_down(s, n->idx);
}

void moq_quic_sched_set_priority(moq_quic_sched *s, moq_quic_sched_node *n, uint64_t priority)
{
    if (!moq_quic_sched_queued(n)) {
        n->priority = priority;
        return;
    }
    if (n->priority == priority) return;
    moq_quic_sched_remove(s, n);
    n->priority = priority;
    moq_quic_sched_push(s, n); /* cannot fail: the slot was just freed */
}
