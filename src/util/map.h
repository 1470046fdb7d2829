/*
 * map.h - open-addressing hash maps.
 *
 * moq_map: byte-string keys (copied into the map) -> void* values.
 * moq_u64map: 64-bit integer keys -> void* values.
 * Maps never own or free their values; moq_*_free releases only the map's own memory.
 * Iteration order is unspecified. Modifying a map while iterating it is not allowed,
 * except moq_*_del on the entry just returned by the iterator.
 */
#ifndef MOQ_UTIL_MAP_H
#define MOQ_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

struct moq_map_slot;

typedef struct moq_map {
    struct moq_map_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t len;  /* live entries */
    size_t used; /* live + tombstones */
} moq_map;

void moq_map_init(moq_map *m);
void moq_map_free(moq_map *m);
/* Insert or replace. Returns 0, or MOQ_ERR_NOMEM. */
int moq_map_put(moq_map *m, const void *key, size_t klen, void *value);
void *moq_map_get(const moq_map *m, const void *key, size_t klen);
/* Remove; returns the removed value or NULL. */
void *moq_map_del(moq_map *m, const void *key, size_t klen);
static inline size_t moq_map_len(const moq_map *m)
{
    return m->len;
}
/* Iterate: start with *it = 0; returns 1 with key/value set, 0 at the end. */
int moq_map_next(const moq_map *m, size_t *it, const void **key, size_t *klen, void **value);

struct moq_u64map_slot;

typedef struct moq_u64map {
    struct moq_u64map_slot *slots;
    size_t cap;
    size_t len;
    size_t used;
} moq_u64map;

void moq_u64map_init(moq_u64map *m);
void moq_u64map_free(moq_u64map *m);
int moq_u64map_put(moq_u64map *m, uint64_t key, void *value);
void *moq_u64map_get(const moq_u64map *m, uint64_t key);
void *moq_u64map_del(moq_u64map *m, uint64_t key);
static inline size_t moq_u64map_len(const moq_u64map *m)
{
    return m->len;
}
int moq_u64map_next(const moq_u64map *m, size_t *it, uint64_t *key, void **value);

/* FNV-1a 64-bit hash. */
uint64_t moq_hash_bytes(const void *data, size_t len);

#endif
