#include "quic/cid_table.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_EMPTY = 0, SLOT_LIVE = 1, SLOT_DEAD = 2 };

struct moq_quic_cid_slot {
    void *value;
    uint32_t hash; /* low bits of the key hash, to skip most byte compares */
    uint8_t state;
    uint8_t len;
    uint8_t cid[MOQ_QUIC_CID_MAXLEN];
};

#define MIN_CAP 16

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

uint64_t moq_quic_siphash24(uint64_t k0, uint64_t k1, const uint8_t *data, size_t len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
    uint64_t v3 = k1 ^ 0x7465646279746573ull;
    size_t full = len & ~(size_t)7;

    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(data + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)data[full + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void moq_quic_cid_table_init(moq_quic_cid_table *t, const uint8_t key[16])
{
    memset(t, 0, sizeof(*t));
    if (key) {
        t->k0 = load_le64(key);
        t->k1 = load_le64(key + 8);
    }
}

void moq_quic_cid_table_free(moq_quic_cid_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->len = t->used = 0;
}

static uint64_t hash_cid(const moq_quic_cid_table *t, const uint8_t *cid, size_t len)
{
    return moq_quic_siphash24(t->k0, t->k1, cid, len);
}

static bool slot_matches(const struct moq_quic_cid_slot *s, uint32_t h, const uint8_t *cid,
                         size_t len)
{
    return s->state == SLOT_LIVE && s->hash == h && s->len == len && memcmp(s->cid, cid, len) == 0;
}

/* Index of the live slot holding cid, or SIZE_MAX. */
static size_t find_slot(const moq_quic_cid_table *t, uint64_t h, const uint8_t *cid, size_t len)
{
    if (t->cap == 0) return SIZE_MAX;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        const struct moq_quic_cid_slot *s = &t->slots[i];
        if (s->state == SLOT_EMPTY) return SIZE_MAX;
        if (slot_matches(s, (uint32_t)h, cid, len)) return i;
    }
    return SIZE_MAX;
}

static int resize(moq_quic_cid_table *t, size_t cap)
{
    struct moq_quic_cid_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots) return MOQ_ERR_NOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        struct moq_quic_cid_slot *s = &t->slots[i];
        if (s->state != SLOT_LIVE) continue;
        uint64_t h = hash_cid(t, s->cid, s->len);
        size_t j = (size_t)h & mask;
        while (slots[j].state != SLOT_EMPTY)
            j = (j + 1) & mask;
        slots[j] = *s;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->used = t->len;
    return MOQ_OK;
}

int moq_quic_cid_table_put(moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen, void *value)
{
    if (cidlen > MOQ_QUIC_CID_MAXLEN || !value || (cidlen && !cid)) return MOQ_ERR_INVALID;
    uint64_t h = hash_cid(t, cid, cidlen);
    if (find_slot(t, h, cid, cidlen) != SIZE_MAX) return MOQ_ERR_EXISTS;
    /* Keep live + dead slots at most half of the capacity. */
    if ((t->used + 1) * 2 > t->cap) {
        /* Mostly tombstones: rehash in place. Mostly live: double. Either way at least a
         * quarter of the slots are free afterwards, so rehashes stay rare. */
        size_t cap = t->cap ? t->cap : MIN_CAP;
        while ((t->len + 1) * 4 > cap)
            cap *= 2;
        int rv = resize(t, cap);
        if (rv < 0) return rv;
    }
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    while (t->slots[i].state == SLOT_LIVE)
        i = (i + 1) & mask;
    struct moq_quic_cid_slot *s = &t->slots[i];
    if (s->state == SLOT_EMPTY) t->used++;
    s->state = SLOT_LIVE;
    s->hash = (uint32_t)h;
    s->len = (uint8_t)cidlen;
    if (cidlen) memcpy(s->cid, cid, cidlen);
    s->value = value;
    t->len++;
    return MOQ_OK;
}

void *moq_quic_cid_table_get(const moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen)
{
    if (cidlen > MOQ_QUIC_CID_MAXLEN || t->len == 0) return NULL;
    size_t i = find_slot(t, hash_cid(t, cid, cidlen), cid, cidlen);
    return i == SIZE_MAX ? NULL : t->slots[i].value;
}

void *moq_quic_cid_table_del(moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen,
                             const void *value)
{
    if (cidlen > MOQ_QUIC_CID_MAXLEN || t->len == 0) return NULL;
    size_t i = find_slot(t, hash_cid(t, cid, cidlen), cid, cidlen);
    if (i == SIZE_MAX) return NULL;
    struct moq_quic_cid_slot *s = &t->slots[i];
    if (value && s->value != value) return NULL;
    void *old = s->value;
    s->state = SLOT_DEAD;
    s->value = NULL;
    t->len--;
    /* A table that became empty can drop its tombstones for free. */
    if (t->len == 0) {
        memset(t->slots, 0, t->cap * sizeof(*t->slots));
        t->used = 0;
    }
    return old;
}
