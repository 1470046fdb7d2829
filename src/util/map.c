#include "util/map.h"
#include "util/err.h"
#include "util/pool.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY = 0, SLOT_LIVE = 1, SLOT_DEAD = 2 };

struct moq_map_slot {
    uint64_t hash;
    void *key;
    size_t klen;
    void *value;
    int state;
};

struct moq_u64map_slot {
    uint64_t key;
    void *value;
    int state;
};

uint64_t moq_hash_bytes(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* A slot that lost its live entry. A tombstone is needed only where a probe can run past it to
 * a live entry: with an empty slot next, none does, and neither past the tombstones that lead
 * up to it, so they all become empty. A map whose keys come and go one at a time (streams,
 * groups) then keeps few tombstones and does not rehash - allocate - every few insertions.
 * The macro walks back from slot i of SLOTS (CAP slots) and lowers USED. */
#define RECLAIM_TOMBSTONES(slots, cap, used, i)                                                    \
    do {                                                                                           \
        size_t mask_ = (cap)-1, j_ = (i);                                                          \
        if ((slots)[(j_ + 1) & mask_].state != SLOT_EMPTY) break;                                  \
        while ((slots)[j_].state == SLOT_DEAD) {                                                   \
            (slots)[j_].state = SLOT_EMPTY;                                                        \
            (used)--;                                                                              \
            j_ = (j_ + mask_) & mask_;                                                             \
        }                                                                                          \
    } while (0)

void moq_map_init(moq_map *m)
{
    memset(m, 0, sizeof(*m));
}

void moq_map_free(moq_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].state == SLOT_LIVE) free(m->slots[i].key);
    moq_pool_free(m->slots, m->cap * sizeof(*m->slots));
    moq_map_init(m);
}

static struct moq_map_slot *map_find(const moq_map *m, uint64_t h, const void *key, size_t klen)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
        struct moq_map_slot *s = &m->slots[i];
        if (s->state == SLOT_EMPTY) return NULL;
        if (s->state == SLOT_LIVE && s->hash == h && s->klen == klen &&
            (klen == 0 || memcmp(s->key, key, klen) == 0))
            return s;
    }
    return NULL;
}

static int map_grow(moq_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (m->len * 4 < m->cap) cap = m->cap; /* mostly tombstones: rehash in place */
    struct moq_map_slot *slots = moq_pool_calloc(cap * sizeof(*slots));
    if (!slots) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct moq_map_slot *s = &m->slots[i];
        if (s->state != SLOT_LIVE) continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].state != SLOT_EMPTY)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    moq_pool_free(m->slots, m->cap * sizeof(*m->slots));
    m->slots = slots;
    m->cap = cap;
    m->used = m->len;
    return 0;
}

int moq_map_put(moq_map *m, const void *key, size_t klen, void *value)
{
    uint64_t h = moq_hash_bytes(key, klen);
    struct moq_map_slot *s = map_find(m, h, key, klen);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        int rv = map_grow(m);
        if (rv < 0) return rv;
    }
    void *k = malloc(klen ? klen : 1);
    if (!k) return MOQ_ERR_NOMEM;
    if (klen) memcpy(k, key, klen);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].state == SLOT_LIVE)
        i = (i + 1) & mask;
    if (m->slots[i].state == SLOT_EMPTY) m->used++;
    m->slots[i] = (struct moq_map_slot){h, k, klen, value, SLOT_LIVE};
    m->len++;
    return 0;
}

void *moq_map_get(const moq_map *m, const void *key, size_t klen)
{
    struct moq_map_slot *s = map_find(m, moq_hash_bytes(key, klen), key, klen);
    return s ? s->value : NULL;
}

void *moq_map_del(moq_map *m, const void *key, size_t klen)
{
    struct moq_map_slot *s = map_find(m, moq_hash_bytes(key, klen), key, klen);
    if (!s) return NULL;
    void *v = s->value;
    free(s->key);
    s->key = NULL;
    s->state = SLOT_DEAD;
    m->len--;
    RECLAIM_TOMBSTONES(m->slots, m->cap, m->used, (size_t)(s - m->slots));
    return v;
}

int moq_map_next(const moq_map *m, size_t *it, const void **key, size_t *klen, void **value)
{
    for (; *it < m->cap; (*it)++) {
        struct moq_map_slot *s = &m->slots[*it];
        if (s->state != SLOT_LIVE) continue;
        if (key) *key = s->key;
        if (klen) *klen = s->klen;
        if (value) *value = s->value;
        (*it)++;
        return 1;
    }
    return 0;
}

void moq_u64map_init(moq_u64map *m)
{
    memset(m, 0, sizeof(*m));
}

void moq_u64map_free(moq_u64map *m)
{
    moq_pool_free(m->slots, m->cap * sizeof(*m->slots));
    moq_u64map_init(m);
}

static struct moq_u64map_slot *u64_find(const moq_u64map *m, uint64_t key)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
        struct moq_u64map_slot *s = &m->slots[i];
        if (s->state == SLOT_EMPTY) return NULL;
        if (s->state == SLOT_LIVE && s->key == key) return s;
    }
    return NULL;
}

static int u64_grow(moq_u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (m->len * 4 < m->cap) cap = m->cap;
    struct moq_u64map_slot *slots = moq_pool_calloc(cap * sizeof(*slots));
    if (!slots) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct moq_u64map_slot *s = &m->slots[i];
        if (s->state != SLOT_LIVE) continue;
        size_t j = mix64(s->key) & (cap - 1);
        while (slots[j].state != SLOT_EMPTY)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    moq_pool_free(m->slots, m->cap * sizeof(*m->slots));
    m->slots = slots;
    m->cap = cap;
    m->used = m->len;
    return 0;
}

int moq_u64map_put(moq_u64map *m, uint64_t key, void *value)
{
    struct moq_u64map_slot *s = u64_find(m, key);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        int rv = u64_grow(m);
        if (rv < 0) return rv;
    }
    size_t mask = m->cap - 1;
    size_t i = mix64(key) & mask;
    while (m->slots[i].state == SLOT_LIVE)
        i = (i + 1) & mask;
    if (m->slots[i].state == SLOT_EMPTY) m->used++;
    m->slots[i] = (struct moq_u64map_slot){key, value, SLOT_LIVE};
    m->len++;
    return 0;
}

void *moq_u64map_get(const moq_u64map *m, uint64_t key)
{
    struct moq_u64map_slot *s = u64_find(m, key);
    return s ? s->value : NULL;
}

void *moq_u64map_del(moq_u64map *m, uint64_t key)
{
    struct moq_u64map_slot *s = u64_find(m, key);
    if (!s) return NULL;
    s->state = SLOT_DEAD;
    m->len--;
    RECLAIM_TOMBSTONES(m->slots, m->cap, m->used, (size_t)(s - m->slots));
    return s->value;
}

int moq_u64map_next(const moq_u64map *m, size_t *it, uint64_t *key, void **value)
{
    for (; *it < m->cap; (*it)++) {
        struct moq_u64map_slot *s = &m->slots[*it];
        if (s->state != SLOT_LIVE) continue;
        if (key) *key = s->key;
        if (value) *value = s->value;
        (*it)++;
        return 1;
    }
    return 0;
}
