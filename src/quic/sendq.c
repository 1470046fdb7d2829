#include "quic/sendq.h"
#include "util/err.h"
#include "util/pool.h"

#include <stdlib.h>
#include <string.h>

void moq_quic_sendq_init(moq_quic_sendq *q)
{
    memset(q, 0, sizeof(*q));
}

static inline struct moq_quic_sendq_ent *ent_at(const moq_quic_sendq *q, size_t i)
{
    return &q->ents[(q->head + i) & (q->cap - 1)];
}

void moq_quic_sendq_clear(moq_quic_sendq *q)
{
    for (size_t i = 0; i < q->count; i++)
        moq_chunk_unref(ent_at(q, i)->chunk);
    moq_pool_free(q->ents, q->cap * sizeof(*q->ents));
    uint64_t end = q->end;
    memset(q, 0, sizeof(*q));
    q->base = q->acked = q->sent = q->end = end;
}

static int reserve(moq_quic_sendq *q, size_t extra)
{
    if (q->count + extra <= q->cap) return MOQ_OK;
    size_t cap = q->cap ? q->cap : 8;
    while (cap < q->count + extra)
        cap *= 2;
    struct moq_quic_sendq_ent *ents = moq_pool_alloc(cap * sizeof(*ents));
    if (!ents) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < q->count; i++)
        ents[i] = *ent_at(q, i);
    moq_pool_free(q->ents, q->cap * sizeof(*q->ents));
    q->ents = ents;
    q->cap = cap;
    q->head = 0;
    return MOQ_OK;
}

int moq_quic_sendq_push(moq_quic_sendq *q, const moq_slice *v, size_t n)
{
    int rv = reserve(q, n);
    if (rv < 0) return rv;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0) continue;
        struct moq_quic_sendq_ent *e = ent_at(q, q->count++);
        e->chunk = moq_chunk_ref(v[i].chunk);
        e->base = v[i].chunk->data + v[i].off;
        e->len = v[i].len;
        q->end += v[i].len;
    }
    return MOQ_OK;
}

size_t moq_quic_sendq_peek(const moq_quic_sendq *q, ngtcp2_vec *v, size_t max)
{
    size_t n = 0;
    size_t skip = q->send_skip;
    for (size_t i = q->send_idx; i < q->count && n < max; i++) {
        const struct moq_quic_sendq_ent *e = ent_at(q, i);
        v[n].base = (uint8_t *)e->base + skip;
        v[n].len = e->len - skip;
        n++;
        skip = 0;
    }
    return n;
}

void moq_quic_sendq_advance(moq_quic_sendq *q, uint64_t n)
{
    q->sent += n;
    while (n > 0 && q->send_idx < q->count) {
        size_t left = ent_at(q, q->send_idx)->len - q->send_skip;
        if (n < left) {
            q->send_skip += (size_t)n;
            return;
        }
        n -= left;
        q->send_idx++;
        q->send_skip = 0;
    }
}

static void pop_oldest(moq_quic_sendq *q)
{
    struct moq_quic_sendq_ent *e = ent_at(q, 0);
    q->base += e->len;
    moq_chunk_unref(e->chunk);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->send_idx--;
}

void moq_quic_sendq_ack(moq_quic_sendq *q, uint64_t offset, uint64_t len)
{
    uint64_t upto = offset + len;
    if (upto > q->sent) upto = q->sent; /* never trust more than we handed out */
    if (upto > q->acked) q->acked = upto;
    /* send_idx > 0 guarantees the oldest entry was handed out completely. */
    while (q->count > 0 && q->send_idx > 0 && q->base + ent_at(q, 0)->len <= q->acked)
        pop_oldest(q);
}

void moq_quic_sendq_drop_unsent(moq_quic_sendq *q)
{
    size_t keep = q->send_idx + (q->send_skip > 0 ? 1 : 0);
    while (q->count > keep) {
        struct moq_quic_sendq_ent *e = ent_at(q, q->count - 1);
        moq_chunk_unref(e->chunk);
        q->count--;
    }
    /* A partly sent slice stays whole; its tail is simply never sent. */
    if (q->send_skip > 0) {
        struct moq_quic_sendq_ent *e = ent_at(q, q->send_idx);
        e->len = q->send_skip;
        q->send_idx++;
        q->send_skip = 0;
    }
    q->end = q->sent;
}
