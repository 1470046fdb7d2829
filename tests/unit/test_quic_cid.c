/* Unit tests for src/quic/cid_table: keyed hashing, insert/lookup/delete, growth, tombstones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "quic/cid_table.h"
#include "util/err.h"

static const uint8_t key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void siphash_reference_vectors(void **state)
{
    (void)state;
    /* Reference vectors of the SipHash paper (key 00..0f, message 00..len-1). */
    uint8_t msg[64];
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
    assert_true(moq_quic_siphash24(k0, k1, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(moq_quic_siphash24(k0, k1, msg, 15) == 0xa129ca6149be45e5ull);
    assert_true(moq_quic_siphash24(k0, k1, msg, 8) == 0x93f5f5799a932462ull);
    /* A different key gives a different hash for the same bytes. */
    assert_true(moq_quic_siphash24(k0 + 1, k1, msg, 15) != 0xa129ca6149be45e5ull);
}

static void make_cid(uint8_t *cid, size_t len, uint32_t n)
{
    memset(cid, 0xa5, len);
    for (size_t i = 0; i < len && i < 4; i++)
        cid[i] = (uint8_t)(n >> (8 * i));
}

static void put_get_del(void **state)
{
    (void)state;
    moq_quic_cid_table t;
    moq_quic_cid_table_init(&t, key);
    int a, b;
    uint8_t cid[20];
    make_cid(cid, 16, 1);
    assert_null(moq_quic_cid_table_get(&t, cid, 16));
    assert_int_equal(moq_quic_cid_table_put(&t, cid, 16, &a), MOQ_OK);
    assert_ptr_equal(moq_quic_cid_table_get(&t, cid, 16), &a);
    /* A prefix of the same bytes is a different CID. */
    assert_null(moq_quic_cid_table_get(&t, cid, 15));
    assert_int_equal(moq_quic_cid_table_put(&t, cid, 15, &b), MOQ_OK);
    assert_ptr_equal(moq_quic_cid_table_get(&t, cid, 15), &b);
    /* Duplicates are refused and keep the old value. */
    assert_int_equal(moq_quic_cid_table_put(&t, cid, 16, &b), MOQ_ERR_EXISTS);
    assert_ptr_equal(moq_quic_cid_table_get(&t, cid, 16), &a);
    assert_int_equal(moq_quic_cid_table_len(&t), 2);
    /* Deleting with the wrong owner does nothing. */
    assert_null(moq_quic_cid_table_del(&t, cid, 16, &b));
    assert_ptr_equal(moq_quic_cid_table_del(&t, cid, 16, &a), &a);
    assert_null(moq_quic_cid_table_get(&t, cid, 16));
    assert_ptr_equal(moq_quic_cid_table_del(&t, cid, 15, NULL), &b);
    assert_int_equal(moq_quic_cid_table_len(&t), 0);
    /* Limits. */
    assert_int_equal(moq_quic_cid_table_put(&t, cid, 21, &a), MOQ_ERR_INVALID);
    assert_int_equal(moq_quic_cid_table_put(&t, cid, 4, NULL), MOQ_ERR_INVALID);
    /* Zero-length CIDs are legal keys. */
    assert_int_equal(moq_quic_cid_table_put(&t, NULL, 0, &a), MOQ_OK);
    assert_ptr_equal(moq_quic_cid_table_get(&t, cid, 0), &a);
    moq_quic_cid_table_free(&t);
}

static void many_entries_with_churn(void **state)
{
    (void)state;
    moq_quic_cid_table t;
    moq_quic_cid_table_init(&t, key);
    static int values[5000];
    uint8_t cid[20];
    for (uint32_t i = 0; i < 5000; i++) {
        make_cid(cid, 8 + i % 13, i);
        assert_int_equal(moq_quic_cid_table_put(&t, cid, 8 + i % 13, &values[i]), MOQ_OK);
    }
    assert_int_equal(moq_quic_cid_table_len(&t), 5000);
    assert_true(t.cap >= 2 * 5000 && t.cap <= 8 * 5000);
    /* Remove the odd ones, then re-add and remove many times: tombstones must not pile up
     * into lookups that fail or loop. */
    for (uint32_t i = 1; i < 5000; i += 2) {
        make_cid(cid, 8 + i % 13, i);
        assert_ptr_equal(moq_quic_cid_table_del(&t, cid, 8 + i % 13, &values[i]), &values[i]);
    }
    for (int round = 0; round < 20; round++) {
        for (uint32_t i = 1; i < 5000; i += 2) {
            make_cid(cid, 8 + i % 13, i + 100000u * (uint32_t)(round + 1));
            assert_int_equal(moq_quic_cid_table_put(&t, cid, 8 + i % 13, &values[i]), MOQ_OK);
        }
        for (uint32_t i = 1; i < 5000; i += 2) {
            make_cid(cid, 8 + i % 13, i + 100000u * (uint32_t)(round + 1));
            assert_non_null(moq_quic_cid_table_del(&t, cid, 8 + i % 13, NULL));
        }
    }
    assert_int_equal(moq_quic_cid_table_len(&t), 2500);
    for (uint32_t i = 0; i < 5000; i++) {
        make_cid(cid, 8 + i % 13, i);
        void *v = moq_quic_cid_table_get(&t, cid, 8 + i % 13);
        if (i % 2 == 0)
            assert_ptr_equal(v, &values[i]);
        else
            assert_null(v);
    }
    /* Capacity follows the peak of live entries, not the history of inserts. */
    assert_true(t.cap <= 8 * 5000);
    moq_quic_cid_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(siphash_reference_vectors),
        cmocka_unit_test(put_get_del),
        cmocka_unit_test(many_entries_with_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
