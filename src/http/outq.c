/* Output queue: a ring of chunk slices. Small writes are copied into a staging chunk so a
 * response head and a few short frames become one iovec instead of many. */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "http/internal.h"
#include "util/err.h"

#define STAGING_SIZE 16384
/* Copies larger than this get their own chunk rather than going through staging. */
#define STAGING_MAX_COPY 4096

void moq_outq_init(struct moq_outq *q)
{
    memset(q, 0, sizeof(*q));
}

void moq_outq_free(struct moq_outq *q)
{
    for (size_t i = 0; i < q->count; i++)
        moq_chunk_unref(q->v[(q->head + i) % q->cap].chunk);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

static int grow(struct moq_outq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 16;
    moq_slice *v = malloc(cap * sizeof(*v));
    if (!v) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < q->count; i++)
        v[i] = q->v[(q->head + i) % q->cap];
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static moq_slice *tail(struct moq_outq *q)
{
    return q->count ? &q->v[(q->head + q->count - 1) % q->cap] : NULL;
}

static int push_owned(struct moq_outq *q, moq_chunk *c, size_t off, size_t len)
{
    if (q->count == q->cap && grow(q) < 0) {
        moq_chunk_unref(c);
        return MOQ_ERR_NOMEM;
    }
    q->v[(q->head + q->count) % q->cap] = (moq_slice){c, off, len};
    q->count++;
    q->bytes += len;
    return 0;
}

int moq_outq_push(struct moq_outq *q, const moq_slice *s)
{
    if (!s->len) return 0;
    return push_owned(q, moq_chunk_ref(s->chunk), s->off, s->len);
}

int moq_outq_append(struct moq_outq *q, const void *data, size_t len)
{
    if (!len) return 0;
    moq_slice *t = tail(q);
    /* Extend the staging chunk in place when it is the tail and has room: nobody else
     * holds a reference to it. */
    if (t && q->staging && t->chunk == q->staging && t->off + t->len == q->staging->len &&
        q->staging->cap - q->staging->len >= len) {
        memcpy(q->staging->data + q->staging->len, data, len);
        q->staging->len += len;
        t->len += len;
        q->bytes += len;
        return 0;
    }
    if (len > STAGING_MAX_COPY) {
        moq_chunk *c = moq_chunk_copy(data, len);
        if (!c) return MOQ_ERR_NOMEM;
        return push_owned(q, c, 0, len);
    }
    moq_chunk *c = moq_chunk_new(STAGING_SIZE);
    if (!c) return MOQ_ERR_NOMEM;
    memcpy(c->data, data, len);
    c->len = len;
    q->staging = c;
    return push_owned(q, c, 0, len);
}

size_t moq_outq_peek(const struct moq_outq *q, struct iovec *iov, size_t max, size_t max_bytes)
{
    size_t n = 0, bytes = 0;
    for (size_t i = 0; i < q->count && n < max && bytes < max_bytes; i++) {
        const moq_slice *s = &q->v[(q->head + i) % q->cap];
        size_t len = s->len;
        if (len > max_bytes - bytes) len = max_bytes - bytes;
        iov[n].iov_base = s->chunk->data + s->off;
        iov[n].iov_len = len;
        bytes += len;
        n++;
    }
    return n;
}

void moq_outq_consume(struct moq_outq *q, size_t n)
{
    while (n && q->count) {
        moq_slice *s = &q->v[q->head];
        size_t k = n < s->len ? n : s->len;
        s->off += k;
        s->len -= k;
        q->bytes -= k;
        n -= k;
        if (!s->len) {
            if (s->chunk == q->staging) q->staging = NULL;
            moq_chunk_unref(s->chunk);
            q->head = (q->head + 1) % q->cap;
            q->count--;
        }
    }
}
