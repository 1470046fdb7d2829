/*
 * cid_table.h - connection-ID table: QUIC destination connection ID bytes -> connection.
 *
 * The server routes every datagram by its DCID through this table. Keys are copied into the
 * table (at most MOQ_QUIC_CID_MAXLEN bytes, zero-length allowed); values are borrowed
 * pointers the table never frees. Hashing is keyed with a per-table random key (SipHash-2-4)
 * so that peers, which choose the DCIDs of their first Initial packets, cannot force
 * collisions. Open addressing with linear probing; memory grows with the number of live
 * entries only.
 */
#ifndef MOQ_QUIC_CID_TABLE_H
#define MOQ_QUIC_CID_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define MOQ_QUIC_CID_MAXLEN 20

struct moq_quic_cid_slot;

typedef struct moq_quic_cid_table {
    struct moq_quic_cid_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t len;  /* live entries */
    size_t used; /* live entries + tombstones */
    uint64_t k0, k1;
} moq_quic_cid_table;

/* key: 16 random bytes for the hash (NULL = a fixed key, for tests only). */
void moq_quic_cid_table_init(moq_quic_cid_table *t, const uint8_t key[16]);
void moq_quic_cid_table_free(moq_quic_cid_table *t);

/* Insert cid -> value. MOQ_ERR_EXISTS if the cid is already present (the old value stays),
 * MOQ_ERR_INVALID if cidlen > MOQ_QUIC_CID_MAXLEN or value is NULL, MOQ_ERR_NOMEM. */
int moq_quic_cid_table_put(moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen, void *value);
/* The value for cid, or NULL. */
void *moq_quic_cid_table_get(const moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen);
/* Remove cid if it maps to value (value NULL: whatever it maps to). Returns the removed
 * value or NULL. */
void *moq_quic_cid_table_del(moq_quic_cid_table *t, const uint8_t *cid, size_t cidlen,
                             const void *value);

static inline size_t moq_quic_cid_table_len(const moq_quic_cid_table *t)
{
    return t->len;
}

/* SipHash-2-4 of data under (k0, k1); exposed for tests. */
uint64_t moq_quic_siphash24(uint64_t k0, uint64_t k1, const uint8_t *data, size_t len);

#endif
